//! The IPVS generic netlink message and its attributes, with the numbers and
//! layouts of `include/uapi/linux/ip_vs.h`.
//!
//! Attributes are kept as kind + bytes (nested ones as a list) so a message
//! round-trips exactly; [`Service`] and [`Dest`] are the typed views the
//! data plane works with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netlink_packet_core::{
    DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, ParseableParametrized, NLA_F_NESTED,
    NLA_TYPE_MASK,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

pub const FAMILY_NAME: &str = "IPVS";
pub const FAMILY_VERSION: u8 = 1;

/// Commands (`IPVS_CMD_*`).
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    /// Only the reply to GET_INFO.
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const FLUSH: u8 = 17;

    pub fn name(cmd: u8) -> &'static str {
        match cmd {
            NEW_SERVICE => "NEW_SERVICE",
            SET_SERVICE => "SET_SERVICE",
            DEL_SERVICE => "DEL_SERVICE",
            GET_SERVICE => "GET_SERVICE",
            NEW_DEST => "NEW_DEST",
            SET_DEST => "SET_DEST",
            DEL_DEST => "DEL_DEST",
            GET_DEST => "GET_DEST",
            SET_CONFIG => "SET_CONFIG",
            GET_CONFIG => "GET_CONFIG",
            GET_INFO => "GET_INFO",
            FLUSH => "FLUSH",
            _ => "?",
        }
    }
}

/// First-level attributes (`IPVS_CMD_ATTR_*`).
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// First-level attributes of the GET_INFO reply (`IPVS_INFO_ATTR_*`).
pub mod info_attr {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// Inside `IPVS_CMD_ATTR_SERVICE` (`IPVS_SVC_ATTR_*`).
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// Inside `IPVS_CMD_ATTR_DEST` (`IPVS_DEST_ATTR_*`).
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// Inside the stats attributes (`IPVS_STATS_ATTR_*`).
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
    pub const CPS: u16 = 6;
    pub const INPPS: u16 = 7;
    pub const OUTPPS: u16 = 8;
    pub const INBPS: u16 = 9;
    pub const OUTBPS: u16 = 10;
}

/// Service flags (`IP_VS_SVC_F_*`).
pub mod svc_flag {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// sh and mh: look past an unavailable destination.
    pub const SCHED_FALLBACK: u32 = SCHED1;
    /// sh and mh: hash the source port too.
    pub const SCHED_PORT: u32 = SCHED2;
    /// What a configuration sets (HASHED is the kernel's own).
    pub const CONFIGURABLE: u32 = PERSISTENT | ONEPACKET | SCHED1 | SCHED2 | SCHED3;
}

/// Forwarding methods (`IP_VS_CONN_F_*` & `IP_VS_CONN_F_FWD_MASK`).
pub mod fwd {
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const MASK: u32 = 7;

    /// As ipvsadm shows it.
    pub fn name(method: u32) -> &'static str {
        match method & MASK {
            MASQ => "Masq",
            LOCALNODE => "Local",
            TUNNEL => "Tunnel",
            DROUTE => "Route",
            _ => "?",
        }
    }
}

pub const AF_INET: u16 = libc::AF_INET as u16;
pub const AF_INET6: u16 = libc::AF_INET6 as u16;
pub const IPPROTO_TCP: u16 = libc::IPPROTO_TCP as u16;
pub const IPPROTO_UDP: u16 = libc::IPPROTO_UDP as u16;
pub const IPPROTO_SCTP: u16 = libc::IPPROTO_SCTP as u16;
/// `IP_VS_SCHEDNAME_MAXLEN`, with the NUL.
pub const SCHED_NAME_MAX: usize = 16;

/// One attribute, as sent or as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Without NLA_F_NESTED / NLA_F_NET_BYTEORDER.
    pub kind: u16,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bytes(Vec<u8>),
    /// Sent with NLA_F_NESTED; received nested attributes stay `Bytes`
    /// (the kernel does not flag them) and are read with [`Attr::nested`].
    Nested(Vec<Attr>),
}

