//! The data plane: what forwards packets for the configured services.
//!
//! The rest of the daemon describes the services it wants (`ServiceSpec`) and
//! hands the whole set to a `Dataplane`; the implementation works out what
//! changed. Only implementations touch BPF maps or the kernel's IPVS tables.

pub mod bpf;
pub mod capacity;
pub mod ipvs;
pub mod model;
pub mod regions;
pub mod schedule;
pub mod select;

use std::net::{IpAddr, SocketAddr};

use crate::net::MacAddr;

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => lb_common::IPPROTO_TCP,
            Proto::Udp => lb_common::IPPROTO_UDP,
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// How new flows are spread over backends (`lb_algo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Mh,
}

impl Algo {
    pub fn code(self) -> u8 {
        match self {
            Algo::Rr => lb_common::ALGO_RR,
            Algo::Wrr => lb_common::ALGO_WRR,
            Algo::Lc => lb_common::ALGO_LC,
            Algo::Wlc => lb_common::ALGO_WLC,
            Algo::Sh => lb_common::ALGO_SH,
            Algo::Mh => lb_common::ALGO_MH,
        }
    }

    pub fn from_code(code: u8) -> Option<Algo> {
        [Algo::Rr, Algo::Wrr, Algo::Lc, Algo::Wlc, Algo::Sh, Algo::Mh]
            .into_iter()
            .find(|a| a.code() == code)
    }
}

impl std::fmt::Display for Algo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algo::Rr => "rr",
            Algo::Wrr => "wrr",
            Algo::Lc => "lc",
            Algo::Wlc => "wlc",
            Algo::Sh => "sh",
            Algo::Mh => "mh",
        })
    }
}

/// How packets reach the chosen backend (`lb_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Direct routing: the frame goes to the backend's MAC unchanged above L2.
    Dr,
    /// Destination rewritten to the backend, replies rewritten back.
    Nat,
    /// Encapsulated (IPIP / IP6IP6) to the backend.
    Tun,
}

impl Mode {
    pub fn code(self) -> u8 {
        match self {
            Mode::Dr => lb_common::MODE_DR,
            Mode::Nat => lb_common::MODE_NAT,
            Mode::Tun => lb_common::MODE_TUN,
        }
    }

    pub fn from_code(code: u8) -> Option<Mode> {
        [Mode::Dr, Mode::Nat, Mode::Tun]
            .into_iter()
            .find(|m| m.code() == code)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Dr => "DR",
            Mode::Nat => "NAT",
            Mode::Tun => "TUN",
        })
    }
}

/// Client stickiness (`persistence_timeout`, `persistence_granularity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Persistence {
    pub timeout_secs: u32,
    /// Applied to the client address; all ones for one address.
    pub mask: IpAddr,
}

/// A virtual service as the data plane should carry it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceSpec {
    pub vip: SocketAddr,
    pub proto: Proto,
    pub algo: Algo,
    /// sh/mh also hash the source port (`sh-port`, `mh-port`).
    pub hash_port: bool,
    /// sh/mh look past an unavailable backend (`sh-fallback`, `mh-fallback`).
    pub fallback: bool,
    pub mode: Mode,
    pub persistence: Option<Persistence>,
    pub backends: Vec<BackendSpec>,
    /// Takes new flows when no backend can (`sorry_server`).
    pub sorry: Option<BackendSpec>,
    /// What only the IPVS tier carries.
    pub ipvs: IpvsOptions,
}

/// Settings keepalived hands to IPVS that the XDP tier has no use for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IpvsOptions {
    /// IPVS scheduler name (`lb_algo`, any of IPVS's); empty: `algo`'s name.
    /// Schedulers XDP lacks reach only tiers whose [`Capabilities`] accept
    /// them, and `algo` is then not meaningful.
    pub sched: String,
    /// `flag-1`, `flag-2`, `flag-3` (`IP_VS_SVC_F_SCHED1..3`), beyond what
    /// `hash_port` and `fallback` set.
    pub sched_flags: u32,
    /// `ops`: one-packet scheduling (UDP).
    pub one_packet: bool,
    /// `virtual_server fwmark N`: the service is the firewall mark, and
    /// `vip` is the unspecified address of its family with port 0.
    pub fwmark: Option<u32>,
    /// `sorry_server_inhibit`: the sorry server stays with weight 0 while
    /// the real servers serve, instead of being removed.
    pub sorry_inhibit: bool,
}

impl IpvsOptions {
    pub fn scheduler<'a>(&'a self, algo: &Algo) -> std::borrow::Cow<'a, str> {
        if self.sched.is_empty() {
            algo.to_string().into()
        } else {
            self.sched.as_str().into()
        }
    }
}

