//! A bpffs mounted for one test, outside /sys (which `ip netns exec`
//! remounts, hiding a bpffs there): unmounted, pins and all, on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Bpffs(PathBuf);

impl Bpffs {
    /// Mounted on `dir`, created if missing.
    pub fn at(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a bpffs on {}", dir.display());
        Self(dir)
    }

    /// Mounted on a directory of its own under /run.
    pub fn new() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::at(PathBuf::from(format!(
            "/run/lbt-{}-{n}",
            std::process::id()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for Bpffs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
