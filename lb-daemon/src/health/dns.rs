//! DNS_CHECK: one query over UDP (`type`, `name`; SOA for the root by
//! default, recursion desired). A reply with the query's id and RCODE 0 is
//! up, whatever its answer section holds; an error RCODE, an ICMP error or
//! no reply within `connect_timeout` is down.

use std::io::ErrorKind;

use tokio::time::{timeout_at, Instant};

use super::core::Outcome;
use super::plan::ProbeSpec;
use super::socket;
use crate::config::CheckerKind;

/// The numeric type of a query type name keepalived accepts.
pub fn qtype_number(name: &str) -> Option<u16> {
    Some(match name {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        _ => return None,
    })
}

/// A query message: header (id, RD set, one question) and the question.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    m.extend_from_slice(&[0; 6]); // AN, NS, AR counts
    for label in name.split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return Err(format!(
                "label {label:?} of {name:?} is longer than 63 bytes"
            ));
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(m)
}

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let CheckerKind::Dns(d) = &spec.kind else {
        return Outcome::down("not a DNS_CHECK");
    };
    let Some(qtype) = qtype_number(&d.qtype) else {
        return Outcome::down(format!("query type {} unknown", d.qtype));
    };
    let id = query_id();
    let msg = match query(id, &d.name, qtype) {
        Ok(m) => m,
        Err(e) => return Outcome::down(e),
    };
    let sock = match socket::udp(spec).await {
        Ok(s) => s,
        Err(e) => return socket::failed("UDP socket to", spec.target, &e),
    };
    if let Err(e) = sock.send(&msg).await {
        return socket::failed("sending the query to", spec.target, &e);
    }
    let deadline = Instant::now() + spec.connect_timeout;
    let mut buf = [0u8; 1500];
    // Replies that are not ours (another id, not a response) are skipped;
    // the deadline bounds the loop.
    loop {
        match timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return Outcome::down(format!(
                    "no DNS reply from {} within {:?}",
                    spec.target, spec.connect_timeout
                ))
            }
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                return Outcome::down(format!("{}: ICMP port unreachable", spec.target))
            }
            Ok(Err(e)) => return socket::failed("receiving from", spec.target, &e),
            Ok(Ok(n)) if n >= 12 => {
                let rid = u16::from_be_bytes([buf[0], buf[1]]);
                let flags = u16::from_be_bytes([buf[2], buf[3]]);
                if rid != id || flags & 0x8000 == 0 {
                    continue;
                }
                let rcode = flags & 0x000f;
                if rcode != 0 {
                    return Outcome::down(format!(
                        "DNS reply from {} with RCODE {rcode}",
                        spec.target
                    ));
                }
                return Outcome::up();
            }
            Ok(Ok(_)) => continue,
        }
    }
}

/// A query id that differs from one query to the next.
fn query_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(0);
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(40503) ^ seed
}