impl Attr {
    pub fn bytes(kind: u16, b: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            value: Value::Bytes(b.into()),
        }
    }
    pub fn u16(kind: u16, v: u16) -> Self {
        Self::bytes(kind, v.to_ne_bytes())
    }
    /// A network-order 16-bit value (ports).
    pub fn be16(kind: u16, v: u16) -> Self {
        Self::bytes(kind, v.to_be_bytes())
    }
    pub fn u32(kind: u16, v: u32) -> Self {
        Self::bytes(kind, v.to_ne_bytes())
    }
    /// A NUL-terminated string.
    pub fn string(kind: u16, s: &str) -> Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        Self::bytes(kind, b)
    }
    pub fn nested(kind: u16, attrs: Vec<Attr>) -> Self {
        Self {
            kind,
            value: Value::Nested(attrs),
        }
    }

    fn raw(&self) -> Result<&[u8], DecodeError> {
        match &self.value {
            Value::Bytes(b) => Ok(b),
            Value::Nested(_) => Err(DecodeError::from(format!(
                "attribute {} is nested, not a value",
                self.kind
            ))),
        }
    }
    fn fixed<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        let raw = self.raw()?;
        raw.get(..N).and_then(|b| b.try_into().ok()).ok_or_else(|| {
            DecodeError::from(format!(
                "attribute {}: {} bytes, want {N}",
                self.kind,
                raw.len()
            ))
        })
    }
    pub fn as_u16(&self) -> Result<u16, DecodeError> {
        self.fixed().map(u16::from_ne_bytes)
    }
    pub fn as_be16(&self) -> Result<u16, DecodeError> {
        self.fixed().map(u16::from_be_bytes)
    }
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        self.fixed().map(u32::from_ne_bytes)
    }
    pub fn as_u64(&self) -> Result<u64, DecodeError> {
        self.fixed().map(u64::from_ne_bytes)
    }
    pub fn as_string(&self) -> Result<String, DecodeError> {
        let raw = self.raw()?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }
    /// The attributes inside a nested attribute.
    pub fn children(&self) -> Result<Vec<Attr>, DecodeError> {
        match &self.value {
            Value::Nested(a) => Ok(a.clone()),
            Value::Bytes(b) => parse_attrs(b),
        }
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match &self.value {
            Value::Bytes(b) => b.len(),
            Value::Nested(a) => a.as_slice().buffer_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self.value {
            Value::Bytes(_) => self.kind,
            Value::Nested(_) => self.kind | NLA_F_NESTED,
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match &self.value {
            Value::Bytes(b) => buffer[..b.len()].copy_from_slice(b),
            Value::Nested(a) => a.as_slice().emit(buffer),
        }
    }
}

/// Attributes of a buffer, flags stripped from their kinds.
pub fn parse_attrs(buf: &[u8]) -> Result<Vec<Attr>, DecodeError> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(buf) {
        let nla: NlaBuffer<&[u8]> = nla?;
        out.push(Attr::bytes(
            nla.kind() & NLA_TYPE_MASK,
            nla.value().to_vec(),
        ));
    }
    Ok(out)
}

fn find(attrs: &[Attr], kind: u16) -> Option<&Attr> {
    attrs.iter().find(|a| a.kind == kind)
}

/// Serialises attributes as they go on the wire (for tests and debugging).
pub fn emit_attrs(attrs: &[Attr]) -> Vec<u8> {
    let mut buf = vec![0; attrs.buffer_len()];
    attrs.emit(&mut buf);
    buf
}

/// A generic netlink message of the IPVS family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: u8,
    pub attrs: Vec<Attr>,
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Self {
            cmd: header.cmd,
            attrs: parse_attrs(buf)?,
        })
    }
}

/// How a service is identified: by address, port and protocol, or by
/// firewall mark and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Addr { protocol: u16, vip: SocketAddr },
    Fwmark { af: u16, mark: u32 },
}

impl Key {
    pub fn af(&self) -> u16 {
        match self {
            Key::Addr { vip, .. } => af_of(vip.ip()),
            Key::Fwmark { af, .. } => *af,
        }
    }

