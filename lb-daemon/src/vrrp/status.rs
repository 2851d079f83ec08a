//! The runtime's state for others to read (the data plane, `lbctl vrrp`):
//! one [`InstanceStatus`] per instance, updated after every event.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use super::counters::Counters;
use super::instance::{State, TransitionReason};

/// The last state change of an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: TransitionReason,
    /// Seconds since the Unix epoch.
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub group: Option<String>,
    pub interface: String,
    pub vrid: u8,
    pub state: State,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracker weights.
    pub effective_priority: u8,
    /// Our advert source address, once known.
    pub address: Option<IpAddr>,
    /// The master: ourselves as master, the one we follow as backup.
    pub master: Option<IpAddr>,
    pub last_transition: Option<Transition>,
    pub counters: Counters,
    /// Why the instance is not running, while it is not.
    pub error: Option<String>,
}

/// A shared, always readable snapshot of every instance.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<RwLock<BTreeMap<String, InstanceStatus>>>,
    /// Bumped on every update, so readers that act on a state change
    /// (connection sync's role) learn of it at once instead of polling.
    changed: Arc<watch::Sender<()>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            inner: Arc::default(),
            changed: Arc::new(watch::channel(()).0),
        }
    }
}

impl StatusBoard {
    /// Every instance, by name.
    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        self.read(|m| m.values().cloned().collect())
    }

    pub fn get(&self, name: &str) -> Option<InstanceStatus> {
        self.read(|m| m.get(name).cloned())
    }

    /// Wakes up after every later update of the board (then read it).
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    pub(super) fn put(&self, status: InstanceStatus) {
        let mut m = self.inner.write().unwrap_or_else(|p| p.into_inner());
        m.insert(status.name.clone(), status);
        drop(m);
        self.changed.send_replace(());
    }

    pub(super) fn remove(&self, name: &str) {
        let mut m = self.inner.write().unwrap_or_else(|p| p.into_inner());
        m.remove(name);
        drop(m);
        self.changed.send_replace(());
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, InstanceStatus>) -> T) -> T {
        let m = self.inner.read().unwrap_or_else(|p| p.into_inner());
        f(&m)
    }
}

pub(super) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State) -> InstanceStatus {
        InstanceStatus {
            name: "VI_1".into(),
            group: None,
            interface: "eth0".into(),
            vrid: 1,
            state,
            priority: 100,
            effective_priority: 100,
            address: None,
            master: None,
            last_transition: None,
            counters: Counters::default(),
            error: None,
        }
    }

    #[tokio::test]
    async fn a_subscriber_learns_of_every_change_at_once() {
        let board = StatusBoard::default();
        let mut changes = board.subscribe();
        board.put(status(State::Backup));
        changes.changed().await.unwrap();
        assert_eq!(board.get("VI_1").unwrap().state, State::Backup);
        board.put(status(State::Master));
        changes.changed().await.unwrap();
        assert_eq!(board.get("VI_1").unwrap().state, State::Master);
        board.remove("VI_1");
        changes.changed().await.unwrap();
        assert!(board.get("VI_1").is_none());
        assert!(!changes.has_changed().unwrap());
    }
}
