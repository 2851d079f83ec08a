//! Connection sync between directors, wire-compatible with the kernel's
//! IPVS sync daemon (`lvs_sync_daemon`), so a backup already holds the
//! master's connections when it takes over.
//!
//! `packet` is the wire format; the sans-I/O core and the tasks around it
//! follow the shape of `vrrp` and `health`.

pub mod packet;
