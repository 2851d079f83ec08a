//! The data plane: what forwards packets for the configured services.
//!
//! The rest of the daemon describes the services it wants (`ServiceSpec`) and
//! hands the whole set to a `Dataplane`; the implementation works out what
//! changed. Only implementations touch BPF maps (or, later, IPVS).

pub mod schedule;
pub mod xdp;

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

/// How new flows are spread over backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    Rr,
    Wrr,
}

/// How packets reach the chosen backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Direct routing: the frame goes to the backend's MAC unchanged above L2.
    Dr,
}

/// A virtual service as the data plane should carry it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceSpec {
    pub vip: SocketAddr,
    pub proto: Proto,
    pub algo: Algo,
    pub mode: Mode,
    pub backends: Vec<BackendSpec>,
}

/// A real server behind a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackendSpec {
    pub addr: SocketAddr,
    /// 0: takes no new flows (existing ones continue).
    pub weight: u32,
    /// Where DR frames go; `None` until the neighbour is resolved, and then
    /// the backend takes no traffic.
    pub mac: Option<MacAddr>,
}

/// Counters of the whole data plane.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// (name, packets, bytes), in `lb_common::stat` order.
    pub global: Vec<(String, u64, u64)>,
    pub services: Vec<ServiceStats>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceStats {
    pub vip: SocketAddr,
    pub proto: Proto,
    pub packets: u64,
    pub bytes: u64,
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
}

/// What the rest of the daemon needs from a data plane.
pub trait Dataplane: Send {
    /// Tier in use, for logs and lbctl (e.g. "xdp-native").
    fn describe(&self) -> String;
    /// Make the data plane carry exactly `services`.
    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError>;
    /// Current counters.
    fn stats(&self) -> Result<Stats, DataplaneError>;
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
