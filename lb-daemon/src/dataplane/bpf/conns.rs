//! Connection sync's one way into the connection table: the directory of
//! local services and backends that sync maps records with, and the writes
//! of synced entries (the connection, its NAT reverse entry, persistence).
//! Nothing else in lbd writes these tables, so the table's layout can change
//! behind this module alone.

use std::net::SocketAddr;

use aya::maps::{HashMap, MapData};
use lb_common::{maps as names, Conn, FlowKey, NatRev, PersistKey, PersistValue};

use super::{maps::map_err, XdpDataplane};
use crate::{
    connsync::{
        core::Entry,
        directory::{Directory, LocalService},
    },
    dataplane::{addr_words, words_addr, DataplaneError, Mode},
};

impl XdpDataplane {
    /// The services and backends as installed, by address.
    pub fn sync_directory(&self) -> Directory {
        Directory::new(self.installed.values().filter_map(|inst| {
            let spec = inst.spec.as_ref()?;
            Some(LocalService {
                id: inst.id,
                proto: spec.proto,
                vip: spec.vip,
                mode: spec.mode,
                algo: spec.algo,
                persistence: spec.persistence,
                backends: inst.backends.clone(),
            })
        }))
    }

    /// Writes synced entries, stamped now. Connection counts for lc/wlc are
    /// left to the periodic recount, which counts every live entry.
    pub fn write_synced(&mut self, entries: &[Entry]) -> Result<(), DataplaneError> {
        let now = crate::clock::now();
        for e in entries {
            match *e {
                Entry::Conn {
                    protocol,
                    client,
                    vip,
                    dest,
                    service,
                    backend,
                    state,
                    mode,
                    counted,
                } => {
                    let (src, family) = addr_words(client.ip());
                    let key = FlowKey {
                        src,
                        dst: addr_words(vip.ip()).0,
                        sport: client.port().to_be(),
                        dport: vip.port().to_be(),
                        proto: protocol,
                        family,
                        _pad: [0; 2],
                    };
                    let conn = Conn {
                        backend,
                        service,
                        last_seen: now,
                        state,
                        mode: mode.code(),
                        counted: u8::from(counted),
                        _pad: 0,
                    };
                    self.maps
                        .conns
                        .insert(key, conn, 0)
                        .map_err(map_err(names::CONNS))?;
                    if mode == Mode::Nat {
                        // As the program records it: the reply's flow.
                        let rev_key = FlowKey {
                            src: addr_words(dest.ip()).0,
                            dst: src,
                            sport: dest.port().to_be(),
                            dport: client.port().to_be(),
                            proto: protocol,
                            family,
                            _pad: [0; 2],
                        };
                        let rev = NatRev {
                            vip: key.dst,
                            vport: key.dport,
                            _pad: [0; 2],
                            service,
                            backend,
                        };
                        self.object_map::<FlowKey, NatRev>(names::NAT_REV)?
                            .insert(rev_key, rev, 0)
                            .map_err(map_err(names::NAT_REV))?;
                    }
                }
                Entry::Persist {
                    client,
                    service,
                    backend,
                } => {
                    let key = PersistKey {
                        addr: addr_words(client).0,
                        service,
                    };
                    let value = PersistValue {
                        backend,
                        last_seen: now,
                    };
                    self.object_map::<PersistKey, PersistValue>(names::PERSIST)?
                        .insert(key, value, 0)
                        .map_err(map_err(names::PERSIST))?;
                }
            }
        }
        Ok(())
    }

    /// The VIP a NAT reply from `dest` to `client` is rewritten to, from
    /// its reverse entry (what `lbctl` and tests read back).
    pub fn nat_reverse(
        &mut self,
        protocol: u8,
        dest: SocketAddr,
        client: SocketAddr,
    ) -> Result<Option<SocketAddr>, DataplaneError> {
        let (dst, family) = addr_words(client.ip());
        let key = FlowKey {
            src: addr_words(dest.ip()).0,
            dst,
            sport: dest.port().to_be(),
            dport: client.port().to_be(),
            proto: protocol,
            family,
            _pad: [0; 2],
        };
        let map = self.object_map::<FlowKey, NatRev>(names::NAT_REV)?;
        Ok(map
            .get(&key, 0)
            .ok()
            .map(|r| SocketAddr::new(words_addr(r.vip, family), u16::from_be(r.vport))))
    }

    /// One of the program's own hash maps (left in the object).
    fn object_map<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, V>, DataplaneError> {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(DataplaneError::MissingMap { name })?;
        HashMap::try_from(map).map_err(map_err(name))
    }
}
