//! `cargo xtask fuzz`: the decoders' fuzz targets (cargo-fuzz, libFuzzer),
//! each for a bounded time. `cargo xtask test` runs them in CI.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{build, root};

pub const TARGETS: [&str; 4] = [
    "config_parse",
    "vrrp_decode",
    "sync_decode",
    "control_request",
];

/// Installs cargo-fuzz when missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .env("PATH", build::path_with_cargo_bin())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    eprintln!("setup: cargo install cargo-fuzz");
    let st = Command::new("cargo")
        .args(["install", "--locked", "cargo-fuzz"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !st.success() {
        bail!("cargo install cargo-fuzz failed ({st})");
    }
    Ok(())
}

/// Runs every target for `seconds`; returns (passed, failed).
pub fn run(seconds: u32) -> Result<(u64, u64)> {
    ensure_cargo_fuzz()?;
    let obj = build::ebpf()?;
    let (mut passed, mut failed) = (0, 0);
    for target in TARGETS {
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        let st = Command::new("cargo")
            .current_dir(root().join("fuzz"))
            .args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .env("PATH", build::path_with_cargo_bin())
            .env("LB_EBPF_OBJECT", &obj)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .with_context(|| format!("running cargo fuzz run {target}"))?;
        if st.success() {
            println!("test fuzz::{target} ({seconds} s) ... ok");
            passed += 1;
        } else {
            println!("test fuzz::{target} ({seconds} s) ... FAILED");
            failed += 1;
        }
    }
    Ok((passed, failed))
}
