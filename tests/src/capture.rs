//! Frame capture on an interface inside a namespace (an AF_PACKET socket),
//! to see which machine really sent what.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
};

use anyhow::{bail, Result};

use crate::netns::Netns;

/// Captures every frame seen on an interface until stopped.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<Vec<u8>>>>>,
}

impl Capture {
    /// Starts capturing on `iface` in `ns`; returns once the socket is open.
    pub fn start(ns: &Netns, iface: &str) -> Result<Self> {
        let path = format!("/run/netns/{}", ns.name);
        let iface = std::ffi::CString::new(iface)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || -> Result<Vec<Vec<u8>>> {
            let ns = std::fs::File::open(&path)?;
            // SAFETY: plain syscalls on fds and buffers we own.
            unsafe {
                use std::os::fd::AsRawFd;
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    let e = std::io::Error::last_os_error();
                    let _ = ready_tx.send(Err(format!("setns: {e}")));
                    bail!("setns: {e}");
                }
                let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto);
                if fd < 0 {
                    let e = std::io::Error::last_os_error();
                    let _ = ready_tx.send(Err(format!("socket: {e}")));
                    bail!("socket: {e}");
                }
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = proto as u16;
                sll.sll_ifindex = libc::if_nametoindex(iface.as_ptr()) as i32;
                if libc::bind(
                    fd,
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                ) != 0
                {
                    let e = std::io::Error::last_os_error();
                    libc::close(fd);
                    let _ = ready_tx.send(Err(format!("bind: {e}")));
                    bail!("bind: {e}");
                }
                let tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 100_000,
                };
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    &tv as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                let _ = ready_tx.send(Ok(()));
                let mut frames = Vec::new();
                let mut buf = vec![0u8; 65536];
                while !stop2.load(Ordering::Relaxed) {
                    let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                    if n > 0 {
                        frames.push(buf[..n as usize].to_vec());
                    }
                }
                libc::close(fd);
                Ok(frames)
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => bail!("capture: {e}"),
            Err(_) => bail!("capture thread died"),
        }
    }

    /// Stops and returns the frames seen.
    pub fn finish(mut self) -> Result<Vec<Vec<u8>>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("running");
        t.join()
            .map_err(|_| anyhow::anyhow!("capture thread panicked"))?
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Source MAC, source IPv4 address and TCP source port of a TCP/IPv4 frame.
pub fn tcp4_source(frame: &[u8]) -> Option<([u8; 6], std::net::Ipv4Addr, u16)> {
    if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let l4 = 14 + ihl;
    if frame.len() < l4 + 2 {
        return None;
    }
    let mac = frame[6..12].try_into().ok()?;
    let src = std::net::Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
    let port = u16::from_be_bytes([frame[l4], frame[l4 + 1]]);
    Some((mac, src, port))
}
