//! The core driven with a fake clock: results in, delays, actions and
//! verdicts out.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::core::{Action, BackendStatus, Core, Outcome};
use super::plan::{HealthPlan, ProbeKey};
use crate::dataplane::{BackendSpec, Proto, ServiceSpec};

fn plan_of(text: &str) -> HealthPlan {
    let loaded = crate::config::parse_str(text, Path::new("t.conf")).expect("valid config");
    HealthPlan::from_config(&loaded.config)
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The probe of backend `addr` (its first checker) in service `si`.
fn key(core: &Core, si: usize, addr: &str) -> ProbeKey {
    let b = core.plan().services[si]
        .backends
        .iter()
        .find(|b| b.addr == sa(addr))
        .expect("backend");
    b.probes[0].clone()
}

fn weights(core: &Core, si: usize) -> Vec<u32> {
    let svc = &core.plan().services[si];
    core.verdicts().services[&(svc.vip, svc.proto)]
        .backends
        .iter()
        .map(|(_, w)| *w)
        .collect()
}

fn notifies(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify { script, .. } => Some(script.clone()),
            _ => None,
        })
        .collect()
}

const TWO: &str = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n lb_algo wrr\n\
    real_server 10.0.0.11 80 {\n weight 2\n notify_up /bin/up1\n notify_down /bin/down1\n\
      TCP_CHECK {\n connect_timeout 1\n retry 2\n delay_before_retry 0.5\n delay_loop 3\n }\n }\n\
    real_server 10.0.0.12 80 {\n weight 3\n TCP_CHECK {\n connect_timeout 1\n retry 0\n delay_loop 3\n }\n }\n}\n";

#[test]
fn failures_are_retried_then_the_backend_goes_down_and_one_success_brings_it_back() {
    let (mut core, actions) = Core::new(plan_of(TWO), None, at(0));
    assert!(actions.is_empty(), "{actions:?}");
    // Without alpha every backend starts in the pool.
    assert_eq!(weights(&core, 0), vec![2, 3]);
    let k = key(&core, 0, "10.0.0.11:80");

    let (step, actions) = core.on_result(&k, at(1), Outcome::up());
    assert_eq!((step.next, step.changed), (Duration::from_secs(3), false));
    assert!(actions.is_empty());

    // retry 2: two retries delay_before_retry apart, still up meanwhile.
    for i in 1..=2 {
        let (step, actions) = core.on_result(&k, at(4), Outcome::down("refused"));
        assert_eq!(step.next, Duration::from_millis(500), "retry {i}");
        assert!(!step.changed && actions.is_empty());
        assert_eq!(weights(&core, 0), vec![2, 3]);
    }
    let (step, actions) = core.on_result(&k, at(5), Outcome::down("refused"));
    assert_eq!((step.next, step.changed), (Duration::from_secs(3), true));
    assert_eq!(weights(&core, 0), vec![0, 3]);
    assert_eq!(notifies(&actions), vec!["/bin/down1"]);
    assert!(actions.iter().any(|a| matches!(a,
        Action::Backend { up: false, reason: Some(r), .. } if r == "refused")));

    // Down: a failure is not retried.
    let (step, actions) = core.on_result(&k, at(8), Outcome::down("refused"));
    assert_eq!((step.next, step.changed), (Duration::from_secs(3), false));
    assert!(actions.is_empty());

    let (step, actions) = core.on_result(&k, at(11), Outcome::up());
    assert_eq!((step.next, step.changed), (Duration::from_secs(3), true));
    assert_eq!(notifies(&actions), vec!["/bin/up1"]);
    assert_eq!(weights(&core, 0), vec![2, 3]);

    let snap = core.snapshot();
    let b = &snap.services[0].backends[0];
    assert_eq!(b.status, BackendStatus::InPool);
    assert_eq!(b.checkers[0].last_result, Some("success"));
    assert_eq!(
        b.checkers[0].last_change_unix_ms,
        Some(
            at(11)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        )
    );
}

#[test]
fn a_local_error_leaves_the_backend_as_it_was_and_is_counted() {
    let (mut core, _) = Core::new(plan_of(TWO), None, at(0));
    let k = key(&core, 0, "10.0.0.12:80");
    core.on_result(&k, at(1), Outcome::up());
    // retry 0 for this backend: one failure would take it out.
    for i in 0..5 {
        let (step, actions) = core.on_result(
            &k,
            at(2 + i),
            Outcome::LocalError {
                reason: "connect to 10.0.0.12:80: Too many open files (os error 24)".into(),
            },
        );
        assert!(!step.changed && actions.is_empty(), "{actions:?}");
        // delay_before_retry (its default, 1 s), not a failure's delay_loop.
        assert_eq!(step.next, Duration::from_secs(1));
    }
    assert_eq!(weights(&core, 0), vec![2, 3]);
    let snap = core.snapshot();
    let c = &snap.services[0].backends[1].checkers[0];
    assert_eq!(
        (c.up, c.last_result, c.local_errors),
        (true, Some("success"), 5)
    );
    assert!(c
        .last_local_error
        .as_deref()
        .unwrap()
        .contains("Too many open files"));
    // A real failure still counts as one.
    let (step, _) = core.on_result(&k, at(9), Outcome::down("refused"));
    assert!(step.changed);
    assert_eq!(weights(&core, 0), vec![2, 0]);
}

