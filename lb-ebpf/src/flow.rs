//! The flow a VIP packet belongs to: an established connection keeps its
//! backend (`established`); a packet that starts one is scheduled
//! (persistence, then the scheduler, then the sorry server) and recorded
//! (`new_flow`). NAT flows also keep their reverse entry (`nat_entry`).

use lb_common::{
    stat, svc, Backend, Conn, FlowKey, NatRev, PersistKey, PersistValue, Service, Settings, VipKey,
    ALGO_LC, ALGO_WLC, BACKEND_F_READY, IPPROTO_TCP, MODE_NAT, VIP_FILTER_SHARED,
};

use crate::conn;
use crate::fwd::nat;
use crate::headers::TCP_SYN;
use crate::maps::{self, count, BACKENDS, CONNS, PERSIST, SERVICE_SLOTS};
use crate::parse::Pkt;
use crate::sched;
use crate::sync;

/// Where a VIP packet goes: its backend and how.
pub struct Flow {
    pub b: &'static Backend,
    pub id: u32,
    pub service: u32,
    pub mode: u8,
    /// The packet starts a new connection.
    pub new: bool,
    /// What NAT does to the flow's reverse entry.
    pub rev: RevUpdate,
}

/// What a NAT packet does to its flow's reverse entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RevUpdate {
    Keep,
    /// Rewritten in place if there (once a second, when the flow's
    /// timestamp is; or a new connection on an old one's 5-tuple), else
    /// recorded, so an evicted entry heals.
    Refresh,
    /// A new flow: recorded.
    Record,
}

/// Why a VIP packet was not given a backend.
pub enum Unscheduled {
    /// The prefilter matched but no service has this address and port.
    NotAVip,
    /// No backend can take it (counted).
    NoBackend,
}

/// Why a VIP packet starts a new connection.
pub enum Miss {
    /// No entry. `lost`: a TCP packet without SYN, whose entry is gone
    /// (evicted, or never seen by this balancer).
    NoEntry { lost: bool },
    /// The entry is there but its connection is over (expired, reopened by
    /// a new SYN, or its backend left): the new connection takes it over.
    Over(*mut Conn),
}

/// The flow a packet belongs to, if its connection is live.
#[inline(always)]
pub fn established(pkt: &Pkt, key: &FlowKey, now: u32, settings: &Settings) -> Result<Flow, Miss> {
    let Some(c) = CONNS.get_ptr_mut(key) else {
        let lost = pkt.proto == IPPROTO_TCP && pkt.tcp_flags & TCP_SYN == 0;
        return Err(Miss::NoEntry { lost });
    };
    let entry = c;
    // SAFETY: the lookup just returned this entry of a preallocated map:
    // the memory stays a valid `Conn` during this run even if the entry is
    // evicted meanwhile; the value is plain data. Another CPU may write the same flow's entry
    // at once: the fields are words, and the worst outcome is a refresh or
    // state change lost, which the next packet makes again.
    let c = unsafe { &mut *c };
    if conn::fresh(c, now, settings) && !conn::reopens(c, pkt) {
        if let Some(b) = BACKENDS.get(c.backend) {
            if b.flags & BACKEND_F_READY != 0 && b.service == c.service {
                let refreshed = conn::track(c, key, pkt, now, settings.refresh);
                return Ok(Flow {
                    b,
                    id: c.backend,
                    service: c.service,
                    mode: c.mode,
                    new: false,
                    rev: if refreshed {
                        RevUpdate::Refresh
                    } else {
                        RevUpdate::Keep
                    },
                });
            }
        }
    }
    // Expired, reopened by a new SYN, or its backend left: the flow starts
    // over; its old connection no longer counts.
    if c.counted != 0 {
        conn::count_conn(c.backend, c.state, false);
        // Once: if no backend takes the new connection, the entry stays
        // and its next packet comes here again.
        c.counted = 0;
    }
    Err(Miss::Over(entry))
}

