//! Loading the object: its maps created anew or, with a pin path, those a
//! previous lbd left pinned checked and adopted, so a restarted lbd takes
//! over a running data plane without a gap.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use aya::{
    programs::{ProgramError, SchedClassifier, Xdp},
    Ebpf, EbpfLoader,
};
use lb_common::{
    maps as names, Settings, VipKey, BACKEND_F_USED, MAX_BACKENDS, MAX_SERVICES, SCHED_CAPACITY,
};
use tracing::{info, warn};

use super::{
    ids::Ids,
    install::Installed,
    maps::{backend_addr, map_err, slot_index, Maps},
    sync_events::SyncMaps,
    XdpDataplane,
};
use crate::dataplane::{
    regions::{Region, Regions},
    select::Hook,
    DataplaneError,
};

/// Options for loading the program.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Pin maps and links here and reuse what is already pinned, so a
    /// restarted daemon takes over a running data plane without a gap.
    pub pin_path: Option<PathBuf>,
    /// Entries of the connection table (default `lb_common::CONN_TABLE_SIZE`).
    pub conn_table_size: Option<u32>,
}

impl XdpDataplane {
    /// Loads the object (maps created or, with a pin path, reused).
    pub fn load(object: &[u8]) -> Result<Self, DataplaneError> {
        Self::load_with(object, &LoadOptions::default())
    }

