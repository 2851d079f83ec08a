//! What the control API and the metrics read: shared handles the main loop
//! fills in (data plane view, health runtime, VRRP status, configuration),
//! and the overrides the main loop applies.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use tokio::sync::watch;

use super::overrides::Overrides;
use super::protocol::{InterfaceInfo, ReloadInfo, VrrpInstance};
use crate::{
    config::Config,
    dataplane::{Reader, ServiceSpec},
    health::{HealthRuntime, Snapshot},
};

/// Where `lbctl vrrp` and the VRRP metrics come from: the VRRP runtime's
/// status board, mapped to the protocol's table.
pub trait VrrpStatus: Send + Sync {
    fn instances(&self) -> Vec<VrrpInstance>;
}

/// The data plane as the control API sees it.
pub struct DataplaneInfo {
    pub kind: String,
    pub interfaces: Vec<InterfaceInfo>,
    pub pin_path: Option<PathBuf>,
    /// The counters: the BPF maps (xdp, tc) or IPVS's tables (ipvs).
    pub view: Box<dyn Reader>,
}

#[derive(Default)]
pub struct State {
    pub config_loaded: Option<SystemTime>,
    pub last_reload: Option<ReloadInfo>,
    /// Services as the configuration plans them (configured weights).
    pub configured: Vec<ServiceSpec>,
    /// VRRP instances in the configuration.
    pub vrrp_configured: usize,
}

pub struct Hub {
    pub started: SystemTime,
    pub config_file: PathBuf,
    pub state: RwLock<State>,
    pub dataplane: RwLock<Option<Arc<DataplaneInfo>>>,
    pub health: RwLock<Option<Arc<HealthRuntime>>>,
    pub vrrp: RwLock<Option<Arc<dyn VrrpStatus>>>,
    /// Connection sync's status, when lbd runs it.
    pub sync: RwLock<Option<crate::connsync::SyncBoard>>,
    pub overrides: Mutex<Overrides>,
    /// Bumped when the overrides change (the main loop reconciles).
    pub override_changes: watch::Sender<u64>,
    /// Bumped after every reload attempt, with `last_reload` set.
    pub reloads: watch::Sender<u64>,
    /// `lb_announce_table`: what is announced, or why not.
    pub announce: RwLock<Vec<super::protocol::AnnounceInfo>>,
    /// The listeners' connection caps and counts.
    pub listeners: super::limits::Listeners,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(config_file: PathBuf, config: &Config) -> Self {
        let hub = Self {
            started: SystemTime::now(),
            config_file,
            state: RwLock::new(State::default()),
            dataplane: RwLock::new(None),
            health: RwLock::new(None),
            vrrp: RwLock::new(None),
            sync: RwLock::new(None),
            overrides: Mutex::new(Overrides::default()),
            override_changes: watch::channel(0).0,
            reloads: watch::channel(0).0,
            announce: RwLock::new(Vec::new()),
            listeners: Default::default(),
        };
        hub.set_config(config);
        hub
    }

    pub fn set_config(&self, config: &Config) {
        let mut s = write(&self.state);
        s.config_loaded = Some(SystemTime::now());
        s.configured = crate::services::plan(config).services;
        s.vrrp_configured = config.vrrp_instances.len();
    }

    pub fn announce(&self) -> Vec<super::protocol::AnnounceInfo> {
        read(&self.announce).clone()
    }

    pub fn set_announce(&self, v: Vec<super::protocol::AnnounceInfo>) {
        *write(&self.announce) = v;
    }

    pub fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        read(&self.state)
    }

    pub fn set_reload_result(&self, info: ReloadInfo) {
        write(&self.state).last_reload = Some(info);
        self.reloads.send_modify(|n| *n += 1);
    }

    pub fn dataplane(&self) -> Option<Arc<DataplaneInfo>> {
        read(&self.dataplane).clone()
    }

    pub fn set_dataplane(&self, info: DataplaneInfo) {
        *write(&self.dataplane) = Some(Arc::new(info));
    }

    pub fn set_health(&self, h: Arc<HealthRuntime>) {
        *write(&self.health) = Some(h);
    }

    pub fn set_vrrp(&self, v: Arc<dyn VrrpStatus>) {
        *write(&self.vrrp) = Some(v);
    }

    pub fn set_sync(&self, board: crate::connsync::SyncBoard) {
        *write(&self.sync) = Some(board);
    }

    /// Connection sync as shown; `None` when it is off.
    pub fn sync_info(&self) -> Option<super::protocol::SyncInfo> {
        let board = read(&self.sync).clone()?;
        board.get().map(|s| super::views::sync(&s))
    }

    pub async fn health_snapshot(&self) -> Option<Snapshot> {
        let h = read(&self.health).clone()?;
        Some(h.snapshot().await)
    }

    pub fn vrrp_instances(&self) -> Vec<VrrpInstance> {
        let v = read(&self.vrrp).clone();
        v.map(|v| v.instances()).unwrap_or_default()
    }

    pub fn overrides(&self) -> Overrides {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the overrides and wakes the main loop.
    pub fn change_overrides<T>(&self, f: impl FnOnce(&mut Overrides) -> T) -> T {
        let out = f(&mut self.overrides.lock().unwrap_or_else(|p| p.into_inner()));
        self.override_changes.send_modify(|n| *n += 1);
        out
    }
}
