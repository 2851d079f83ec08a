//! `cargo xtask vm-systemd`: the Debian package under a real systemd.
//!
//! `tests/vm/systemd/prepare.sh` makes a disk of Debian bookworm with
//! systemd (mmdebstrap, the tarball cached in target/vm-systemd) holding
//! two builds of the package (this version and a higher one, for the
//! upgrade) and `check.sh`; `boot.sh` boots it with the IPVS VM's cloud
//! kernel under qemu, systemd as init, and prints the checks' output, whose
//! last line is "N passed, N failed".

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{build, deb, root, setup, test::Totals, vm};

const PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("busybox-static", "/bin/busybox"),
    ("mmdebstrap", "/usr/bin/mmdebstrap"),
    ("e2fsprogs", "/sbin/mkfs.ext4"),
];

pub fn run() -> Result<Totals> {
    setup::ensure_packages(PACKAGES)?;
    build::all(false)?;
    let work = root().join("target/vm-systemd");
    std::fs::create_dir_all(&work)?;
    let bins = build::target_dir(false);
    let version = deb::default_version();
    let old = deb::build(&bins, &work, &version)?;
    let new = deb::build(&bins, &work, &format!("{version}+upgrade1"))?;
    let kernel_dir = vm::work_dir();
    std::fs::create_dir_all(&kernel_dir)?;
    let (vmlinuz, _) = vm::kernel(&kernel_dir)?;
    let unpacked = vmlinuz
        .parent()
        .and_then(|p| p.parent())
        .context("the kernel's directory")?;
    let scripts = root().join("tests/vm/systemd");
    let st = Command::new(scripts.join("prepare.sh"))
        .arg(&work)
        .arg(unpacked)
        .arg(&old)
        .arg(&new)
        .status()
        .context("prepare.sh")?;
    if !st.success() {
        bail!("preparing the systemd VM's disk failed ({st})");
    }
    eprintln!("xtask: booting the systemd VM");
    let out = Command::new(scripts.join("boot.sh"))
        .arg(&work)
        .arg(unpacked)
        .output()
        .context("boot.sh")?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    summary(&text).context("the systemd VM did not finish its checks (no summary line)")
}

/// The checks' last line, "N passed, N failed".
fn summary(text: &str) -> Option<Totals> {
    let line = text.lines().rev().find(|l| l.ends_with(" failed"))?;
    let (p, f) = line.split_once(" passed, ")?;
    Some(Totals {
        passed: p.trim().parse().ok()?,
        failed: f.strip_suffix(" failed")?.trim().parse().ok()?,
        ignored: 0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_summary_line_is_read() {
        let t = super::summary("ok a\nFAILED b: x\n1 passed, 1 failed\nLB-VM-EXIT 1\n").unwrap();
        assert_eq!((t.passed, t.failed), (1, 1));
        assert!(super::summary("ok a\n").is_none());
    }
}