impl ServiceSpec {
    /// A service with the defaults of the foundation: rr, DR, no extras.
    pub fn new(vip: SocketAddr, proto: Proto, backends: Vec<BackendSpec>) -> Self {
        Self {
            vip,
            proto,
            algo: Algo::Rr,
            hash_port: false,
            fallback: false,
            mode: Mode::Dr,
            persistence: None,
            backends,
            sorry: None,
            ipvs: IpvsOptions::default(),
        }
    }

    /// Backends and the sorry server.
    pub fn all_backends_mut(&mut self) -> impl Iterator<Item = &mut BackendSpec> {
        self.backends.iter_mut().chain(self.sorry.iter_mut())
    }
}

/// A real server behind a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// 0: takes no new flows (existing ones continue).
    pub weight: u32,
    /// Where DR frames go; `None` until the neighbour is resolved, and then
    /// a DR backend takes no traffic. For NAT and TUN: the next hop's MAC.
    pub mac: Option<MacAddr>,
    /// NAT and TUN: the interface towards the next hop. With `mac`, the
    /// program sends there directly instead of asking the kernel's FIB for
    /// every packet.
    pub via: Option<u32>,
    /// Out of the pool (down, or its service lost quorum) without
    /// `inhibit_on_failure`; `weight` is then 0. IPVS deletes such a
    /// destination, as keepalived does; the XDP tier keeps it with weight 0
    /// so that its established flows finish.
    pub removed: bool,
}

impl BackendSpec {
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        Self {
            addr,
            weight,
            mac: None,
            via: None,
            removed: false,
        }
    }
}

/// Idle timeouts and other settings of the whole data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        // IPVS's defaults.
        Self {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

/// Counters of the whole data plane.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// (name, packets, bytes), in `lb_common::stat` order.
    pub global: Vec<(String, u64, u64)>,
    pub services: Vec<ServiceStats>,
}

/// One service as the data plane holds it, with its counters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceStats {
    pub vip: SocketAddr,
    /// A firewall-mark service (IPVS); `vip` is then unspecified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    pub proto: Proto,
    pub algo: Option<Algo>,
    pub mode: Option<Mode>,
    pub packets: u64,
    pub bytes: u64,
    pub new_conns: u64,
    pub backends: Vec<BackendStats>,
}

/// One backend slot with its counters and connection counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackendStats {
    pub addr: SocketAddr,
    pub weight: u32,
    pub mac: Option<MacAddr>,
    pub ready: bool,
    pub sorry: bool,
    pub active: u64,
    pub inactive: u64,
    pub packets: u64,
    pub bytes: u64,
    pub new_conns: u64,
}

/// A connection in the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnInfo {
    pub proto: Proto,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub backend: SocketAddr,
    pub state: &'static str,
    /// Seconds since its last packet.
    pub idle_secs: u32,
    /// Seconds until it expires.
    pub expires_secs: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("lbd was built without its eBPF object; build with `cargo xtask build`")]
    NoObject,
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {name} missing from the object")]
    MissingMap { name: &'static str },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("attaching XDP to {iface}: {reason}")]
    Attach { iface: String, reason: String },
    #[error("service {vip}/{proto}: {reason}")]
    Service {
        vip: SocketAddr,
        proto: Proto,
        reason: String,
    },
    #[error("too many {what}: at most {max}")]
    Capacity { what: &'static str, max: u32 },
    #[error("pinning under {path}: {reason}")]
    Pin { path: String, reason: String },
    /// The IPVS tier: what was being done (naming the service and the
    /// configuration field) and the kernel's answer.
    #[error("IPVS: {0}")]
    Ipvs(String),
    /// `--dataplane`: the tier asked for cannot work here.
    #[error("data plane {tier}: {reason}")]
    Unavailable { tier: String, reason: String },
}

/// What a tier can carry beyond the XDP foundation, so the planner skips
/// (with a warning) only what the tier in use cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `virtual_server fwmark N`.
    pub fwmark: bool,
    /// Every IPVS scheduler, not only rr, wrr, lc, wlc, sh and mh.
    pub all_schedulers: bool,
    /// DR backends need their MAC resolved by lbd (the kernel's forwarding
    /// does it for IPVS).
    pub backend_macs: bool,
}

impl Capabilities {
    pub const XDP: Capabilities = Capabilities {
        fwmark: false,
        all_schedulers: false,
        backend_macs: true,
    };
    pub const IPVS: Capabilities = Capabilities {
        fwmark: true,
        all_schedulers: true,
        backend_macs: false,
    };
}

