//! `desired`: the configuration's services, the health checkers' verdicts
//! (from the real health core, driven with a fake clock) and lbctl's
//! overrides, with no I/O.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::{
    config::Config,
    control::{protocol::OverrideInfo, Overrides},
    daemon::desired,
    dataplane::{Capabilities, Proto, ServiceSpec},
    health::{core::Core, HealthPlan, Outcome, Verdicts},
    services,
};

fn config(text: &str) -> Config {
    crate::config::parse_str(text, Path::new("t.conf"))
        .expect("valid config")
        .config
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The configuration's services (XDP tier) and its health core at start.
fn start(text: &str) -> (Vec<ServiceSpec>, Core) {
    let config = config(text);
    let planned = services::plan_for(&config, Capabilities::XDP).services;
    let (core, _) = Core::new(HealthPlan::from_config(&config), None, at(0));
    (planned, core)
}

/// A failed probe of `backend` (its first checker) in the first service.
fn fail(core: &mut Core, backend: &str) {
    let key = core.plan().services[0]
        .backends
        .iter()
        .find(|b| b.addr == sa(backend))
        .expect("backend")
        .probes[0]
        .clone();
    core.on_result(&key, at(1), Outcome::down("refused"));
}

/// (backend, weight, removed) of the first service.
fn backends(specs: &[ServiceSpec]) -> Vec<(String, u32, bool)> {
    specs[0]
        .backends
        .iter()
        .map(|b| (b.addr.to_string(), b.weight, b.removed))
        .collect()
}

fn row(addr: &str, weight: u32, removed: bool) -> (String, u32, bool) {
    (addr.to_string(), weight, removed)
}

fn key(backend: &str) -> (SocketAddr, Proto, SocketAddr) {
    (sa("10.0.0.1:80"), Proto::Tcp, sa(backend))
}

/// Two checked backends (weights 2 and 3), down at the first failure; the
/// second with `inhibit_on_failure`.
const TWO: &str = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n lb_algo wrr\n\
    real_server 10.0.0.11 80 {\n weight 2\n TCP_CHECK {\n retry 0\n }\n }\n\
    real_server 10.0.0.12 80 {\n weight 3\n inhibit_on_failure\n TCP_CHECK {\n retry 0\n }\n }\n}\n";

/// Three backends, quorum 3 (weights 2+2+1), a sorry server.
const QUORUM: &str = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n quorum 3\n hysteresis 0\n\
    sorry_server 10.0.0.99 80\n\
    real_server 10.0.0.11 80 {\n weight 2\n TCP_CHECK {\n retry 0\n }\n }\n\
    real_server 10.0.0.12 80 {\n weight 2\n TCP_CHECK {\n retry 0\n }\n }\n\
    real_server 10.0.0.13 80 {\n weight 1\n TCP_CHECK {\n retry 0\n }\n }\n}\n";

#[test]
fn with_no_verdict_and_no_override_the_configuration_is_carried_as_planned() {
    let (planned, _) = start(TWO);
    let got = desired(&planned, &Verdicts::default(), &Overrides::default());
    assert_eq!(got, planned);
}

#[test]
fn up_backends_keep_their_configured_weights() {
    let (planned, core) = start(TWO);
    let got = desired(&planned, &core.verdicts(), &Overrides::default());
    assert_eq!(
        backends(&got),
        vec![row("10.0.0.11:80", 2, false), row("10.0.0.12:80", 3, false)]
    );
}

#[test]
fn a_down_backend_stays_with_weight_0_removed_unless_inhibit_on_failure() {
    let (planned, mut core) = start(TWO);
    fail(&mut core, "10.0.0.11:80");
    fail(&mut core, "10.0.0.12:80");
    let got = desired(&planned, &core.verdicts(), &Overrides::default());
    // Both keep their place (their established flows finish); only the one
    // without inhibit_on_failure is marked removed (IPVS deletes it).
    assert_eq!(
        backends(&got),
        vec![row("10.0.0.11:80", 0, true), row("10.0.0.12:80", 0, false)]
    );
    // The plan itself is untouched: a backend coming back gets its weight.
    assert_eq!(planned[0].backends[0].weight, 2);
}

