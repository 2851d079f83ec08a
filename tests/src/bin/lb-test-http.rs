//! A minimal HTTP/1.0 server for the namespace tests and the demo: every
//! request gets `200 OK` with a body naming the server, so a client can tell
//! which backend answered. A client sending `Connection: keep-alive` keeps
//! its connection for more requests.
//!
//! Usage: lb-test-http LISTEN_ADDR NAME

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::Duration,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(name)) = (args.next(), args.next()) else {
        eprintln!("usage: lb-test-http LISTEN_ADDR NAME");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("lb-test-http: bind {listen}: {e}");
        std::process::exit(1);
    });
    let body = format!("{name}\n");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let body = body.clone();
        // A thread per connection: keep-alive clients hold theirs open.
        std::thread::spawn(move || serve(stream, &body));
    }
}

/// Answers requests on one connection: one, or while the client asks
/// for `Connection: keep-alive` (the ECMP tests hold connections open).
fn serve(mut stream: std::net::TcpStream, body: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        // Read until the end of the request headers (or the client stops).
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let keep = String::from_utf8_lossy(&req)
            .to_ascii_lowercase()
            .contains("connection: keep-alive");
        let resp = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            body.len(),
            if keep { "keep-alive" } else { "close" }
        );
        if stream.write_all(resp.as_bytes()).is_err() || !keep {
            return;
        }
    }
}
