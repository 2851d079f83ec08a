//! Writing a service into the maps, and removing it.
//!
//! A service is rewritten in named steps, in an order that lets a packet
//! see the old service or the new one, never a mix: its backend slots, a
//! schedule table in a fresh region, the service value pointing at both,
//! published (`SERVICES`, then the prefilter's copy, then the prefilter),
//! and only then the old region and the backends that left retired.

use std::{collections::HashMap, net::SocketAddr};

use lb_common::{
    maps as names, svc, Backend, ConnCounts, Service, ServiceSlot, VipKey, BACKEND_F_NEXTHOP,
    BACKEND_F_READY, BACKEND_F_SORRY, BACKEND_F_USED, MAX_LC_BACKENDS, SCHED_CAPACITY,
    VIP_FILTER_SHARED,
};
use tracing::debug;

use super::{
    maps::{map_err, slot_index, vip_key},
    XdpDataplane,
};
use crate::dataplane::{
    addr_words,
    regions::Region,
    schedule::{self, Candidate, MaglevBackend},
    Algo, BackendSpec, DataplaneError, Mode, ServiceSpec,
};

/// A service as installed in the maps.
#[derive(Debug)]
pub(super) struct Installed {
    pub(super) id: u32,
    /// What was last written (None: adopted from pinned maps, unknown).
    pub(super) spec: Option<ServiceSpec>,
    /// Backend address → slot id (the sorry server included).
    pub(super) backends: HashMap<SocketAddr, u32>,
    pub(super) region: Region,
    pub(super) maglev_size: Option<u32>,
    /// Which of the service's two `SERVICE_SLOTS` holds its current value.
    pub(super) half: u32,
}

/// A backend slot and what it holds.
type Slot = (u32, Backend);

impl XdpDataplane {
    /// Makes the maps carry `spec` (nothing to do when it is what was last
    /// written).
    pub(super) fn install(&mut self, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        let key = vip_key(spec.vip, spec.proto);
        match self.installed.get(&key) {
            Some(inst) if inst.spec.as_ref() == Some(spec) => return Ok(()),
            Some(_) => {}
            None => {
                let id = self.service_ids.take()?;
                self.installed.insert(
                    key,
                    Installed {
                        id,
                        spec: None,
                        backends: HashMap::new(),
                        region: Region { off: 0, len: 0 },
                        maglev_size: None,
                        half: 1,
                    },
                );
            }
        }
        let (id, old_region) = {
            let inst = &self.installed[&key];
            (inst.id, inst.region)
        };
        let slots = self.backend_slots(key, spec, id)?;
        let (table, maglev_size) = schedule_table(spec, &slots)?;
        let region = self.write_schedule(&table)?;
        let service = self.service_value(key, spec, id, region);
        self.publish(key, service)?;
        self.regions.release(old_region);
        self.retire_backends(key, spec)?;
        let inst = self.installed.get_mut(&key).expect("installed above");
        inst.region = region;
        inst.maglev_size = maglev_size;
        inst.spec = Some(spec.clone());
        debug!(vip = %spec.vip, proto = %spec.proto, algo = %spec.algo, slots = table.len(), "service written");
        Ok(())
    }

    /// Step 1: a slot for every backend (and the sorry server), new ones
    /// taken with their connection counts zeroed, every one written.
    /// Returns the slots new flows are scheduled over (not the sorry
    /// server's).
    fn backend_slots(
        &mut self,
        key: VipKey,
        spec: &ServiceSpec,
        service: u32,
    ) -> Result<Vec<Slot>, DataplaneError> {
        let mut slots = Vec::with_capacity(spec.backends.len());
        for (b, sorry) in members(spec) {
            let known = self.installed[&key].backends.get(&b.addr).copied();
            let bid = match known {
                Some(bid) => bid,
                None => {
                    let bid = self.backend_ids.take()?;
                    self.maps
                        .backend_conns
                        .set(bid, ConnCounts::default(), 0)
                        .map_err(map_err(names::BACKEND_CONNS))?;
                    self.installed
                        .get_mut(&key)
                        .expect("installed above")
                        .backends
                        .insert(b.addr, bid);
                    bid
                }
            };
            let value = backend_value(b, spec.mode, service, sorry);
            self.maps
                .backends
                .set(bid, value, 0)
                .map_err(map_err(names::BACKENDS))?;
            if !sorry {
                slots.push((bid, value));
            }
        }
        Ok(slots)
    }

