//! The LVS part of keepalived.conf, one file per block:
//! [`virtual_server`], its [`real_server`]s and their [`checker`]s, and
//! [`group`] (`virtual_server_group`). Here: what several of them share
//! (the cascading checker settings, addresses with ports, firewall marks,
//! forwarding methods).
//!
//! keepalived lets timing settings cascade virtual server -> real server ->
//! checker. The builders read a block's own keywords first (sub-blocks are
//! `later` in the tables) and then build the sub-blocks with the enclosing
//! values known, so the model holds resolved values.

mod checker;
mod group;
mod real_server;
mod virtual_server;

pub(crate) use group::build_vsg;
pub(crate) use virtual_server::{build_vs, target_name};

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::diag::Sink;
use super::model::LbKind;
use super::tree::{Stmt, Word};
use super::values::{
    bad_value, flag_arg, one_arg, parse_u64, port_word, secs_arg, string_arg, u32_arg, warn_extra,
    MAX_TIMER,
};

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

/// The mark after a `fwmark` keyword, in a `virtual_server` header or a
/// `virtual_server_group` line.
fn fwmark(sink: &mut Sink, keyword: &Word, mark: Option<&Word>) -> Option<u32> {
    let Some(w) = mark else {
        sink.error(&keyword.loc, "`fwmark` needs a mark number");
        return None;
    };
    match parse_u64(&w.text).and_then(|v| u32::try_from(v).ok()) {
        Some(m) => Some(m),
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
