//! What the maps hold, read back: counters, live connections, installed
//! tables; and the recount that corrects the connection counts.

use std::{borrow::Borrow, collections::HashMap, net::SocketAddr};

use aya::maps::{MapData, PerCpuValues};
use lb_common::{
    conn_state, maps as names, stat, ConnCounts, Counters, Settings, BACKEND_F_READY,
    BACKEND_F_SORRY, BACKEND_F_USED,
};

use super::{
    maps::{backend_addr, key_vip, map_err, proto, vip_key, Maps},
    XdpDataplane,
};
use crate::{
    dataplane::{
        words_addr, Algo, BackendStats, ConnInfo, DataplaneError, Mode, Proto, Reader,
        ServiceStats, Stats,
    },
    net::MacAddr,
};

impl<T: Borrow<MapData>> Maps<T> {
    /// Every counter, service and backend.
    pub fn stats(&self) -> Result<Stats, DataplaneError> {
        let mut out = Stats::default();
        for (i, name) in stat::NAMES.iter().enumerate() {
            let c = sum(&self
                .global_stats
                .get(&(i as u32), 0)
                .map_err(map_err(names::GLOBAL_STATS))?);
            out.global.push((name.to_string(), c.packets, c.bytes));
        }
        let mut by_service: HashMap<u32, Vec<BackendStats>> = HashMap::new();
        for id in 0..self.backends.len() {
            let Ok(b) = self.backends.get(&id, 0) else {
                continue;
            };
            if b.flags & BACKEND_F_USED == 0 {
                continue;
            }
            let c = sum(&self
                .backend_stats
                .get(&id, 0)
                .map_err(map_err(names::BACKEND_STATS))?);
            let conns = self.backend_conns.get(&id, 0).unwrap_or_default();
            by_service.entry(b.service).or_default().push(BackendStats {
                addr: backend_addr(&b),
                weight: b.weight,
                mac: (b.mac != [0; 6]).then_some(MacAddr(b.mac)),
                ready: b.flags & BACKEND_F_READY != 0,
                sorry: b.flags & BACKEND_F_SORRY != 0,
                active: conns.active,
                inactive: conns.inactive,
                packets: c.packets,
                bytes: c.bytes,
                new_conns: c.new_conns,
            });
        }
        for item in self.services.iter() {
            let (key, value) = item.map_err(map_err(names::SERVICES))?;
            let c = sum(&self
                .service_stats
                .get(&value.id, 0)
                .map_err(map_err(names::SERVICE_STATS))?);
            let (vip, proto) = key_vip(&key);
            let mut backends = by_service.remove(&value.id).unwrap_or_default();
            backends.sort_by_key(|b| (b.sorry, b.addr));
            out.services.push(ServiceStats {
                vip,
                proto,
                algo: Algo::from_code(value.algo),
                mode: Mode::from_code(value.mode),
                packets: c.packets,
                bytes: c.bytes,
                new_conns: c.new_conns,
                backends,
                fwmark: None,
            });
        }
        out.services.sort_by_key(|s| (s.vip, s.proto as u8));
        Ok(out)
    }

    /// Live connections, at most `limit`, under the timeouts the program
    /// is set with (IPVS's defaults before lbd has set any).
    pub fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        let settings = match self.settings.get(&0, 0) {
            Ok(s) if s.tcp_timeout != 0 => s,
            _ => Settings::ipvs_defaults(crate::clock::hz()),
        };
        self.live_connections(&settings, limit)
    }

    /// Live connections under `settings`' timeouts, at most `limit`.
    fn live_connections(
        &self,
        settings: &Settings,
        limit: usize,
    ) -> Result<Vec<ConnInfo>, DataplaneError> {
        let now = crate::clock::now();
        let mut out = Vec::new();
        for item in self.conns.iter() {
            if out.len() >= limit {
                break;
            }
            let Ok((k, c)) = item else { continue };
            let idle = now.wrapping_sub(c.last_seen);
            let timeout = settings.timeout(c.state);
            if idle > timeout {
                continue;
            }
            let Ok(b) = self.backends.get(&c.backend, 0) else {
                continue;
            };
            out.push(ConnInfo {
                proto: proto(k.proto),
                client: SocketAddr::new(words_addr(k.src, k.family), u16::from_be(k.sport)),
                vip: SocketAddr::new(words_addr(k.dst, k.family), u16::from_be(k.dport)),
                backend: backend_addr(&b),
                state: state_name(c.state),
                idle_secs: crate::clock::to_secs(idle),
                expires_secs: crate::clock::to_secs(timeout - idle),
            });
        }
        Ok(out)
    }
}

