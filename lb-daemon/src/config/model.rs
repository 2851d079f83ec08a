//! Typed configuration model. Values are normalised: keepalived's defaults
//! are filled in and inherited settings (virtual server -> real server ->
//! checker, global_defs -> vrrp_instance) are resolved, so consumers never
//! re-implement keepalived's defaulting rules.
//!
//! Serialisation (used for golden files) skips source locations so dumps do
//! not depend on where the files live; durations serialise as strings such as
//! `"60s"` or `"0.05s"`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};

/// Where a configuration item starts (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl Location {
    pub fn new(file: &Path, line: u32, col: u32) -> Self {
        Location {
            file: file.to_path_buf(),
            line,
            col,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Serialises a duration as seconds with only the decimals needed.
pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_duration(*d))
}

pub(crate) fn ser_opt_duration<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&fmt_duration(*d)),
        None => s.serialize_none(),
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", d.as_secs());
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Config {
    pub global_defs: GlobalDefs,
    pub static_ipaddress: Vec<IpAddress>,
    pub static_routes: Vec<Route>,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// The top-level `SSL { ... }` block (for SSL_GET).
    pub ssl: Option<SslDefs>,
}

/// `SSL { ca FILE certificate FILE key FILE password P }`: with `ca`,
/// SSL_GET verifies the real servers' certificates against it (without it,
/// as keepalived, it does not verify them).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SslDefs {
    pub ca: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(skip)]
    pub password: Option<String>,
}

// ---------------------------------------------------------------- global_defs

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<SmtpServer>,
    pub smtp_helo_name: Option<String>,
    /// `lvs_timeouts`: connection idle timeouts (IPVS's defaults when unset).
    pub lvs_timeouts: LvsTimeouts,
    /// `lb_dataplane auto|xdp|tc|ipvs` (lbd's own keyword; `--dataplane`
    /// overrides it).
    pub lb_dataplane: Option<DataplaneTier>,
    #[serde(serialize_with = "ser_duration")]
    pub smtp_connect_timeout: Duration,
    pub vrrp_version: u8,
    #[serde(serialize_with = "ser_duration")]
    pub vrrp_garp_master_delay: Duration,
    pub vrrp_garp_master_repeat: u32,
    /// Zero: no periodic refresh.
    #[serde(serialize_with = "ser_duration")]
    pub vrrp_garp_master_refresh: Duration,
    pub vrrp_garp_master_refresh_repeat: u32,
    #[serde(serialize_with = "ser_duration")]
    pub vrrp_garp_interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub vrrp_gna_interval: Duration,
    pub vrrp_strict: bool,
    #[serde(serialize_with = "ser_duration")]
    pub vrrp_startup_delay: Duration,
    pub enable_script_security: bool,
    pub script_user: Option<ScriptUser>,
    pub default_interface: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            lvs_timeouts: LvsTimeouts::default(),
            lb_dataplane: None,
            smtp_connect_timeout: Duration::from_secs(30),
            vrrp_version: 2,
            vrrp_garp_master_delay: Duration::from_secs(5),
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: Duration::ZERO,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_strict: false,
            vrrp_startup_delay: Duration::ZERO,
            enable_script_security: false,
            script_user: None,
            default_interface: None,
            location: Location::default(),
        }
    }
}

/// `lb_dataplane`: which data plane tier forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneTier {
    Auto,
    Xdp,
    Tc,
    Ipvs,
}

/// `lvs_timeouts tcp N tcpfin N udp N`, in seconds; `None`: IPVS's default
/// (900, 120, 300).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpServer {
    /// An IP address or a host name.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

// --------------------------------------------------- addresses and routes

/// An address line of `virtual_ipaddress`, `virtual_ipaddress_excluded` or
/// `static_ipaddress`: `ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpAddress {
    pub addr: IpAddr,
    /// Defaults to the full length (32 or 128).
    pub prefix_len: u8,
    pub broadcast: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub peer: Option<IpAddr>,
    /// `no_track`: a missing address does not fault the instance.
    pub no_track: bool,
    #[serde(skip)]
    pub location: Location,
}

/// A route line of `virtual_routes` or `static_routes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// `blackhole`, `unreachable`, `prohibit`, `throw`... `None` for unicast.
    #[serde(rename = "type")]
    pub route_type: Option<String>,
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<String>,
    pub scope: Option<String>,
    pub protocol: Option<String>,
    pub no_track: bool,
    #[serde(skip)]
    pub location: Location,
}