    /// Step 2: the schedule table, into a region of its own.
    fn write_schedule(&mut self, table: &[u32]) -> Result<Region, DataplaneError> {
        let region = self
            .regions
            .alloc(table.len() as u32)
            .ok_or(DataplaneError::Capacity {
                what: "scheduling slots",
                max: SCHED_CAPACITY,
            })?;
        // The table first, then the service that points at it: a packet
        // sees the old table or the new one, never a half-written one.
        for (i, bid) in table.iter().enumerate() {
            self.maps
                .schedule
                .set(region.off + i as u32, bid, 0)
                .map_err(map_err(names::SCHEDULE))?;
        }
        Ok(region)
    }

    /// Step 3: the service value, pointing at the table in `region`.
    fn service_value(&self, key: VipKey, spec: &ServiceSpec, id: u32, region: Region) -> Service {
        let mut flags = 0;
        if spec.hash_port {
            flags |= svc::HASH_PORT;
        }
        if spec.fallback {
            flags |= svc::FALLBACK;
        }
        let mut persist_timeout = 0;
        let mut persist_mask = [0; 4];
        if let Some(p) = spec.persistence {
            flags |= svc::PERSIST;
            persist_timeout = crate::clock::from_secs(p.timeout_secs);
            persist_mask = addr_words(p.mask).0;
        }
        let mut sorry_id = 0;
        if let Some(s) = &spec.sorry {
            flags |= svc::SORRY;
            sorry_id = self.installed[&key].backends[&s.addr];
        }
        Service {
            id,
            flags,
            sched_off: region.off,
            sched_len: region.len,
            sorry: sorry_id,
            persist_timeout,
            persist_mask,
            mode: spec.mode.code(),
            algo: spec.algo.code(),
            _pad: [0; 2],
        }
    }

    /// Step 4: the service where the program reads it: `SERVICES`, then
    /// the prefilter's copy in the other half, then the prefilter moved to
    /// it (the program falls back to `SERVICES` until then).
    fn publish(&mut self, key: VipKey, service: Service) -> Result<(), DataplaneError> {
        self.maps
            .services
            .insert(key, service, 0)
            .map_err(map_err(names::SERVICES))?;
        let half = 1 - self.installed[&key].half;
        self.write_slot(service.id, half, key, service)?;
        self.installed.get_mut(&key).expect("installed above").half = half;
        self.point_filter(&key)
    }

    /// Step 5: backends that left the service, cleared so flows still
    /// pointing at them are scheduled anew, and released.
    fn retire_backends(&mut self, key: VipKey, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        let gone: Vec<SocketAddr> = self.installed[&key]
            .backends
            .keys()
            .filter(|a| !members(spec).any(|(b, _)| b.addr == **a))
            .copied()
            .collect();
        for addr in gone {
            let inst = self.installed.get_mut(&key).expect("installed above");
            if let Some(bid) = inst.backends.remove(&addr) {
                self.clear_backend(bid)?;
            }
        }
        Ok(())
    }

    fn clear_backend(&mut self, bid: u32) -> Result<(), DataplaneError> {
        self.maps
            .backends
            .set(bid, Backend::default(), 0)
            .map_err(map_err(names::BACKENDS))?;
        self.backend_ids.release(bid);
        Ok(())
    }