/// Schedules a packet that starts a connection and records the flow.
#[inline(always)]
pub fn new_flow(
    pkt: &Pkt,
    key: &FlowKey,
    (family, filter): (u8, u32),
    now: u32,
    len: u64,
    miss: Miss,
) -> Result<Flow, Unscheduled> {
    let vip = VipKey {
        addr: pkt.dst,
        port: pkt.dport,
        proto: pkt.proto,
        family,
    };
    let Some(service) = service(&vip, filter) else {
        return Err(Unscheduled::NotAVip);
    };
    if let Miss::NoEntry { lost: true } = miss {
        // Scheduled again, which may move the flow: counted.
        count(stat::CONN_MISS, len);
    }
    let Some(id) = choose(service, pkt, now) else {
        count(stat::NO_BACKEND, len);
        return Err(Unscheduled::NoBackend);
    };
    let Some(b) = BACKENDS.get(id) else {
        return Err(Unscheduled::NoBackend);
    };
    if b.flags & BACKEND_F_READY == 0 {
        // Never a frame to an unknown MAC: the kernel gets it.
        count(stat::BACKEND_NOT_READY, len);
        return Err(Unscheduled::NoBackend);
    }
    let state = conn::initial_state(pkt);
    // Only lc and wlc weigh live connection counts: other services' flows
    // skip the atomic updates on the per-packet path.
    let counted = u8::from(service.algo == ALGO_LC || service.algo == ALGO_WLC);
    let c = Conn {
        backend: id,
        service: service.id,
        last_seen: now,
        state,
        mode: service.mode,
        counted,
        _pad: 0,
    };
    let rev = match miss {
        Miss::Over(_) => RevUpdate::Refresh,
        Miss::NoEntry { .. } => RevUpdate::Record,
    };
    let recorded = match miss {
        // Taken over in place: an LRU update (a new element, the old one
        // freed, three locks) costs a reused port measurably more. The
        // lookup that found the entry marked it referenced, so an eviction
        // in the meantime passes it over (unless every entry it scans is as
        // recent, as with any in-place write to an LRU value).
        Miss::Over(entry) => {
            // SAFETY: a live entry of the LRU map, found by `established`
            // in this run (see there); plain data, written whole.
            unsafe { *entry = c };
            true
        }
        Miss::NoEntry { .. } => CONNS.insert(key, &c, 0).is_ok(),
    };
    if !recorded {
        // The packet still goes to this backend; the flow's next packets
        // are scheduled again and may land elsewhere, so count it.
        count(stat::CONN_INSERT_FAILED, len);
    } else if counted != 0 {
        conn::count_conn(id, state, true);
    }
    if recorded {
        sync::started(key, &c);
    }
    if service.flags & svc::PERSIST != 0 {
        let pk = persist_key(service, pkt);
        let _ = PERSIST.insert(
            &pk,
            &PersistValue {
                backend: id,
                last_seen: now,
            },
            0,
        );
    }
    count(stat::NEW_CONN, len);
    Ok(Flow {
        b,
        id,
        service: service.id,
        mode: service.mode,
        new: true,
        rev,
    })
}

/// The service of `vip`, whose prefilter slot holds `filter`: the
/// service slot it names if that holds this address (another address there
/// means a prefilter collision: not a VIP), or, when several services share
/// the prefilter slot, `SERVICES`.
#[inline(always)]
fn service(vip: &VipKey, filter: u32) -> Option<&'static Service> {
    if filter == VIP_FILTER_SHARED {
        return maps::service(vip);
    }
    let s = SERVICE_SLOTS.get(filter.wrapping_sub(1))?;
    // Field by field: a derived comparison may become a memcmp call, which
    // BPF has no library for.
    let k = &s.vip;
    let same = k.addr[0] == vip.addr[0]
        && k.addr[1] == vip.addr[1]
        && k.addr[2] == vip.addr[2]
        && k.addr[3] == vip.addr[3]
        && k.port == vip.port
        && k.proto == vip.proto
        && k.family == vip.family;
    same.then_some(&s.service)
}

/// Persistence first (a client returning within the timeout goes back to
/// its backend if it can take flows), then the scheduler, then the sorry
/// server.
#[inline(always)]
fn choose(service: &Service, pkt: &Pkt, now: u32) -> Option<u32> {
    if service.flags & svc::PERSIST != 0 {
        let pk = persist_key(service, pkt);
        if let Some(p) = maps::persisted(&pk) {
            if now.wrapping_sub(p.last_seen) <= service.persist_timeout {
                if let Some(b) = BACKENDS.get(p.backend) {
                    if b.flags & BACKEND_F_READY != 0 && b.weight > 0 && b.service == service.id {
                        return Some(p.backend);
                    }
                }
            }
        }
    }
    if let Some(id) = sched::pick(service, pkt) {
        return Some(id);
    }
    if service.flags & svc::SORRY != 0 {
        return Some(service.sorry);
    }
    None
}

#[inline(always)]
fn persist_key(service: &Service, pkt: &Pkt) -> PersistKey {
    let m = service.persist_mask;
    PersistKey {
        addr: [
            pkt.src[0] & m[0],
            pkt.src[1] & m[1],
            pkt.src[2] & m[2],
            pkt.src[3] & m[3],
        ],
        service: service.id,
    }
}

/// For NAT flows: the reverse entry, recorded when the flow starts and
/// refreshed with it, so an evicted entry heals within a second.
#[inline(always)]
pub fn nat_entry(
    pkt: &Pkt,
    mode: u8,
    service: u32,
    backend: u32,
    b: &Backend,
    update: RevUpdate,
) -> Option<NatRev> {
    if mode != MODE_NAT {
        return None;
    }
    let rev = NatRev {
        vip: pkt.dst,
        vport: pkt.dport,
        _pad: [0; 2],
        service,
        backend,
    };
    if update != RevUpdate::Keep {
        nat::remember(pkt, b, &rev, update == RevUpdate::Refresh);
    }
    Some(rev)
}