#[test]
fn local_socket_errors_are_told_apart_from_the_backends() {
    let target = sa("10.0.0.12:80");
    for errno in [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::EADDRNOTAVAIL,
    ] {
        let e = std::io::Error::from_raw_os_error(errno);
        assert!(matches!(
            super::socket::failed("connect to", target, &e),
            Outcome::LocalError { .. }
        ));
    }
    for errno in [libc::ECONNREFUSED, libc::EHOSTUNREACH, libc::ETIMEDOUT] {
        let e = std::io::Error::from_raw_os_error(errno);
        assert!(matches!(
            super::socket::failed("connect to", target, &e),
            Outcome::Down { .. }
        ));
    }
}

#[test]
fn retry_zero_goes_down_on_the_first_failure_and_a_retry_success_resets() {
    let (mut core, _) = Core::new(plan_of(TWO), None, at(0));
    let k12 = key(&core, 0, "10.0.0.12:80");
    let (step, _) = core.on_result(&k12, at(1), Outcome::down("timeout"));
    assert!(step.changed);
    assert_eq!(weights(&core, 0), vec![2, 0]);

    // A success during the retries resets the count.
    let k11 = key(&core, 0, "10.0.0.11:80");
    core.on_result(&k11, at(1), Outcome::down("x"));
    core.on_result(&k11, at(2), Outcome::up());
    core.on_result(&k11, at(3), Outcome::down("x"));
    let (step, _) = core.on_result(&k11, at(4), Outcome::down("x"));
    assert!(!step.changed, "only the second retry of a new series");
    assert_eq!(weights(&core, 0)[0], 2);
}

#[test]
fn alpha_keeps_a_backend_out_until_its_first_success() {
    let text = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n alpha\n\
        real_server 10.0.0.11 80 {\n TCP_CHECK {\n retry 3\n }\n }\n\
        real_server 10.0.0.12 80 {\n TCP_CHECK {\n alpha no\n }\n }\n}\n";
    let (mut core, _) = Core::new(plan_of(text), None, at(0));
    assert_eq!(weights(&core, 0), vec![0, 1]);
    let k = key(&core, 0, "10.0.0.11:80");
    // Down from the start: failures are not retried, nothing changes.
    let (step, _) = core.on_result(&k, at(1), Outcome::down("refused"));
    assert_eq!(step.next, Duration::from_secs(60));
    assert_eq!(weights(&core, 0), vec![0, 1]);
    let (step, _) = core.on_result(&k, at(61), Outcome::up());
    assert!(step.changed);
    assert_eq!(weights(&core, 0), vec![1, 1]);
}

#[test]
fn a_backend_is_up_only_while_all_its_checkers_are() {
    let text = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n\
        real_server 10.0.0.11 80 {\n TCP_CHECK {\n retry 0\n }\n\
          HTTP_GET {\n url { path / }\n retry 0\n }\n }\n}\n";
    let (mut core, _) = Core::new(plan_of(text), None, at(0));
    let probes = core.plan().services[0].backends[0].probes.clone();
    assert_eq!(probes.len(), 2);
    core.on_result(&probes[1], at(1), Outcome::down("status 500"));
    assert_eq!(weights(&core, 0), vec![0]);
    core.on_result(&probes[0], at(1), Outcome::down("refused"));
    core.on_result(&probes[1], at(2), Outcome::up());
    assert_eq!(weights(&core, 0), vec![0], "TCP_CHECK still down");
    core.on_result(&probes[0], at(3), Outcome::up());
    assert_eq!(weights(&core, 0), vec![1]);
}

