//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6)
//! for the virtual addresses of a new master, sent as whole Ethernet
//! frames on an `AF_PACKET` socket so the switches and neighbours learn
//! the new owner at once.
//!
//! The ARP is a request with sender and target address both the VIP and
//! target MAC ff:ff:ff:ff:ff:ff, as keepalived sends it. The NA goes to
//! ff02::1 with the Override flag and our MAC as target link-layer address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::net::MacAddr;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];

/// An `AF_PACKET` socket sending on one interface.
pub struct GarpSender {
    fd: OwnedFd,
    ifindex: u32,
    mac: MacAddr,
}

impl GarpSender {
    pub fn open(ifindex: u32, mac: MacAddr) -> io::Result<GarpSender> {
        // SAFETY: plain socket(2); protocol 0 receives nothing.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(GarpSender { fd, ifindex, mac })
    }

    /// Sends `count` announcements of `addr`.
    pub fn announce(&self, addr: IpAddr, count: u32) -> io::Result<()> {
        let (frame, dst, proto) = match addr {
            IpAddr::V4(a) => (arp_frame(self.mac, a), BROADCAST, ETH_P_ARP),
            IpAddr::V6(a) => (na_frame(self.mac, a), [0x33, 0x33, 0, 0, 0, 1], ETH_P_IPV6),
        };
        for _ in 0..count {
            self.send(&frame, dst, proto)?;
        }
        Ok(())
    }

    fn send(&self, frame: &[u8], dst: [u8; 6], proto: u16) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        // SAFETY: frame and sll are valid for the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Ethernet + ARP request announcing `vip` at `mac`.
pub fn arp_frame(mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet, IPv4, request
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&vip.octets());
    f
}

/// Ethernet + IPv6 + ICMPv6 unsolicited neighbour advertisement of `vip`.
pub fn na_frame(mac: MacAddr, vip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = vec![136, 0, 0, 0, 0x20, 0, 0, 0]; // NA, Override
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[2, 1]); // target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac.0);
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for w in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    };
    add(&vip.octets());
    add(&all_nodes.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(&icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let csum = !(sum as u16);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&all_nodes.octets());
    f.extend_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_is_a_request_for_the_vip_itself() {
        let mac = MacAddr([2, 0x98, 0, 0, 0, 1]);
        let f = arp_frame(mac, Ipv4Addr::new(10, 98, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[28..32], &[10, 98, 0, 100]);
        assert_eq!(&f[32..38], &BROADCAST);
        assert_eq!(&f[38..42], &[10, 98, 0, 100]);
    }

    #[test]
    fn na_checksum_verifies() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let vip: Ipv6Addr = "fd00::100".parse().unwrap();
        let f = na_frame(mac, vip);
        let icmp = &f[54..];
        let mut sum: u32 = 0;
        for b in [&f[22..38], &f[38..54]] {
            for w in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
        }
        sum += icmp.len() as u32 + 58;
        for w in icmp.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }
}
