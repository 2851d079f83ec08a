//! `real_server IP PORT { ... }` inside a virtual_server: weight, method
//! and thresholds default to the virtual server's, and its checkers inherit
//! the cascading settings of both.

use std::net::{IpAddr, SocketAddr};

use super::checker;
use super::virtual_server::VsBuild;
use super::{cascade_keyword, lb_kind, socket_addr, CheckDefaults, MAX_WEIGHT};
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, kw, kw_alias, later, unsupported, Keyword};
use crate::config::model::{LbKind, RealServer};
use crate::config::tree::Stmt;
use crate::config::values::{flag_arg, script_arg, u32_arg, warn_extra};

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

pub(super) fn build_rs(sink: &mut Sink, st: &Stmt, vs: &VsBuild) -> Option<RealServer> {
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
