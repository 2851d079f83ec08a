//! Whether a set of services fits the BPF tier's maps, checked before
//! anything is written: a configuration that does not fit is refused whole
//! (by `lbd -t`, at start and at a reload), never programmed in part.
//!
//! The maps have fixed sizes (`lb_common::MAX_SERVICES`, `MAX_BACKENDS`,
//! `SCHED_CAPACITY`). The IPVS tier has no such limit and is not checked.
//!
//! A change is written side by side with what it replaces (a service's new
//! table before its old one is released; new services and backends before
//! the ones that left are removed, their ids resting one round), so:
//! - one configuration may use at most half of the scheduling area, which
//!   leaves room to rewrite every table at once;
//! - a reload needs room for the running services and backends plus the
//!   new ones ([`check_change`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use lb_common::{MAX_BACKENDS, MAX_LC_BACKENDS, MAX_SERVICES, SCHED_CAPACITY, SH_TAB_SIZE};

use super::{
    schedule::{self, Candidate, MAX_RING},
    Algo, Proto, ServiceSpec,
};

/// The sizes a set of services is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub services: u32,
    /// Backend slots: a backend of two services, or a sorry server, takes one
    /// slot per service.
    pub backend_slots: u32,
    /// Scheduling slots one configuration may use (half the area).
    pub schedule_slots: u32,
    /// Real servers of an lc/wlc service.
    pub lc_backends: u32,
}

impl Limits {
    /// The BPF tier's maps.
    pub const BPF: Limits = Limits {
        services: MAX_SERVICES,
        backend_slots: MAX_BACKENDS,
        schedule_slots: SCHED_CAPACITY / 2,
        lc_backends: MAX_LC_BACKENDS,
    };
}

/// What does not fit: the service (index into the list checked) at which a
/// limit is passed, and which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct Overflow {
    /// Index of the first service that does not fit.
    pub index: usize,
    pub what: Exceeded,
}

/// Which limit is passed, with the figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error(
        "the BPF data plane carries at most {max} virtual servers; this configuration has {total}"
    )]
    Services { max: u32, total: usize },
    #[error("the BPF data plane has {max} real server slots (one per real server and sorry server of each virtual server); this configuration needs {total}")]
    BackendSlots { max: u32, total: u64 },
    #[error("the BPF data plane has {max} scheduling slots for one configuration; this configuration's tables need {total} (this virtual server's: {this})")]
    ScheduleSlots { max: u32, total: u64, this: u32 },
    #[error("lb_algo {algo} weighs at most {max} real servers; this virtual server has {has}")]
    LcBackends { algo: Algo, max: u32, has: usize },
    #[error("reloading needs the running and the new services side by side: {running} running + {added} added virtual servers exceed the {max} the BPF data plane carries (reload in two steps, or restart lbd)")]
    ChangeServices {
        max: u32,
        running: usize,
        added: usize,
    },
    #[error("reloading needs the running and the new real servers side by side: {running} running + {added} added real server slots exceed the {max} the BPF data plane has (reload in two steps, or restart lbd)")]
    ChangeBackendSlots { max: u32, running: u64, added: u64 },
}

/// Scheduling slots a service's table takes at most, whatever the health
/// checkers do to its weights (taking backends out never lengthens a
/// table: a wrr cycle is Σweight / gcd, and a subset's gcd is no smaller).
pub fn table_slots(spec: &ServiceSpec) -> u32 {
    let n = spec.backends.len() as u32;
    match spec.algo {
        Algo::Rr => n.min(MAX_RING),
        Algo::Wrr => {
            let candidates: Vec<Candidate> = spec
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| Candidate {
                    id: i as u32,
                    weight: b.weight,
                })
                .collect();
            schedule::weighted_round_robin(&candidates).len() as u32
        }
        Algo::Sh => SH_TAB_SIZE,
        Algo::Mh => schedule::maglev_size(spec.backends.len()),
        Algo::Lc | Algo::Wlc => n,
    }
}

/// Backend slots of a service: its real servers and its sorry server.
fn backend_slots(spec: &ServiceSpec) -> u64 {
    spec.backends.len() as u64 + u64::from(spec.sorry.is_some())
}

/// Checks one configuration's services against `limits`, in order; the
/// first service past a limit is reported.
pub fn check(specs: &[ServiceSpec], limits: Limits) -> Result<(), Overflow> {
    let total_backends: u64 = specs.iter().map(backend_slots).sum();
    let total_schedule: u64 = specs.iter().map(|s| u64::from(table_slots(s))).sum();
    let (mut backends, mut schedule) = (0u64, 0u64);
    for (index, spec) in specs.iter().enumerate() {
        let fail = |what| Err(Overflow { index, what });
        if index as u64 >= u64::from(limits.services) {
            return fail(Exceeded::Services {
                max: limits.services,
                total: specs.len(),
            });
        }
        if matches!(spec.algo, Algo::Lc | Algo::Wlc)
            && spec.backends.len() > limits.lc_backends as usize
        {
            return fail(Exceeded::LcBackends {
                algo: spec.algo,
                max: limits.lc_backends,
                has: spec.backends.len(),
            });
        }
        backends += backend_slots(spec);
        if backends > u64::from(limits.backend_slots) {
            return fail(Exceeded::BackendSlots {
                max: limits.backend_slots,
                total: total_backends,
            });
        }
        let this = table_slots(spec);
        schedule += u64::from(this);
        if schedule > u64::from(limits.schedule_slots) {
            return fail(Exceeded::ScheduleSlots {
                max: limits.schedule_slots,
                total: total_schedule,
                this,
            });
        }
    }
    Ok(())
}

