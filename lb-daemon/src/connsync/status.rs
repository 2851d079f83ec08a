//! What connection sync shows `lbctl sync` and the metrics: the role, the
//! settings and the counters by reason, updated by the sync task.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::core::{Counters, Role};
use super::settings::SyncSettings;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    pub role: Role,
    pub settings: SyncSettings,
    pub counters: Counters,
    /// Entries the data plane refused to write.
    pub write_errors: u64,
    /// Reports the program lost to a full ring (its `sync_drops` counter).
    pub ring_drops: u64,
    /// Why the sockets are not open, while they are not.
    pub error: Option<String>,
}

/// A shared, always readable copy of the sync task's status (`None`:
/// sync is off).
#[derive(Debug, Clone, Default)]
pub struct SyncBoard {
    inner: Arc<RwLock<Option<SyncStatus>>>,
}

impl SyncBoard {
    pub fn get(&self) -> Option<SyncStatus> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Option<SyncStatus>)) {
        f(&mut self.inner.write().unwrap_or_else(|p| p.into_inner()));
    }
}
