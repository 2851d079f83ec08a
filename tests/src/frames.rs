//! Hand-built Ethernet frames for BPF_PROG_TEST_RUN fixtures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// One's-complement sum folded to 16 bits, as IP checksums want.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (no options) followed by `payload`, checksummed.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40, // DF
        0,
        64,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(proto),
        len as u16,
    ]
    .iter()
    .map(|&w| u32::from(w))
    .sum()
}

/// A UDP datagram, checksummed.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let c = checksum(&u, pseudo_sum(src, dst, 17, len));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A whole Ethernet/IPv4/TCP frame.
pub fn tcp4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    tcp_frame(
        dst_mac,
        src_mac,
        src.into(),
        dst.into(),
        sport,
        dport,
        flags,
    )
}

/// A whole Ethernet/IPv4/UDP frame.
pub fn udp4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    let d = udp(src, dst, sport, dport, data);
    ethernet(dst_mac, src_mac, ETH_P_IPV4, &ipv4(src, dst, 17, &d))
}

/// An IPv6 header followed by `payload`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn pseudo_sum6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    for a in [src.octets(), dst.octets()] {
        for c in a.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
    }
    sum + len as u32 + u32::from(proto)
}

/// Pseudo-header sum of either family (for checksum checks).
pub fn pseudo_sum_ip(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_sum(s, d, proto, len),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_sum6(s, d, proto, len),
        _ => panic!("mixed families"),
    }
}

/// A TCP segment over either family, checksummed.
pub fn tcp_ip(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let c = checksum(&t, pseudo_sum_ip(src, dst, 6, t.len()));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A whole Ethernet/IP/TCP frame of either family.
pub fn tcp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let seg = tcp_ip(src, dst, sport, dport, flags);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ethernet(dst_mac, src_mac, ETH_P_IPV4, &ipv4(s, d, 6, &seg))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ethernet(dst_mac, src_mac, ETH_P_IPV6, &ipv6(s, d, 6, &seg))
        }
        _ => panic!("mixed families"),
    }
}

/// `frame` after `edit`: a fixture's deliberate damage (a flag set, a
/// length that lies) written where the row is.
pub fn edited(mut frame: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut frame);
    frame
}

/// The IP header offset and family of a frame without VLAN tags.
fn l3(frame: &[u8]) -> (usize, bool) {
    (14, u16::from_be_bytes([frame[12], frame[13]]) == ETH_P_IPV6)
}

/// Source, destination, L4 offset and protocol of an IP packet at `off`.
pub fn ip_fields(frame: &[u8], off: usize, v6: bool) -> (IpAddr, IpAddr, usize, u8) {
    if v6 {
        let s: [u8; 16] = frame[off + 8..off + 24].try_into().unwrap();
        let d: [u8; 16] = frame[off + 24..off + 40].try_into().unwrap();
        (IpAddr::from(s), IpAddr::from(d), off + 40, frame[off + 6])
    } else {
        let s: [u8; 4] = frame[off + 12..off + 16].try_into().unwrap();
        let d: [u8; 4] = frame[off + 16..off + 20].try_into().unwrap();
        let ihl = usize::from(frame[off] & 0xf) * 4;
        (IpAddr::from(s), IpAddr::from(d), off + ihl, frame[off + 9])
    }
}

/// Whether the IP header checksum (IPv4) and the TCP/UDP checksum of the
/// packet at `off` verify.
pub fn checksums_ok_at(frame: &[u8], off: usize, v6: bool) -> bool {
    let (src, dst, l4, proto) = ip_fields(frame, off, v6);
    if !v6 && checksum(&frame[off..l4], 0) != 0 {
        return false;
    }
    let seg = &frame[l4..];
    if proto == 17 && !v6 && seg[6..8] == [0, 0] {
        return true;
    }
    checksum(seg, pseudo_sum_ip(src, dst, proto, seg.len())) == 0
}

/// `checksums_ok_at` for the frame's own (outer) IP packet.
pub fn checksums_ok(frame: &[u8]) -> bool {
    let (off, v6) = l3(frame);
    checksums_ok_at(frame, off, v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let h = ipv4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            6,
            &[],
        );
        assert_eq!(checksum(&h[..20], 0), 0);
    }

    #[test]
    fn built_frames_have_valid_checksums_and_a_change_is_caught() {
        for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let mut f = tcp_frame(
                [1; 6],
                [2; 6],
                s.parse().unwrap(),
                d.parse().unwrap(),
                1,
                2,
                2,
            );
            assert!(checksums_ok(&f));
            let n = f.len();
            f[n - 3] ^= 1;
            assert!(!checksums_ok(&f));
        }
    }
}
