//! The sockets adverts travel on: a raw IP socket of protocol 112 per
//! instance, bound to the instance's interface, joined to the VRRP group.
//!
//! IPv4 sends with `IP_HDRINCL` and builds the header the way keepalived
//! does ([`encode_ipv4`]: TOS 0xc0, TTL 255, DF clear, counting IP id), and
//! receives the whole packet, so [`decode_ipv4`] checks TTL and protocol.
//! IPv6 has no header to build: the hop limit is a socket option, and the
//! received hop limit and destination come as ancillary data.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::net::is_link_local;

use super::packet::{
    check_hop_limit, decode, decode_ipv4, encode, encode_ipv4, peek_vrid, Advert, DecodeError,
    PseudoHeader, IPPROTO_VRRP, MCAST_GROUP_V4, MCAST_GROUP_V6, VRRP_TTL,
};

/// Large enough for any IPv4 or IPv6 VRRP packet (255 IPv6 addresses).
const RECV_BUF: usize = 8192;

/// At most one socket-error log line per instance and direction this
/// often: a socket that fails once per advert would flood the log.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// When a socket's next error may be logged (see [`ERROR_LOG_EVERY`]).
#[derive(Debug, Default)]
pub struct ErrorLog {
    last: Option<Instant>,
}

impl ErrorLog {
    /// Whether to log an error now; if so, the next one waits.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= ERROR_LOG_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// What one received packet turned out to be.
#[derive(Debug)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The advert, or why it could not be read; with the VRID it claims
    /// when the bytes got that far.
    pub advert: Result<Advert, (DecodeError, Option<u8>)>,
}

/// One instance's VRRP socket(s).
pub struct VrrpSocket {
    /// Receives (and, for IPv4, sends).
    rx: AsyncFd<Socket>,
    /// IPv6 sends from a socket bound to the source address: binding the
    /// receiving one would filter out packets to the group.
    tx6: Option<Socket>,
    src: IpAddr,
    /// The group, or the unicast peers.
    dests: Vec<IpAddr>,
    ifindex: u32,
    ident: AtomicU16,
}

