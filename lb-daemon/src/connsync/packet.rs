//! The IPVS connection-sync wire format, version 1, as the Linux kernel's
//! sync daemon speaks it (`net/netfilter/ipvs/ip_vs_sync.c`), so lbd and a
//! kernel IPVS director hear each other.
//!
//! A message is one UDP datagram: an 8-byte header (reserved 0, sync id,
//! size, connection count, version 1, spare 0), then connection records, each
//! starting on a 4-byte boundary. A record is a fixed part (36 bytes for
//! IPv4, 72 for IPv6: type, protocol, version and size, flags, state, the
//! client, virtual and destination ports, firewall mark, timeout in seconds,
//! then the three addresses) followed by options (type, length, data):
//! sequence-adjustment data, persistence-engine data and name.
//!
//! What is refused, and how much: the kernel drops a whole message whose
//! header or record framing is wrong, and skips one record whose content it
//! cannot use (an unknown mandatory option, an unknown protocol, a state out
//! of range). [`decode`] does the same, with one difference: the kernel
//! applies the records before a framing error it meets half-way, while
//! [`decode`] refuses the whole datagram, so a message that is damaged
//! anywhere never installs anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// The kernel's default multicast group, port and TTL.
pub const DEFAULT_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const DEFAULT_PORT: u16 = 8848;
pub const DEFAULT_TTL: u8 = 1;

/// The protocol version this module speaks.
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const RECORD_V4_LEN: usize = 36;
pub const RECORD_V6_LEN: usize = 72;

/// Record type bit: the addresses are IPv6.
const TYPE_INET6: u8 = 1;
/// The record's size is the low 12 bits of `ver_size`; its version (0) the
/// high 4.
const SIZE_MASK: u16 = 0x0fff;
const VERSION_SHIFT: u16 = 12;

/// Option types; an unknown option is skipped only when this bit says it is
/// optional.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_OPTIONAL: u8 = 1 << 6;
/// `struct ip_vs_sync_conn_options`: two `struct ip_vs_seq` of three u32.
const SEQ_OPTION_LEN: usize = 24;
/// `IP_VS_PEDATA_MAXLEN` and `IP_VS_PENAME_MAXLEN`.
const PE_DATA_MAX: usize = 255;
const PE_NAME_MAX: usize = 16;

/// Connection flags (`IP_VS_CONN_F_*`, include/uapi/linux/ip_vs.h).
/// The forwarding method is the same field IPVS's netlink interface uses.
pub mod flags {
    pub use crate::dataplane::ipvs::attrs::fwd::{
        DROUTE, LOCALNODE, MASK as FWD_MASK, MASQ, TUNNEL,
    };
    pub const BYPASS: u32 = 0x0004;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const NO_CPORT: u32 = 0x0800;
    pub const TEMPLATE: u32 = 0x1000;
    pub const ONE_PACKET: u32 = 0x2000;
}

/// Connection states as IPVS numbers them (`IP_VS_TCP_S_*`,
/// `IP_VS_UDP_S_*`, `IP_VS_CTPL_S_*`); a state at or past the protocol's
/// count is refused.
pub mod state {
    pub const TCP_NONE: u16 = 0;
    pub const TCP_ESTABLISHED: u16 = 1;
    pub const TCP_SYN_SENT: u16 = 2;
    pub const TCP_SYN_RECV: u16 = 3;
    pub const TCP_FIN_WAIT: u16 = 4;
    pub const TCP_TIME_WAIT: u16 = 5;
    pub const TCP_CLOSE: u16 = 6;
    pub const TCP_CLOSE_WAIT: u16 = 7;
    pub const TCP_LAST_ACK: u16 = 8;
    pub const TCP_LISTEN: u16 = 9;
    pub const TCP_SYNACK: u16 = 10;
    pub const TCP_COUNT: u16 = 11;
    pub const UDP_NORMAL: u16 = 0;
    pub const UDP_COUNT: u16 = 1;
    pub const TEMPLATE_NONE: u16 = 0;
    pub const TEMPLATE_ASSURED: u16 = 1;
    pub const TEMPLATE_COUNT: u16 = 2;
}

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;
/// SCTP's state count (`IP_VS_SCTP_S_LAST`); lbd does not balance SCTP, but
/// a kernel peer may sync it, and a valid record is skipped, not refused.
const SCTP_STATE_COUNT: u16 = 10;

