//! Sockets shared by the probes.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::plan::ProbeSpec;

/// A TCP connection to the probe's target, from its bind address if set.
/// The caller bounds the time it takes.
pub async fn connect(spec: &ProbeSpec) -> io::Result<TcpStream> {
    let sock = match spec.target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(bind) = spec.bind {
        sock.set_reuseaddr(true)?;
        sock.bind(bind)?;
    }
    sock.connect(spec.target).await
}

/// A UDP socket connected to the probe's target, so ICMP errors are
/// reported on it.
pub async fn udp(spec: &ProbeSpec) -> io::Result<UdpSocket> {
    let local = spec.bind.unwrap_or(match spec.target {
        SocketAddr::V4(_) => SocketAddr::from(([0u8; 4], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    });
    let sock = UdpSocket::bind(local).await?;
    sock.connect(spec.target).await?;
    Ok(sock)
}

/// An I/O error as a short reason.
pub fn reason(what: &str, target: SocketAddr, e: &io::Error) -> String {
    format!("{what} {target}: {e}")
}

/// Whether `e` is this host's trouble (descriptors, buffers, addresses),
/// not the backend's.
pub fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// A socket error as a probe's result: a local error leaves the backend
/// as it was.
pub fn failed(what: &str, target: SocketAddr, e: &io::Error) -> super::core::Outcome {
    let reason = reason(what, target, e);
    if is_local(e) {
        super::core::Outcome::LocalError { reason }
    } else {
        super::core::Outcome::Down { reason }
    }
}
