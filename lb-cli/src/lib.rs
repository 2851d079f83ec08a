//! The command lines of `lbd` and `lbctl`, as clap definitions.
//!
//! They live in their own small crate so that `cargo xtask man` can render
//! man pages and shell completions from them without building the daemon.

pub mod lbctl;
pub mod lbd;

/// Where lbd serves its control API unless told otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lb/lbd.sock";
/// Where lbd pins its maps unless told otherwise.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/lb";
