//! Connection sync's reports: while the daemon has turned reporting on
//! (`SYNC_CONTROL`), a connection is written to `SYNC_EVENTS` when it
//! starts, when it changes state (into ESTABLISHED, FIN, CLOSE), and again
//! whenever its timestamp crosses a multiple of the sync period, so a
//! backup's copy is renewed while the connection lives. The daemon packs
//! the events into IPVS sync messages.
//!
//! Each call sits behind a branch the packet takes anyway (a new flow, a
//! state change, the once-a-second timestamp refresh): an established
//! flow's plain packet never reads the flag. A full ring loses the report
//! and counts it (`stat::SYNC_DROPS`).

use lb_common::{stat, Conn, FlowKey, SyncEvent};

use crate::maps::{count, SYNC_CONTROL, SYNC_EVENTS};

/// A connection was recorded (new, or a new one on an old one's entry).
#[inline(always)]
pub fn started(key: &FlowKey, conn: &Conn) {
    if enabled() {
        emit(key, conn);
    }
}

/// A connection's state changed (`conn.state` is the new one).
#[inline(always)]
pub fn changed(key: &FlowKey, conn: &Conn) {
    if enabled() {
        emit(key, conn);
    }
}

/// A connection's timestamp moves from `conn.last_seen` to `now`: reported
/// again when that crosses a multiple of the sync period.
#[inline(always)]
pub fn refreshing(key: &FlowKey, conn: &Conn, now: u32) {
    let Some(ctl) = SYNC_CONTROL.get(0) else {
        return;
    };
    // A zero period never divides (and the verifier's division by zero
    // would give 0 anyway): no periodic reports.
    if ctl.enabled != 0 && ctl.period != 0 && conn.last_seen / ctl.period != now / ctl.period {
        emit(key, conn);
    }
}

#[inline(always)]
fn enabled() -> bool {
    SYNC_CONTROL.get(0).is_some_and(|c| c.enabled != 0)
}

#[inline(always)]
fn emit(key: &FlowKey, conn: &Conn) {
    let Some(mut entry) = SYNC_EVENTS.reserve::<SyncEvent>(0) else {
        count(stat::SYNC_DROPS, 0);
        return;
    };
    entry.write(SyncEvent {
        flow: *key,
        service: conn.service,
        backend: conn.backend,
        state: conn.state,
        mode: conn.mode,
        _pad: [0; 2],
    });
    entry.submit(0);
}
