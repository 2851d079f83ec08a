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
//! The I/O around the core, in the shape of `vrrp` and `health`:
//! - `runtime`: the lifecycle the main loop drives (start, directories in,
//!   data-plane requests out, stop);
//! - `tasks`: the task and what feeds what (a diagram);
//! - `driver`: the task's loop, one handler per input (datagram, reports,
//!   role change, flush deadline);
//! - `kernel`: the IPVS tier's sync, the kernel's own daemons switched
//!   with the VRRP role;
//! - `socket`: the group's sending and receiving sockets;
//! - `status`: the shared [`status::SyncBoard`] `lbctl sync` and the
//!   metrics read.

pub mod core;
pub mod directory;
pub mod driver;
pub mod kernel;
pub mod packet;
pub mod runtime;
pub mod settings;
pub mod socket;
pub mod status;
pub mod tasks;

pub use runtime::SyncRuntime;
pub use status::{SyncBoard, SyncStatus};
