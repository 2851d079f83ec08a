//! The VRRP advertisement wire format.
//!
//! VRRPv2 (RFC 3768): 8-byte header, IPv4 addresses, 8 bytes of
//! authentication data; the interval is 8 bits of seconds and the checksum
//! covers the VRRP message only.
//!
//! VRRPv3 (RFC 5798, RFC 9568): 8-byte header, IPv4 or IPv6 addresses, no
//! authentication; the interval is 12 bits of centiseconds and the checksum
//! also covers the IPv4/IPv6 pseudo-header built with the real destination
//! (the multicast group, or the unicast peer).
//!
//! [`decode`] takes the VRRP message (the IP payload); [`decode_ipv4`] takes
//! a whole IPv4 packet as a raw socket returns it and also checks TTL and
//! protocol. Checks that depend on our configuration (VRID, auth, interval,
//! address list) are in `validate`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reason::DropReason;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// TTL / hop limit every advert is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// The VRRP IPv4 multicast group.
pub const MCAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group.
pub const MCAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// IP TOS keepalived sends with (internetwork control).
pub const VRRP_TOS: u8 = 0xc0;

const HEADER_LEN: usize = 8;
const AUTH_DATA_LEN: usize = 8;
const IPV4_HEADER_LEN: usize = 20;
const TYPE_ADVERTISEMENT: u8 = 1;
/// An Ethernet frame is padded to 60 bytes, so an IPv4 packet shorter than
/// this may arrive with trailing padding.
const MAX_PADDED_IPV4_LEN: usize = 60 - 14;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// The number in the version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// An advertisement interval, kept in centiseconds: v3's unit, and v2's
/// whole seconds convert to it exactly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// Largest interval the 12-bit v3 field holds (40.95 s).
    pub const V3_MAX_CENTIS: u16 = 0x0fff;

    pub const fn from_centis(centis: u16) -> Self {
        AdvertInterval(centis)
    }

    /// v2's unit. 255 s is 25 500 cs, which fits.
    pub const fn from_secs(secs: u8) -> Self {
        AdvertInterval(secs as u16 * 100)
    }

    pub fn centis(self) -> u16 {
        self.0
    }

    /// The interval in whole seconds, if it is a whole number of seconds
    /// that fits v2's 8-bit field.
    pub fn whole_secs(self) -> Option<u8> {
        let (secs, rest) = (self.0 / 100, self.0 % 100);
        if rest == 0 {
            u8::try_from(secs).ok()
        } else {
            None
        }
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0) * 10)
    }
}

impl std::fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02} s", self.0 / 100, self.0 % 100)
    }
}

/// VRRPv2 authentication. v3 has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auth {
    /// Type 0. The 8 auth bytes are sent as zero and ignored on receipt.
    None,
    /// Type 1, simple text password, zero padded to 8 bytes.
    Pass([u8; AUTH_DATA_LEN]),
    /// Any other type as received (2 is IPsec AH, which we do not speak).
    Other {
        auth_type: u8,
        data: [u8; AUTH_DATA_LEN],
    },
}

impl Auth {
    /// A PASS password. Like keepalived, only the first 8 bytes count; the
    /// rest is zero padding.
    pub fn pass(password: &[u8]) -> Auth {
        let mut data = [0u8; AUTH_DATA_LEN];
        let n = password.len().min(AUTH_DATA_LEN);
        data[..n].copy_from_slice(&password[..n]);
        Auth::Pass(data)
    }

    /// The auth type number on the wire.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
            Auth::Other { auth_type, .. } => *auth_type,
        }
    }

    fn data(&self) -> [u8; AUTH_DATA_LEN] {
        match self {
            Auth::None => [0; AUTH_DATA_LEN],
            Auth::Pass(data) | Auth::Other { data, .. } => *data,
        }
    }
}

/// A VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: whole seconds; v3: the sender's Max Advertise Interval.
    pub max_advert_int: AdvertInterval,
    pub addrs: Vec<IpAddr>,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// The addresses an advert travels between: they give the address family