impl VrrpSocket {
    /// Opens the socket(s) on `ifname`, sending from `src` to the VRRP
    /// group, or to `unicast_peers` when there are any.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        unicast_peers: &[IpAddr],
    ) -> io::Result<VrrpSocket> {
        let proto = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
        let dests = if unicast_peers.is_empty() {
            vec![match src {
                IpAddr::V4(_) => IpAddr::V4(MCAST_GROUP_V4),
                IpAddr::V6(_) => IpAddr::V6(MCAST_GROUP_V6),
            }]
        } else {
            unicast_peers.to_vec()
        };
        let multicast = unicast_peers.is_empty();
        let (rx, tx6) = match src {
            IpAddr::V4(_) => {
                let s = Socket::new(Domain::IPV4, Type::RAW, proto)?;
                s.bind_device(Some(ifname.as_bytes()))?;
                s.set_header_included_v4(true)?;
                s.set_multicast_loop_v4(false)?;
                if multicast {
                    s.join_multicast_v4_n(
                        &MCAST_GROUP_V4,
                        &socket2::InterfaceIndexOrAddress::Index(ifindex),
                    )?;
                }
                (s, None)
            }
            IpAddr::V6(src6) => {
                let s = Socket::new(Domain::IPV6, Type::RAW, proto)?;
                s.bind_device(Some(ifname.as_bytes()))?;
                set_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
                set_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
                if multicast {
                    s.join_multicast_v6(&MCAST_GROUP_V6, ifindex)?;
                }
                let t = Socket::new(Domain::IPV6, Type::RAW, proto)?;
                t.bind_device(Some(ifname.as_bytes()))?;
                t.set_multicast_loop_v6(false)?;
                t.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
                t.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
                t.set_multicast_if_v6(ifindex)?;
                let scope = if is_link_local(&src6) { ifindex } else { 0 };
                t.bind(&SocketAddr::V6(SocketAddrV6::new(src6, 0, 0, scope)).into())?;
                // Never read: keep its receive queue from filling.
                t.set_recv_buffer_size(0)?;
                t.set_nonblocking(true)?;
                (s, Some(t))
            }
        };
        rx.set_nonblocking(true)?;
        // SAFETY: the socket is owned by the AsyncFd from here on, so its
        // descriptor stays open and the same for the AsyncFd's lifetime.
        let rx = unsafe { AsyncFd::register(rx) }.map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket {
            rx,
            tx6,
            src,
            dests,
            ifindex,
            ident: AtomicU16::new(0),
        })
    }

    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Sends `advert` to the group or every unicast peer. Never blocks: a
    /// full send buffer drops the advert (the next one follows soon).
    pub fn send(&self, advert: &Advert) -> io::Result<()> {
        let mut result = Ok(());
        for &dst in &self.dests {
            let r = match (self.src, dst) {
                (IpAddr::V4(src), IpAddr::V4(dst4)) => {
                    let ident = self.ident.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                    let pkt = encode_ipv4(advert, src, dst4, ident)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let to = SockAddr::from(SocketAddr::new(dst, 0));
                    self.rx.get_ref().send_to(&pkt, &to)
                }
                (IpAddr::V6(_), IpAddr::V6(dst6)) => {
                    let pkt = encode(advert, &PseudoHeader::new(self.src, dst))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let scope = if is_link_local(&dst6) || dst6.is_multicast() {
                        self.ifindex
                    } else {
                        0
                    };
                    let to = SockAddr::from(SocketAddrV6::new(dst6, 0, 0, scope));
                    match &self.tx6 {
                        Some(t) => t.send_to(&pkt, &to),
                        None => Err(io::Error::other("no IPv6 send socket")),
                    }
                }
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "source and destination families differ",
                )),
            };
            if let Err(e) = r {
                result = Err(e);
            }
        }
        result
    }

    /// Waits for the next packet. Errors are socket errors only; a packet
    /// that is not a valid advert comes back as [`Received::advert`]'s
    /// error.
    pub async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.rx.readable().await?;
            match guard.try_io(|fd| match self.src {
                IpAddr::V4(_) => recv_v4(fd.get_ref()),
                IpAddr::V6(_) => recv_v6(fd.get_ref()),
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

fn recv_v4(s: &Socket) -> io::Result<Received> {
    let mut buf = [MaybeUninit::<u8>::uninit(); RECV_BUF];
    let (n, from) = s.recv_from(&mut buf)?;
    // SAFETY: recv_from initialised the first n bytes.
    let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
    let src = from
        .as_socket()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let dst = if pkt.len() >= 20 {
        IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]))
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let advert = decode_ipv4(pkt).map(|a| a.advert).map_err(|e| {
        let ihl = pkt.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
        (e, pkt.get(ihl..).and_then(peek_vrid))
    });
    Ok(Received { src, dst, advert })
}

fn recv_v6(s: &Socket) -> io::Result<Received> {
    let mut buf = [0u8; RECV_BUF];
    // u64s: control messages must be aligned for cmsghdr.
    let mut control = [0u64; 32];
    // SAFETY: zeroed sockaddr_in6 is a valid value.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let src = IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr));
    let mut hop_limit = None;
    let mut dst = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    // SAFETY: walking the control messages the kernel wrote, with libc's
    // own macros and within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IPV6 {
                let data = libc::CMSG_DATA(cmsg);
                if c.cmsg_type == libc::IPV6_HOPLIMIT {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    hop_limit = Some(v);
                } else if c.cmsg_type == libc::IPV6_PKTINFO {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let payload = &buf[..n];
    let hop = hop_limit.and_then(|h| u8::try_from(h).ok()).unwrap_or(0);
    let advert = check_hop_limit(hop)
        .and_then(|()| decode(payload, &PseudoHeader::new(src, dst)))
        .map_err(|e| (e, peek_vrid(payload)));
    Ok(Received { src, dst, advert })
}

fn set_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: setsockopt with a c_int value of the right size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
