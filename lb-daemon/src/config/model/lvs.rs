//! `virtual_server`, its `real_server`s, and `virtual_server_group`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::{ser_duration, ser_opt_duration, Checker, Location};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsTarget {
    Addr(SocketAddr),
    Fwmark(u32),
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    /// keepalived's default (`IPVS_DEF_SCHED`).
    #[default]
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
    Twos,
}

impl Scheduler {
    /// Name, value pairs; the single source for parsing and error messages.
    pub const ALL: [(&'static str, Scheduler); 14] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("mh", Scheduler::Mh),
        ("twos", Scheduler::Twos),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Scheduler flags (`sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`,
/// `flag-1..3`, `ops`), as keepalived sets them on the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SchedFlags {
    pub sh_port: bool,
    pub sh_fallback: bool,
    pub mh_port: bool,
    pub mh_fallback: bool,
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
    /// One-packet scheduling (UDP only).
    pub ops: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum LbKind {
    /// keepalived's default when neither the virtual nor the real server
    /// sets a method.
    #[default]
    #[serde(rename = "NAT")]
    Nat,
    #[serde(rename = "DR")]
    Dr,
    #[serde(rename = "TUN")]
    Tun,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub target: VsTarget,
    pub protocol: Protocol,
    pub lb_algo: Scheduler,
    pub sched_flags: SchedFlags,
    pub lb_kind: LbKind,
    #[serde(serialize_with = "ser_duration")]
    pub delay_loop: Duration,
    #[serde(serialize_with = "ser_opt_duration")]
    pub persistence_timeout: Option<Duration>,
    /// Netmask (IPv4) or prefix length (IPv6) grouping clients for
    /// persistence.
    pub persistence_granularity: Option<String>,
    pub persistence_engine: Option<String>,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<SocketAddr>,
    pub sorry_server_inhibit: bool,
    pub inhibit_on_failure: bool,
    pub smtp_alert: bool,
    pub real_servers: Vec<RealServer>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: SocketAddr,
    pub weight: u32,
    pub lb_kind: LbKind,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub alpha: bool,
    pub checkers: Vec<Checker>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<VsgEntry>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsgEntry {
    Addr(SocketAddr),
    /// `A.B.C.D-E PORT`: addresses from `first` to `last` inclusive.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark(u32),
}