/// and, for v3, the checksum's pseudo-header. `dst` must be the real
/// destination (the group or the unicast peer), as keepalived uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PseudoHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl PseudoHeader {
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        PseudoHeader { src, dst }
    }

    fn is_ipv6(&self) -> Result<bool, DecodeError> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(false),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(true),
            _ => Err(DecodeError::FamilyMismatch {
                src: self.src,
                dst: self.dst,
            }),
        }
    }
}

/// Why bytes could not be read as a VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet truncated: {len} bytes, need at least {need}")]
    Truncated { len: usize, need: usize },
    #[error("VRRP length {len} does not match {expected} for {count} address(es)")]
    LengthMismatch {
        len: usize,
        expected: usize,
        count: u8,
    },
    #[error("unsupported VRRP version {0}")]
    UnsupportedVersion(u8),
    #[error("VRRPv2 received over IPv6 (v2 is IPv4 only)")]
    V2OverIpv6,
    #[error("VRRP packet type {0}, expected 1 (advertisement)")]
    WrongType(u8),
    #[error("bad checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum { got: u16, expected: u16 },
    #[error("source {src} and destination {dst} are of different address families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("not an IPv4 packet (version {0})")]
    NotIpv4(u8),
    #[error("bad IPv4 header length {0} bytes")]
    BadIpHeaderLength(usize),
    #[error("IPv4 total length {total_len} does not match the {received} bytes received")]
    IpLengthMismatch { total_len: usize, received: usize },
    #[error("IP protocol {0}, expected 112 (VRRP)")]
    NotVrrp(u8),
    #[error("TTL/hop limit {0}, expected 255")]
    BadTtl(u8),
}

impl DecodeError {
    /// The counter label for this error.
    pub fn reason(&self) -> DropReason {
        match self {
            DecodeError::Truncated { .. }
            | DecodeError::LengthMismatch { .. }
            | DecodeError::IpLengthMismatch { .. } => DropReason::BadLength,
            DecodeError::UnsupportedVersion(_) | DecodeError::V2OverIpv6 => {
                DropReason::WrongVersion
            }
            DecodeError::WrongType(_) => DropReason::WrongType,
            DecodeError::BadChecksum { .. } => DropReason::BadChecksum,
            DecodeError::FamilyMismatch { .. }
            | DecodeError::NotIpv4(_)
            | DecodeError::BadIpHeaderLength(_) => DropReason::Malformed,
            DecodeError::NotVrrp(_) => DropReason::NotVrrp,
            DecodeError::BadTtl(_) => DropReason::BadTtl,
        }
    }
}

/// Why an advert could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("address {addr} is not of the family of {src} -> {dst}")]
    FamilyMismatch {
        addr: IpAddr,
        src: IpAddr,
        dst: IpAddr,
    },
    #[error("VRRPv2 cannot be sent over IPv6")]
    V2OverIpv6,
    #[error("interval {interval} cannot be sent in {version}")]
    IntervalOutOfRange {
        version: Version,
        interval: AdvertInterval,
    },
    #[error("VRRPv3 has no authentication, got auth type {0}")]
    AuthOnV3(u8),
}

/// Decodes a VRRP message (the IP payload, without trailing padding) sent
/// from `ph.src` to `ph.dst`. Verifies version, type, length and checksum.
pub fn decode(buf: &[u8], ph: &PseudoHeader) -> Result<Advert, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            len: buf.len(),
            need: HEADER_LEN,
        });
    }
    let version = match buf[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => return Err(DecodeError::UnsupportedVersion(other)),
    };
    let packet_type = buf[0] & 0x0f;
    if packet_type != TYPE_ADVERTISEMENT {
        return Err(DecodeError::WrongType(packet_type));
    }
    let ipv6 = ph.is_ipv6()?;
    if ipv6 && version == Version::V2 {
        return Err(DecodeError::V2OverIpv6);
    }
    let count = buf[3];
    let addr_len = if ipv6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 {
        AUTH_DATA_LEN
    } else {
        0
    };
    let expected = HEADER_LEN + usize::from(count) * addr_len + auth_len;
    if buf.len() != expected {
        return Err(DecodeError::LengthMismatch {
            len: buf.len(),
            expected,
            count,
        });
    }

    verify_checksum(version, buf, ph)?;

    let (max_advert_int, auth) = match version {
        Version::V2 => {
            let mut data = [0u8; AUTH_DATA_LEN];
            data.copy_from_slice(&buf[expected - AUTH_DATA_LEN..]);
            let auth = match buf[4] {
                0 => Auth::None,
                1 => Auth::Pass(data),
                auth_type => Auth::Other { auth_type, data },
            };
            (AdvertInterval::from_secs(buf[5]), auth)
        }
        Version::V3 => {
            // The top 4 bits are reserved: ignored on receipt.
            let centis = u16::from_be_bytes([buf[4], buf[5]]) & AdvertInterval::V3_MAX_CENTIS;
            (AdvertInterval::from_centis(centis), Auth::None)
        }
    };

    let addrs = buf[HEADER_LEN..expected - auth_len]
        .chunks_exact(addr_len)
        .map(|chunk| read_addr(chunk, ipv6))
        .collect();

    Ok(Advert {
        version,
        vrid: buf[1],
        priority: buf[2],
        max_advert_int,
        addrs,
        auth,
    })
}

