//! Health checks: keepalived's checkers (TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK) deciding which backends
//! take new connections.
//!
//! - [`plan`]: from the configuration to probes (one per distinct target and
//!   checker, so a backend shared by several virtual servers is checked once)
//!   and per virtual server the backends they decide.
//! - [`core`]: the pure state machine (retry, delay_before_retry, alpha,
//!   dynamic weights, quorum with hysteresis, sorry server, notify scripts).
//! - the probes, I/O only: [`tcp`], [`http`] (HTTP_GET and SSL_GET),
//!   [`misc`], [`smtp`], [`dns`], [`udp`].
//! - [`runner`]: runs every probe on tokio, never blocking: connections are
//!   bounded by a semaphore, every probe by its timeout, scripts by
//!   `misc_timeout` (killed with their process group). It publishes
//!   [`Verdicts`] on a watch channel and keeps a [`Snapshot`].
//!
//! [`apply`] puts the verdicts into the services the data plane carries.
//! A backend that is down keeps its place with weight 0, with or without
//! `inhibit_on_failure`: the data plane then sends it no new connection while
//! its established ones go on until they end, as IPVS does for a removed
//! destination (removing it from the service would reschedule them). The
//! snapshot still tells "removed" from "inhibited". When no backend can take
//! a new connection and there is no sorry server, the data plane passes the
//! packets of new connections to the kernel: the load balancer's own stack
//! answers them (a TCP reset when nothing listens on the VIP's port).

pub mod core;
pub mod dns;
pub mod http;
pub mod misc;
pub mod plan;
pub mod runner;
pub mod smtp;
mod socket;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod probe_tests;
#[cfg(test)]
mod tests;

pub use self::core::{Outcome, Snapshot, Verdicts};
pub use plan::HealthPlan;
pub use runner::{HealthRuntime, RunnerOptions};

use crate::dataplane::{BackendSpec, ServiceSpec};

/// Sets each backend's weight from the health verdicts, and while quorum is
/// lost takes new flows off the real servers so the sorry server gets them.
pub fn apply(specs: &mut [ServiceSpec], verdicts: &Verdicts) {
    for spec in specs {
        let Some(v) = verdicts.services.get(&(spec.vip, spec.proto)) else {
            continue;
        };
        for b in &mut spec.backends {
            if let Some((_, w)) = v.backends.iter().find(|(a, _)| *a == b.addr) {
                b.weight = *w;
                b.removed = v.removed.contains(&b.addr);
            }
        }
        if let Some((addr, active)) = v.sorry {
            // Quorum lost: the real servers take no new flows (their open
            // connections finish) and the sorry server takes them all; the
            // data plane sends a service's new flows to its sorry server
            // exactly when no real server can take them.
            if active {
                for b in &mut spec.backends {
                    b.weight = 0;
                    b.removed |= v.removed.contains(&b.addr);
                }
            }
            if spec.sorry.is_none() {
                spec.sorry = Some(BackendSpec::new(addr, 1));
            }
        }
    }
}
