//! lbd, the load balancer daemon, and the pieces `lbctl` shares with it.

pub mod announce;
pub mod bpf_object;
pub mod bpffs;
pub mod check;
pub mod clock;
pub mod config;
pub mod connsync;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod health;
pub mod net;
pub mod script;
pub mod services;
pub mod vrrp;