/// Encodes an advert to be sent from `ph.src` to `ph.dst`, checksum filled in.
pub fn encode(advert: &Advert, ph: &PseudoHeader) -> Result<Vec<u8>, EncodeError> {
    let ipv6 = ph.is_ipv6().map_err(|_| EncodeError::FamilyMismatch {
        addr: ph.dst,
        src: ph.src,
        dst: ph.dst,
    })?;
    let count = u8::try_from(advert.addrs.len())
        .map_err(|_| EncodeError::TooManyAddresses(advert.addrs.len()))?;
    if let Some(addr) = advert.addrs.iter().find(|a| a.is_ipv6() != ipv6) {
        return Err(EncodeError::FamilyMismatch {
            addr: *addr,
            src: ph.src,
            dst: ph.dst,
        });
    }
    let interval_error = || EncodeError::IntervalOutOfRange {
        version: advert.version,
        interval: advert.max_advert_int,
    };
    let (byte4, byte5) = match advert.version {
        Version::V2 => {
            if ipv6 {
                return Err(EncodeError::V2OverIpv6);
            }
            let secs = advert
                .max_advert_int
                .whole_secs()
                .ok_or_else(interval_error)?;
            (advert.auth.type_code(), secs)
        }
        Version::V3 => {
            if advert.auth != Auth::None {
                return Err(EncodeError::AuthOnV3(advert.auth.type_code()));
            }
            let centis = advert.max_advert_int.centis();
            if centis > AdvertInterval::V3_MAX_CENTIS {
                return Err(interval_error());
            }
            let [hi, lo] = centis.to_be_bytes();
            (hi, lo)
        }
    };

    let mut buf = Vec::with_capacity(HEADER_LEN + advert.addrs.len() * 16 + AUTH_DATA_LEN);
    buf.extend_from_slice(&[
        advert.version.number() << 4 | TYPE_ADVERTISEMENT,
        advert.vrid,
        advert.priority,
        count,
        byte4,
        byte5,
        0,
        0,
    ]);
    for addr in &advert.addrs {
        match addr {
            IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
        }
    }
    if advert.version == Version::V2 {
        buf.extend_from_slice(&advert.auth.data());
    }
    let checksum = compute_checksum(advert.version, &buf, ph);
    buf[6..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(buf)
}

/// An advert decoded from a whole IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Advert {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub advert: Advert,
}