/// TCP sequence-number adjustments (`struct ip_vs_seq`), which only
/// application helpers such as IPVS's FTP helper make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeqAdjust {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// One synced connection, or a persistence template (`flags::TEMPLATE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncConn {
    pub protocol: u8,
    pub flags: u32,
    pub state: u16,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub dest: SocketAddr,
    pub fwmark: u32,
    /// The connection's idle timeout, in seconds (0: the receiver's
    /// default for the state).
    pub timeout: u32,
    /// (incoming, outgoing)
    pub seq: Option<(SeqAdjust, SeqAdjust)>,
    pub pe_data: Option<Vec<u8>>,
    pub pe_name: Option<Vec<u8>>,
}

impl SyncConn {
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// The forwarding method bits (`flags::MASQ`, `TUNNEL`, `DROUTE`, ...).
    pub fn forward(&self) -> u32 {
        self.flags & flags::FWD_MASK
    }

    fn is_v6(&self) -> bool {
        self.client.is_ipv6()
    }

    /// Bytes this record takes on the wire, padding excluded.
    pub fn wire_len(&self) -> usize {
        let mut len = if self.is_v6() {
            RECORD_V6_LEN
        } else {
            RECORD_V4_LEN
        };
        if self.seq.is_some() {
            len += 2 + SEQ_OPTION_LEN;
        }
        // As in the kernel, the engine's name goes only with its data.
        if let Some(d) = &self.pe_data {
            len += 2 + d.len();
            if let Some(n) = &self.pe_name {
                len += 2 + n.len();
            }
        }
        len
    }
}

/// Why a whole datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a message header ({0} bytes)")]
    TooShort(usize),
    #[error("the header's size ({header}) is not the datagram's ({datagram})")]
    SizeMismatch { header: usize, datagram: usize },
    #[error("sync id {got}, this node listens for {want}")]
    OtherSyncId { got: u8, want: u8 },
    #[error("a version 0 message (lbd speaks version 1 only)")]
    Version0,
    #[error("record {index} runs past the end of the message")]
    RecordOverrun { index: usize },
    #[error("record {index} has version {version} (0 expected)")]
    RecordVersion { index: usize, version: u16 },
    #[error("record {index} has an unknown address type {kind}")]
    AddressType { index: usize, kind: u8 },
    #[error("record {index} is shorter ({size} bytes) than its addresses")]
    RecordTooShort { index: usize, size: usize },
    #[error("record {index}: option {kind} is malformed")]
    BadOption { index: usize, kind: u8 },
}

/// Why one record of an otherwise sound message was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// An option the record says is mandatory and this node does not know.
    UnknownOption,
    /// A protocol IPVS does not carry.
    UnknownProtocol,
    /// A state past the protocol's last.
    BadState,
}

