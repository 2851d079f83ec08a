//! Read-only views of the data plane's maps, from handles of their own: the
//! control API and the metrics read through one while the main loop owns the
//! data plane, and lbctl opens one from the pins when lbd is down.

use std::{os::fd::BorrowedFd, path::Path};

use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray};
use lb_common::{
    maps as names, Backend, Conn, ConnCounts, Counters, FlowKey, Service, Settings, VipKey,
};

use super::{xdp, ConnInfo, DataplaneError, Stats};

pub struct MapView {
    services: HashMap<MapData, VipKey, Service>,
    backends: Array<MapData, Backend>,
    backend_conns: Array<MapData, ConnCounts>,
    conns: HashMap<MapData, FlowKey, Conn>,
    settings: Array<MapData, Settings>,
    global_stats: PerCpuArray<MapData, Counters>,
    service_stats: PerCpuArray<MapData, Counters>,
    backend_stats: PerCpuArray<MapData, Counters>,
}

/// The maps a view needs.
pub const VIEW_MAPS: [&str; 8] = [
    names::SERVICES,
    names::BACKENDS,
    names::BACKEND_CONNS,
    names::CONNS,
    names::SETTINGS,
    names::GLOBAL_STATS,
    names::SERVICE_STATS,
    names::BACKEND_STATS,
];

fn typed<T>(name: &'static str, data: MapData) -> Result<T, DataplaneError>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let map = Map::from_map_data(data).map_err(|source| DataplaneError::Map { name, source })?;
    T::try_from(map).map_err(|source| DataplaneError::Map { name, source })
}

impl MapView {
    /// Opens the maps pinned under `dir`.
    pub fn from_pins(dir: &Path) -> Result<Self, DataplaneError> {
        Self::open(|name| {
            MapData::from_pin(dir.join(name)).map_err(|source| DataplaneError::Map { name, source })
        })
    }

    /// Opens new handles on the maps behind `fd(name)`.
    pub fn from_fds<'a>(
        fd: impl Fn(&'static str) -> Option<BorrowedFd<'a>>,
    ) -> Result<Self, DataplaneError> {
        Self::open(|name| {
            let owned = fd(name)
                .ok_or(DataplaneError::MissingMap { name })?
                .try_clone_to_owned()
                .map_err(|e| DataplaneError::Map {
                    name,
                    source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                        call: "dup",
                        io_error: e,
                    }),
                })?;
            MapData::from_fd(owned).map_err(|source| DataplaneError::Map { name, source })
        })
    }

    fn open(
        mut data: impl FnMut(&'static str) -> Result<MapData, DataplaneError>,
    ) -> Result<Self, DataplaneError> {
        Ok(Self {
            services: typed(names::SERVICES, data(names::SERVICES)?)?,
            backends: typed(names::BACKENDS, data(names::BACKENDS)?)?,
            backend_conns: typed(names::BACKEND_CONNS, data(names::BACKEND_CONNS)?)?,
            conns: typed(names::CONNS, data(names::CONNS)?)?,
            settings: typed(names::SETTINGS, data(names::SETTINGS)?)?,
            global_stats: typed(names::GLOBAL_STATS, data(names::GLOBAL_STATS)?)?,
            service_stats: typed(names::SERVICE_STATS, data(names::SERVICE_STATS)?)?,
            backend_stats: typed(names::BACKEND_STATS, data(names::BACKEND_STATS)?)?,
        })
    }

    /// Every counter, service and backend.
    pub fn stats(&self) -> Result<Stats, DataplaneError> {
        xdp::read_stats(
            &self.services,
            &self.backends,
            &self.backend_conns,
            &self.global_stats,
            &self.service_stats,
            &self.backend_stats,
        )
    }

    /// Live connections, at most `limit`.
    pub fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        let settings = match self.settings.get(&0, 0) {
            Ok(s) if s.tcp_timeout != 0 => s,
            _ => Settings::ipvs_defaults(crate::clock::hz()),
        };
        xdp::read_connections(&self.conns, &self.backends, &settings, limit)
    }
}
