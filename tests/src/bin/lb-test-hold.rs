//! Opens many connections and holds them, as an idle or slow client of
//! lbd's listeners would (run it as an unprivileged user).
//!
//! Usage: lb-test-hold unix PATH N SECONDS
//!        lb-test-hold tcp ADDR N SECONDS [get]
//!
//! With `get`, each TCP connection sends `GET /metrics` and never reads
//! the answer (with a small receive buffer). Prints `open N` once every
//! attempt was made (N: the connections that were made), then holds them.

use std::{io::Write, os::fd::AsRawFd, time::Duration};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: lb-test-hold unix PATH N SECONDS | tcp ADDR N SECONDS [get]");
        std::process::exit(2);
    };
    if args.len() < 4 {
        usage();
    }
    let n: usize = args[2].parse().unwrap_or_else(|_| usage());
    let secs: u64 = args[3].parse().unwrap_or_else(|_| usage());
    let get = args.get(4).map(String::as_str) == Some("get");
    let mut held: Vec<Box<dyn AsRawFd>> = Vec::new();
    for _ in 0..n {
        match args[0].as_str() {
            "unix" => {
                if let Ok(s) = std::os::unix::net::UnixStream::connect(&args[1]) {
                    held.push(Box::new(s));
                }
            }
            "tcp" => {
                let addr: std::net::SocketAddr = args[1].parse().unwrap_or_else(|_| usage());
                if let Ok(mut s) = connect_small(addr) {
                    if get {
                        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
                    }
                    held.push(Box::new(s));
                }
            }
            _ => usage(),
        }
    }
    println!("open {}", held.len());
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(secs));
}

/// A TCP connection with a 4 KiB receive buffer (set before connecting, so
/// the window stays small).
fn connect_small(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: a fresh socket we own.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is ours; the std socket closes it on drop.
    let sock = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt with an int we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa is a valid sockaddr of len bytes.
    if unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

fn sockaddr(addr: std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}