#[test]
fn misc_dynamic_weights_set_and_reset_the_weight() {
    let text = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n\
        real_server 10.0.0.11 80 {\n weight 5\n MISC_CHECK {\n misc_path /bin/w\n misc_dynamic\n }\n }\n}\n";
    let (mut core, _) = Core::new(plan_of(text), None, at(0));
    let k = key(&core, 0, "10.0.0.11:80");
    let (step, _) = core.on_result(&k, at(1), Outcome::Up { weight: Some(3) });
    assert!(step.changed);
    assert_eq!(weights(&core, 0), vec![3]);
    let (step, _) = core.on_result(&k, at(2), Outcome::Up { weight: Some(3) });
    assert!(!step.changed);
    // Exit 0 puts the configured weight back.
    core.on_result(&k, at(3), Outcome::up());
    assert_eq!(weights(&core, 0), vec![5]);
    // Exit 2: up with weight 0 (in the pool, no new connections).
    core.on_result(&k, at(4), Outcome::Up { weight: Some(0) });
    assert_eq!(weights(&core, 0), vec![0]);
    assert!(core.snapshot().services[0].backends[0].up);
}

const QUORUM: &str = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n quorum 3\n hysteresis 1\n\
    quorum_up /bin/qup\n quorum_down /bin/qdown\n sorry_server 10.0.0.99 80\n\
    real_server 10.0.0.11 80 {\n weight 2\n TCP_CHECK {\n retry 0\n }\n }\n\
    real_server 10.0.0.12 80 {\n weight 2\n TCP_CHECK {\n retry 0\n }\n }\n\
    real_server 10.0.0.13 80 {\n weight 1\n TCP_CHECK {\n retry 0\n }\n }\n}\n";

#[test]
fn quorum_with_hysteresis_switches_to_the_sorry_server_and_back() {
    let (mut core, actions) = Core::new(plan_of(QUORUM), None, at(0));
    assert!(actions.is_empty());
    let v = |core: &Core| core.verdicts().services[&(sa("10.0.0.1:80"), Proto::Tcp)].clone();
    assert_eq!(v(&core).sorry, Some((sa("10.0.0.99:80"), false)));
    let (k11, k12, k13) = (
        key(&core, 0, "10.0.0.11:80"),
        key(&core, 0, "10.0.0.12:80"),
        key(&core, 0, "10.0.0.13:80"),
    );
    // 5 → 3: still at or above quorum − hysteresis (2).
    core.on_result(&k11, at(1), Outcome::down("x"));
    assert_eq!(weights(&core, 0), vec![0, 2, 1]);
    // 3 → 1: below 2, quorum lost, the sorry server takes over.
    let (_, actions) = core.on_result(&k12, at(2), Outcome::down("x"));
    assert_eq!(notifies(&actions), vec!["/bin/qdown"]);
    assert_eq!(weights(&core, 0), vec![0, 0, 0]);
    assert_eq!(v(&core).sorry, Some((sa("10.0.0.99:80"), true)));
    let snap = core.snapshot();
    assert!(!snap.services[0].quorum_up && snap.services[0].sorry_active);
    assert_eq!(
        snap.services[0].backends[2].status,
        BackendStatus::QuorumLost
    );
    // 1 → 3: not yet quorum + hysteresis (4).
    let (_, actions) = core.on_result(&k11, at(3), Outcome::up());
    assert!(notifies(&actions).is_empty());
    assert_eq!(v(&core).sorry, Some((sa("10.0.0.99:80"), true)));
    // 3 → 5: quorum regained, live backends back.
    let (_, actions) = core.on_result(&k12, at(4), Outcome::up());
    assert_eq!(notifies(&actions), vec!["/bin/qup"]);
    assert_eq!(weights(&core, 0), vec![2, 2, 1]);
    assert_eq!(v(&core).sorry, Some((sa("10.0.0.99:80"), false)));
    // Everything down: quorum lost even with quorum − hysteresis ≤ 0.
    let text = QUORUM.replace("quorum 3\n hysteresis 1", "quorum 1\n hysteresis 1");
    let (mut core, _) = Core::new(plan_of(&text), None, at(0));
    for k in [&k11, &k12, &k13] {
        core.on_result(k, at(1), Outcome::down("x"));
    }
    assert!(!core.snapshot().services[0].quorum_up);
}

#[test]
fn starting_below_quorum_uses_the_sorry_server_at_once() {
    let text = QUORUM.replace("quorum 3", "quorum 9");
    let (core, actions) = Core::new(plan_of(&text), None, at(0));
    assert_eq!(notifies(&actions), vec!["/bin/qdown"]);
    let v = &core.verdicts().services[&(sa("10.0.0.1:80"), Proto::Tcp)];
    assert_eq!(v.sorry, Some((sa("10.0.0.99:80"), true)));
}

