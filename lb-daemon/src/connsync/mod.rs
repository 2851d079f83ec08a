//! Connection sync between directors, wire-compatible with the kernel's
//! IPVS sync daemon (`lvs_sync_daemon`), so a backup already holds the
//! master's connections when it takes over.
//!
//! - `packet`: the wire format;
//! - `directory`: the node's services and backends by address, for mapping
//!   records to the data plane's ids;
//! - `core`: the sans-I/O core (role, batching, receive mapping, counters);
//! - `settings`: `lvs_sync_daemon` resolved with its defaults.
//!
//! The tasks around the core follow the shape of `vrrp` and `health`.

pub mod core;
pub mod directory;
pub mod packet;
pub mod settings;
