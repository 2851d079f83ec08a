//! What a node knows of its own services for sync: a synced record names a
//! service by (protocol, VIP, VIP port) and a backend by its address; the
//! data plane's tables use ids. The data plane builds a [`Directory`] after
//! each change of its services and the sync core reads it both ways
//! (records in: addresses to ids; reports out: service id to persistence).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::dataplane::{Algo, Mode, Persistence, Proto};

/// One local service.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalService {
    pub id: u32,
    pub proto: Proto,
    pub vip: SocketAddr,
    pub mode: Mode,
    pub algo: Algo,
    pub persistence: Option<Persistence>,
    /// Backend address → slot id (the sorry server included).
    pub backends: HashMap<SocketAddr, u32>,
}

impl LocalService {
    /// lc and wlc weigh live connection counts: their entries are counted.
    pub fn counts_connections(&self) -> bool {
        matches!(self.algo, Algo::Lc | Algo::Wlc)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    by_vip: HashMap<(u8, SocketAddr), LocalService>,
    by_id: HashMap<u32, (u8, SocketAddr)>,
    /// Backend slot id → address (slot ids are unique across services).
    backend_addrs: HashMap<u32, SocketAddr>,
}

impl Directory {
    pub fn new(services: impl IntoIterator<Item = LocalService>) -> Self {
        let mut d = Directory::default();
        for s in services {
            let key = (s.proto.number(), s.vip);
            d.by_id.insert(s.id, key);
            d.backend_addrs
                .extend(s.backends.iter().map(|(addr, id)| (*id, *addr)));
            d.by_vip.insert(key, s);
        }
        d
    }

    pub fn service(&self, protocol: u8, vip: SocketAddr) -> Option<&LocalService> {
        self.by_vip.get(&(protocol, vip))
    }

    pub fn service_by_id(&self, id: u32) -> Option<&LocalService> {
        self.by_id.get(&id).and_then(|k| self.by_vip.get(k))
    }

    /// The address of backend slot `id` (what the data plane's reports
    /// name).
    pub fn backend_addr(&self, id: u32) -> Option<SocketAddr> {
        self.backend_addrs.get(&id).copied()
    }

    pub fn len(&self) -> usize {
        self.by_vip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_vip.is_empty()
    }
}

/// `addr` under a persistence mask (all ones: the address itself).
pub fn masked(addr: IpAddr, mask: IpAddr) -> IpAddr {
    match (addr, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6((u128::from(a) & u128::from(m)).into()),
        (a, _) => a,
    }
}
