//! The VRRP timer arithmetic.
//!
//! v2 (RFC 3768): Skew_Time = (256 - Priority) / 256 seconds, whatever the
//! interval. v3 (RFC 5798): Skew_Time = ((256 - Priority) *
//! Master_Adver_Interval) / 256. Both: Master_Down_Interval = 3 *
//! (Master_)Adver_Interval + Skew_Time, where keepalived lets the 3 be
//! configured (down_timer_adverts).

use std::time::Duration;

use super::packet::{AdvertInterval, Version};

const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_CENTI: u128 = 10_000_000;

/// How long a backup at `priority` waits beyond the master's silence, so
/// higher priorities take over first. Rounded down to the nanosecond.
pub fn skew_time(version: Version, priority: u8, master_adver_int: AdvertInterval) -> Duration {
    let weight = 256 - u128::from(priority);
    let nanos = match version {
        Version::V2 => weight * NANOS_PER_SEC / 256,
        Version::V3 => weight * u128::from(master_adver_int.centis()) * NANOS_PER_CENTI / 256,
    };
    // At most 256 * 4095 cs, far below u64 nanoseconds.
    Duration::from_nanos(nanos as u64)
}

/// How long a backup waits without adverts before declaring the master down.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: AdvertInterval,
    down_timer_adverts: u32,
) -> Duration {
    master_adver_int.as_duration() * down_timer_adverts
        + skew_time(version, priority, master_adver_int)
}