/// What the rest of the daemon needs from a data plane.
pub trait Dataplane: Send {
    /// Tier in use, for logs and lbctl (e.g. "xdp-native").
    fn describe(&self) -> String;
    /// Make the data plane carry exactly `services`.
    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError>;
    /// Current counters.
    fn stats(&self) -> Result<Stats, DataplaneError>;
    /// Connection-table idle timeouts.
    fn set_timeouts(&mut self, timeouts: Timeouts) -> Result<(), DataplaneError>;
    /// What the tier carries.
    fn capabilities(&self) -> Capabilities {
        Capabilities::XDP
    }
    /// Periodic upkeep (the XDP tier recounts connections for lc/wlc).
    fn maintain(&mut self) -> Result<(), DataplaneError> {
        Ok(())
    }
    /// lbd is exiting: `keep` leaves the services forwarding for the next
    /// lbd; otherwise what this lbd installed is removed.
    fn shutdown(&mut self, keep: bool) {
        let _ = keep;
    }
    /// Short name of the tier: `xdp`, `tc`, `ipvs`.
    fn tier(&self) -> &'static str {
        "xdp"
    }
    /// The BPF tiers: read-only handles on the maps (for lbctl and metrics).
    fn map_view(&self) -> Option<Result<bpf::Maps, DataplaneError>> {
        None
    }
    /// What the control API and the metrics read, from handles of its own
    /// (the main loop keeps the data plane): the maps for the BPF tiers,
    /// IPVS's tables for that tier.
    fn reader(&self) -> Option<Result<Box<dyn Reader>, DataplaneError>> {
        self.map_view()
            .map(|v| v.map(|v| Box::new(v) as Box<dyn Reader>))
    }
    /// Connection sync: turn the data plane's reports of new connections
    /// and state changes on or off (the IPVS tier's kernel sync daemon
    /// needs none).
    fn set_reporting(&mut self, on: bool) -> Result<(), DataplaneError> {
        let _ = on;
        Ok(())
    }
    /// Connection sync: a reader of the data plane's reports, for the sync
    /// task (the BPF tiers).
    fn sync_events(&self) -> Option<Result<bpf::SyncEvents, DataplaneError>> {
        None
    }
    /// Interfaces the program is attached to, with their mode.
    fn attached(&self) -> Vec<(String, &'static str)> {
        Vec::new()
    }
    /// An interface packets may leave by (the BPF tiers send NAT and TUN
    /// packets to resolved next hops themselves and need its MAC and MTU).
    fn record_interface(&mut self, iface: &crate::net::Interface) -> Result<(), DataplaneError> {
        let _ = iface;
        Ok(())
    }
    /// Connection sync: the services and backends as carried, by address
    /// (`None`: this tier's connections are not synced by lbd; the IPVS
    /// tier leaves it to the kernel's sync daemon).
    fn sync_directory(&self) -> Option<crate::connsync::directory::Directory> {
        None
    }
    /// Connection sync: writes entries heard from the master.
    fn write_synced(
        &mut self,
        entries: &[crate::connsync::core::Entry],
    ) -> Result<(), DataplaneError> {
        let _ = entries;
        Ok(())
    }
}

/// A read-only source of a data plane's counters and connections, safe to
/// use from the control API's tasks while the main loop drives the tier.
pub trait Reader: Send + Sync {
    /// Every counter, service and backend.
    fn stats(&self) -> Result<Stats, DataplaneError>;
    /// Live connections, at most `limit`; `Unavailable` where the tier
    /// cannot list them.
    fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError>;
}

/// Map-side layout of an address (see `lb_common::VipKey::addr`).
pub fn addr_words(ip: IpAddr) -> ([u32; 4], u8) {
    match ip {
        IpAddr::V4(v4) => (
            [u32::from_ne_bytes(v4.octets()), 0, 0, 0],
            lb_common::AF_INET,
        ),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            ([w(0), w(4), w(8), w(12)], lb_common::AF_INET6)
        }
    }
}

/// Inverse of `addr_words`.
pub fn words_addr(words: [u32; 4], family: u8) -> IpAddr {
    if family == lb_common::AF_INET6 {
        let mut o = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::from(o)
    } else {
        IpAddr::from(words[0].to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_words_keep_network_order() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let (w, fam) = addr_words(ip);
        assert_eq!(w[0].to_ne_bytes(), [10, 1, 2, 3]);
        assert_eq!(fam, lb_common::AF_INET);
        assert_eq!(words_addr(w, fam), ip);
        let ip6: IpAddr = "2001:db8::1".parse().unwrap();
        let (w, fam) = addr_words(ip6);
        assert_eq!(words_addr(w, fam), ip6);
    }
}
