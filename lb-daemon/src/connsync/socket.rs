//! The sync group's sockets: one that sends on the sync interface and one
//! that receives what is sent to the group there, IPv4 or IPv6 as the
//! group is. As the kernel's sync daemon: UDP to the group and port, the
//! TTL (hop limit) from the settings, our own messages not looped back.
//!
//! Who is heard: anything that reaches the group and port on that
//! interface. The protocol has no authentication; the interface (bound
//! with SO_BINDTODEVICE), the group and a TTL of 1 keep it to the link.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

use super::settings::SyncSettings;

/// Why the sockets could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("sync interface {0}: no such interface")]
    NoInterface(String),
    #[error("sync {what} socket on {iface} for {group}: {source}")]
    Open {
        what: &'static str,
        iface: String,
        group: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The sending and the receiving socket.
pub struct SyncSocket {
    tx: UdpSocket,
    rx: UdpSocket,
    group: SocketAddr,
}

impl SyncSocket {
    /// Opens both on the settings' interface. Needs a tokio runtime.
    pub fn open(s: &SyncSettings) -> Result<SyncSocket, SocketError> {
        let ifindex = ifindex(&s.interface)?;
        let group = match s.group {
            IpAddr::V6(g) => SocketAddr::V6(SocketAddrV6::new(g, s.port, 0, ifindex)),
            g => SocketAddr::new(g, s.port),
        };
        let err = |what| {
            let iface = s.interface.clone();
            move |source| SocketError::Open {
                what,
                iface,
                group,
                source,
            }
        };
        let tx = sender(s, ifindex).map_err(err("send"))?;
        let rx = receiver(s, ifindex, group).map_err(err("receive"))?;
        Ok(SyncSocket { tx, rx, group })
    }

    pub fn group(&self) -> SocketAddr {
        self.group
    }

    /// Sends one message to the group. Never waits: a full send buffer is
    /// an error (counted by the caller), as for the kernel's daemon.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        self.tx.try_send_to(msg, self.group).map(|_| ())
    }

    /// The next datagram into `buf`: its length and sender. Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.rx.recv_from(buf).await
    }
}

fn ifindex(name: &str) -> Result<u32, SocketError> {
    let c = std::ffi::CString::new(name).map_err(|_| SocketError::NoInterface(name.into()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(SocketError::NoInterface(name.into()));
    }
    Ok(i)
}

fn domain(group: IpAddr) -> Domain {
    match group {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

/// Bound to the interface (so multicast leaves by it, from its address),
/// TTL from the settings, no loopback of our own messages.
fn sender(s: &SyncSettings, ifindex: u32) -> io::Result<UdpSocket> {
    let sock = Socket::new(domain(s.group), Type::DGRAM, Some(Protocol::UDP))?;
    sock.bind_device(Some(s.interface.as_bytes()))?;
    match s.group {
        IpAddr::V4(_) => {
            set_multicast_ifindex_v4(&sock, ifindex)?;
            sock.set_multicast_ttl_v4(u32::from(s.ttl))?;
            sock.set_multicast_loop_v4(false)?;
            sock.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                0,
            ))))?;
        }
        IpAddr::V6(_) => {
            sock.set_multicast_if_v6(ifindex)?;
            sock.set_multicast_hops_v6(u32::from(s.ttl))?;
            sock.set_multicast_loop_v6(false)?;
            sock.bind(&SockAddr::from(SocketAddr::from((
                Ipv6Addr::UNSPECIFIED,
                0,
            ))))?;
        }
    }
    // Never read: keep its receive queue from filling.
    sock.set_recv_buffer_size(0)?;
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Bound to the group and port on the interface, member of the group
/// there; a large receive buffer absorbs a master's burst.
fn receiver(s: &SyncSettings, ifindex: u32, group: SocketAddr) -> io::Result<UdpSocket> {
    let sock = Socket::new(domain(s.group), Type::DGRAM, Some(Protocol::UDP))?;
    // Another listener on the same group and port (a kernel sync daemon
    // on the same host, a second lbd in tests) is no error.
    sock.set_reuse_address(true)?;
    sock.bind_device(Some(s.interface.as_bytes()))?;
    match s.group {
        IpAddr::V4(g) => {
            sock.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex))?;
            sock.set_multicast_all_v4(false)?;
        }
        IpAddr::V6(g) => {
            sock.join_multicast_v6(&g, ifindex)?;
            sock.set_multicast_all_v6(false)?;
        }
    }
    sock.bind(&SockAddr::from(group))?;
    // Best effort: the kernel caps it at rmem_max.
    let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Receive buffer asked for: a few thousand full messages.
const RECV_BUFFER: usize = 4 << 20;

/// IP_MULTICAST_IF by interface index (`struct ip_mreqn`), which socket2
/// offers only by address.
fn set_multicast_ifindex_v4(sock: &Socket, ifindex: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: a valid descriptor and a pointer to a live ip_mreqn of the
    // length given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            std::ptr::addr_of!(mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
