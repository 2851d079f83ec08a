//! The kernel's jiffies, the clock the data plane stamps connections with.
//!
//! The program reads jiffies (`bpf_jiffies64`, which the verifier inlines
//! into a single load) rather than a nanosecond clock: on the per-packet
//! path the difference was a quarter of the program's cost. Userspace reads
//! the same counter from /proc/timer_list ("now at N nsecs" then
//! "jiffies: J"), and works out HZ from where jiffies start at boot.

use std::{io, sync::OnceLock};

/// (CLOCK_MONOTONIC ns, jiffies) as the kernel printed them together.
fn sample() -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/timer_list")?;
    let mut now = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("now at ") {
            now = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = line.strip_prefix("jiffies: ") {
            if let (Some(n), Ok(j)) = (now, rest.trim().parse()) {
                return Ok((n, j));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no `now at` and `jiffies:` lines in /proc/timer_list",
    ))
}

/// Jiffies now, truncated to 32 bits as the program keeps them.
pub fn now() -> u32 {
    sample().map(|(_, j)| j as u32).unwrap_or(0)
}

/// The kernel's HZ.
pub fn hz() -> u32 {
    static HZ: OnceLock<u32> = OnceLock::new();
    *HZ.get_or_init(|| detect_hz().unwrap_or(250))
}

/// Jiffies start at 2^32 - 300 × HZ at boot (INITIAL_JIFFIES), so one
/// sample tells HZ unless the machine is close to 300 s up; then two
/// samples a fifth of a second apart do.
fn detect_hz() -> io::Result<u32> {
    const CANDIDATES: [u32; 4] = [100, 250, 300, 1000];
    let (ns, j) = sample()?;
    let t = ns as f64 / 1e9;
    if (t - 300.0).abs() > 20.0 {
        let best = CANDIDATES.iter().copied().min_by(|a, b| {
            let err = |hz: u32| (j as f64 - (4294967296.0 + f64::from(hz) * (t - 300.0))).abs();
            err(*a).total_cmp(&err(*b))
        });
        if let Some(hz) = best {
            return Ok(hz);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (ns2, j2) = sample()?;
    let rate = (j2 - j) as f64 / ((ns2 - ns) as f64 / 1e9);
    Ok(CANDIDATES
        .iter()
        .copied()
        .min_by(|a, b| {
            (f64::from(*a) - rate)
                .abs()
                .total_cmp(&(f64::from(*b) - rate).abs())
        })
        .unwrap_or(250))
}

/// Seconds in `jiffies` (rounded down).
pub fn to_secs(jiffies: u32) -> u32 {
    jiffies / hz().max(1)
}

/// Jiffies in `secs` seconds.
pub fn from_secs(secs: u32) -> u32 {
    secs.saturating_mul(hz())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiffies_advance_at_hz() {
        let hz = hz();
        assert!([100, 250, 300, 1000].contains(&hz));
        let (ns, j) = sample().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (ns2, j2) = sample().unwrap();
        let rate = (j2 - j) as f64 / ((ns2 - ns) as f64 / 1e9);
        assert!(
            (rate - f64::from(hz)).abs() < f64::from(hz) * 0.2,
            "{rate} vs {hz}"
        );
    }
}
