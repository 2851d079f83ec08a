//! `virtual_server IP PORT | fwmark N | group NAME { ... }`: the service's
//! own keywords; its real servers are built in [`super::real_server`] with
//! the values read here.

use std::time::Duration;

use super::real_server::build_rs;
use super::{cascade_keyword, fwmark, lb_kind, socket_addr, CheckDefaults, MAX_WEIGHT};
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, kw, kw_alias, later, unsupported, Keyword};
use crate::config::model::{
    LbKind, Location, Protocol, SchedFlags, Scheduler, VirtualServer, VsTarget,
};
use crate::config::tree::Stmt;
use crate::config::values::{
    bad_value, flag_arg, one_arg, parse_u64, script_arg, string_arg, u32_arg, uint_arg, warn_extra,
};

/// keepalived's LVS_MAX_TIMEOUT: 31 days.
const MAX_PERSISTENCE: u64 = 86400 * 31;
/// keepalived's IPVS_SVC_PERSISTENT_TIMEOUT, used for a bare
/// `persistence_timeout`.
const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);

pub(super) struct VsBuild {
    pub(super) vs: VirtualServer,
    pub(super) lb_kind: Option<LbKind>,
    pub(super) defaults: CheckDefaults,
    pub(super) weight: u32,
    sched_flag_locs: Vec<(String, Location)>,
}

fn cascade(s: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    cascade_keyword(s, st, &mut b.defaults);
}

static VS_KEYWORDS: &[Keyword<VsBuild>] = &[
    kw("delay_loop", cascade),
    kw_alias("lb_algo", &["lvs_sched"], lb_algo),
    kw_alias("lb_kind", &["lvs_method"], |s, st, b| {
        if let Some(k) = lb_kind(s, st) {
            b.lb_kind = Some(k);
        }
    }),
    kw("persistence_timeout", persistence_timeout),
    kw("persistence_granularity", persistence_granularity),
    kw("persistence_engine", |s, st, b| {
        b.vs.persistence_engine = string_arg(s, st)
    }),
    kw("protocol", protocol),
    kw("ha_suspend", |s, st, b| {
        b.vs.ha_suspend = flag_arg(s, st).unwrap_or(b.vs.ha_suspend)
    }),
    kw("virtualhost", cascade),
    kw("alpha", cascade),
    kw("omega", |s, st, b| {
        b.vs.omega = flag_arg(s, st).unwrap_or(b.vs.omega)
    }),
    kw("quorum", |s, st, b| {
        b.vs.quorum = u32_arg(s, st, 1, u32::MAX).unwrap_or(b.vs.quorum)
    }),
    kw("hysteresis", |s, st, b| {
        b.vs.hysteresis = u32_arg(s, st, 0, u32::MAX).unwrap_or(b.vs.hysteresis)
    }),
    kw("quorum_up", |s, st, b| b.vs.quorum_up = script_arg(s, st)),
    kw("quorum_down", |s, st, b| {
        b.vs.quorum_down = script_arg(s, st)
    }),
    kw("sorry_server", sorry_server),
    kw("sorry_server_inhibit", |s, st, b| {
        b.vs.sorry_server_inhibit = flag_arg(s, st).unwrap_or(b.vs.sorry_server_inhibit)
    }),
    kw("inhibit_on_failure", |s, st, b| {
        b.vs.inhibit_on_failure = flag_arg(s, st).unwrap_or(b.vs.inhibit_on_failure)
    }),
    kw("smtp_alert", |s, st, b| {
        b.vs.smtp_alert = flag_arg(s, st).unwrap_or(b.vs.smtp_alert)
    }),
    kw("weight", |s, st, b| {
        b.weight = u32_arg(s, st, 0, MAX_WEIGHT).unwrap_or(b.weight)
    }),
    kw("connect_timeout", cascade),
    kw_alias("retry", &["nb_get_retry"], cascade),
    kw("delay_before_retry", cascade),
    kw("warmup", cascade),
    kw("ops", sched_flag),
    kw("sh-port", sched_flag),
    kw("sh-fallback", sched_flag),
    kw("mh-port", sched_flag),
    kw("mh-fallback", sched_flag),
    kw("flag-1", sched_flag),
    kw("flag-2", sched_flag),
    kw("flag-3", sched_flag),
    later("real_server"),
    unsupported("hashed"),
    unsupported("ip_family"),
    unsupported("snmp_name"),
    unsupported("sorry_server_lvs_method"),
];

