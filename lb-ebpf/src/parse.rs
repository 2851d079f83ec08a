//! Parsing: from a frame to the flow it belongs to, with a bounds check on
//! every access. Anything the balancer does not handle yields `None` and is
//! passed to the kernel untouched:
//! - IPv4 with options, and every IPv4 fragment (a non-first fragment has no
//!   ports; the kernel reassembles or drops them);
//! - IPv6 with extension headers (including the fragment header);
//! - protocols other than TCP, UDP and the ICMP errors that concern a flow;
//! - more than two VLAN tags;
//! - a TCP or UDP header inconsistent with its packet (UDP length below 8
//!   or past the packet, TCP data offset below 5 or past the packet, an IP
//!   length past the frame): passed untouched, never balanced nor given a
//!   connection entry.

use lb_common::{IPPROTO_TCP, IPPROTO_UDP};


use crate::ctx::Net;
use crate::frame::at;
use crate::headers::*;
use crate::icmp;

/// A packet of a flow the balancer may own.
pub struct Pkt {
    /// Offset of the IP header (after Ethernet and any VLAN tags).
    pub l3: usize,
    /// Offset of the TCP/UDP header (ICMP: of the ICMP header).
    pub l4: usize,
    pub v6: bool,
    pub vlan: bool,
    pub proto: u8,
    /// The flow in the client → VIP direction. For an ICMP error this is
    /// the flow of the packet quoted inside it, turned around.
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// An ICMP error about `src → dst` (not a packet of the flow itself).
    pub icmp: bool,
    /// Length of the whole frame. Passed in as a number: deriving it from
    /// the packet pointers again later makes LLVM spill a packet pointer
    /// in 32 bits, which the verifier refuses.
    pub frame_len: u32,
}

/// `Ok(None)`: not ours. `Err`: truncated where it claims more.
#[inline(always)]
pub fn parse<C: Net>(ctx: &C, frame_len: u32) -> Result<Option<Pkt>, ()> {
    let mut ether_type = at::<EthHdr, C>(ctx, 0)?.ether_type;
    let mut l3 = EthHdr::LEN;
    let mut vlan = false;
    // Up to two tags (802.1ad outer, 802.1Q inner).
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        ether_type = at::<VlanHdr, C>(ctx, l3)?.ether_type;
        l3 += VlanHdr::LEN;
        vlan = true;
        if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
            ether_type = at::<VlanHdr, C>(ctx, l3)?.ether_type;
            l3 += VlanHdr::LEN;
            if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
                return Ok(None);
            }
        }
    }
    let mut pkt = if ether_type == ETH_P_IPV4 {
        let ip: &Ipv4Hdr = at(ctx, l3)?;
        if ip.version_ihl != 0x45 || ip.frag_off & IPV4_FRAG_MASK != 0 {
            return Ok(None);
        }
        if (u16::from_be(ip.tot_len) as usize) < Ipv4Hdr::LEN {
            return Ok(None);
        }
        Pkt {
            l3,
            l4: l3 + Ipv4Hdr::LEN,
            v6: false,
            vlan,
            proto: ip.protocol,
            src: [ip.saddr, 0, 0, 0],
            dst: [ip.daddr, 0, 0, 0],
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            icmp: false,
            frame_len,
        }
    } else if ether_type == ETH_P_IPV6 {
        let ip: &Ipv6Hdr = at(ctx, l3)?;
        if u32::from_be(ip.vtc_flow) >> 28 != 6 {
            return Ok(None);
        }
        Pkt {
            l3,
            l4: l3 + Ipv6Hdr::LEN,
            v6: true,
            vlan,
            proto: ip.nexthdr,
            src: ip.saddr,
            dst: ip.daddr,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            icmp: false,
            frame_len,
        }
    } else {
        return Ok(None);
    };
    let ip_payload = if pkt.v6 {
        let ip: &Ipv6Hdr = at(ctx, pkt.l3)?;
        u16::from_be(ip.payload_len) as usize
    } else {
        let ip: &Ipv4Hdr = at(ctx, pkt.l3)?;
        u16::from_be(ip.tot_len) as usize - Ipv4Hdr::LEN
    };
    // What the frame holds after the IP header: the IP length may not
    // claim more (Ethernet padding may make the frame longer, never
    // shorter).
    let in_frame = (frame_len as usize).saturating_sub(pkt.l4);
    let l4_proto = pkt.proto == IPPROTO_TCP || pkt.proto == IPPROTO_UDP;
    if l4_proto && ip_payload > in_frame {
        return Ok(malformed());
    }
    match pkt.proto {
        IPPROTO_TCP => {
            if ip_payload < TcpHdr::LEN {
                return Ok(malformed());
            }
            let tcp: &TcpHdr = at(ctx, pkt.l4)?;
            // Data offset in words: at least the 5 of the fixed header, and
            // the options must end inside the segment.
            let header = usize::from(tcp.off_res >> 4) * 4;
            if header < TcpHdr::LEN || header > ip_payload {
                return Ok(malformed());
            }
            pkt.sport = tcp.source;
            pkt.dport = tcp.dest;
            pkt.tcp_flags = tcp.flags;
        }
        IPPROTO_UDP => {
            if ip_payload < UdpHdr::LEN {
                return Ok(malformed());
            }
            let udp: &UdpHdr = at(ctx, pkt.l4)?;
            // The kernel drops a datagram whose length is below the header
            // or past the packet (and trims one shorter than its packet).
            let len = usize::from(u16::from_be(udp.len));
            if len < UdpHdr::LEN || len > ip_payload {
                return Ok(malformed());
            }
            pkt.sport = udp.source;
            pkt.dport = udp.dest;
        }
        IPPROTO_ICMP if !pkt.v6 => return icmp::parse_error(ctx, pkt, 3),
        IPPROTO_ICMPV6 if pkt.v6 => return icmp::parse_error(ctx, pkt, 2),
        _ => return Ok(None),
    }
    Ok(Some(pkt))
}

/// A frame whose L4 header does not fit its packet: it goes to the kernel
/// untouched (counted with every other pass). A counter of its own waits
/// for `GLOBAL_STATS` to grow, which needs the pinned map migrated.
#[inline(always)]
fn malformed() -> Option<Pkt> {
    None
}