    /// Removes a service: from the prefilter first, then its values, its
    /// backends, its region and its id.
    pub(super) fn uninstall(&mut self, key: VipKey) -> Result<(), DataplaneError> {
        let Some(inst) = self.installed.remove(&key) else {
            return Ok(());
        };
        self.point_filter(&key)?;
        match self.maps.services.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::SERVICES)(e)),
        }
        for half in [0, 1] {
            self.write_slot(inst.id, half, VipKey::default(), Service::default())?;
        }
        for bid in inst.backends.into_values() {
            self.clear_backend(bid)?;
        }
        self.regions.release(inst.region);
        self.service_ids.release(inst.id);
        Ok(())
    }

    pub(super) fn write_slot(
        &mut self,
        id: u32,
        half: u32,
        vip: VipKey,
        service: Service,
    ) -> Result<(), DataplaneError> {
        self.maps
            .service_slots
            .set(slot_index(id, half), ServiceSlot { vip, service }, 0)
            .map_err(map_err(names::SERVICE_SLOTS))
    }

    /// Points the prefilter slot of `key` at what the program should read
    /// there, from the services now installed: nothing, the current half of
    /// the one service hashing there, or `SERVICES` when several do.
    pub(super) fn point_filter(&mut self, key: &VipKey) -> Result<(), DataplaneError> {
        let filter = lb_common::vip_filter_index(&key.addr, key.port);
        let mut there = self
            .installed
            .iter()
            .filter(|(k, _)| lb_common::vip_filter_index(&k.addr, k.port) == filter);
        let value = match (there.next(), there.next()) {
            (None, _) => 0,
            (Some((_, inst)), None) => slot_index(inst.id, inst.half) + 1,
            (Some(_), Some(_)) => VIP_FILTER_SHARED,
        };
        self.maps
            .vip_filter
            .set(filter, value, 0)
            .map_err(map_err(names::VIP_FILTER))
    }
}

/// The service's backends, then its sorry server (`true`).
fn members(spec: &ServiceSpec) -> impl Iterator<Item = (&BackendSpec, bool)> {
    spec.backends
        .iter()
        .map(|b| (b, false))
        .chain(spec.sorry.iter().map(|b| (b, true)))
}

/// The slot value of backend `b` of service `service`.
fn backend_value(b: &BackendSpec, mode: Mode, service: u32, sorry: bool) -> Backend {
    let (addr, family) = addr_words(b.addr.ip());
    // DR needs the MAC; NAT and TUN find their next hop in the FIB.
    let ready = mode != Mode::Dr || b.mac.is_some();
    let mut flags = BACKEND_F_USED;
    if ready {
        flags |= BACKEND_F_READY;
    }
    if mode != Mode::Dr && b.mac.is_some() && b.via.is_some() {
        flags |= BACKEND_F_NEXTHOP;
    }
    if sorry {
        flags |= BACKEND_F_SORRY;
    }
    Backend {
        addr,
        port: b.addr.port().to_be(),
        // For NAT and TUN the MAC is the next hop's, for display.
        mac: b.mac.map(|m| m.0).unwrap_or_default(),
        flags,
        family,
        _pad: [0; 2],
        weight: if ready { b.weight } else { 0 },
        service,
        oif: b.via.unwrap_or(0),
    }
}

