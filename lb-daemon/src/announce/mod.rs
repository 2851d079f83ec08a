//! Announcing VIPs to the routers through the host's routing daemon (BIRD,
//! FRR, GoBGP): `global_defs { lb_announce_table N }`.
//!
//! - `core.rs`: when a VIP is announced (sans I/O);
//! - `route.rs`: the shell keeping a `VIP/32` (`/128`) route per announced
//!   VIP in kernel table N through a TUN device lbd holds open, so that a
//!   crash (even kill -9) removes the device and its routes with no code
//!   running, and the routing daemon withdraws them.

pub mod core;
pub mod route;