#[test]
fn a_shared_probe_decides_the_backend_in_every_service() {
    let text = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n TCP_CHECK { retry 0 }\n }\n}\n\
        virtual_server 10.0.0.2 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n inhibit_on_failure\n TCP_CHECK { retry 0 }\n }\n}\n";
    let (mut core, _) = Core::new(plan_of(text), None, at(0));
    assert_eq!(core.plan().probes.len(), 1);
    let k = key(&core, 0, "10.0.0.11:80");
    let (_, actions) = core.on_result(&k, at(1), Outcome::down("x"));
    let downs = actions
        .iter()
        .filter(|a| matches!(a, Action::Backend { up: false, .. }))
        .count();
    assert_eq!(downs, 2);
    assert_eq!(weights(&core, 0), vec![0]);
    assert_eq!(weights(&core, 1), vec![0]);
    let snap = core.snapshot();
    assert_eq!(snap.services[0].backends[0].status, BackendStatus::Removed);
    assert_eq!(
        snap.services[1].backends[0].status,
        BackendStatus::Inhibited
    );
}

#[test]
fn a_reload_keeps_the_state_of_unchanged_probes() {
    let (mut core, _) = Core::new(plan_of(TWO), None, at(0));
    let k12 = key(&core, 0, "10.0.0.12:80");
    core.on_result(&k12, at(1), Outcome::down("x"));
    assert_eq!(weights(&core, 0), vec![2, 0]);
    // Same file, plus a new backend: .12 stays down, no notify, no flap.
    let text = TWO.replace(
        "real_server 10.0.0.12 80",
        "real_server 10.0.0.13 80 {\n alpha\n TCP_CHECK { }\n }\n real_server 10.0.0.12 80",
    );
    let (core2, actions) = Core::new(plan_of(&text), Some(&core), at(2));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(weights(&core2, 0), vec![2, 0, 0]);
    assert_eq!(core2.checker(&k12), core.checker(&k12));
    // A changed checker starts afresh (up, without alpha).
    let text = TWO.replace("retry 0\n delay_loop 3", "retry 1\n delay_loop 3");
    let (core3, _) = Core::new(plan_of(&text), Some(&core), at(2));
    assert_eq!(weights(&core3, 0), vec![2, 3]);
}

#[test]
fn apply_sets_weights_and_hands_new_flows_to_the_sorry_server_without_quorum() {
    let (mut core, _) = Core::new(plan_of(QUORUM), None, at(0));
    let spec = |addrs: &[&str]| {
        ServiceSpec::new(
            sa("10.0.0.1:80"),
            Proto::Tcp,
            addrs
                .iter()
                .map(|a| BackendSpec {
                    addr: sa(a),
                    weight: 7,
                    mac: None,
                    via: None,
                    removed: false,
                })
                .collect(),
        )
    };
    let mut specs = vec![spec(&["10.0.0.11:80", "10.0.0.12:80", "10.0.0.13:80"])];
    super::apply(&mut specs, &core.verdicts());
    let w: Vec<_> = specs[0]
        .backends
        .iter()
        .map(|b| (b.addr, b.weight))
        .collect();
    assert_eq!(
        w,
        vec![
            (sa("10.0.0.11:80"), 2),
            (sa("10.0.0.12:80"), 2),
            (sa("10.0.0.13:80"), 1),
        ]
    );
    // The sorry server is there, for when no real server can take a flow.
    assert_eq!(specs[0].sorry.as_ref().unwrap().addr, sa("10.0.0.99:80"));
    for a in ["10.0.0.11:80", "10.0.0.12:80"] {
        let k = key(&core, 0, a);
        core.on_result(&k, at(1), Outcome::down("x"));
    }
    let mut specs = vec![spec(&["10.0.0.11:80", "10.0.0.12:80", "10.0.0.13:80"])];
    super::apply(&mut specs, &core.verdicts());
    let w: Vec<_> = specs[0].backends.iter().map(|b| b.weight).collect();
    assert_eq!(
        w,
        vec![0, 0, 0],
        "quorum lost: no new flows to real servers"
    );
    assert_eq!(specs[0].sorry.as_ref().unwrap().addr, sa("10.0.0.99:80"));
    // A service health knows nothing about is left alone.
    let mut other = vec![ServiceSpec {
        vip: sa("10.9.9.9:80"),
        ..spec(&["10.0.0.11:80"])
    }];
    super::apply(&mut other, &core.verdicts());
    assert_eq!(other[0].backends[0].weight, 7);
}

#[test]
fn the_first_probe_waits_a_fraction_of_warmup() {
    use super::core::first_delay;
    assert_eq!(
        first_delay(Duration::from_secs(10), 0.25),
        Duration::from_millis(2500)
    );
    assert_eq!(first_delay(Duration::ZERO, 0.9), Duration::ZERO);
    assert_eq!(
        first_delay(Duration::from_secs(1), 7.0),
        Duration::from_secs(1)
    );
}