    /// The attributes that name the service (what DEL_SERVICE and the
    /// destination commands need).
    pub fn attrs(&self) -> Vec<Attr> {
        match *self {
            Key::Addr { protocol, vip } => vec![
                Attr::u16(svc_attr::AF, af_of(vip.ip())),
                Attr::u16(svc_attr::PROTOCOL, protocol),
                Attr::bytes(svc_attr::ADDR, addr_bytes(vip.ip())),
                Attr::be16(svc_attr::PORT, vip.port()),
            ],
            Key::Fwmark { af, mark } => vec![
                Attr::u16(svc_attr::AF, af),
                Attr::u32(svc_attr::FWMARK, mark),
            ],
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Addr { protocol, vip } => write!(f, "{vip}/{}", proto_name(*protocol)),
            Key::Fwmark { af, mark } => write!(
                f,
                "fwmark {mark}{}",
                if *af == AF_INET6 { " (IPv6)" } else { "" }
            ),
        }
    }
}

pub fn proto_name(p: u16) -> String {
    match p {
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_SCTP => "sctp".into(),
        n => format!("proto {n}"),
    }
}

pub fn af_of(ip: IpAddr) -> u16 {
    match ip {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// `union nf_inet_addr`: 16 bytes, an IPv4 address in the first four.
pub fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

fn bytes_addr(af: u16, raw: &[u8]) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET if raw.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        AF_INET6 if raw.len() >= 16 => {
            let o: [u8; 16] = raw[..16].try_into().expect("16 bytes");
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => Err(DecodeError::from(format!(
            "address of family {af} in {} bytes",
            raw.len()
        ))),
    }
}

/// Counters of a service or destination (STATS64 when the kernel has it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Counters {
    /// From a STATS (32-bit counters, 64-bit byte counts) or STATS64 nest.
    fn parse(nest: &Attr, wide: bool) -> Result<Self, DecodeError> {
        let mut c = Counters::default();
        for a in nest.children()? {
            let v = if wide || matches!(a.kind, stats_attr::INBYTES | stats_attr::OUTBYTES) {
                a.as_u64()?
            } else {
                u64::from(a.as_u32()?)
            };
            match a.kind {
                stats_attr::CONNS => c.conns = v,
                stats_attr::INPKTS => c.inpkts = v,
                stats_attr::OUTPKTS => c.outpkts = v,
                stats_attr::INBYTES => c.inbytes = v,
                stats_attr::OUTBYTES => c.outbytes = v,
                stats_attr::CPS => c.cps = v,
                stats_attr::INPPS => c.inpps = v,
                stats_attr::OUTPPS => c.outpps = v,
                stats_attr::INBPS => c.inbps = v,
                stats_attr::OUTBPS => c.outbps = v,
                _ => {}
            }
        }
        Ok(c)
    }

    fn from_nests(attrs: &[Attr], stats: u16, stats64: u16) -> Result<Self, DecodeError> {
        if let Some(a) = find(attrs, stats64) {
            return Counters::parse(a, true);
        }
        match find(attrs, stats) {
            Some(a) => Counters::parse(a, false),
            None => Ok(Counters::default()),
        }
    }
}

/// A virtual service as IPVS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: Key,
    pub sched: String,
    /// `IP_VS_SVC_F_*`.
    pub flags: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    /// Persistence netmask: IPv4 mask in network order (as its four bytes),
    /// or an IPv6 prefix length.
    pub netmask: u32,
    pub pe_name: Option<String>,
    pub stats: Counters,
}

impl Service {
    /// The IPv4 mask as `IpAddr`-style bytes, or the IPv6 prefix length.
    pub fn netmask_v4(mask: Ipv4Addr) -> u32 {
        u32::from_ne_bytes(mask.octets())
    }