/// Decodes an IPv4 packet as an IPv4 raw socket returns it (header
/// included). Checks IHL, total length (tolerating Ethernet padding),
/// protocol 112 and TTL 255, then the VRRP message with the packet's own
/// addresses as the pseudo-header.
pub fn decode_ipv4(packet: &[u8]) -> Result<Ipv4Advert, DecodeError> {
    if packet.len() < IPV4_HEADER_LEN {
        return Err(DecodeError::Truncated {
            len: packet.len(),
            need: IPV4_HEADER_LEN,
        });
    }
    let ip_version = packet[0] >> 4;
    if ip_version != 4 {
        return Err(DecodeError::NotIpv4(ip_version));
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN || ihl > packet.len() {
        return Err(DecodeError::BadIpHeaderLength(ihl));
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let padded = total_len < packet.len() && packet.len() <= MAX_PADDED_IPV4_LEN;
    if total_len < ihl || (total_len != packet.len() && !padded) {
        return Err(DecodeError::IpLengthMismatch {
            total_len,
            received: packet.len(),
        });
    }
    let protocol = packet[9];
    if protocol != IPPROTO_VRRP {
        return Err(DecodeError::NotVrrp(protocol));
    }
    let ttl = packet[8];
    if ttl != VRRP_TTL {
        return Err(DecodeError::BadTtl(ttl));
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let advert = decode(
        &packet[ihl..total_len],
        &PseudoHeader::new(src.into(), dst.into()),
    )?;
    Ok(Ipv4Advert { src, dst, advert })
}

/// The hop-limit check for IPv6, where the raw socket hands over only the
/// payload and the hop limit comes in ancillary data.
pub fn check_hop_limit(hop_limit: u8) -> Result<(), DecodeError> {
    if hop_limit == VRRP_TTL {
        Ok(())
    } else {
        Err(DecodeError::BadTtl(hop_limit))
    }
}

/// The VRID of a message too broken to decode, so its drop can still be
/// counted against the right instance.
pub fn peek_vrid(buf: &[u8]) -> Option<u8> {
    buf.get(1).copied()
}

/// Encodes a whole IPv4 packet the way keepalived sends it: TOS 0xc0,
/// TTL 255, DF clear, the given IP id, header checksum filled in.
pub fn encode_ipv4(
    advert: &Advert,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
) -> Result<Vec<u8>, EncodeError> {
    let payload = encode(advert, &PseudoHeader::new(src.into(), dst.into()))?;
    // The payload is at most 8 + 255 * 4 + 8 bytes, so this cannot overflow.
    let total_len = (IPV4_HEADER_LEN + payload.len()) as u16;
    let mut packet = Vec::with_capacity(usize::from(total_len));
    packet.extend_from_slice(&[0x45, VRRP_TOS]);
    packet.extend_from_slice(&total_len.to_be_bytes());
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&[0, 0, VRRP_TTL, IPPROTO_VRRP, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    let checksum = !fold(sum_words(0, &packet));
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(&payload);
    Ok(packet)
}

fn read_addr(chunk: &[u8], ipv6: bool) -> IpAddr {
    if ipv6 {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(chunk);
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]))
    }
}

/// Accepts the checksum as keepalived does: the one's complement sum over
/// everything, checksum field included, must be all ones. That also takes a
/// sender's 0xffff for 0x0000.
fn verify_checksum(version: Version, buf: &[u8], ph: &PseudoHeader) -> Result<(), DecodeError> {
    let got = u16::from_be_bytes([buf[6], buf[7]]);
    let total = fold(sum_words(checksum_start(version, buf.len(), ph), buf));
    if total == 0xffff {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum {
            got,
            expected: compute_checksum(version, buf, ph),
        })
    }
}

/// The checksum `buf` should carry, its own checksum field taken as zero.
fn compute_checksum(version: Version, buf: &[u8], ph: &PseudoHeader) -> u16 {
    let start = checksum_start(version, buf.len(), ph);
    let sum = sum_words(sum_words(start, &buf[..6]), &buf[8..]);
    !fold(sum)
}

/// v3 starts from the pseudo-header sum; v2 from nothing.
fn checksum_start(version: Version, vrrp_len: usize, ph: &PseudoHeader) -> u64 {
    if version == Version::V2 {
        return 0;
    }
    match (ph.src, ph.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let sum = sum_words(sum_words(0, &src.octets()), &dst.octets());
            // VRRP lengths fit 16 bits: at most 8 + 255 * 16.
            sum_words(sum, &[0, IPPROTO_VRRP]) + vrrp_len as u64
        }
        _ => {
            let (src, dst) = (to_v6_octets(ph.src), to_v6_octets(ph.dst));
            let sum = sum_words(sum_words(0, &src), &dst);
            sum_words(sum, &(vrrp_len as u32).to_be_bytes()) + u64::from(IPPROTO_VRRP)
        }
    }
}

fn to_v6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Adds `data` as big-endian 16-bit words (odd tail padded with zero).
fn sum_words(acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut acc = acc;
    for word in &mut chunks {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries back in: the one's complement sum.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}
