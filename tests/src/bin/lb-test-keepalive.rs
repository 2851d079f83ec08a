//! An HTTP/1.1 server that keeps connections open, for the connection-sync
//! tests: every request gets `200 OK` with a body naming the server, and
//! the connection stays open for the next request (closed after an
//! HTTP/1.0 request or `Connection: close`, as health checks send). One
//! thread per connection; a connection idle for 60 s is closed.
//!
//! Usage: lb-test-keepalive LISTEN_ADDR NAME

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    time::Duration,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(name)) = (args.next(), args.next()) else {
        eprintln!("usage: lb-test-keepalive LISTEN_ADDR NAME");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("lb-test-keepalive: bind {listen}: {e}");
        std::process::exit(1);
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let name = name.clone();
        std::thread::spawn(move || serve(stream, &name));
    }
}

fn serve(mut stream: TcpStream, name: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let body = format!("{name}\n");
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // One request's headers (requests carry no body here).
        let end = loop {
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if pending.len() > 16384 {
                return;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
        pending.drain(..end);
        let first = head.lines().next().unwrap_or("");
        let keep = first.ends_with("http/1.1") && !head.contains("connection: close");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            body.len(),
            if keep { "keep-alive" } else { "close" }
        );
        if stream.write_all(resp.as_bytes()).is_err() || !keep {
            return;
        }
    }
}
