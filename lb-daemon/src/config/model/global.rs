//! `global_defs` and the top-level `SSL` block.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{ser_duration, Location};

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
    /// `lb_announce_table`, `lb_announce_warmup`, `lb_announce_drain`
    /// (lbd's own keywords): VIPs announced through the host's routing
    /// daemon. Left out of the dump when unset.
    #[serde(skip_serializing_if = "LbAnnounce::is_unset")]
    pub lb_announce: LbAnnounce,
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
    /// `notify_fifo`, `vrrp_notify_fifo`: FIFOs VRRP state changes are
    /// written to, one `INSTANCE "NAME" STATE PRIORITY` line each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_fifo: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrrp_notify_fifo: Option<std::path::PathBuf>,
    pub default_interface: Option<String>,
    /// `lvs_sync_daemon`: connection sync with the other directors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    #[serde(skip)]
    pub location: Location,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            lvs_timeouts: LvsTimeouts::default(),
            lb_dataplane: None,
            lb_announce: LbAnnounce::default(),
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
            lvs_sync_daemon: None,
            location: Location::default(),
        }
    }
}

/// VIP announcement through the host's routing daemon (BIRD, FRR, GoBGP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LbAnnounce {
    /// The kernel routing table lbd keeps `VIP/32` (`/128`) routes in;
    /// `None`: nothing is announced.
    pub table: Option<u32>,
    /// After start, how long before the first announcement (so that
    /// connection sync fills the table first).
    #[serde(serialize_with = "ser_duration")]
    pub warmup: Duration,
    /// On a drain or a stop: how long lbd keeps forwarding after
    /// withdrawing (longer than the routers take to converge).
    #[serde(serialize_with = "ser_duration")]
    pub drain: Duration,
}

impl LbAnnounce {
    pub fn is_unset(&self) -> bool {
        *self == LbAnnounce::default()
    }
}

impl Default for LbAnnounce {
    fn default() -> Self {
        LbAnnounce {
            table: None,
            warmup: Duration::ZERO,
            drain: Duration::from_secs(10),
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

/// `lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [id N] [maxlen N] [port N]
/// [ttl N] [group ADDR]`: the node whose instance is MASTER multicasts its
/// connections in IPVS sync messages, the others receive them. Without an
/// instance (lbd's extension) the node sends and receives all the time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    pub vrrp_instance: Option<String>,
    /// `id`; `None`: the instance's `virtual_router_id` (as keepalived), or
    /// 0 without an instance (a receiver with id 0 hears every id, as the
    /// kernel's).
    pub syncid: Option<u8>,
    /// `maxlen`: the UDP payload of a message; `None`: the kernel's default
    /// (1500-byte MTU less headers to send, the interface's MTU to receive).
    pub maxlen: Option<u16>,
    pub port: u16,
    pub ttl: u8,
    pub group: std::net::IpAddr,
    #[serde(skip)]
    pub location: Location,
}

impl LvsSyncDaemon {
    pub fn new(interface: String, location: Location) -> Self {
        LvsSyncDaemon {
            interface,
            vrrp_instance: None,
            syncid: None,
            maxlen: None,
            port: 8848,
            ttl: 1,
            group: std::net::Ipv4Addr::new(224, 0, 0, 81).into(),
            location,
        }
    }
}