/// `virtual_server IP PORT | fwmark N | group NAME { ... }`.
pub(crate) fn build_vs(sink: &mut Sink, st: &Stmt) -> Option<VirtualServer> {
    let target = vs_target(sink, st);
    if st.block.is_none() {
        sink.error(st.loc(), "`virtual_server` needs a `{ ... }` block");
        return None;
    }
    let mut b = VsBuild {
        vs: VirtualServer {
            // A placeholder keeps the block checked even when the header is
            // bad; such a server is dropped at the end.
            target: target.clone().unwrap_or(VsTarget::Fwmark(0)),
            protocol: Protocol::Tcp,
            lb_algo: Scheduler::default(),
            sched_flags: SchedFlags::default(),
            lb_kind: LbKind::default(),
            delay_loop: Duration::from_secs(60),
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            ha_suspend: false,
            virtualhost: None,
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            inhibit_on_failure: false,
            smtp_alert: false,
            real_servers: Vec::new(),
            location: st.loc().clone(),
        },
        lb_kind: None,
        defaults: CheckDefaults {
            connect_timeout: Some(Duration::from_secs(5)),
            delay_loop: Some(Duration::from_secs(60)),
            ..CheckDefaults::default()
        },
        weight: 1,
        sched_flag_locs: Vec::new(),
    };
    dispatch(sink, st.children(), VS_KEYWORDS, &mut b, "virtual_server");
    check_sched_flags(sink, &mut b);

    let vs_name = target.as_ref().map(target_name).unwrap_or_default();
    b.vs.lb_kind = b.lb_kind.unwrap_or_default();
    b.vs.delay_loop = b.defaults.delay_loop.unwrap_or(Duration::from_secs(60));
    b.vs.virtualhost = b.defaults.virtualhost.clone();
    b.vs.alpha = b.defaults.alpha.unwrap_or(false);

    for rs_st in st
        .children()
        .iter()
        .filter(|c| c.keyword() == "real_server")
    {
        let Some(rs) = build_rs(sink, rs_st, &b) else {
            continue;
        };
        if let Some(first) = b.vs.real_servers.iter().find(|r| r.addr == rs.addr) {
            sink.error(
                &rs.location,
                format!(
                    "duplicate real server `{}` in virtual server `{vs_name}` (first defined at {})",
                    rs.addr, first.location
                ),
            );
            continue;
        }
        b.vs.real_servers.push(rs);
    }
    target.map(|_| b.vs)
}

pub(crate) fn target_name(t: &VsTarget) -> String {
    match t {
        VsTarget::Addr(a) => a.to_string(),
        VsTarget::Fwmark(m) => format!("fwmark {m}"),
        VsTarget::Group(g) => format!("group {g}"),
    }
}

fn vs_target(sink: &mut Sink, st: &Stmt) -> Option<VsTarget> {
    let Some(first) = st.arg(0) else {
        sink.error(
            st.loc(),
            "`virtual_server` needs an address and port, `fwmark N` or `group NAME`",
        );
        return None;
    };
    match first.text.as_str() {
        "fwmark" => {
            warn_extra(sink, st, 2);
            fwmark(sink, first, st.arg(1)).map(VsTarget::Fwmark)
        }
        "group" => {
            warn_extra(sink, st, 2);
            match st.arg(1) {
                Some(w) => Some(VsTarget::Group(w.text.clone())),
                None => {
                    sink.error(&first.loc, "`group` needs a virtual_server_group name");
                    None
                }
            }
        }
        _ => {
            warn_extra(sink, st, 2);
            socket_addr(sink, "virtual server", first, st.arg(1)).map(VsTarget::Addr)
        }
    }
}

