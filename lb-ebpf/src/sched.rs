//! Picking a backend for a new flow. The daemon precomputes what can be
//! precomputed (the wrr sequence, the sh buckets, the Maglev table); here we
//! only index it, except for lc/wlc, which weigh live connection counts.

use lb_common::{
    svc, Backend, Service, ALGO_LC, ALGO_MH, ALGO_SH, ALGO_WLC, BACKEND_F_READY, MAX_LC_BACKENDS,
    SH_TAB_SIZE,
};

use crate::maps::{BACKENDS, BACKEND_CONNS, RR_CURSOR, SCHEDULE};
use crate::parse::Pkt;

/// Whether a backend may take a new flow.
#[inline(always)]
fn available(b: &Backend) -> bool {
    b.flags & BACKEND_F_READY != 0 && b.weight > 0
}

#[inline(always)]
fn slot(off: u32, i: u32) -> Option<u32> {
    SCHEDULE.get(off + i).copied()
}

/// No backend (the return value of `lb_pick`).
const NONE: u32 = u32::MAX;

/// The backend id for a new flow of `service`, if one can take it.
#[inline(always)]
pub fn pick(service: &Service, pkt: &Pkt) -> Option<u32> {
    let port = if service.flags & svc::HASH_PORT != 0 {
        pkt.sport
    } else {
        0
    };
    let hash = match service.algo {
        ALGO_SH => lb_common::sh_bucket(&pkt.src, port),
        ALGO_MH => lb_common::mh_hash(&pkt.src, port),
        _ => 0,
    };
    let id = lb_pick(
        service.sched_off,
        service.sched_len,
        u32::from(service.algo) | (service.flags << 8),
        hash,
        service.id,
    );
    if id == NONE {
        None
    } else {
        Some(id)
    }
}

/// Scheduling, as a global BPF function: the verifier checks it once on its
/// own (its arguments are plain numbers), instead of once per path that
/// reaches it, which for the bounded walks below would exceed its budget.
#[no_mangle]
#[inline(never)]
pub extern "C" fn lb_pick(off: u32, len: u32, algo_flags: u32, hash: u32, service: u32) -> u32 {
    if len == 0 {
        return NONE;
    }
    let algo = (algo_flags & 0xff) as u8;
    let flags = algo_flags >> 8;
    let id = match algo {
        ALGO_SH => hashed(off, len, hash % SH_TAB_SIZE, flags),
        ALGO_MH => hashed(off, len, hash % len, flags),
        ALGO_LC | ALGO_WLC => least(off, len, algo == ALGO_WLC),
        _ => ring(off, len, service),
    };
    id.unwrap_or(NONE)
}

/// rr and wrr: the next turn of the service's ring.
#[inline(always)]
fn ring(off: u32, len: u32, service: u32) -> Option<u32> {
    let cursor = RR_CURSOR.get_ptr_mut(service)?;
    // One cursor per service shared by all CPUs, so new flows take turns
    // whichever CPU receives them, as IPVS's rr does. core's AtomicU64 has
    // no fetch_add on this target (no CAS), but BPF has an atomic
    // fetch-and-add: use it directly. SeqCst, not Relaxed: LLVM 22 lowers a
    // relaxed xadd to the non-fetching `lock +=` even when the result is
    // used, so every flow would read the same turn (the rr test catches it).
    // SAFETY: a valid, 8-byte aligned u64 in the array map's value.
    let turn = unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::SeqCst }>(
            cursor, 1,
        )
    };
    let id = slot(off, (turn % u64::from(len)) as u32)?;
    let b = BACKENDS.get(id)?;
    if available(b) {
        Some(id)
    } else {
        None
    }
}

/// sh and mh: the bucket of the source; with `FALLBACK`, the next usable
/// bucket after it (IPVS's sh-fallback/mh-fallback walk, over at most 256
/// buckets).
#[inline(always)]
fn hashed(off: u32, len: u32, bucket: u32, flags: u32) -> Option<u32> {
    let id = slot(off, bucket)?;
    if let Some(b) = BACKENDS.get(id) {
        if available(b) {
            return Some(id);
        }
    }
    if flags & svc::FALLBACK == 0 {
        return None;
    }
    let mut i = 1u32;
    while i < 256 && i < len {
        let id = slot(off, (bucket + i) % len)?;
        if let Some(b) = BACKENDS.get(id) {
            if available(b) {
                return Some(id);
            }
        }
        i += 1;
    }
    None
}

/// lc and wlc over the service's candidate list, as IPVS compares them:
/// overhead = active × 256 + inactive; lc takes the first least overhead,
/// wlc the least overhead per weight (cross-multiplied, no division).
#[inline(always)]
fn least(off: u32, len: u32, weighted: bool) -> Option<u32> {
    let mut best = NONE;
    let mut best_oh = 0u64;
    let mut best_w = 0u64;
    let mut i = 0u32;
    while i < MAX_LC_BACKENDS && i < len {
        let Some(id) = slot(off, i) else { break };
        i += 1;
        let Some(b) = BACKENDS.get(id) else { continue };
        if !available(b) {
            continue;
        }
        let Some(c) = BACKEND_CONNS.get(id) else {
            continue;
        };
        let oh = (c.active << 8) + c.inactive;
        let w = u64::from(b.weight);
        let better = if best == NONE {
            true
        } else if weighted {
            best_oh * w > oh * best_w
        } else {
            oh < best_oh
        };
        if better {
            best = id;
            best_oh = oh;
            best_w = w;
        }
    }
    if best == NONE {
        None
    } else {
        Some(best)
    }
}