    pub fn load_with(object: &[u8], opts: &LoadOptions) -> Result<Self, DataplaneError> {
        let mut loader = EbpfLoader::new();
        if let Some(size) = opts.conn_table_size {
            loader.map_max_entries(names::CONNS, size);
            loader.map_max_entries(names::NAT_REV, size);
        }
        let pins: Vec<(&'static str, PathBuf)> = match &opts.pin_path {
            Some(dir) => {
                crate::bpffs::ensure(dir).map_err(|e| DataplaneError::Pin {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                names::ALL.iter().map(|n| (*n, dir.join(n))).collect()
            }
            None => Vec::new(),
        };
        let adopting = pins.iter().any(|(_, p)| p.exists());
        if adopting {
            check_pins(object, &pins, opts.conn_table_size)?;
        }
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(object)?;
        xdp_program(&mut ebpf)?
            .load()
            .map_err(|source| DataplaneError::Program {
                name: lb_common::XDP_PROGRAM,
                source,
            })?;
        let maps = Maps::take(&mut ebpf)?;
        let sync = SyncMaps::take(&mut ebpf)?;
        let mut dp = Self {
            ebpf,
            maps,
            installed: HashMap::new(),
            service_ids: Ids::new(MAX_SERVICES, "services"),
            backend_ids: Ids::new(MAX_BACKENDS, "backends"),
            regions: Regions::new(SCHED_CAPACITY),
            settings: Settings::ipvs_defaults(crate::clock::hz()),
            attachments: Vec::new(),
            pin_path: opts.pin_path.clone(),
            sync,
        };
        if adopting {
            dp.adopt()?;
        } else {
            dp.write_settings()?;
        }
        // Off until this lbd's sync task asks (an older lbd may have left
        // it on in the pins).
        dp.write_sync_control()?;
        Ok(dp)
    }

    /// Rebuilds the bookkeeping from maps a previous daemon left pinned.
    fn adopt(&mut self) -> Result<(), DataplaneError> {
        if let Ok(s) = self.maps.settings.get(&0, 0) {
            if s.tcp_timeout != 0 {
                self.settings = s;
            }
        }
        let mut services = Vec::new();
        for item in self.maps.services.iter() {
            let (key, value) = item.map_err(map_err(names::SERVICES))?;
            services.push((key, value));
        }
        let mut slots: HashMap<u32, HashMap<SocketAddr, u32>> = HashMap::new();
        for id in 0..MAX_BACKENDS {
            let b = self
                .maps
                .backends
                .get(&id, 0)
                .map_err(map_err(names::BACKENDS))?;
            if b.flags & BACKEND_F_USED != 0 {
                slots
                    .entry(b.service)
                    .or_default()
                    .insert(backend_addr(&b), id);
                self.backend_ids.claim(id);
            }
        }
        for (key, value) in services {
            self.service_ids.claim(value.id);
            let region = Region {
                off: value.sched_off,
                len: value.sched_len,
            };
            self.regions.claim(region);
            // The half the prefilter points at is current; when it points
            // at neither (several services share the prefilter slot, so
            // the program reads SERVICES), half 0 is rewritten.
            let filter = lb_common::vip_filter_index(&key.addr, key.port);
            let pointed = self
                .maps
                .vip_filter
                .get(&filter, 0)
                .map_err(map_err(names::VIP_FILTER))?;
            let half = if pointed == slot_index(value.id, 1) + 1 {
                1
            } else {
                if pointed != slot_index(value.id, 0) + 1 {
                    self.write_slot(value.id, 0, key, value)?;
                }
                0
            };
            self.installed.insert(
                key,
                Installed {
                    id: value.id,
                    spec: None,
                    backends: slots.remove(&value.id).unwrap_or_default(),
                    region,
                    maglev_size: (value.algo == lb_common::ALGO_MH).then_some(value.sched_len),
                    half,
                },
            );
        }
        let keys: Vec<VipKey> = self.installed.keys().copied().collect();
        for key in &keys {
            self.point_filter(key)?;
        }
        info!(
            services = self.installed.len(),
            "adopted the pinned data plane of a previous lbd"
        );
        Ok(())
    }

    /// Removes the pins (links and maps), so that dropping the data plane
    /// detaches the program and frees everything.
    pub fn unpin_all(&mut self) {
        if let Some(dir) = &self.pin_path {
            for a in &self.attachments {
                for hook in [Hook::Xdp, Hook::Tc] {
                    let _ = std::fs::remove_file(hook.link_pin(dir, &a.iface.name));
                }
            }
            for n in names::ALL {
                let _ = std::fs::remove_file(dir.join(n));
            }
        }
    }

    /// Program handle, for tests that drive it with BPF_PROG_TEST_RUN.
    pub fn program(&mut self) -> Result<&mut Xdp, DataplaneError> {
        xdp_program(&mut self.ebpf)
    }

    /// The TC program (loaded on first use), for tests that drive it with
    /// BPF_PROG_TEST_RUN.
    pub fn tc_program(&mut self) -> Result<&mut SchedClassifier, DataplaneError> {
        let name = lb_common::TC_PROGRAM;
        let prog: &mut SchedClassifier = program(&mut self.ebpf, name)?;
        if prog.fd().is_err() {
            prog.load()
                .map_err(|source| DataplaneError::Program { name, source })?;
        }
        Ok(prog)
    }
}

/// The balancer's XDP program (loaded with the object).
pub(super) fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, DataplaneError> {
    program(ebpf, lb_common::XDP_PROGRAM)
}

fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, DataplaneError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or(DataplaneError::Program {
        name,
        source: ProgramError::NotLoaded,
    })?;
    program
        .try_into()
        .map_err(|source| DataplaneError::Program { name, source })
}

/// Before adopting maps a previous lbd pinned: each must have the type,
/// key and value sizes this lbd's program declares, or the program would be
/// refused (or worse, misread them). A different version of lbd may have
/// pinned them; it keeps forwarding until it is stopped with
/// `--on-exit detach` (or its pins are removed). A connection table of
/// another size is kept as it is, with a warning: adopting it is what keeps
/// the flows.
fn check_pins(
    object: &[u8],
    pins: &[(&'static str, PathBuf)],
    conn_table_size: Option<u32>,
) -> Result<(), DataplaneError> {
    let obj = aya_obj::Object::parse(object).map_err(|e| DataplaneError::Pin {
        path: "the embedded object".into(),
        reason: e.to_string(),
    })?;
    for (name, path) in pins {
        let (Some(def), true) = (obj.maps.get(*name), path.exists()) else {
            continue;
        };
        let shown = path.display().to_string();
        let info = aya::maps::MapInfo::from_pin(path).map_err(|e| DataplaneError::Pin {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let pinned_type = info.map_type().map(|t| t as u32).unwrap_or(u32::MAX);
        let mismatch = [
            ("map type", pinned_type, def.map_type()),
            ("key size", info.key_size(), def.key_size()),
            ("value size", info.value_size(), def.value_size()),
        ]
        .into_iter()
        .find(|(_, pinned, wanted)| pinned != wanted);
        if let Some((what, pinned, wanted)) = mismatch {
            return Err(another_version(
                &shown,
                format_args!("{what} {pinned}"),
                wanted,
            ));
        }
        let sized = *name == names::CONNS || *name == names::NAT_REV;
        let wanted = match conn_table_size {
            Some(n) if sized => n,
            _ => def.max_entries(),
        };
        if info.max_entries() != wanted {
            if !sized {
                return Err(another_version(
                    &shown,
                    format_args!("{} entries", info.max_entries()),
                    format_args!("{wanted}"),
                ));
            }
            warn!(
                map = name,
                pinned = info.max_entries(),
                asked = wanted,
                "keeping the pinned connection table's size (its flows go on); a new size takes effect after a stop with --on-exit detach"
            );
        }
    }
    Ok(())
}

/// A pinned map of another shape than this lbd's, and what to do about it.
fn another_version(
    path: &str,
    pinned: std::fmt::Arguments<'_>,
    wanted: impl std::fmt::Display,
) -> DataplaneError {
    DataplaneError::Pin {
        path: path.to_string(),
        reason: format!(
            "pinned by another version of lbd ({pinned}, this lbd needs {wanted}); \
             stop that lbd with --on-exit detach, or remove the pins, before starting this one"
        ),
    }
}
