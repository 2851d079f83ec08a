//! `vrrp_script`, `vrrp_sync_group` and `vrrp_instance`.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{ser_duration, IpAddress, Location, Route, ScriptUser};

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