/// A decoded message: the records to apply and those skipped, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub syncid: u8,
    pub conns: Vec<SyncConn>,
    pub skipped: Vec<SkipReason>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v6(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

fn v4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Decodes one datagram. `syncid` is the id this node listens for (0: any,
/// as in the kernel).
pub fn decode(buf: &[u8], syncid: u8) -> Result<Message, DecodeError> {
    // The kernel's first check is against the 4-byte version 0 header.
    if buf.len() < 4 {
        return Err(DecodeError::TooShort(buf.len()));
    }
    let size = usize::from(be16(buf, 2));
    if size != buf.len() {
        return Err(DecodeError::SizeMismatch {
            header: size,
            datagram: buf.len(),
        });
    }
    let id = buf[1];
    if syncid != 0 && id != syncid {
        return Err(DecodeError::OtherSyncId {
            got: id,
            want: syncid,
        });
    }
    if buf.len() < HEADER_LEN || buf[0] != 0 || buf[5] != VERSION || be16(buf, 6) != 0 {
        return Err(DecodeError::Version0);
    }
    let count = usize::from(buf[4]);
    let mut msg = Message {
        syncid: id,
        conns: Vec::with_capacity(count),
        skipped: Vec::new(),
    };
    let mut at = HEADER_LEN;
    for index in 0..count {
        if at + RECORD_V4_LEN > buf.len() {
            return Err(DecodeError::RecordOverrun { index });
        }
        let ver_size = be16(buf, at + 2);
        let rec_len = usize::from(ver_size & SIZE_MASK);
        let end = at + rec_len;
        if end > buf.len() {
            return Err(DecodeError::RecordOverrun { index });
        }
        if ver_size >> VERSION_SHIFT != 0 {
            return Err(DecodeError::RecordVersion {
                index,
                version: ver_size >> VERSION_SHIFT,
            });
        }
        match record(&buf[at..end], index)? {
            Ok(conn) => msg.conns.push(conn),
            Err(reason) => msg.skipped.push(reason),
        }
        at += (rec_len + 3) & !3;
    }
    Ok(msg)
}

/// One record: framing errors refuse the message, content errors skip it.
fn record(r: &[u8], index: usize) -> Result<Result<SyncConn, SkipReason>, DecodeError> {
    if r.len() < RECORD_V4_LEN {
        return Err(DecodeError::RecordTooShort {
            index,
            size: r.len(),
        });
    }
    let kind = r[0];
    let fixed = match kind {
        0 => RECORD_V4_LEN,
        TYPE_INET6 => RECORD_V6_LEN,
        _ => return Err(DecodeError::AddressType { index, kind }),
    };
    if r.len() < fixed {
        return Err(DecodeError::RecordTooShort {
            index,
            size: r.len(),
        });
    }
    let protocol = r[1];
    let flags = be32(r, 4);
    let state = be16(r, 8);
    let (cport, vport, dport) = (be16(r, 10), be16(r, 12), be16(r, 14));
    let fwmark = be32(r, 16);
    let timeout = be32(r, 20);
    let (client, vip, dest): (IpAddr, IpAddr, IpAddr) = if kind == TYPE_INET6 {
        (v6(r, 24).into(), v6(r, 40).into(), v6(r, 56).into())
    } else {
        (v4(r, 24).into(), v4(r, 28).into(), v4(r, 32).into())
    };

    let mut conn = SyncConn {
        protocol,
        flags,
        state,
        client: SocketAddr::new(client, cport),
        vip: SocketAddr::new(vip, vport),
        dest: SocketAddr::new(dest, dport),
        fwmark,
        timeout,
        seq: None,
        pe_data: None,
        pe_name: None,
    };
    let mut skip = None;
    let mut at = fixed;
    while at < r.len() {
        if at + 2 > r.len() {
            return Err(DecodeError::BadOption { index, kind: r[at] });
        }
        let (otype, olen) = (r[at], usize::from(r[at + 1]));
        let data_at = at + 2;
        let bad = DecodeError::BadOption { index, kind: otype };
        if olen == 0 || data_at + olen > r.len() {
            return Err(bad);
        }
        let data = &r[data_at..data_at + olen];
        match otype & !OPT_F_OPTIONAL {
            OPT_SEQ_DATA => {
                if olen != SEQ_OPTION_LEN || conn.seq.is_some() {
                    return Err(bad);
                }
                let seq = |o: usize| SeqAdjust {
                    init_seq: be32(data, o),
                    delta: be32(data, o + 4),
                    previous_delta: be32(data, o + 8),
                };
                conn.seq = Some((seq(0), seq(12)));
            }
            OPT_PE_DATA => {
                if olen > PE_DATA_MAX || conn.pe_data.is_some() {
                    return Err(bad);
                }
                conn.pe_data = Some(data.to_vec());
            }
            OPT_PE_NAME => {
                if olen > PE_NAME_MAX || conn.pe_name.is_some() {
                    return Err(bad);
                }
                conn.pe_name = Some(data.to_vec());
            }
            _ if otype & OPT_F_OPTIONAL != 0 => {}
            _ => skip = skip.or(Some(SkipReason::UnknownOption)),
        }
        at = data_at + olen;
    }
    if let Some(reason) = skip {
        return Ok(Err(reason));
    }
    // As the kernel: a hash-table bit means nothing on another node, and an
    // engine's name without its data is not used.
    conn.flags &= !flags::HASHED;
    if conn.pe_data.is_none() {
        conn.pe_name = None;
    }
    let states = if conn.is_template() {
        state::TEMPLATE_COUNT
    } else {
        match protocol {
            IPPROTO_TCP => state::TCP_COUNT,
            IPPROTO_UDP => state::UDP_COUNT,
            IPPROTO_SCTP => SCTP_STATE_COUNT,
            _ => return Ok(Err(SkipReason::UnknownProtocol)),
        }
    };
    if state >= states {
        return Ok(Err(SkipReason::BadState));
    }
    Ok(Ok(conn))
}

/// Why a record cannot be added to a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the message is full")]
    Full,
    #[error("client, virtual and destination addresses are not of one family")]
    MixedFamilies,
    #[error("option data too long ({0} bytes)")]
    OptionTooLong(usize),
}

/// Builds one message, records appended until `maxlen` bytes (the kernel's
/// `sync_maxlen`: the datagram's UDP payload) or 255 records.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    maxlen: usize,
}