/// The schedule table of a service over `slots` (ring, buckets, Maglev
/// table or candidate list), and the Maglev table's size.
///
/// sh and mh tables depend only on the backends' addresses, ports and
/// weights: the slots are sorted by address first, and the Maglev size
/// follows the backend count alone. So every balancer behind ECMP, whatever
/// the order of its configuration and the history of its service (slot ids
/// included), sends a flow to the same backend without sharing state.
fn schedule_table(
    spec: &ServiceSpec,
    slots: &[Slot],
) -> Result<(Vec<u32>, Option<u32>), DataplaneError> {
    let mut sorted;
    let slots = if matches!(spec.algo, Algo::Sh | Algo::Mh) {
        sorted = slots.to_vec();
        sorted.sort_by_key(|(_, v)| (v.family, v.addr, v.port));
        &sorted[..]
    } else {
        slots
    };
    let candidates: Vec<Candidate> = slots
        .iter()
        .map(|(bid, v)| Candidate {
            id: *bid,
            weight: v.weight,
        })
        .collect();
    let table = match spec.algo {
        Algo::Rr => schedule::round_robin(&candidates),
        Algo::Wrr => schedule::weighted_round_robin(&candidates),
        Algo::Sh => schedule::source_hash_table(&candidates),
        Algo::Mh => {
            let m = schedule::maglev_size(candidates.len());
            let mb: Vec<MaglevBackend> = slots
                .iter()
                .map(|(bid, v)| MaglevBackend {
                    id: *bid,
                    weight: v.weight,
                    offset_hash: schedule::backend_hash(&v.addr, v.port, 0x6d61_676c),
                    skip_hash: schedule::backend_hash(&v.addr, v.port, 0x736b_6970),
                })
                .collect();
            return Ok((schedule::maglev_table(&mb, m), Some(m)));
        }
        Algo::Lc | Algo::Wlc => {
            if slots.len() > MAX_LC_BACKENDS as usize {
                return Err(DataplaneError::Service {
                    vip: spec.vip,
                    proto: spec.proto,
                    reason: format!(
                        "lb_algo {} weighs at most {MAX_LC_BACKENDS} real servers, this one has {}",
                        spec.algo,
                        slots.len()
                    ),
                });
            }
            slots.iter().map(|(bid, _)| *bid).collect()
        }
    };
    Ok((table, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::Proto;

    /// The table as backend addresses: what a flow's pick means on any node,
    /// whatever slot ids that node handed out.
    fn table_by_addr(spec: &ServiceSpec, first_id: u32, stride: u32) -> Vec<SocketAddr> {
        let slots: Vec<Slot> = spec
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut b = b.clone();
                b.mac = Some(crate::net::MacAddr([2, 0, 0, 0, 0, i as u8]));
                let bid = first_id + i as u32 * stride;
                (bid, backend_value(&b, spec.mode, 1, false))
            })
            .collect();
        let addr_of: HashMap<u32, SocketAddr> = slots
            .iter()
            .zip(&spec.backends)
            .map(|((bid, _), b)| (*bid, b.addr))
            .collect();
        let (table, _) = schedule_table(spec, &slots).unwrap();
        table.iter().map(|bid| addr_of[bid]).collect()
    }

    fn service(algo: Algo, backends: &[(u32, u32)]) -> ServiceSpec {
        let mut s = ServiceSpec::new(
            "10.9.0.100:80".parse().unwrap(),
            Proto::Tcp,
            backends
                .iter()
                .map(|&(n, w)| {
                    BackendSpec::new(SocketAddr::from(([10, 1, (n >> 8) as u8, n as u8], 80)), w)
                })
                .collect(),
        );
        s.algo = algo;
        s
    }

    /// Fisher-Yates with a fixed xorshift, so the test is reproducible.
    fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
        let mut rng = seed | 1;
        let mut v = v.to_vec();
        for i in (1..v.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            v.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        v
    }

    #[test]
    fn sh_and_mh_tables_are_the_same_on_every_node_whatever_the_order_and_history() {
        for algo in [Algo::Mh, Algo::Sh] {
            let backends: Vec<(u32, u32)> = (1..=12).map(|n| (n * 7 % 300, 1 + n % 3)).collect();
            let reference = table_by_addr(&service(algo, &backends), 0, 1);
            assert!(!reference.is_empty());
            for seed in 1..40u64 {
                // Another node: the real servers in another order in its
                // file, slot ids from another history of allocations.
                let other = service(algo, &shuffled(&backends, seed));
                let table = table_by_addr(&other, 100 + seed as u32 * 37, 1 + seed as u32 % 5);
                assert_eq!(table, reference, "{algo}: shuffle {seed}");
            }
        }
    }

    #[test]
    fn a_maglev_table_does_not_remember_the_services_earlier_sizes() {
        let ten: Vec<(u32, u32)> = (1..=10).map(|n| (n, 1)).collect();
        let fresh = table_by_addr(&service(Algo::Mh, &ten), 0, 1);
        // The same service on a node where it grew to 40 backends and
        // shrank back (the installer is asked only for the current set).
        let forty: Vec<(u32, u32)> = (1..=40).map(|n| (n, 1)).collect();
        let grown = table_by_addr(&service(Algo::Mh, &forty), 0, 1);
        assert_ne!(grown.len(), fresh.len(), "40 backends take a bigger table");
        let back = table_by_addr(&service(Algo::Mh, &shuffled(&ten, 9)), 500, 3);
        assert_eq!(back, fresh);
        assert_eq!(fresh.len() as u32, schedule::maglev_size(10));
    }

    #[test]
    fn rr_keeps_configuration_order() {
        let s = service(Algo::Rr, &[(3, 1), (1, 1), (2, 1)]);
        let t = table_by_addr(&s, 0, 1);
        let order: Vec<u8> = t
            .iter()
            .map(|a| match a.ip() {
                std::net::IpAddr::V4(v) => v.octets()[3],
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![3, 1, 2]);
    }
}
