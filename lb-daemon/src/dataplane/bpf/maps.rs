//! The program's maps as one set, however its handles are held.
//!
//! As in aya's own map types, `T` is how the set holds its maps: the data
//! plane owns its `MapData` (taken from the loaded object); the control
//! API's reader and lbctl hold handles of their own (`MapData` opened from
//! duplicated descriptors or from the pins). Readers are written once for
//! any `T: Borrow<MapData>`, writers need `T: BorrowMut<MapData>`.

use std::{
    borrow::Borrow,
    net::SocketAddr,
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use aya::{
    maps::{Array, HashMap, IterableMap, Map, MapData, MapError, PerCpuArray},
    Ebpf,
};
use lb_common::{
    maps as names, Backend, Conn, ConnCounts, Counters, FlowKey, Iface, Service, ServiceSlot,
    Settings, VipKey,
};

use crate::dataplane::{addr_words, words_addr, DataplaneError, Proto};

/// The maps lbd reads or writes; the program's own (the round-robin
/// cursors, persistence and NAT reverse tables) stay in the object.
pub struct Maps<T = MapData> {
    pub(super) services: HashMap<T, VipKey, Service>,
    pub(super) backends: Array<T, Backend>,
    pub(super) schedule: Array<T, u32>,
    pub(super) conns: HashMap<T, FlowKey, Conn>,
    pub(super) backend_conns: Array<T, ConnCounts>,
    pub(super) ifaces: Array<T, Iface>,
    pub(super) settings: Array<T, Settings>,
    pub(super) vip_filter: Array<T, u32>,
    pub(super) service_slots: Array<T, ServiceSlot>,
    pub(super) global_stats: PerCpuArray<T, Counters>,
    pub(super) service_stats: PerCpuArray<T, Counters>,
    pub(super) backend_stats: PerCpuArray<T, Counters>,
}

impl Maps {
    /// Takes the maps out of the loaded object.
    pub(super) fn take(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        Self::open(|name| {
            ebpf.take_map(name)
                .ok_or(DataplaneError::MissingMap { name })
        })
    }

    /// Opens the maps pinned under `dir`.
    pub fn from_pins(dir: &Path) -> Result<Self, DataplaneError> {
        Self::open(|name| {
            let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
            Map::from_map_data(data).map_err(map_err(name))
        })
    }

    fn open(
        mut map: impl FnMut(&'static str) -> Result<Map, DataplaneError>,
    ) -> Result<Self, DataplaneError> {
        Ok(Self {
            services: typed(names::SERVICES, &mut map)?,
            backends: typed(names::BACKENDS, &mut map)?,
            schedule: typed(names::SCHEDULE, &mut map)?,
            conns: typed(names::CONNS, &mut map)?,
            backend_conns: typed(names::BACKEND_CONNS, &mut map)?,
            ifaces: typed(names::IFACES, &mut map)?,
            settings: typed(names::SETTINGS, &mut map)?,
            vip_filter: typed(names::VIP_FILTER, &mut map)?,
            service_slots: typed(names::SERVICE_SLOTS, &mut map)?,
            global_stats: typed(names::GLOBAL_STATS, &mut map)?,
            service_stats: typed(names::SERVICE_STATS, &mut map)?,
            backend_stats: typed(names::BACKEND_STATS, &mut map)?,
        })
    }
}

/// Map `name` from `map`, as the type the set holds it as.
fn typed<M: TryFrom<Map, Error = MapError>>(
    name: &'static str,
    map: &mut impl FnMut(&'static str) -> Result<Map, DataplaneError>,
) -> Result<M, DataplaneError> {
    M::try_from(map(name)?).map_err(map_err(name))
}

impl<T: Borrow<MapData>> Maps<T> {
    /// New handles on the same maps, for readers outside the main loop
    /// (the control API, the metrics).
    pub fn try_clone(&self) -> Result<Maps, DataplaneError> {
        Maps::open(|name| {
            let data = MapData::from_fd(dup(name, self.fd(name))?).map_err(map_err(name))?;
            Map::from_map_data(data).map_err(map_err(name))
        })
    }

    fn fd(&self, name: &'static str) -> BorrowedFd<'_> {
        let data: &MapData = match name {
            names::SERVICES => self.services.map(),
            names::BACKENDS => IterableMap::<u32, Backend>::map(&self.backends),
            names::SCHEDULE => IterableMap::<u32, u32>::map(&self.schedule),
            names::CONNS => self.conns.map(),
            names::BACKEND_CONNS => IterableMap::<u32, ConnCounts>::map(&self.backend_conns),
            names::IFACES => IterableMap::<u32, Iface>::map(&self.ifaces),
            names::SETTINGS => IterableMap::<u32, Settings>::map(&self.settings),
            names::VIP_FILTER => IterableMap::<u32, u32>::map(&self.vip_filter),
            names::SERVICE_SLOTS => IterableMap::<u32, ServiceSlot>::map(&self.service_slots),
            names::GLOBAL_STATS => self.global_stats.map(),
            names::SERVICE_STATS => self.service_stats.map(),
            names::BACKEND_STATS => self.backend_stats.map(),
            _ => unreachable!("{name} is not in the set"),
        };
        data.fd().as_fd()
    }
}

pub(super) fn dup(
    name: &'static str,
    fd: BorrowedFd<'_>,
) -> Result<std::os::fd::OwnedFd, DataplaneError> {
    fd.try_clone_to_owned().map_err(|e| DataplaneError::Map {
        name,
        source: MapError::SyscallError(aya::sys::SyscallError {
            call: "dup",
            io_error: e,
        }),
    })
}

pub(super) fn map_err(name: &'static str) -> impl Fn(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

/// The key of a service in `SERVICES`.
pub(super) fn vip_key(vip: SocketAddr, proto: Proto) -> VipKey {
    let (addr, family) = addr_words(vip.ip());
    VipKey {
        addr,
        port: vip.port().to_be(),
        proto: proto.number(),
        family,
    }
}

/// Inverse of `vip_key`.
pub(super) fn key_vip(key: &VipKey) -> (SocketAddr, Proto) {
    (
        SocketAddr::new(words_addr(key.addr, key.family), u16::from_be(key.port)),
        proto(key.proto),
    )
}

pub(super) fn proto(number: u8) -> Proto {
    if number == lb_common::IPPROTO_UDP {
        Proto::Udp
    } else {
        Proto::Tcp
    }
}

/// Where a backend slot points.
pub(super) fn backend_addr(b: &Backend) -> SocketAddr {
    SocketAddr::new(words_addr(b.addr, b.family), u16::from_be(b.port))
}

/// Index in `SERVICE_SLOTS` of one of service `id`'s two slots.
pub(super) fn slot_index(id: u32, half: u32) -> u32 {
    2 * id + half
}