impl MessageBuilder {
    pub fn new(syncid: u8, maxlen: usize) -> Self {
        let mut buf = Vec::with_capacity(maxlen.max(HEADER_LEN));
        buf.extend_from_slice(&[0, syncid, 0, HEADER_LEN as u8, 0, VERSION, 0, 0]);
        MessageBuilder { buf, maxlen }
    }

    pub fn count(&self) -> usize {
        usize::from(self.buf[4])
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Appends a record, or says the message is full (then send it and
    /// start another).
    pub fn push(&mut self, c: &SyncConn) -> Result<(), EncodeError> {
        let v6 = c.is_v6();
        if c.vip.is_ipv6() != v6 || c.dest.is_ipv6() != v6 {
            return Err(EncodeError::MixedFamilies);
        }
        for (d, max) in [(&c.pe_data, PE_DATA_MAX), (&c.pe_name, PE_NAME_MAX)] {
            match d {
                Some(d) if d.is_empty() || d.len() > max => {
                    return Err(EncodeError::OptionTooLong(d.len()))
                }
                _ => {}
            }
        }
        let len = c.wire_len();
        let pad = (4 - self.buf.len() % 4) % 4;
        if self.count() == 255 || self.buf.len() + pad + len > self.maxlen {
            return Err(EncodeError::Full);
        }
        self.buf.resize(self.buf.len() + pad, 0);
        let b = &mut self.buf;
        b.push(if v6 { TYPE_INET6 } else { 0 });
        b.push(c.protocol);
        b.extend_from_slice(&(len as u16 & SIZE_MASK).to_be_bytes());
        b.extend_from_slice(&(c.flags & !flags::HASHED).to_be_bytes());
        b.extend_from_slice(&c.state.to_be_bytes());
        for port in [c.client.port(), c.vip.port(), c.dest.port()] {
            b.extend_from_slice(&port.to_be_bytes());
        }
        b.extend_from_slice(&c.fwmark.to_be_bytes());
        b.extend_from_slice(&c.timeout.to_be_bytes());
        for addr in [c.client.ip(), c.vip.ip(), c.dest.ip()] {
            match addr {
                IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
            }
        }
        if let Some((inc, out)) = &c.seq {
            b.extend_from_slice(&[OPT_SEQ_DATA, SEQ_OPTION_LEN as u8]);
            for s in [inc, out] {
                b.extend_from_slice(&s.init_seq.to_be_bytes());
                b.extend_from_slice(&s.delta.to_be_bytes());
                b.extend_from_slice(&s.previous_delta.to_be_bytes());
            }
        }
        if let Some(d) = &c.pe_data {
            b.extend_from_slice(&[OPT_PE_DATA, d.len() as u8]);
            b.extend_from_slice(d);
            if let Some(n) = &c.pe_name {
                b.extend_from_slice(&[OPT_PE_NAME, n.len() as u8]);
                b.extend_from_slice(n);
            }
        }
        b[4] += 1;
        let size = b.len() as u16;
        b[2..4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }

    /// The datagram.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The kernel's default `maxlen` for a sender: a 1500-byte MTU less the IP
/// and UDP headers, whatever the interface's MTU.
pub fn default_send_maxlen(ipv6_group: bool) -> usize {
    1500 - headers_len(ipv6_group)
}

/// The kernel's receive buffer: the interface's MTU (at least 1500) less the
/// IP and UDP headers.
pub fn default_recv_maxlen(mtu: u32, ipv6_group: bool) -> usize {
    mtu.clamp(1500, 65535) as usize - headers_len(ipv6_group)
}

fn headers_len(ipv6_group: bool) -> usize {
    if ipv6_group {
        40 + 8
    } else {
        20 + 8
    }
}

#[cfg(test)]
mod tests;
