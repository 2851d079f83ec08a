//! UDP_CHECK: send the payload (empty when none is set) and wait
//! `connect_timeout`. An ICMP error (port unreachable) means down; a reply
//! means up. Silence means up, unless `require_reply` is set; a reply must
//! then be between `min_reply_length` and `max_reply_length` bytes (0 and
//! 255 by default, as keepalived).

use std::io::ErrorKind;

use tokio::time::timeout;

use super::core::Outcome;
use super::plan::ProbeSpec;
use super::socket;
use crate::config::CheckerKind;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let CheckerKind::Udp(u) = &spec.kind else {
        return Outcome::down("not a UDP_CHECK");
    };
    let payload = u.payload.as_deref().map(unhex).unwrap_or_default();
    let sock = match socket::udp(spec).await {
        Ok(s) => s,
        Err(e) => return socket::failed("UDP socket to", spec.target, &e),
    };
    if let Err(e) = sock.send(&payload).await {
        return socket::failed("sending to", spec.target, &e);
    }
    let min = u.min_reply_length.unwrap_or(0) as usize;
    let max = u.max_reply_length.unwrap_or(255) as usize;
    let mut buf = vec![0u8; max.max(min) + 1];
    match timeout(spec.connect_timeout, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => {
            if u.require_reply && !(min..=max).contains(&n) {
                Outcome::down(format!(
                    "reply of {n}{} bytes from {}, expected {min} to {max}",
                    if n > max { "+" } else { "" },
                    spec.target
                ))
            } else {
                Outcome::up()
            }
        }
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            Outcome::down(format!("{}: ICMP port unreachable", spec.target))
        }
        Ok(Err(e)) => socket::failed("receiving from", spec.target, &e),
        Err(_) if u.require_reply => Outcome::down(format!(
            "no reply from {} within {:?}",
            spec.target, spec.connect_timeout
        )),
        Err(_) => Outcome::up(),
    }
}

/// The model keeps payloads as validated hex text.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
