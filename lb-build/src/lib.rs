//! Builds `lb-ebpf`, the BPF object, the way aya's `aya-build` does: a nested
//! `cargo +nightly build` for `bpfel-unknown-none`. `lb-daemon/build.rs` calls
//! it so that `cargo build` and `cargo test` always embed an object built
//! from the sources they see (never a stale or an empty one), and
//! `cargo xtask` calls it to build the object once for everything it runs.
//!
//! `lb-ebpf` is its own workspace with its own toolchain file and
//! `.cargo/config.toml` (target, `-Z build-std=core`, `target-cpu=v3`), so
//! the nested cargo runs in its directory with its own target directory:
//! the outer cargo's lock is never taken twice and its settings never leak
//! in.

use std::{
    env,
    ffi::OsString,
    fmt, io,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

/// The BPF crate's directory, from the repository root.
pub fn ebpf_dir(root: &Path) -> PathBuf {
    root.join("lb-ebpf")
}

/// The files whose change must rebuild the object: the BPF crate's sources
/// and build settings, and the map types it shares with the daemon. Not the
/// crate's directory as a whole, which holds its target directory.
pub fn inputs(root: &Path) -> Vec<PathBuf> {
    let ebpf = ebpf_dir(root);
    let common = root.join("lb-common");
    vec![
        ebpf.join("src"),
        ebpf.join("Cargo.toml"),
        ebpf.join("Cargo.lock"),
        ebpf.join(".cargo/config.toml"),
        ebpf.join("rust-toolchain.toml"),
        common.join("src"),
        common.join("Cargo.toml"),
    ]
}

/// Where the nested build leaves the object.
pub fn object_path(root: &Path) -> PathBuf {
    ebpf_dir(root).join("target/bpfel-unknown-none/release/lb-ebpf")
}

/// Why the object could not be built.
#[derive(Debug)]
pub enum BuildError {
    Spawn(io::Error),
    Failed(ExitStatus),
    NoObject(PathBuf),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Spawn(_) => write!(f, "cannot run `cargo +nightly build` for lb-ebpf"),
            BuildError::Failed(st) => write!(
                f,
                "building lb-ebpf failed ({st}); `cargo xtask setup` installs the nightly rust-src, LLVM and bpf-linker it needs"
            ),
            BuildError::NoObject(p) => {
                write!(f, "the eBPF build produced no object at {}", p.display())
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// Cargo's own bin directory, where `cargo install` puts bpf-linker.
pub fn cargo_bin_dir() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

/// PATH with cargo's bin directory in front, as it may not be on PATH.
pub fn path_with_cargo_bin() -> OsString {
    let mut parts = vec![cargo_bin_dir()];
    if let Some(p) = env::var_os("PATH") {
        parts.extend(env::split_paths(&p));
    }
    env::join_paths(parts).unwrap_or_default()
}

/// The nested build command, with the outer cargo's settings removed: the
/// BPF crate has its own toolchain, target, flags and target directory.
pub fn command(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ebpf_dir(root))
        .args(["+nightly", "build", "--release", "--quiet"])
        .env("PATH", path_with_cargo_bin());
    for var in [
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    // A build script's environment describes the host crate being built
    // (profile, features, target); none of it applies to the BPF crate.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key.as_ref(),
                "OUT_DIR" | "TARGET" | "HOST" | "PROFILE" | "OPT_LEVEL" | "DEBUG" | "NUM_JOBS"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// Builds the object; returns its path.
pub fn build(root: &Path) -> Result<PathBuf, BuildError> {
    let st = command(root).status().map_err(BuildError::Spawn)?;
    if !st.success() {
        return Err(BuildError::Failed(st));
    }
    let obj = object_path(root);
    if !obj.exists() {
        return Err(BuildError::NoObject(obj));
    }
    Ok(obj)
}
