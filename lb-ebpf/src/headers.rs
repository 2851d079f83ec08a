//! The packet headers the program reads, as they sit on the wire.

pub const ETH_P_IPV4: u16 = 0x0800u16.to_be();
/// More-fragments flag and fragment offset, in network order.
pub const IPV4_FRAG_MASK: u16 = 0x3fffu16.to_be();

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

/// Fixed part of the TCP header; only its length matters here.
#[repr(C)]
pub struct TcpHdr {
    pub source: u16,
    pub dest: u16,
    pub seq: u32,
    pub ack_seq: u32,
    pub off_flags: u16,
    pub window: u16,
    pub check: u16,
    pub urg_ptr: u16,
}

impl TcpHdr {
    pub const LEN: usize = core::mem::size_of::<Self>();
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
}
