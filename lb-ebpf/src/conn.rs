//! Connection tracking from the packets the balancer sees (client → VIP; in
//! DR and TUN modes the replies bypass it), IPVS-like: states with their
//! own idle timeouts, and per-backend active/inactive counts for lc/wlc.

use lb_common::{conn_state, Conn, FlowKey, Settings, IPPROTO_UDP};

use crate::headers::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::maps::BACKEND_CONNS;
use crate::parse::Pkt;
use crate::sync;

/// Jiffies, low 32 bits: `bpf_jiffies64` is inlined by the verifier into a
/// single load, where a nanosecond clock is a helper call that costs every
/// packet measurably more.
#[inline(always)]
pub fn now_ticks() -> u32 {
    // SAFETY: no arguments, always allowed.
    unsafe { aya_ebpf::helpers::generated::bpf_jiffies64() as u32 }
}

/// State of a flow that starts with `pkt`.
#[inline(always)]
pub fn initial_state(pkt: &Pkt) -> u8 {
    if pkt.proto == IPPROTO_UDP {
        conn_state::UDP
    } else if pkt.tcp_flags & TCP_RST != 0 {
        conn_state::CLOSE
    } else if pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
        conn_state::SYN
    } else {
        // Picked up mid-stream (the table lost it): treat as established.
        conn_state::ESTABLISHED
    }
}

/// Whether the connection is still alive at `now`.
#[inline(always)]
pub fn fresh(conn: &Conn, now: u32, settings: &Settings) -> bool {
    now.wrapping_sub(conn.last_seen) <= settings.timeout(conn.state)
}

/// A SYN on a connection that was closing starts a new one (port reuse).
#[inline(always)]
pub fn reopens(conn: &Conn, pkt: &Pkt) -> bool {
    pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
        && (conn.state == conn_state::FIN || conn.state == conn_state::CLOSE)
}

/// Moves the per-backend counts of one connection into or out of `state`.
#[inline(always)]
pub fn count_conn(backend: u32, state: u8, add: bool) {
    let Some(c) = BACKEND_CONNS.get_ptr_mut(backend) else {
        return;
    };
    let delta = if add { 1u64 } else { u64::MAX };
    // SAFETY: valid, aligned u64s in the array's value; atomic so CPUs
    // adding at once do not lose counts.
    unsafe {
        let field = if conn_state::is_active(state) {
            core::ptr::addr_of_mut!((*c).active)
        } else {
            core::ptr::addr_of_mut!((*c).inactive)
        };
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::SeqCst }>(
            field, delta,
        );
    }
}

/// Follows a packet of a known connection. Returns whether the entry's
/// timestamp was refreshed (at most once per `refresh`), which is also when
/// NAT refreshes its reverse entry.
#[inline(always)]
pub fn track(conn: &mut Conn, key: &FlowKey, pkt: &Pkt, now: u32, refresh: u32) -> bool {
    if pkt.proto != IPPROTO_UDP {
        let f = pkt.tcp_flags;
        let next = if f & TCP_RST != 0 {
            conn_state::CLOSE
        } else if f & TCP_FIN != 0 && conn.state != conn_state::CLOSE {
            conn_state::FIN
        } else if conn.state == conn_state::SYN && f & (TCP_SYN | TCP_ACK) == TCP_ACK {
            conn_state::ESTABLISHED
        } else {
            conn.state
        };
        if next != conn.state {
            if conn.counted != 0 {
                count_conn(conn.backend, conn.state, false);
                count_conn(conn.backend, next, true);
            }
            conn.state = next;
            sync::changed(key, conn);
        }
    }
    if now.wrapping_sub(conn.last_seen) >= refresh {
        sync::refreshing(key, conn, now);
        conn.last_seen = now;
        return true;
    }
    false
}