/// Checks that `new` can replace `running` in one round: services and
/// backend slots of both, side by side, fit (each alone was [`check`]ed).
/// A service kept (same address, port and protocol) keeps its id, and its
/// real servers kept keep their slots.
pub fn check_change(
    running: &[ServiceSpec],
    new: &[ServiceSpec],
    limits: Limits,
) -> Result<(), Exceeded> {
    type Key = (SocketAddr, Proto);
    let old: HashMap<Key, HashSet<SocketAddr>> = running
        .iter()
        .map(|s| {
            let members = s.backends.iter().chain(&s.sorry).map(|b| b.addr).collect();
            ((s.vip, s.proto), members)
        })
        .collect();
    let mut added_services = 0usize;
    let mut added_slots = 0u64;
    for s in new {
        match old.get(&(s.vip, s.proto)) {
            None => {
                added_services += 1;
                added_slots += backend_slots(s);
            }
            Some(kept) => {
                added_slots += s
                    .backends
                    .iter()
                    .chain(&s.sorry)
                    .filter(|b| !kept.contains(&b.addr))
                    .count() as u64;
            }
        }
    }
    if running.len() + added_services > limits.services as usize {
        return Err(Exceeded::ChangeServices {
            max: limits.services,
            running: running.len(),
            added: added_services,
        });
    }
    let running_slots: u64 = running.iter().map(backend_slots).sum();
    if running_slots + added_slots > u64::from(limits.backend_slots) {
        return Err(Exceeded::ChangeBackendSlots {
            max: limits.backend_slots,
            running: running_slots,
            added: added_slots,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::BackendSpec;

    /// `count` services of `backends` real servers each, rr.
    fn services(count: u32, backends: u32, algo: Algo) -> Vec<ServiceSpec> {
        (0..count)
            .map(|i| {
                let vip = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 80));
                let bs = (0..backends)
                    .map(|j| {
                        let a = i * backends + j;
                        BackendSpec::new(
                            SocketAddr::from(([10, 1, (a >> 8) as u8, a as u8], 8080)),
                            1,
                        )
                    })
                    .collect();
                let mut s = ServiceSpec::new(vip, Proto::Tcp, bs);
                s.algo = algo;
                s
            })
            .collect()
    }

    #[test]
    fn the_first_service_past_the_limit_is_named() {
        let specs = services(1500, 4, Algo::Rr);
        let err = check(&specs, Limits::BPF).unwrap_err();
        assert_eq!(err.index, MAX_SERVICES as usize);
        assert_eq!(
            err.what,
            Exceeded::Services {
                max: MAX_SERVICES,
                total: 1500
            }
        );
        assert!(check(&specs[..MAX_SERVICES as usize], Limits::BPF).is_ok());
    }

    #[test]
    fn backend_slots_count_every_service_and_sorry_server() {
        let mut specs = services(8, 4, Algo::Rr);
        let limits = Limits {
            backend_slots: 33,
            ..Limits::BPF
        };
        assert!(check(&specs, limits).is_ok());
        specs[7].sorry = Some(BackendSpec::new("10.2.0.1:80".parse().unwrap(), 1));
        specs[5].sorry = Some(BackendSpec::new("10.2.0.1:80".parse().unwrap(), 1));
        let err = check(&specs, limits).unwrap_err();
        assert_eq!(err.index, 7);
        assert!(matches!(err.what, Exceeded::BackendSlots { total: 34, .. }));
    }

    #[test]
    fn maglev_tables_fill_half_the_scheduling_area() {
        // 1,000 real servers: a table of 131,071 slots each; half the area
        // (1,048,576) takes 8 of them.
        let specs = services(9, 1000, Algo::Mh);
        assert_eq!(table_slots(&specs[0]), 131_071);
        let err = check(&specs, Limits::BPF).unwrap_err();
        assert_eq!(err.index, 8);
        assert!(matches!(
            err.what,
            Exceeded::ScheduleSlots { this: 131_071, .. }
        ));
    }

    #[test]
    fn lc_takes_at_most_its_candidates() {
        let specs = services(2, 65, Algo::Wlc);
        let err = check(&specs, Limits::BPF).unwrap_err();
        assert_eq!(err.index, 0);
        assert!(matches!(err.what, Exceeded::LcBackends { has: 65, .. }));
    }

    #[test]
    fn wrr_tables_are_as_long_as_the_cycle() {
        let mut specs = services(1, 3, Algo::Wrr);
        for (b, w) in specs[0].backends.iter_mut().zip([2, 4, 6]) {
            b.weight = w;
        }
        assert_eq!(table_slots(&specs[0]), 6);
    }

    #[test]
    fn a_change_counts_only_what_it_adds() {
        let running = services(600, 2, Algo::Rr);
        // The same 600 services: nothing added.
        assert!(check_change(&running, &running, Limits::BPF).is_ok());
        // 600 others: 1,200 side by side.
        let mut other = services(1200, 2, Algo::Rr);
        let other = other.split_off(600);
        assert_eq!(
            check_change(&running, &other, Limits::BPF),
            Err(Exceeded::ChangeServices {
                max: MAX_SERVICES,
                running: 600,
                added: 600
            })
        );
        // Half the services kept: 900 side by side.
        let mut mixed = running[..300].to_vec();
        mixed.extend_from_slice(&other[..300]);
        assert!(check_change(&running, &mixed, Limits::BPF).is_ok());
    }
}
