//! Connection sync's reports from the program: the `SYNC_EVENTS` ring
//! buffer read by lbd, the `SYNC_CONTROL` switch that turns the reports on,
//! and the conversion of an event into the sync core's [`Report`].
//!
//! The program writes an event when a connection starts, changes state
//! (into ESTABLISHED, FIN, CLOSE), and when its timestamp crosses a
//! multiple of the sync period (half the shortest idle timeout), but only
//! while reporting is on. Reporting is off after every load (fresh, or
//! adopting an older lbd's pins): the sync task turns it on for the role
//! that sends.

use std::{
    io,
    net::SocketAddr,
    os::fd::{AsFd, OwnedFd},
    path::Path,
};

use aya::{
    maps::{Array, Map, MapData, RingBuf},
    Ebpf,
};
use lb_common::{maps as names, SyncControl, SyncEvent, SYNC_RING_BYTES};
use tokio::io::{unix::AsyncFd, Interest};

use super::{
    maps::{dup, map_err},
    XdpDataplane,
};
use crate::{
    connsync::core::Report,
    dataplane::{words_addr, DataplaneError},
};

/// The most events one [`SyncEvents::drain`] delivers: a full ring's worth
/// (an event takes 64 bytes with the ring's header), so a reader that
/// keeps up never waits twice for one burst, and one that does not still
/// returns to its other work.
pub const DRAIN_MAX: usize = (SYNC_RING_BYTES / 64) as usize;

/// The reader of `SYNC_EVENTS`. It needs no runtime to drain (tests, the
/// bench); [`SyncEvents::readable`] waits on the ring's descriptor with
/// tokio. One reader per ring: the kernel keeps one consumer position.
pub struct SyncEvents {
    ring: RingBuf<MapData>,
    /// A duplicate of the ring's descriptor registered with tokio, on the
    /// first wait.
    wake: Option<AsyncFd<OwnedFd>>,
    /// Entries not one event long (a program of another version).
    malformed: u64,
    /// The last drain stopped at `DRAIN_MAX`: events may be waiting that
    /// raise no wake-up (the kernel wakes the reader only once it has
    /// caught up).
    more: bool,
}

impl SyncEvents {
    /// The ring an lbd pinned at `path` (`<pins>/SYNC_EVENTS`).
    pub fn from_pin(path: &Path) -> Result<Self, DataplaneError> {
        let data = MapData::from_pin(path).map_err(map_err(names::SYNC_EVENTS))?;
        Self::from_map_data(data)
    }

    fn from_map_data(data: MapData) -> Result<Self, DataplaneError> {
        let map = Map::from_map_data(data).map_err(map_err(names::SYNC_EVENTS))?;
        let ring = RingBuf::try_from(map).map_err(map_err(names::SYNC_EVENTS))?;
        Ok(Self {
            ring,
            wake: None,
            malformed: 0,
            more: false,
        })
    }

    /// Waits until the program has written something. Drain after it (and
    /// once after opening: what is already there raises no new wake-up
    /// until the reader has caught up). Cancel-safe.
    pub async fn readable(&mut self) -> io::Result<()> {
        if self.more {
            return Ok(());
        }
        if self.wake.is_none() {
            let fd = self.ring.as_fd().try_clone_to_owned()?;
            // SAFETY: the descriptor is owned by the AsyncFd from here on,
            // so it stays open and the same for the AsyncFd's lifetime.
            let wake = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
            self.wake = Some(wake);
        }
        let wake = self.wake.as_ref().expect("registered above");
        let mut guard = wake.readable().await?;
        // Cleared before draining: an event written during the drain
        // raises readiness again rather than being missed.
        guard.clear_ready();
        Ok(())
    }

    /// Hands each waiting event to `f`, at most [`DRAIN_MAX`]; returns how
    /// many. `DRAIN_MAX` means more may be waiting: drain again (or wait:
    /// [`SyncEvents::readable`] then returns at once).
    pub fn drain(&mut self, mut f: impl FnMut(SyncEvent)) -> usize {
        let mut n = 0;
        while n < DRAIN_MAX {
            let Some(item) = self.ring.next() else {
                break;
            };
            match SyncEvent::from_bytes(&item) {
                Some(ev) => {
                    f(ev);
                    n += 1;
                }
                None => self.malformed += 1,
            }
        }
        self.more = n == DRAIN_MAX;
        n
    }

    /// Entries skipped for not being one `SyncEvent` long.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

/// The ring's descriptor, readable while events wait (poll it where there
/// is no tokio).
impl AsFd for SyncEvents {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

/// The program's sync maps, held by the data plane (not in `Maps`: lbctl
/// opening an older lbd's pins must not need them).
pub(super) struct SyncMaps {
    control: Array<MapData, SyncControl>,
    ring: MapData,
    /// Whether this lbd asked for reports.
    reporting: bool,
}

impl SyncMaps {
    pub(super) fn take(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or(DataplaneError::MissingMap { name })
        };
        let control =
            Array::try_from(take(names::SYNC_CONTROL)?).map_err(map_err(names::SYNC_CONTROL))?;
        let Map::RingBuf(ring) = take(names::SYNC_EVENTS)? else {
            return Err(DataplaneError::MissingMap {
                name: names::SYNC_EVENTS,
            });
        };
        Ok(Self {
            control,
            ring,
            reporting: false,
        })
    }
}

impl XdpDataplane {
    /// Turns the program's sync reports on or off.
    pub fn set_reporting(&mut self, on: bool) -> Result<(), DataplaneError> {
        self.sync.reporting = on;
        self.write_sync_control()
    }

