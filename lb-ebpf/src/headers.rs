//! Packet headers as they sit on the wire, and the offsets the program uses.

pub const ETH_P_IPV4: u16 = 0x0800u16.to_be();
pub const ETH_P_IPV6: u16 = 0x86ddu16.to_be();
pub const ETH_P_8021Q: u16 = 0x8100u16.to_be();
pub const ETH_P_8021AD: u16 = 0x88a8u16.to_be();
/// More-fragments flag and fragment offset, in network order.
pub const IPV4_FRAG_MASK: u16 = 0x3fffu16.to_be();
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_ICMPV6: u8 = 58;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Copies a MAC address byte by byte. A plain `*dst = *src` of a `[u8; 6]`
/// becomes, on BPF, a call to a byte-looping `memmove`, several times the
/// instructions of these six stores. Volatile so the compiler cannot fold
/// the bytes back into that call.
#[inline(always)]
pub fn copy_mac(dst: &mut [u8; 6], src: &[u8; 6]) {
    let (dst, src) = (dst.as_mut_ptr(), src.as_ptr());
    let mut i = 0;
    while i < 6 {
        // SAFETY: i < 6, within both arrays; they do not overlap (one is
        // borrowed mutably, the other shared).
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
        i += 1;
    }
}

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// Network byte order.
    pub ether_type: u16,
}

impl EthHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
}

/// An 802.1Q/802.1ad tag after the MAC addresses. Unread while tagged
/// frames all pass (see `parse`); kept for interfaces that carry VLANs.
#[allow(dead_code)]
#[repr(C)]
pub struct VlanHdr {
    pub tci: u16,
    pub ether_type: u16,
}

#[allow(dead_code)]
impl VlanHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub check: u16,
    pub saddr: u32,
    pub daddr: u32,
}

impl Ipv4Hdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: u32,
    pub payload_len: u16,
    pub nexthdr: u8,
    pub hop_limit: u8,
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
}

impl Ipv6Hdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
}

#[repr(C)]
pub struct TcpHdr {
    pub source: u16,
    pub dest: u16,
    pub seq: u32,
    pub ack_seq: u32,
    pub off_res: u8,
    pub flags: u8,
    pub window: u16,
    pub check: u16,
    pub urg_ptr: u16,
}

impl TcpHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
    /// Offset of the checksum within the header.
    pub const CHECK: usize = 16;
}

#[repr(C)]
pub struct UdpHdr {
    pub source: u16,
    pub dest: u16,
    pub len: u16,
    pub check: u16,
}

impl UdpHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
    pub const CHECK: usize = 6;
}

/// ICMP and ICMPv6 share the first four bytes (type, code, checksum) and an
/// error message carries 4 more bytes before the offending packet.
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    pub check: u16,
    pub rest: u32,
}

impl IcmpHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
}