// ------------------------------------------------------------------ VRRP

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub script: String,
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// keepalived waits `interval` when no timeout is set; already resolved.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub weight: i32,
    /// `weight W reverse`: the weight applies when the script fails.
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
    pub init_fail: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Notify {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    /// The generic `notify` script, called with the state as an argument.
    pub notify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpSyncGroup {
    pub name: String,
    pub group: Vec<String>,
    pub notify: Notify,
    pub smtp_alert: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VrrpState {
    #[serde(rename = "MASTER")]
    Master,
    #[serde(rename = "BACKUP")]
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuthType {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "AH")]
    Ah,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes: keepalived truncates longer passwords.
    pub auth_pass: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: Option<i32>,
    /// `weight W reverse`.
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackScript {
    pub name: String,
    /// Overrides the script's own weight.
    pub weight: Option<i32>,
    pub reverse: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub state: VrrpState,
    pub interface: Option<String>,
    pub virtual_router_id: u8,
    pub priority: u8,
    #[serde(serialize_with = "ser_duration")]
    pub advert_int: Duration,
    pub version: u8,
    pub preempt: bool,
    #[serde(serialize_with = "ser_duration")]
    pub preempt_delay: Duration,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<IpAddress>,
    pub virtual_ipaddress_excluded: Vec<IpAddress>,
    pub virtual_routes: Vec<Route>,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackScript>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<UnicastPeer>,
    pub mcast_src_ip: Option<IpAddr>,
    #[serde(serialize_with = "ser_duration")]
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    #[serde(serialize_with = "ser_duration")]
    pub garp_master_refresh: Duration,
    pub garp_master_refresh_repeat: u32,
    pub notify: Notify,
    pub smtp_alert: bool,
    pub dont_track_primary: bool,
    pub accept: bool,
    pub debug: u32,
    #[serde(skip)]
    pub location: Location,
}

// ------------------------------------------------------------------ LVS

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsTarget {
    Addr(SocketAddr),
    Fwmark(u32),
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    /// keepalived's default (`IPVS_DEF_SCHED`).
    #[default]
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
    Twos,
}

impl Scheduler {
    /// Name, value pairs; the single source for parsing and error messages.
    pub const ALL: [(&'static str, Scheduler); 14] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("mh", Scheduler::Mh),
        ("twos", Scheduler::Twos),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Scheduler flags (`sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`,
/// `flag-1..3`, `ops`), as keepalived sets them on the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SchedFlags {
    pub sh_port: bool,
    pub sh_fallback: bool,
    pub mh_port: bool,
    pub mh_fallback: bool,
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
    /// One-packet scheduling (UDP only).
    pub ops: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum LbKind {
    /// keepalived's default when neither the virtual nor the real server
    /// sets a method.
    #[default]
    #[serde(rename = "NAT")]
    Nat,
    #[serde(rename = "DR")]
    Dr,
    #[serde(rename = "TUN")]
    Tun,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub target: VsTarget,
    pub protocol: Protocol,
    pub lb_algo: Scheduler,
    pub sched_flags: SchedFlags,
    pub lb_kind: LbKind,
    #[serde(serialize_with = "ser_duration")]
    pub delay_loop: Duration,
    #[serde(serialize_with = "ser_opt_duration")]
    pub persistence_timeout: Option<Duration>,
    /// Netmask (IPv4) or prefix length (IPv6) grouping clients for
    /// persistence.
    pub persistence_granularity: Option<String>,
    pub persistence_engine: Option<String>,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<SocketAddr>,
    pub sorry_server_inhibit: bool,
    pub inhibit_on_failure: bool,
    pub smtp_alert: bool,
    pub real_servers: Vec<RealServer>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: SocketAddr,
    pub weight: u32,
    pub lb_kind: LbKind,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub alpha: bool,
    pub checkers: Vec<Checker>,
    #[serde(skip)]
    pub location: Location,
}

/// A health checker with every timing resolved through the real server and
/// virtual server defaults, as keepalived does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    pub kind: CheckerKind,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    pub retry: u32,
    #[serde(serialize_with = "ser_duration")]
    pub delay_before_retry: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub warmup: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub delay_loop: Duration,
    pub alpha: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum CheckerKind {
    #[serde(rename = "TCP_CHECK")]
    Tcp,
    #[serde(rename = "HTTP_GET")]
    Http(HttpCheck),
    #[serde(rename = "SSL_GET")]
    Ssl(HttpCheck),
    #[serde(rename = "MISC_CHECK")]
    Misc(MiscCheck),
    #[serde(rename = "SMTP_CHECK")]
    Smtp(SmtpCheck),
    #[serde(rename = "DNS_CHECK")]
    Dns(DnsCheck),
    #[serde(rename = "UDP_CHECK")]
    Udp(UdpCheck),
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    /// MD5 digest of the body, lower-case hex.
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges; keepalived accepts
    /// 200-299 when none is given.
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    pub misc_path: String,
    /// `None`: keepalived uses the checker's delay_loop.
    #[serde(serialize_with = "ser_opt_duration")]
    pub misc_timeout: Option<Duration>,
    pub misc_dynamic: bool,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpCheck {
    pub helo_name: String,
    /// Extra hosts to check (each is a connection block of its own).
    pub hosts: Vec<SmtpHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpHost {
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    /// Query type, upper case (`SOA` by default).
    #[serde(rename = "query_type")]
    pub qtype: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct UdpCheck {
    /// Hex-decoded payload bytes, as hex text.
    pub payload: Option<String>,
    pub require_reply: bool,
    pub min_reply_length: Option<u32>,
    pub max_reply_length: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<VsgEntry>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsgEntry {
    Addr(SocketAddr),
    /// `A.B.C.D-E PORT`: addresses from `first` to `last` inclusive.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark(u32),
}
