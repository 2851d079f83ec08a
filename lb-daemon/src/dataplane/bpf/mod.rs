//! The BPF data plane: the balancer's program at XDP (or TC ingress),
//! driven through its maps.
//!
//! - `load`: loading the object, and checking and adopting the maps a
//!   previous lbd left pinned;
//! - `attach`: attaching at XDP or TC, taking over a pinned link;
//! - `maps`: the set of maps, held by the data plane or opened on their own
//!   (the control API's reader, lbctl when lbd is down);
//! - `ids`: service and backend ids;
//! - `install`: writing a service into the maps, step by step, and removing it;
//! - `host`: what the program is told about the host (interfaces, tunnel
//!   sources, timeouts);
//! - `read`: counters, connections and installed tables read back;
//! - `conns`: connection sync's writes into the connection table;
//! - `sync_events`: connection sync's reports from the program (the ring
//!   buffer and its switch).

mod attach;
mod conns;
mod host;
mod ids;
mod install;
mod load;
mod maps;
mod read;
pub mod sync_events;

use std::{collections::HashMap, path::PathBuf};

use aya::Ebpf;
use lb_common::{Settings, VipKey};
use tracing::info;

pub use attach::AttachMode;
pub use load::LoadOptions;
pub use maps::Maps;
pub use sync_events::SyncEvents;

use super::{regions::Regions, Dataplane, DataplaneError, Mode, ServiceSpec, Stats, Timeouts};
use crate::net::Interface;
use attach::Attachment;
use ids::Ids;
use install::Installed;
use sync_events::SyncMaps;

pub struct XdpDataplane {
    ebpf: Ebpf,
    maps: Maps,
    installed: HashMap<VipKey, Installed>,
    service_ids: Ids,
    backend_ids: Ids,
    regions: Regions,
    settings: Settings,
    attachments: Vec<Attachment>,
    pin_path: Option<PathBuf>,
    sync: SyncMaps,
}

impl Dataplane for XdpDataplane {
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .attachments
            .iter()
            .map(|a| format!("{} ({})", a.iface.name, a.mode))
            .collect();
        format!("xdp on {}", parts.join(", "))
    }

    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError> {
        self.regions.next_round();
        self.service_ids.next_round();
        self.backend_ids.next_round();
        for spec in services {
            self.install(spec).map_err(|e| match e {
                DataplaneError::Service { .. } => e,
                other => DataplaneError::Service {
                    vip: spec.vip,
                    proto: spec.proto,
                    reason: other.to_string(),
                },
            })?;
        }
        let wanted: Vec<VipKey> = services
            .iter()
            .map(|s| maps::vip_key(s.vip, s.proto))
            .collect();
        let stale: Vec<VipKey> = self
            .installed
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            self.uninstall(key)?;
        }
        let nat = u32::from(services.iter().any(|s| s.mode == Mode::Nat));
        if nat != self.settings.nat_enabled {
            self.settings.nat_enabled = nat;
            self.write_settings()?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats, DataplaneError> {
        self.maps.stats()
    }

    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), DataplaneError> {
        self.settings.tcp_timeout = crate::clock::from_secs(t.tcp);
        self.settings.tcpfin_timeout = crate::clock::from_secs(t.tcpfin);
        self.settings.udp_timeout = crate::clock::from_secs(t.udp);
        self.write_settings()?;
        self.write_sync_control()
    }

    fn set_reporting(&mut self, on: bool) -> Result<(), DataplaneError> {
        XdpDataplane::set_reporting(self, on)
    }

    fn sync_events(&self) -> Option<Result<SyncEvents, DataplaneError>> {
        Some(XdpDataplane::sync_events(self))
    }

    fn maintain(&mut self) -> Result<(), DataplaneError> {
        self.recount_connections()
    }

    fn record_interface(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        self.set_interface(iface)
    }

    fn tier(&self) -> &'static str {
        if self.attachments.iter().all(|a| a.mode == "tc") && !self.attachments.is_empty() {
            "tc"
        } else {
            "xdp"
        }
    }

    fn map_view(&self) -> Option<Result<Maps, DataplaneError>> {
        Some(self.view())
    }

    fn attached(&self) -> Vec<(String, &'static str)> {
        XdpDataplane::attached(self)
    }

    fn sync_directory(&self) -> Option<crate::connsync::directory::Directory> {
        Some(XdpDataplane::sync_directory(self))
    }

    fn write_synced(
        &mut self,
        entries: &[crate::connsync::core::Entry],
    ) -> Result<(), DataplaneError> {
        XdpDataplane::write_synced(self, entries)
    }

    fn shutdown(&mut self, keep: bool) {
        if keep {
            info!("leaving the data plane attached and pinned for the next lbd");
        } else {
            // Without pins, dropping the data plane detaches XDP everywhere.
            self.unpin_all();
        }
    }
}