    /// The full attribute set of NEW_SERVICE and SET_SERVICE.
    pub fn attrs(&self) -> Vec<Attr> {
        let mut a = self.key.attrs();
        a.push(Attr::string(svc_attr::SCHED_NAME, &self.sched));
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&self.flags.to_ne_bytes());
        // struct ip_vs_flags { flags, mask }: every flag is ours to set.
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        a.push(Attr::bytes(svc_attr::FLAGS, flags));
        a.push(Attr::u32(svc_attr::TIMEOUT, self.timeout));
        a.push(Attr::bytes(svc_attr::NETMASK, self.netmask.to_ne_bytes()));
        if let Some(pe) = &self.pe_name {
            a.push(Attr::string(svc_attr::PE_NAME, pe));
        }
        a
    }

    /// From the attributes inside IPVS_CMD_ATTR_SERVICE.
    pub fn parse(attrs: &[Attr]) -> Result<Self, DecodeError> {
        let need = |kind: u16, what: &str| {
            find(attrs, kind).ok_or_else(|| DecodeError::from(format!("service without {what}")))
        };
        let af = need(svc_attr::AF, "address family")?.as_u16()?;
        let key = match find(attrs, svc_attr::FWMARK)
            .map(Attr::as_u32)
            .transpose()?
        {
            Some(mark) if mark != 0 => Key::Fwmark { af, mark },
            _ => {
                let ip = bytes_addr(af, need(svc_attr::ADDR, "address")?.raw()?)?;
                Key::Addr {
                    protocol: need(svc_attr::PROTOCOL, "protocol")?.as_u16()?,
                    vip: SocketAddr::new(ip, need(svc_attr::PORT, "port")?.as_be16()?),
                }
            }
        };
        let flags = match find(attrs, svc_attr::FLAGS) {
            Some(f) => f
                .fixed::<8>()
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))?,
            None => 0,
        };
        Ok(Service {
            key,
            sched: find(attrs, svc_attr::SCHED_NAME)
                .map(Attr::as_string)
                .transpose()?
                .unwrap_or_default(),
            flags,
            timeout: find(attrs, svc_attr::TIMEOUT)
                .map(Attr::as_u32)
                .transpose()?
                .unwrap_or(0),
            netmask: find(attrs, svc_attr::NETMASK)
                .map(|a| a.fixed::<4>().map(u32::from_ne_bytes))
                .transpose()?
                .unwrap_or(0),
            pe_name: find(attrs, svc_attr::PE_NAME)
                .map(Attr::as_string)
                .transpose()?,
            stats: Counters::from_nests(attrs, svc_attr::STATS, svc_attr::STATS64)?,
        })
    }
}

/// A destination (real server) as IPVS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub addr: SocketAddr,
    /// `fwd::*`.
    pub fwd: u32,
    pub weight: i32,
    pub u_thresh: u32,
    pub l_thresh: u32,
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
    pub stats: Counters,
}

impl Dest {
    pub fn new(addr: SocketAddr, fwd: u32, weight: i32) -> Self {
        Self {
            addr,
            fwd,
            weight,
            u_thresh: 0,
            l_thresh: 0,
            active: 0,
            inactive: 0,
            persistent: 0,
            stats: Counters::default(),
        }
    }

    /// The full attribute set of NEW_DEST and SET_DEST.
    pub fn attrs(&self) -> Vec<Attr> {
        let mut a = Self::id_attrs(self.addr);
        a.push(Attr::u32(dest_attr::FWD_METHOD, self.fwd & fwd::MASK));
        a.push(Attr::bytes(dest_attr::WEIGHT, self.weight.to_ne_bytes()));
        a.push(Attr::u32(dest_attr::U_THRESH, self.u_thresh));
        a.push(Attr::u32(dest_attr::L_THRESH, self.l_thresh));
        a
    }

    /// What names a destination within its service (DEL_DEST).
    pub fn id_attrs(addr: SocketAddr) -> Vec<Attr> {
        vec![
            Attr::bytes(dest_attr::ADDR, addr_bytes(addr.ip())),
            Attr::be16(dest_attr::PORT, addr.port()),
        ]
    }

