//! The I/O shell of announcing: a TUN device lbd holds open, and one
//! `VIP/32` (`/128`) route through it in kernel table N per announced VIP,
//! which the host's routing daemon learns and exports to the routers.
//!
//! The device is not persistent: when lbd dies, even by kill -9, the kernel
//! removes it and its routes, and the routing daemon withdraws them with no
//! code of lbd running. A restart in place (SIGUSR1) is the one exception:
//! the device is made persistent just before the exit, the announced VIPs
//! are written to the run directory, and the next lbd takes the device over
//! (and makes it non-persistent again), so no route flaps.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    time::Instant,
};

use tracing::{info, warn};

use super::core::{Action, Core, Event, Timing, Why};
use crate::{
    config::{LbAnnounce, Route},
    net::{NetError, Netlink},
};

/// The TUN device lbd's VIP routes go through.
pub const DEVICE: &str = "lbd-vip";

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("lb_announce_table: opening TUN device {DEVICE} (/dev/net/tun): {0}")]
    Tun(#[source] io::Error),
    #[error("lb_announce_table: {op} route {vip} in table {table}: {source}")]
    Route {
        op: &'static str,
        vip: IpAddr,
        table: u32,
        #[source]
        source: Box<NetError>,
    },
    #[error("lb_announce_table: virtual server {0} uses lb_kind NAT: behind ECMP its replies would have to come back through the balancer that holds the flow, which the routers do not ensure; use DR or TUN")]
    Nat(std::net::SocketAddr),
}

/// `struct ifreq` with the one field these ioctls use.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: i16,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str, flags: i16) -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        r
    }
}

/// Opens (or takes over) the TUN device `name`.
fn open_tun(name: &str) -> io::Result<OwnedFd> {
    let path = c"/dev/net/tun";
    // SAFETY: a plain open(2); the fd is owned right away.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq::new(name, IFF_TUN | IFF_NO_PI);
    // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn set_persist(fd: &OwnedFd, on: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes an integer argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETPERSIST, libc::c_ulong::from(on)) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings `name` up (SIOCSIFFLAGS).
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: a socket only used for the interface ioctls, owned at once.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: s was just opened and is ours.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = IfReq::new(name, 0);
    // SAFETY: both ioctls take an ifreq.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as i16;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn device_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Where a restart in place leaves the announced VIPs for the next lbd.
fn resume_path(run_dir: &Path) -> PathBuf {
    run_dir.join("announced-vips")
}

/// Announcing, as the daemon runs it.
pub struct Announcer {
    tun: OwnedFd,
    table: u32,
    netlink: Netlink,
    core: Core,
}

impl Announcer {
    /// Opens the device; a restart in place takes over the previous lbd's
    /// device and announcements, anything else starts with none.
    pub fn start(
        settings: &LbAnnounce,
        table: u32,
        run_dir: &Path,
        netlink: Netlink,
        now: Instant,
    ) -> Result<Announcer, AnnounceError> {
        let file = resume_path(run_dir);
        let saved = std::fs::read_to_string(&file).ok();
        let _ = std::fs::remove_file(&file);
        let exists = device_exists(DEVICE);
        let resumed: BTreeSet<IpAddr> = match (&saved, exists) {
            (Some(s), true) => s.lines().filter_map(|l| l.trim().parse().ok()).collect(),
            _ => BTreeSet::new(),
        };
        if exists && saved.is_none() {
            // Left persistent by a restart that did not come back as a
            // restart: its routes are stale. Taking the device and
            // dropping its persistence removes it with them.
            warn!("{DEVICE}: removing a device left by an earlier lbd");
            let old = open_tun(DEVICE).map_err(AnnounceError::Tun)?;
            set_persist(&old, false).map_err(AnnounceError::Tun)?;
            drop(old);
        }
        let tun = open_tun(DEVICE).map_err(AnnounceError::Tun)?;
        set_persist(&tun, false).map_err(AnnounceError::Tun)?;
        set_up(DEVICE).map_err(AnnounceError::Tun)?;
        if !resumed.is_empty() {
            info!(
                vips = resumed.len(),
                "announcements kept from the previous lbd"
            );
        }
        let timing = Timing {
            warmup: settings.warmup,
            drain: settings.drain,
        };
        Ok(Announcer {
            tun,
            table,
            netlink,
            core: Core::new(timing, now, &resumed),
        })
    }

    /// Feeds `event` to the core and carries out its actions. Returns true
    /// when the drain is over and lbd should stop.
    pub async fn handle(&mut self, event: Event, now: Instant) -> bool {
        let mut stop = false;
        for action in self.core.handle(event, now) {
            let result = match action {
                Action::Announce(vip) => {
                    info!(%vip, table = self.table, "announcing");
                    self.netlink
                        .add_route(&self.route(vip), 0)
                        .await
                        .map_err(|source| ("adding", vip, source))
                }
                Action::Withdraw(vip) => {
                    info!(%vip, table = self.table, "withdrawing");
                    self.netlink
                        .remove_route(&self.route(vip), 0)
                        .await
                        .map_err(|source| ("removing", vip, source))
                }
                Action::Stop => {
                    stop = true;
                    Ok(())
                }
            };
            if let Err((op, vip, source)) = result {
                let e = AnnounceError::Route {
                    op,
                    vip,
                    table: self.table,
                    source: Box::new(source),
                };
                tracing::error!("{e}");
            }
        }
        stop
    }

    fn route(&self, vip: IpAddr) -> Route {
        Route {
            route_type: None,
            dest: vip,
            prefix_len: if vip.is_ipv4() { 32 } else { 128 },
            src: None,
            via: None,
            dev: Some(DEVICE.to_string()),
            metric: None,
            table: Some(self.table.to_string()),
            scope: None,
            protocol: None,
            no_track: false,
            location: Default::default(),
        }
    }

    pub fn status(&self, now: Instant) -> Vec<(IpAddr, Why)> {
        self.core.status(now)
    }

    pub fn draining(&self) -> bool {
        self.core.draining()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    /// A restart in place: the device outlives this process and the next
    /// lbd is told what was announced.
    pub fn keep_for_restart(&self, run_dir: &Path) {
        let list: String = self
            .core
            .announced()
            .iter()
            .map(|v| format!("{v}\n"))
            .collect();
        let kept = std::fs::create_dir_all(run_dir)
            .and_then(|()| std::fs::write(resume_path(run_dir), list))
            .and_then(|()| set_persist(&self.tun, true));
        match kept {
            Ok(()) => info!(
                vips = self.core.announced().len(),
                "announcements kept for the next lbd"
            ),
            Err(e) => warn!("{DEVICE}: keeping the announcements for the next lbd: {e}"),
        }
    }
}

/// Quorum per VIP address: every virtual server on it must meet its quorum.
pub fn quorum_by_vip(services: impl IntoIterator<Item = (IpAddr, bool)>) -> BTreeMap<IpAddr, bool> {
    let mut out = BTreeMap::new();
    for (vip, q) in services {
        *out.entry(vip).or_insert(true) &= q;
    }
    out
}
