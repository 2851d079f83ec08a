//! Tests of the VRRP core. Frames in `../testdata/` are real keepalived
//! captures; time is a fake clock made of a base `Instant` plus durations.

mod fuzz;
mod instance;
mod packet;
mod simulation;
mod sync_group;
mod validate;

use std::net::{IpAddr, Ipv4Addr};

/// Bytes of a hex string (whitespace ignored). Test input only.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            other => panic!("not a hex digit: {other:#x}"),
        })
        .collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// The IPv4 packet inside an Ethernet frame given as hex.
fn ip_packet_of_frame(frame_hex: &str) -> Vec<u8> {
    let frame = hex(frame_hex);
    assert_eq!(&frame[12..14], &[0x08, 0x00], "not an IPv4 frame");
    frame[14..].to_vec()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}
