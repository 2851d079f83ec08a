//! What one client may take from lbd's listeners (the control socket and
//! the metrics endpoint): a cap on open connections, a deadline on every
//! read and write, and bounded buffers. HAProxy's `maxconn` and timeouts
//! are the model: past the cap a connection is accepted and closed at once,
//! so its file descriptor is back before the next check needs one.
//!
//! The caps are far below the file-descriptor limit lbd raises itself to
//! ([`raise_nofile_limit`]), so idle or slow clients can never take the
//! descriptors health checks, VRRP and the data plane need.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// Open control connections at most (lbctl opens one per command).
pub const CONTROL_MAX_CONNS: usize = 64;
/// Open metrics connections at most (a scraper needs one at a time; each
/// holds a rendered page until it is written).
pub const METRICS_MAX_CONNS: usize = 16;
/// A control connection idle this long (no complete request) is closed.
pub const CONTROL_IDLE: Duration = Duration::from_secs(30);
/// A metrics client must have sent its request head within this.
pub const METRICS_READ: Duration = Duration::from_secs(10);
/// Writing one answer (a control line, a metrics page) takes at most this;
/// a client that does not read is cut off and its buffers freed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The open connections of one listener and how many were refused.
#[derive(Debug)]
pub struct ConnLimit {
    pub name: &'static str,
    pub max: usize,
    current: AtomicUsize,
    refused: AtomicU64,
}

impl ConnLimit {
    pub fn new(name: &'static str, max: usize) -> Arc<Self> {
        Arc::new(Self {
            name,
            max,
            current: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// A slot for one more connection, or `None` (counted as refused).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// One admitted connection; its slot is released on drop.
#[derive(Debug)]
pub struct Slot(Arc<ConnLimit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The listeners' limits, shared by the listeners and the metrics.
#[derive(Debug)]
pub struct Listeners {
    pub control: Arc<ConnLimit>,
    pub metrics: Arc<ConnLimit>,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            control: ConnLimit::new("control", CONTROL_MAX_CONNS),
            metrics: ConnLimit::new("metrics", METRICS_MAX_CONNS),
        }
    }
}

impl Listeners {
    /// (name, open, refused) of each listener.
    pub fn figures(&self) -> Vec<(&'static str, usize, u64)> {
        [&self.control, &self.metrics]
            .iter()
            .map(|l| (l.name, l.current(), l.refused()))
            .collect()
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (systemd's default
/// soft limit is 1,024, too few for thousands of checks); returns the new
/// soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_counted_and_released() {
        let l = ConnLimit::new("t", 2);
        let a = l.admit().unwrap();
        let b = l.admit().unwrap();
        assert!(l.admit().is_none());
        assert!(l.admit().is_none());
        assert_eq!((l.current(), l.refused()), (2, 2));
        drop(a);
        assert_eq!(l.current(), 1);
        let _c = l.admit().unwrap();
        drop(b);
        assert_eq!((l.current(), l.refused()), (1, 2));
    }
}
