//! Shared pieces of the integration tests and the demo: network namespaces,
//! the DR lab, the VRRP lab, frame capture, and where the built binaries are.
//!
//! Everything here needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF).

pub mod bird;
pub mod bpffs;
pub mod capture;
pub mod demo_lab;
pub mod fibnet;
pub mod frames;
pub mod ipvs_lab;
pub mod lab;
pub mod metrics;
pub mod nat_lab;
pub mod netns;
pub mod testrun;
pub mod vrrp_lab;

use std::path::PathBuf;

/// Directory of the built binaries (lbd, lb-test-http): `LB_BIN_DIR` when
/// `cargo xtask` set it, else the directory above this test binary's `deps/`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir
    }
}

/// Path of a built binary, or a panic saying how to build it.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `cargo xtask test`",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}
