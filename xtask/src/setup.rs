//! Installs what a fresh machine lacks to build and test the project:
//! rust-src for nightly, Debian's LLVM 22, bpf-linker built against it, and
//! the tools the namespace tests drive. Each step checks first, so a ready
//! machine is through in well under a second.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages the build and tests need, with a file that proves each.
const PACKAGES: &[(&str, &str)] = &[
    // A file of llvm-22-dev itself: llvm-config belongs to llvm-22, which
    // can be installed without the headers and libraries bpf-linker needs.
    (
        "llvm-22-dev",
        "/usr/lib/llvm-22/include/llvm/Config/llvm-config.h",
    ),
    ("iproute2", "/usr/sbin/ip"),
    ("ethtool", "/usr/sbin/ethtool"),
    ("curl", "/usr/bin/curl"),
    // The VRRP interop tests run lbd against the real thing.
    ("keepalived", "/usr/sbin/keepalived"),
    // The ECMP tests announce VIPs through BIRD on both sides.
    ("bird2", "/usr/sbin/bird"),
];

fn step(what: &str) {
    eprintln!("setup: {what}");
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("running {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn ensure() -> Result<()> {
    nightly()?;
    rust_src()?;
    packages()?;
    bpf_linker()?;
    Ok(())
}

fn nightly() -> Result<()> {
    if ok(Command::new("rustc").args(["+nightly", "--version"])) {
        return Ok(());
    }
    step("installing the nightly toolchain (rustup toolchain install nightly)");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

fn rust_src() -> Result<()> {
    let out = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output()
        .context("running rustc +nightly --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .exists()
    {
        return Ok(());
    }
    step("adding rust-src to nightly (rustup component add rust-src --toolchain nightly)");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn packages() -> Result<()> {
    ensure_packages(PACKAGES)
}

pub fn apt_update() -> Result<()> {
    step("apt-get update");
    run(Command::new("apt-get").args(["update", "-q"]))
}

/// Installs those of `packages` whose proof file is missing.
pub fn ensure_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, proof)| !Path::new(proof).exists())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing Debian packages: {list}\n  install them as root: \
             apt-get update && apt-get install -y --no-install-recommends {list}"
        );
    }
    if !ok(Command::new("apt-get").arg("--version")) {
        bail!("missing packages {list}, and apt-get is not available to install them");
    }
    apt_update()?;
    step(&format!("apt-get install {list}"));
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn bpf_linker() -> Result<()> {
    if let Ok(out) = Command::new(crate::build::cargo_bin("bpf-linker"))
        .arg("--version")
        .output()
    {
        if String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION) {
            return Ok(());
        }
    }
    step(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
    ));
    // Without LLVM_PREFIX its build finds Debian's default LLVM 14 and fails.
    run(Command::new("cargo")
        .args([
            "install",
            "--locked",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", LLVM_PREFIX))
}
