//! `cargo xtask bench failover`: builds everything, then runs
//! `lb-bench-failover` (tests/src/bin), which measures VRRP failover of lbd
//! and keepalived in network namespaces. Needs root and keepalived.

use std::process::Command;

use anyhow::{bail, Result};

use crate::build;

pub fn run(args: &[String]) -> Result<()> {
    build::all(false)?;
    let dir = build::target_dir(false);
    let status = Command::new(dir.join("lb-bench-failover"))
        .args(args)
        .env("LB_BIN_DIR", &dir)
        .status()?;
    if !status.success() {
        bail!("lb-bench-failover failed ({status})");
    }
    Ok(())
}
