//! The VRRP side of a restart (`--on-exit keep`): the exiting lbd keeps the
//! virtual addresses of the instances it is master of, sends no priority 0,
//! and records them here; the next lbd, started moments later, resumes
//! them as master (see [`InstanceParams::resume_master`]) before a backup's
//! master-down timer fires, so neither node sees a transition.
//!
//! The file is read once at startup and removed; an entry counts only if
//! it is younger than the instance's own master-down interval (checked by
//! the driver, which knows the interval) and its addresses are all still
//! in place.
//!
//! [`InstanceParams::resume_master`]: super::params::InstanceParams::resume_master

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The file's name in the run directory.
pub const FILE: &str = "vrrp-state.json";

/// An instance that was master when lbd exited for a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptMaster {
    pub instance: String,
    pub vrid: u8,
    pub interface: String,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartState {
    /// When lbd exited, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
    pub masters: Vec<KeptMaster>,
}

impl RestartState {
    pub fn new(masters: Vec<KeptMaster>, now: SystemTime) -> RestartState {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        RestartState {
            written_at_ms: u64::try_from(ms).unwrap_or(u64::MAX),
            masters,
        }
    }

    /// How long ago the file was written (zero if the clock went back).
    pub fn age(&self, now: SystemTime) -> Duration {
        let written = UNIX_EPOCH + Duration::from_millis(self.written_at_ms);
        now.duration_since(written).unwrap_or_default()
    }

    /// The entry for instance `name` with `vrid` on `interface`, if any.
    pub fn find(&self, name: &str, vrid: u8, interface: &str) -> Option<&KeptMaster> {
        self.masters
            .iter()
            .find(|m| m.instance == name && m.vrid == vrid && m.interface == interface)
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Why the restart state could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Records `state` in `dir` (created if missing), atomically.
pub fn write(dir: &Path, state: &RestartState) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(state)?)?;
    std::fs::rename(&tmp, path(dir))?;
    Ok(())
}

/// Reads and removes the state file of `dir`. A missing file is `None`;
/// an unreadable one is logged, removed and `None`.
pub fn take(dir: &Path) -> Option<RestartState> {
    let file = path(dir);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %file.display(), "VRRP restart state: {e}");
            let _ = std::fs::remove_file(&file);
            return None;
        }
    };
    if let Err(e) = std::fs::remove_file(&file) {
        warn!(file = %file.display(), "removing VRRP restart state: {e}");
    }
    match serde_json::from_slice::<RestartState>(&bytes) {
        Ok(state) => {
            info!(
                file = %file.display(),
                masters = state.masters.len(),
                age_ms = state.age(SystemTime::now()).as_millis() as u64,
                "VRRP restart state read"
            );
            Some(state)
        }
        Err(e) => {
            warn!(file = %file.display(), "VRRP restart state ignored: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lb-vrrp-restart-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_then_take_once() {
        let dir = tempdir("rt");
        let now = SystemTime::now();
        let kept = KeptMaster {
            instance: "VI_1".into(),
            vrid: 51,
            interface: "eth0".into(),
        };
        write(&dir, &RestartState::new(vec![kept.clone()], now)).unwrap();
        let state = take(&dir).expect("state");
        assert_eq!(state.find("VI_1", 51, "eth0"), Some(&kept));
        assert_eq!(state.find("VI_1", 52, "eth0"), None);
        assert_eq!(state.find("VI_2", 51, "eth0"), None);
        assert!(state.age(now + Duration::from_millis(1500)) >= Duration::from_millis(1499));
        // Read once: removed.
        assert!(!path(&dir).exists());
        assert_eq!(take(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_is_ignored_and_removed() {
        let dir = tempdir("bad");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(path(&dir), b"{not json").unwrap();
        assert_eq!(take(&dir), None);
        assert!(!path(&dir).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