    /// From the attributes inside IPVS_CMD_ATTR_DEST; `af` is the service's
    /// family, used when the kernel does not say the destination's.
    pub fn parse(attrs: &[Attr], af: u16) -> Result<Self, DecodeError> {
        let need = |kind: u16, what: &str| {
            find(attrs, kind)
                .ok_or_else(|| DecodeError::from(format!("destination without {what}")))
        };
        let opt = |kind: u16| {
            find(attrs, kind)
                .map(Attr::as_u32)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let af = find(attrs, dest_attr::ADDR_FAMILY)
            .map(Attr::as_u16)
            .transpose()?
            .unwrap_or(af);
        let ip = bytes_addr(af, need(dest_attr::ADDR, "address")?.raw()?)?;
        Ok(Dest {
            addr: SocketAddr::new(ip, need(dest_attr::PORT, "port")?.as_be16()?),
            fwd: opt(dest_attr::FWD_METHOD)? & fwd::MASK,
            weight: opt(dest_attr::WEIGHT)? as i32,
            u_thresh: opt(dest_attr::U_THRESH)?,
            l_thresh: opt(dest_attr::L_THRESH)?,
            active: opt(dest_attr::ACTIVE_CONNS)?,
            inactive: opt(dest_attr::INACT_CONNS)?,
            persistent: opt(dest_attr::PERSIST_CONNS)?,
            stats: Counters::from_nests(attrs, dest_attr::STATS, dest_attr::STATS64)?,
        })
    }
}

/// A request: the command and its first-level attributes.
pub fn service_request(cmd: u8, svc: &Service) -> IpvsMessage {
    IpvsMessage {
        cmd,
        attrs: vec![Attr::nested(cmd_attr::SERVICE, svc.attrs())],
    }
}

pub fn dest_request(cmd: u8, key: &Key, dest: Vec<Attr>) -> IpvsMessage {
    IpvsMessage {
        cmd,
        attrs: vec![
            Attr::nested(cmd_attr::SERVICE, key.attrs()),
            Attr::nested(cmd_attr::DEST, dest),
        ],
    }
}

/// The nested attribute of a first-level kind in a reply.
pub fn nested_in(msg: &IpvsMessage, kind: u16) -> Result<Vec<Attr>, DecodeError> {
    find(&msg.attrs, kind)
        .ok_or_else(|| {
            DecodeError::from(format!(
                "{} reply without attribute {kind}",
                cmd::name(msg.cmd)
            ))
        })?
        .children()
}

/// A first-level u32 of a reply (GET_INFO, GET_CONFIG).
pub fn u32_in(msg: &IpvsMessage, kind: u16) -> Option<u32> {
    find(&msg.attrs, kind).and_then(|a| a.as_u32().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn service_key_of_an_ipv4_tcp_vip_has_ip_vs_h_layout() {
        let key = Key::Addr {
            protocol: IPPROTO_TCP,
            vip: "10.1.2.3:80".parse().unwrap(),
        };
        let bytes = emit_attrs(&[Attr::nested(cmd_attr::SERVICE, key.attrs())]);
        // nla_len, nla_type (NESTED | SERVICE), then AF (u16, padded),
        // PROTOCOL (u16), ADDR (16-byte nf_inet_addr), PORT (be16).
        assert_eq!(
            hex(&bytes),
            "30 00 01 80 \
             06 00 01 00 02 00 00 00 \
             06 00 02 00 06 00 00 00 \
             14 00 03 00 0a 01 02 03 00 00 00 00 00 00 00 00 00 00 00 00 \
             06 00 04 00 00 50 00 00"
        );
    }

    #[test]
    fn full_service_carries_sched_flags_with_mask_timeout_and_netmask() {
        let svc = Service {
            key: Key::Fwmark {
                af: AF_INET6,
                mark: 7,
            },
            sched: "wlc".into(),
            flags: svc_flag::PERSISTENT | svc_flag::SCHED_PORT,
            timeout: 300,
            netmask: 64,
            pe_name: None,
            stats: Counters::default(),
        };
        let a = svc.attrs();
        let bytes = emit_attrs(&a);
        assert_eq!(
            hex(&bytes),
            "06 00 01 00 0a 00 00 00 \
             08 00 05 00 07 00 00 00 \
             08 00 06 00 77 6c 63 00 \
             0c 00 07 00 11 00 00 00 ff ff ff ff \
             08 00 08 00 2c 01 00 00 \
             08 00 09 00 40 00 00 00"
        );
        // Decoding what was encoded gives the service back.
        assert_eq!(Service::parse(&parse_attrs(&bytes).unwrap()).unwrap(), svc);
    }

    #[test]
    fn ipv4_netmask_keeps_network_order() {
        let m = Service::netmask_v4("255.255.255.0".parse().unwrap());
        assert_eq!(m.to_ne_bytes(), [255, 255, 255, 0]);
    }

    #[test]
    fn dest_attrs_and_parse_round_trip() {
        let d = Dest::new("[2001:db8::11]:8080".parse().unwrap(), fwd::DROUTE, 5);
        let bytes = emit_attrs(&d.attrs());
        assert_eq!(
            hex(&bytes[..24]),
            "14 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 11 06 00 02 00"
        );
        assert_eq!(hex(&bytes[24..28]), "1f 90 00 00", "port in network order");
        assert_eq!(
            Dest::parse(&parse_attrs(&bytes).unwrap(), AF_INET6).unwrap(),
            d
        );
    }

    #[test]
    fn kernel_reply_with_stats_and_conns_is_decoded() {
        // What ip_vs_genl_fill_dest puts in a reply (no NESTED flag on nests).
        let stats = |kind: u16, wide: bool| {
            let v = |k: u16, n: u64| {
                if wide || matches!(k, stats_attr::INBYTES | stats_attr::OUTBYTES) {
                    Attr::bytes(k, n.to_ne_bytes())
                } else {
                    Attr::u32(k, n as u32)
                }
            };
            Attr::bytes(
                kind,
                emit_attrs(&[
                    v(stats_attr::CONNS, 3),
                    v(stats_attr::INPKTS, 40),
                    v(stats_attr::OUTPKTS, 30),
                    v(stats_attr::INBYTES, 4000),
                    v(stats_attr::OUTBYTES, 9000),
                ]),
            )
        };
        let mut attrs = Dest::new("10.0.0.11:80".parse().unwrap(), fwd::MASQ, 2).attrs();
        attrs.push(Attr::u32(dest_attr::ACTIVE_CONNS, 1));
        attrs.push(Attr::u32(dest_attr::INACT_CONNS, 2));
        attrs.push(Attr::u32(dest_attr::PERSIST_CONNS, 0));
        attrs.push(stats(dest_attr::STATS, false));
        attrs.push(Attr::u16(dest_attr::ADDR_FAMILY, AF_INET));
        let parsed = Dest::parse(&parse_attrs(&emit_attrs(&attrs)).unwrap(), AF_INET).unwrap();
        assert_eq!((parsed.active, parsed.inactive, parsed.weight), (1, 2, 2));
        assert_eq!(
            (
                parsed.stats.conns,
                parsed.stats.inpkts,
                parsed.stats.outbytes
            ),
            (3, 40, 9000)
        );
        attrs.push(stats(dest_attr::STATS64, true));
        let parsed = Dest::parse(&parse_attrs(&emit_attrs(&attrs)).unwrap(), AF_INET).unwrap();
        assert_eq!(parsed.stats.inbytes, 4000, "STATS64 preferred");
    }

    #[test]
    fn message_round_trips_through_genl() {
        use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
        use netlink_packet_generic::GenlMessage;
        let key = Key::Addr {
            protocol: IPPROTO_UDP,
            vip: "10.0.0.1:53".parse().unwrap(),
        };
        let msg = dest_request(
            cmd::DEL_DEST,
            &key,
            Dest::id_attrs("10.0.0.2:53".parse().unwrap()),
        );
        let mut genl = GenlMessage::from_payload(msg.clone());
        genl.set_resolved_family_id(0x1d);
        let mut nl = NetlinkMessage::from(genl);
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 0x1d, "family id");
        assert_eq!((buf[16], buf[17]), (cmd::DEL_DEST, FAMILY_VERSION));
        let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf).unwrap();
        let netlink_packet_core::NetlinkPayload::InnerMessage(g) = back.payload else {
            panic!("not a genl message")
        };
        assert_eq!(g.payload.cmd, cmd::DEL_DEST);
        let svc = nested_in(&g.payload, cmd_attr::SERVICE).unwrap();
        assert_eq!(svc, key.attrs());
    }
}
