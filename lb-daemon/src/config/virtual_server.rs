//! `virtual_server`, its `real_server`s, and `virtual_server_group`.
//!
//! keepalived lets timing settings cascade virtual server -> real server ->
//! checker. The builders read a block's own keywords first (sub-blocks are
//! `later` in the tables) and then build the sub-blocks with the enclosing
//! values known, so the model holds resolved values.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::checker;
use super::diag::Sink;
use super::keywords::{dispatch, kw, kw_alias, later, unsupported, Keyword};
use super::model::{
    LbKind, Location, Protocol, RealServer, SchedFlags, Scheduler, VirtualServer,
    VirtualServerGroup, VsTarget, VsgEntry,
};
use super::tree::{Stmt, Word};
use super::values::{
    bad_value, flag_arg, one_arg, parse_u64, port_word, script_arg, secs_arg, string_arg, u32_arg,
    warn_extra, MAX_TIMER,
};

/// keepalived's LVS_MAX_TIMEOUT: 31 days.
const MAX_PERSISTENCE: u64 = 86400 * 31;
/// keepalived's IPVS_SVC_PERSISTENT_TIMEOUT, used for a bare
/// `persistence_timeout`.
const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);
/// IPVS weights are signed 32-bit in the kernel.
const MAX_WEIGHT: u32 = i32::MAX as u32;

/// Checker settings that cascade; `None` means "inherit".
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckDefaults {
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub virtualhost: Option<String>,
    pub alpha: Option<bool>,
}

impl CheckDefaults {
    /// `self` with unset values taken from `parent`.
    pub fn over(&self, parent: &CheckDefaults) -> CheckDefaults {
        CheckDefaults {
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            delay_loop: self.delay_loop.or(parent.delay_loop),
            virtualhost: self.virtualhost.clone().or(parent.virtualhost.clone()),
            alpha: self.alpha.or(parent.alpha),
        }
    }
}

/// The cascading keywords, valid in virtual_server, real_server and checker
/// blocks alike.
pub(crate) fn cascade_keyword(sink: &mut Sink, st: &Stmt, d: &mut CheckDefaults) -> bool {
    match st.keyword() {
        "connect_timeout" => {
            if let Some(v) = secs_arg(sink, st, 6, Duration::from_micros(1), MAX_TIMER) {
                d.connect_timeout = Some(v);
            }
        }
        "retry" | "nb_get_retry" => {
            if let Some(v) = u32_arg(sink, st, 0, u32::MAX) {
                d.retry = Some(v);
            }
        }
        "delay_before_retry" => {
            if let Some(v) = secs_arg(sink, st, 6, Duration::ZERO, MAX_TIMER) {
                d.delay_before_retry = Some(v);
            }
        }
        "warmup" => {
            if let Some(v) = secs_arg(sink, st, 6, Duration::ZERO, MAX_TIMER) {
                d.warmup = Some(v);
            }
        }
        "delay_loop" => {
            if let Some(v) = secs_arg(sink, st, 6, Duration::from_micros(1), MAX_TIMER) {
                d.delay_loop = Some(v);
            }
        }
        "virtualhost" => d.virtualhost = string_arg(sink, st),
        "alpha" => d.alpha = flag_arg(sink, st),
        _ => return false,
    }
    true
}

struct VsBuild {
    vs: VirtualServer,
    lb_kind: Option<LbKind>,
    defaults: CheckDefaults,
    weight: u32,
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
            let Some(w) = st.arg(1) else {
                sink.error(&first.loc, "`fwmark` needs a mark number");
                return None;
            };
            match parse_u64(&w.text).and_then(|v| u32::try_from(v).ok()) {
                Some(m) => Some(VsTarget::Fwmark(m)),
                None => {
                    sink.error(
                        &w.loc,
                        format!(
                            "invalid firewall mark `{}`: expected an integer from 0 to {}",
                            w.text,
                            u32::MAX
                        ),
                    );
                    None
                }
            }
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

/// `IP [PORT]`; a missing port is port 0 as in keepalived (for `ops` and
/// DR setups forwarding every port).
pub(crate) fn socket_addr(
    sink: &mut Sink,
    what: &str,
    ip: &Word,
    port: Option<&Word>,
) -> Option<SocketAddr> {
    let text = ip
        .text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(&ip.text);
    let addr = match text.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            sink.error(
                &ip.loc,
                format!(
                    "invalid {what} address `{}`: expected an IPv4 or IPv6 address",
                    ip.text
                ),
            );
            None
        }
    };
    let port = match port {
        None => Some(0),
        Some(p) => port_word(sink, &format!("{what} port"), p),
    };
    Some(SocketAddr::new(addr?, port?))
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

