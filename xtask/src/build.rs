//! Building the eBPF object and the daemon, and running them.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::root;

/// Where `cargo install` puts binaries (bpf-linker), which may not be on PATH.
pub fn cargo_bin(name: &str) -> PathBuf {
    let p = lb_build::cargo_bin_dir().join(name);
    if p.exists() {
        p
    } else {
        PathBuf::from(name)
    }
}

pub use lb_build::path_with_cargo_bin;

fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("running {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

/// Builds `lb-ebpf` for bpfel-unknown-none; returns the object's path.
pub fn ebpf() -> Result<PathBuf> {
    eprintln!("xtask: building the eBPF object");
    Ok(lb_build::build(&root())?)
}

/// A host cargo command with the eBPF object to embed.
pub fn cargo(obj: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root()).env("LB_EBPF_OBJECT", obj);
    cmd
}

/// Host binaries' directory for a profile.
pub fn target_dir(release: bool) -> PathBuf {
    let base = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    base.join(if release { "release" } else { "debug" })
}

/// Builds the eBPF object, then lbd, lbctl and the test tools.
pub fn all(release: bool) -> Result<PathBuf> {
    let obj = ebpf()?;
    let mut cmd = cargo(&obj);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "lb-daemon",
        "-p",
        "lb-tests",
        "--bins",
    ]);
    if release {
        cmd.arg("--release");
    }
    eprintln!("xtask: building lbd and lbctl");
    status(&mut cmd)?;
    Ok(obj)
}

/// The demo lab: built in the debug profile beside the lbd it starts.
pub fn run_demo() -> Result<()> {
    all(false)?;
    let dir = target_dir(false);
    status(Command::new(dir.join("lb-demo")).env("LB_BIN_DIR", &dir))
}

pub fn run_lbd(obj: &Path, args: &[String]) -> Result<()> {
    let mut cmd = cargo(obj);
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "lb-daemon",
        "--bin",
        "lbd",
        "--",
    ])
    .args(args);
    status(&mut cmd)
}

/// The data plane benchmark (BPF_PROG_TEST_RUN; the kernel times the
/// program, so the harness's own build profile does not matter).
pub fn run_bench_dataplane(args: &[String]) -> Result<()> {
    all(false)?;
    let dir = target_dir(false);
    status(Command::new(dir.join("lb-bench-dataplane")).args(args))
}