#[test]
fn quorum_lost_takes_new_flows_off_the_real_servers_and_gives_them_to_the_sorry_server() {
    let (planned, mut core) = start(QUORUM);
    let got = desired(&planned, &core.verdicts(), &Overrides::default());
    let weights: Vec<_> = got[0].backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, vec![2, 2, 1]);
    let sorry = got[0].sorry.as_ref().expect("sorry server configured");
    assert_eq!((sorry.addr, sorry.weight), (sa("10.0.0.99:80"), 1));

    fail(&mut core, "10.0.0.11:80");
    fail(&mut core, "10.0.0.12:80");
    let got = desired(&planned, &core.verdicts(), &Overrides::default());
    // 1 of 3 left: quorum lost. The one still up takes no new flow either:
    // without inhibit_on_failure it is out of the pool (removed) like the
    // failed ones; the sorry server takes every new flow.
    assert_eq!(
        backends(&got),
        vec![
            row("10.0.0.11:80", 0, true),
            row("10.0.0.12:80", 0, true),
            row("10.0.0.13:80", 0, true),
        ]
    );
    assert_eq!(got[0].sorry.as_ref().unwrap().addr, sa("10.0.0.99:80"));
}

#[test]
fn overrides_weigh_drain_and_disable_on_top_of_the_verdicts() {
    let three = TWO.replace(
        "}\n}\n",
        "}\n real_server 10.0.0.13 80 {\n weight 4\n }\n}\n",
    );
    let (planned, core) = start(&three);
    let mut o = Overrides::default();
    o.set(
        key("10.0.0.11:80"),
        Some(OverrideInfo::SetWeight { weight: 9 }),
    );
    o.set(key("10.0.0.12:80"), Some(OverrideInfo::Drain));
    o.set(key("10.0.0.13:80"), Some(OverrideInfo::Disable));
    let got = desired(&planned, &core.verdicts(), &o);
    assert_eq!(
        backends(&got),
        vec![row("10.0.0.11:80", 9, false), row("10.0.0.12:80", 0, false)]
    );
}

#[test]
fn set_weight_never_revives_a_backend_the_checkers_took_down() {
    let (planned, mut core) = start(TWO);
    fail(&mut core, "10.0.0.11:80");
    let mut o = Overrides::default();
    o.set(
        key("10.0.0.11:80"),
        Some(OverrideInfo::SetWeight { weight: 9 }),
    );
    let got = desired(&planned, &core.verdicts(), &o);
    assert_eq!(backends(&got)[0], row("10.0.0.11:80", 0, true));
}

#[test]
fn set_weight_lifts_a_backend_configured_with_weight_0() {
    let (planned, core) = start(&TWO.replace("weight 2", "weight 0"));
    let mut o = Overrides::default();
    o.set(
        key("10.0.0.11:80"),
        Some(OverrideInfo::SetWeight { weight: 5 }),
    );
    let got = desired(&planned, &core.verdicts(), &o);
    assert_eq!(backends(&got)[0], row("10.0.0.11:80", 5, false));
}

#[test]
fn an_override_wins_until_the_reload_clears_it() {
    let (planned, core) = start(TWO);
    let mut o = Overrides::default();
    o.set(key("10.0.0.12:80"), Some(OverrideInfo::Drain));
    // Reconcile after reconcile, the drain holds.
    for _ in 0..2 {
        let got = desired(&planned, &core.verdicts(), &o);
        assert_eq!(backends(&got)[1], row("10.0.0.12:80", 0, false));
    }
    // A reload clears every override (`Operations::reloaded`): the
    // configured weight is back.
    o.clear();
    let got = desired(&planned, &core.verdicts(), &o);
    assert_eq!(backends(&got)[1], row("10.0.0.12:80", 3, false));
}

#[test]
fn the_sorry_server_is_drained_or_disabled_like_a_backend() {
    let (planned, core) = start(QUORUM);
    let sorry = (sa("10.0.0.1:80"), Proto::Tcp, sa("10.0.0.99:80"));
    let mut o = Overrides::default();
    o.set(sorry, Some(OverrideInfo::Drain));
    let got = desired(&planned, &core.verdicts(), &o);
    assert_eq!(got[0].sorry.as_ref().map(|s| s.weight), Some(0));
    o.set(sorry, Some(OverrideInfo::Disable));
    let got = desired(&planned, &core.verdicts(), &o);
    assert!(got[0].sorry.is_none());
}

#[test]
fn verdicts_of_another_service_change_nothing() {
    let (planned, _) = start(TWO);
    let (_, mut other) = start(&QUORUM.replace("10.0.0.1 80", "10.0.0.2 80"));
    fail(&mut other, "10.0.0.11:80");
    let got = desired(&planned, &other.verdicts(), &Overrides::default());
    assert_eq!(got, planned);
}