pub(crate) fn lb_kind(sink: &mut Sink, st: &Stmt) -> Option<LbKind> {
    let w = st.arg(0).or_else(|| one_arg(sink, st))?;
    let kind = match w.text.to_ascii_uppercase().as_str() {
        "NAT" => LbKind::Nat,
        "DR" => LbKind::Dr,
        "TUN" => LbKind::Tun,
        _ => {
            bad_value(sink, st, w, "expected NAT, DR or TUN");
            return None;
        }
    };
    if kind == LbKind::Tun {
        // `TUN type ipip|gue|gre ...` selects the encapsulation; only the
        // default (ipip) is available here.
        if let Some(extra) = st.arg(1) {
            sink.warn(
                &extra.loc,
                "tunnel options after `TUN` are not supported yet and are ignored",
            );
        }
    } else {
        warn_extra(sink, st, 1);
    }
    Some(kind)
}

fn persistence_timeout(sink: &mut Sink, st: &Stmt, b: &mut VsBuild) {
    if st.arg(0).is_none() {
        b.vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
        return;
    }
    if let Some(v) = super::values::uint_arg(sink, st, 1, MAX_PERSISTENCE) {
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

// ---------------------------------------------------------------- real_server

struct RsBuild {
    rs: RealServer,
    lb_kind: Option<LbKind>,
    weight: Option<u32>,
    inhibit: Option<bool>,
    defaults: CheckDefaults,
}

fn rs_cascade(s: &mut Sink, st: &Stmt, b: &mut RsBuild) {
    cascade_keyword(s, st, &mut b.defaults);
}

static RS_KEYWORDS: &[Keyword<RsBuild>] = &[
    kw("weight", |s, st, b| {
        if let Some(w) = u32_arg(s, st, 0, MAX_WEIGHT) {
            b.weight = Some(w);
        }
    }),
    kw_alias("lvs_method", &["lb_kind"], |s, st, b| {
        if let Some(k) = lb_kind(s, st) {
            b.lb_kind = Some(k);
        }
    }),
    kw("inhibit_on_failure", |s, st, b| {
        if let Some(v) = flag_arg(s, st) {
            b.inhibit = Some(v);
        }
    }),
    kw("notify_up", |s, st, b| b.rs.notify_up = script_arg(s, st)),
    kw("notify_down", |s, st, b| {
        b.rs.notify_down = script_arg(s, st)
    }),
    kw("uthreshold", |s, st, b| {
        b.rs.uthreshold = u32_arg(s, st, 0, u32::MAX)
    }),
    kw("lthreshold", |s, st, b| {
        b.rs.lthreshold = u32_arg(s, st, 0, u32::MAX)
    }),
    kw("alpha", rs_cascade),
    kw_alias("retry", &["nb_get_retry"], rs_cascade),
    kw("delay_before_retry", rs_cascade),
    kw("warmup", rs_cascade),
    kw("connect_timeout", rs_cascade),
    kw("delay_loop", rs_cascade),
    kw("virtualhost", rs_cascade),
    unsupported("smtp_alert"),
    unsupported("snmp_name"),
    later("TCP_CHECK"),
    later("HTTP_GET"),
    later("SSL_GET"),
    later("MISC_CHECK"),
    later("SMTP_CHECK"),
    later("DNS_CHECK"),
    later("UDP_CHECK"),
    unsupported("BFD_CHECK"),
    unsupported("FILE_CHECK"),
    unsupported("PING_CHECK"),
    unsupported("track_file"),
    unsupported("track_bfd"),
];

fn build_rs(sink: &mut Sink, st: &Stmt, vs: &VsBuild) -> Option<RealServer> {
    let addr = match st.arg(0) {
        Some(ip) => {
            warn_extra(sink, st, 2);
            socket_addr(sink, "real server", ip, st.arg(1))
        }
        None => {
            sink.error(st.loc(), "`real_server` needs an address and a port");
            None
        }
    };
    let mut b = RsBuild {
        rs: RealServer {
            addr: addr.unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0)),
            weight: vs.weight,
            lb_kind: LbKind::default(),
            inhibit_on_failure: vs.vs.inhibit_on_failure,
            notify_up: None,
            notify_down: None,
            uthreshold: None,
            lthreshold: None,
            alpha: false,
            checkers: Vec::new(),
            location: st.loc().clone(),
        },
        lb_kind: None,
        weight: None,
        inhibit: None,
        defaults: CheckDefaults::default(),
    };
    // A real server with no block is valid: it is simply never checked.
    dispatch(sink, st.children(), RS_KEYWORDS, &mut b, "real_server");
    let defaults = b.defaults.over(&vs.defaults);
    b.rs.weight = b.weight.unwrap_or(vs.weight);
    b.rs.lb_kind = b.lb_kind.or(vs.lb_kind).unwrap_or_default();
    b.rs.inhibit_on_failure = b.inhibit.unwrap_or(vs.vs.inhibit_on_failure);
    b.rs.alpha = defaults.alpha.unwrap_or(false);
    if let (Some(u), Some(l)) = (b.rs.uthreshold, b.rs.lthreshold) {
        if l > u && u > 0 {
            sink.warn(
                st.loc(),
                format!("`lthreshold` {l} is above `uthreshold` {u}"),
            );
        }
    }
    for c in st.children() {
        if let Some(kind) = checker::kind_of(c.keyword()) {
            if let Some(ch) = checker::build(sink, c, kind, &defaults) {
                b.rs.checkers.push(ch);
            }
        }
    }
    addr.map(|_| b.rs)
}