fn lb_algo(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    let Some(w) = one_arg(sink, st) else { return };
    match Scheduler::ALL.iter().find(|(n, _)| *n == w.text) {
        Some((_, s)) => b.vs.lb_algo = *s,
        None => {
            let names: Vec<&str> = Scheduler::ALL.iter().map(|(n, _)| *n).collect();
            bad_value(
                sink,
                st,
                w,
                &format!("expected one of {}", names.join(", ")),
            );
        }
    }
}

fn persistence_timeout(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    if st.arg(0).is_none() {
        b.vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
        return;
    }
    if let Some(v) = uint_arg(sink, st, 1, MAX_PERSISTENCE) {
        b.vs.persistence_timeout = Some(Duration::from_secs(v));
    }
}

fn persistence_granularity(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    let Some(w) = one_arg(sink, st) else { return };
    let ok = w.text.parse::<std::net::Ipv4Addr>().is_ok_and(|m| {
        let bits = u32::from(m);
        bits.leading_ones() + bits.trailing_zeros() == 32
    }) || parse_u64(&w.text).is_some_and(|p| (1..=128).contains(&p));
    if ok {
        b.vs.persistence_granularity = Some(w.text.clone());
    } else {
        bad_value(
            sink,
            st,
            w,
            "expected an IPv4 netmask such as 255.255.255.0 or an IPv6 prefix length from 1 to 128",
        );
    }
}

fn protocol(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    let Some(w) = one_arg(sink, st) else { return };
    b.vs.protocol = match w.text.to_ascii_uppercase().as_str() {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => {
            bad_value(sink, st, w, "expected TCP, UDP or SCTP");
            return;
        }
    };
}

fn sorry_server(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    let Some(ip) = st.arg(0) else {
        sink.error(st.loc(), "`sorry_server` needs an address and a port");
        return;
    };
    warn_extra(sink, st, 2);
    b.vs.sorry_server = socket_addr(sink, "sorry server", ip, st.arg(1));
}

fn sched_flag(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    warn_extra(sink, st, 0);
    let f = &mut b.vs.sched_flags;
    match st.keyword() {
        "ops" => f.ops = true,
        "sh-port" => f.sh_port = true,
        "sh-fallback" => f.sh_fallback = true,
        "mh-port" => f.mh_port = true,
        "mh-fallback" => f.mh_fallback = true,
        "flag-1" => f.flag_1 = true,
        "flag-2" => f.flag_2 = true,
        "flag-3" => f.flag_3 = true,
        _ => {}
    }
    b.sched_flag_locs
        .push((st.keyword().to_string(), st.loc().clone()));
}

/// keepalived maps `sh-*`/`mh-*` onto the generic scheduler flags of the
/// matching scheduler only; with another scheduler they do nothing.
fn check_sched_flags(sink: &mut Sink, b: &mut VsBuild) {
    for (name, loc) in &b.sched_flag_locs {
        let needs = if name.starts_with("sh-") {
            Some(Scheduler::Sh)
        } else if name.starts_with("mh-") {
            Some(Scheduler::Mh)
        } else {
            None
        };
        if let Some(s) = needs.filter(|s| *s != b.vs.lb_algo) {
            sink.warn(
                loc,
                format!(
                    "`{name}` has no effect with scheduler `{}`: it applies to `{}` only",
                    b.vs.lb_algo.name(),
                    s.name()
                ),
            );
        }
        if name == "ops" && b.vs.protocol != Protocol::Udp {
            sink.warn(
                loc,
                "`ops` (one-packet scheduling) applies to UDP only and is ignored",
            );
            b.vs.sched_flags.ops = false;
        }
    }
}