    /// Whether this lbd asked for reports.
    pub fn reporting(&self) -> bool {
        self.sync.reporting
    }

    /// A reader of the reports, on a descriptor of its own (the sync task
    /// holds it while the main loop holds the data plane).
    pub fn sync_events(&self) -> Result<SyncEvents, DataplaneError> {
        let fd = dup(names::SYNC_EVENTS, self.sync.ring.fd().as_fd())?;
        let data = MapData::from_fd(fd).map_err(map_err(names::SYNC_EVENTS))?;
        SyncEvents::from_map_data(data)
    }

    /// Writes the switch and the refresh period, derived from the current
    /// timeouts (so `set_timeouts` calls it too).
    pub(super) fn write_sync_control(&mut self) -> Result<(), DataplaneError> {
        let s = &self.settings;
        let value = SyncControl {
            enabled: u32::from(self.sync.reporting),
            period: sync_period(s.tcp_timeout, s.tcpfin_timeout, s.udp_timeout),
        };
        self.sync
            .control
            .set(0, value, 0)
            .map_err(map_err(names::SYNC_CONTROL))
    }
}

/// The sync period in jiffies: half the shortest idle timeout of an
/// established TCP, a closing TCP and a UDP connection (the SYN and CLOSE
/// states are transitions, reported as they change). A backup stamps a copy
/// when it hears it; with a report at least once a period while packets
/// flow, the copy outlives the gaps between them.
pub fn sync_period(tcp: u32, tcpfin: u32, udp: u32) -> u32 {
    tcp.min(tcpfin).min(udp) / 2
}

/// The sync core's view of an event: the flow's addresses, with the
/// backend's address from `dest` (backend id → address).
///
/// lbd resolves the backend from its own model (`Directory::backend_addr`,
/// rebuilt after each change of the services), not from `BACKENDS`: no
/// syscall per event, and a slot reused since the event is then unknown
/// rather than wrong (`None`: the caller counts it and skips it).
pub fn report(ev: &SyncEvent, dest: impl FnOnce(u32) -> Option<SocketAddr>) -> Option<Report> {
    let f = &ev.flow;
    Some(Report {
        protocol: f.proto,
        client: SocketAddr::new(words_addr(f.src, f.family), u16::from_be(f.sport)),
        vip: SocketAddr::new(words_addr(f.dst, f.family), u16::from_be(f.dport)),
        dest: dest(ev.backend)?,
        service: ev.service,
        state: ev.state,
    })
}

/// The sync task reads the ring through this (a fake stands in for it in
/// tests).
impl crate::connsync::driver::ReportSource for SyncEvents {
    fn readable(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send + '_>> {
        Box::pin(SyncEvents::readable(self))
    }

    fn drain(
        &mut self,
        dir: &crate::connsync::directory::Directory,
        f: &mut dyn FnMut(Option<Report>),
    ) -> usize {
        SyncEvents::drain(self, |ev| f(report(&ev, |id| dir.backend_addr(id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::addr_words;
    use lb_common::{conn_state, FlowKey, AF_INET6, IPPROTO_TCP, MODE_DR};

    #[test]
    fn an_event_becomes_a_report_with_its_backends_address() {
        let (src, family) = addr_words("2001:db8::10".parse().unwrap());
        let (dst, _) = addr_words("2001:db8::100".parse().unwrap());
        let ev = SyncEvent {
            flow: FlowKey {
                src,
                dst,
                sport: 40000u16.to_be(),
                dport: 443u16.to_be(),
                proto: IPPROTO_TCP,
                family,
                _pad: [0; 2],
            },
            service: 3,
            backend: 17,
            state: conn_state::ESTABLISHED,
            mode: MODE_DR,
            _pad: [0; 2],
        };
        assert_eq!(family, AF_INET6);
        let dest: SocketAddr = "[2001:db8::11]:443".parse().unwrap();
        let r = report(&ev, |id| (id == 17).then_some(dest)).unwrap();
        assert_eq!(r.client, "[2001:db8::10]:40000".parse().unwrap());
        assert_eq!(r.vip, "[2001:db8::100]:443".parse().unwrap());
        assert_eq!(r.dest, dest);
        assert_eq!((r.protocol, r.service, r.state), (6, 3, 2));
        assert_eq!(report(&ev, |_| None), None, "unknown backend");
    }

    // The sync task owns the reader on tokio's multi-threaded runtime.
    const _: () = {
        const fn send<T: Send>() {}
        send::<SyncEvents>();
    };

    #[test]
    fn the_period_is_half_the_shortest_timeout() {
        assert_eq!(sync_period(900, 120, 300), 60);
        assert_eq!(sync_period(0, 120, 300), 0);
    }
}