// ------------------------------------------------------- virtual_server_group

/// `virtual_server_group NAME { IP PORT | IP-RANGE PORT | fwmark N ... }`.
pub(crate) fn build_vsg(sink: &mut Sink, st: &Stmt) -> Option<VirtualServerGroup> {
    let name = one_arg(sink, st).map(|w| w.text.clone());
    if st.block.is_none() {
        sink.error(st.loc(), "`virtual_server_group` needs a `{ ... }` block");
        return None;
    }
    let mut entries = Vec::new();
    for line in st.children() {
        if line.block.is_some() {
            sink.error(line.loc(), "unexpected block in `virtual_server_group`");
            continue;
        }
        if let Some(e) = vsg_entry(sink, line) {
            entries.push(e);
        }
    }
    Some(VirtualServerGroup {
        name: name?,
        entries,
        location: st.loc().clone(),
    })
}

fn vsg_entry(sink: &mut Sink, line: &Stmt) -> Option<VsgEntry> {
    let first = &line.words[0];
    if first.text == "fwmark" {
        warn_extra(sink, line, 1);
        let Some(w) = line.arg(0) else {
            sink.error(&first.loc, "`fwmark` needs a mark number");
            return None;
        };
        return match parse_u64(&w.text).and_then(|v| u32::try_from(v).ok()) {
            Some(m) => Some(VsgEntry::Fwmark(m)),
            None => {
                sink.error(
                    &w.loc,
                    format!(
                        "invalid firewall mark `{}`: expected an integer from 0 to {}",
                        w.text,
                        u32::MAX
                    ),
                );
                None
            }
        };
    }
    warn_extra(sink, line, 1);
    if let Some((start, end)) = first.text.split_once('-') {
        let port = match line.arg(0) {
            Some(p) => port_word(sink, "virtual server group port", p)?,
            None => 0,
        };
        return ip_range(sink, first, start, end).map(|(first, last)| VsgEntry::Range {
            first,
            last,
            port,
        });
    }
    socket_addr(sink, "virtual server group", first, line.arg(0)).map(VsgEntry::Addr)
}

/// `10.0.0.1-10` (last IPv4 byte) or `2001:db8::1-ff` (last IPv6 group, in
/// hex), as keepalived writes address ranges.
fn ip_range(sink: &mut Sink, w: &Word, start: &str, end: &str) -> Option<(IpAddr, IpAddr)> {
    let bad = |sink: &mut Sink, why: &str| {
        sink.error(&w.loc, format!("invalid address range `{}`: {why}", w.text));
    };
    let Ok(first) = start.parse::<IpAddr>() else {
        bad(sink, "expected ADDRESS-LAST, such as 10.0.0.1-10");
        return None;
    };
    match first {
        IpAddr::V4(a) => {
            let o = a.octets();
            match parse_u64(end) {
                Some(e) if e >= u64::from(o[3]) && e <= 255 => {
                    let last = std::net::Ipv4Addr::new(o[0], o[1], o[2], e as u8);
                    Some((first, IpAddr::V4(last)))
                }
                _ => {
                    bad(sink, &format!("the last byte must be from {} to 255", o[3]));
                    None
                }
            }
        }
        IpAddr::V6(a) => {
            let mut seg = a.segments();
            match u16::from_str_radix(end, 16) {
                Ok(e) if e >= seg[7] && !end.is_empty() && end.len() <= 4 => {
                    seg[7] = e;
                    Some((first, IpAddr::V6(seg.into())))
                }
                _ => {
                    bad(
                        sink,
                        &format!("the last group must be hex from {:x} to ffff", seg[7]),
                    );
                    None
                }
            }
        }
    }
}