impl Reader for Maps {
    fn stats(&self) -> Result<Stats, DataplaneError> {
        Maps::stats(self)
    }

    fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        Maps::connections(self, limit)
    }
}

impl XdpDataplane {
    /// A read-only view of the maps with handles of its own, for readers
    /// outside the main loop (control API, metrics).
    pub fn view(&self) -> Result<Maps, DataplaneError> {
        self.maps.try_clone()
    }

    /// Live connections, at most `limit`.
    pub fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        self.maps.live_connections(&self.settings, limit)
    }

    /// The installed table of a service (ring, buckets, Maglev table or
    /// candidate list) and its backends' slot ids, read back from the maps:
    /// what differential tests feed the reference model.
    pub fn installed_table(
        &self,
        vip: SocketAddr,
        proto: Proto,
    ) -> Option<(Vec<u32>, HashMap<SocketAddr, u32>)> {
        let inst = self.installed.get(&vip_key(vip, proto))?;
        let table = (0..inst.region.len)
            .map(|i| self.maps.schedule.get(&(inst.region.off + i), 0).ok())
            .collect::<Option<Vec<u32>>>()?;
        Some((table, inst.backends.clone()))
    }

    /// Recounts active/inactive connections per backend from the table.
    ///
    /// The program adjusts the counts as flows start and change state, but
    /// it never sees a flow expire or get evicted; this recount is the truth
    /// lc/wlc weigh between its runs. A flow that changes state while the
    /// recount runs is off by one until the next recount.
    pub fn recount_connections(&mut self) -> Result<(), DataplaneError> {
        let now = crate::clock::now();
        let mut counts: HashMap<u32, ConnCounts> = HashMap::new();
        for item in self.maps.conns.iter() {
            let Ok((_, c)) = item else { continue };
            if now.wrapping_sub(c.last_seen) > self.settings.timeout(c.state) {
                continue;
            }
            let e = counts.entry(c.backend).or_default();
            if conn_state::is_active(c.state) {
                e.active += 1;
            } else {
                e.inactive += 1;
            }
        }
        let ids: Vec<u32> = self
            .installed
            .values()
            .flat_map(|i| i.backends.values().copied())
            .collect();
        for id in ids {
            let v = counts.remove(&id).unwrap_or_default();
            self.maps
                .backend_conns
                .set(id, v, 0)
                .map_err(map_err(names::BACKEND_CONNS))?;
        }
        Ok(())
    }
}

/// A connection state as IPVS names it.
fn state_name(state: u8) -> &'static str {
    match state {
        conn_state::SYN => "SYN_RECV",
        conn_state::ESTABLISHED => "ESTABLISHED",
        conn_state::FIN => "FIN_WAIT",
        conn_state::CLOSE => "CLOSE",
        conn_state::UDP => "UDP",
        _ => "?",
    }
}

/// A per-CPU counter summed over the CPUs.
fn sum(values: &PerCpuValues<Counters>) -> Counters {
    values.iter().fold(Counters::default(), |a, c| Counters {
        packets: a.packets + c.packets,
        bytes: a.bytes + c.bytes,
        new_conns: a.new_conns + c.new_conns,
    })
}
