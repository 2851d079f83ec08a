//! The control protocol between lbd and lbctl: JSON lines over a Unix
//! socket, one request line answered by one response line. Documented in
//! docs/control-protocol.md; field names are stable within a version.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Version of the protocol this build speaks.
pub const VERSION: u32 = 1;
/// Longest request line the daemon reads.
pub const MAX_LINE: usize = 64 * 1024;
/// Highest weight `set-weight` takes: keepalived's range for `weight`
/// (lbctl checks it too).
pub const MAX_WEIGHT: u32 = 65535;

/// One request line as lbd reads it: UTF-8, JSON, this protocol's
/// version, a known command with valid values. A refusal is the response
/// to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, Response> {
    let text = std::str::from_utf8(line)
        .map_err(|e| Response::error(ErrorCode::BadRequest, format!("not UTF-8: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Response::error(ErrorCode::BadRequest, format!("not JSON: {e}")))?;
    if value.get("version").and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) {
        return Err(Response::error(
            ErrorCode::UnsupportedVersion,
            format!("this lbd speaks control protocol version {VERSION}"),
        ));
    }
    let request: Request = serde_json::from_value(value)
        .map_err(|e| Response::error(ErrorCode::BadRequest, e.to_string()))?;
    if let Command::SetWeight { weight, .. } = request.command {
        if weight > MAX_WEIGHT {
            return Err(Response::error(
                ErrorCode::BadRequest,
                format!("weight {weight} is out of range (0 to {MAX_WEIGHT})"),
            ));
        }
    }
    Ok(request)
}

/// A request: `{"version":1,"command":"backends","service":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    pub fn new(command: Command) -> Self {
        Self {
            version: VERSION,
            command,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    Status,
    Services,
    Backends {
        #[serde(default)]
        service: Option<ServiceRef>,
    },
    Vrrp,
    Sync,
    Stats,
    Conns {
        limit: usize,
    },
    SetWeight {
        service: ServiceRef,
        backend: SocketAddr,
        weight: u32,
    },
    Drain {
        service: ServiceRef,
        backend: SocketAddr,
    },
    Disable {
        service: ServiceRef,
        backend: SocketAddr,
    },
    Enable {
        service: ServiceRef,
        backend: SocketAddr,
    },
    Reload,
}

impl Command {
    /// Whether the command changes anything (logged with who asked).
    pub fn is_action(&self) -> bool {
        matches!(
            self,
            Command::SetWeight { .. }
                | Command::Drain { .. }
                | Command::Disable { .. }
                | Command::Enable { .. }
                | Command::Reload
        )
    }
}

/// A virtual service: its VIP and port, and its protocol (`tcp`/`udp`;
/// absent: whichever the service has, an error when both exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRef {
    pub vip: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<ProtoName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoName {
    Tcp,
    Udp,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    /// The command's result (when `ok`), shaped per command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why the request failed (when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    pub fn ok(result: impl Serialize) -> Self {
        match serde_json::to_value(result) {
            Ok(v) => Self {
                version: VERSION,
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Self::error(ErrorCode::Internal, e.to_string()),
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            version: VERSION,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a request of this version.
    BadRequest,
    UnsupportedVersion,
    PermissionDenied,
    /// No such service or backend.
    NotFound,
    /// VIP:PORT matches a TCP and a UDP service: name the protocol.
    Ambiguous,
    /// Nothing to answer with (e.g. lbd runs without a data plane).
    Unavailable,
    /// The configuration has errors; the running one is kept.
    ReloadFailed,
    Internal,
}

/// Where an answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The running lbd.
    Daemon,
    /// The maps a stopped lbd left pinned (read-only, counters only).
    PinnedMaps,
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResult {
    pub source: Source,
    /// lbd's version (of lbctl when read from pinned maps).
    pub version: String,
    pub pid: Option<u32>,
    pub started_unix_ms: Option<u64>,
    pub uptime_secs: Option<u64>,
    /// `xdp`, or none when lbd runs without a data plane.
    pub dataplane: Option<String>,
    pub interfaces: Vec<InterfaceInfo>,
    pub pin_path: Option<String>,
    pub config_file: Option<String>,
    pub config_loaded_unix_ms: Option<u64>,
    pub last_reload: Option<ReloadInfo>,
    pub services: usize,
    pub backends: usize,
    pub vrrp_instances: usize,
    /// Backends with an operator override (set-weight, drain, disable).
    pub overrides: usize,
    /// `lb_announce_table`: each VIP address, announced or why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announce: Vec<AnnounceInfo>,
}

/// One VIP address of `lb_announce_table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceInfo {
    pub vip: String,
    /// `announced`, `draining`, `data plane not attached`, `no quorum`,
    /// `warming up`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub name: String,
    /// `native`, `skb`, or `pinned` (a link taken over from a previous lbd).
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadInfo {
    pub ok: bool,
    pub at_unix_ms: u64,
    /// Why it was refused.
    pub error: Option<String>,
    /// Operator overrides the reload dropped.
    #[serde(default)]
    pub overrides_cleared: usize,
}

/// One virtual service with its totals (`services`, `stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// `VIP:PORT/proto`, as lbctl accepts it.
    pub service: String,
    pub vip: IpAddr,
    pub port: u16,
    pub proto: ProtoName,
    /// `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`.
    pub algo: Option<String>,
    /// `DR`, `NAT`, `TUN`.
    pub mode: Option<String>,
    /// Real servers (the sorry server not counted).
    pub backends: usize,
    /// Real servers taking new connections (ready, weight above 0).
    pub backends_up: usize,
    pub sorry_server: Option<SocketAddr>,
    pub packets: u64,
    pub bytes: u64,
    pub new_conns: u64,
    pub active_conns: u64,
    pub inactive_conns: u64,
}

/// One backend of one service (`backends`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub service: String,
    pub address: IpAddr,
    pub port: u16,
    /// Weight in the data plane now (0: no new connections).
    pub weight: u32,
    /// Weight in the configuration (daemon only).
    pub configured_weight: Option<u32>,
    /// Operator override, until reload.
    #[serde(rename = "override")]
    pub override_: Option<OverrideInfo>,
    pub mac: Option<String>,
    /// In the data plane and sendable to (DR: its MAC is known).
    pub ready: bool,
    pub sorry: bool,
    pub active_conns: u64,
    pub inactive_conns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub new_conns: u64,
    /// Health checks (daemon only; none without checkers).
    pub health: Option<HealthInfo>,
}

/// An operator's override of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum OverrideInfo {
    SetWeight { weight: u32 },
    Drain,
    Disable,
}

impl std::fmt::Display for OverrideInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideInfo::SetWeight { weight } => write!(f, "weight {weight}"),
            OverrideInfo::Drain => f.write_str("drain"),
            OverrideInfo::Disable => f.write_str("disabled"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthInfo {
    /// `up` or `down`.
    pub state: String,
    /// `in_pool`, `removed`, `inhibited`, `quorum_lost`.
    pub status: String,
    /// Weight the checkers give it (dynamic weights applied; 0 when down).
    pub weight: u32,
    /// `success` or `failure` of the most recent check of any checker.
    pub last_result: Option<String>,
    pub last_check_unix_ms: Option<u64>,
    pub last_change_unix_ms: Option<u64>,
    pub failure: Option<String>,
    /// Checks that could not run for a local reason (descriptors, buffers,
    /// addresses); they never mark a backend down.
    #[serde(default)]
    pub local_errors: u64,
    pub checkers: Vec<CheckerInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerInfo {
    pub kind: String,
    pub target: SocketAddr,
    pub up: bool,
    pub last_result: Option<String>,
    pub last_check_unix_ms: Option<u64>,
    pub failure: Option<String>,
    #[serde(default)]
    pub local_errors: u64,
    #[serde(default)]
    pub last_local_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicesResult {
    pub source: Source,
    pub services: Vec<ServiceInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendsResult {
    pub source: Source,
    pub backends: Vec<BackendInfo>,
}

/// `stats`: the global counters and every service's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsResult {
    pub source: Source,
    pub at_unix_ms: u64,
    pub global: Vec<GlobalCounter>,
    pub services: Vec<ServiceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalCounter {
    /// `xdp_drop`, `xdp_pass`, `xdp_tx`, `conn_insert_failed` (table full), ...
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnsResult {
    pub source: Source,
    pub connections: Vec<ConnEntry>,
    /// More connections than `limit` exist.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    pub proto: ProtoName,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub backend: SocketAddr,
    /// `SYN_RECV`, `ESTABLISHED`, `FIN_WAIT`, `CLOSE`, `UDP`.
    pub state: String,
    pub idle_secs: u32,
    pub expires_secs: u32,
}

/// `sync`: connection sync (`lvs_sync_daemon`); `None` when it is off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResult {
    pub sync: Option<SyncInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncInfo {
    /// `master` (sends), `backup` (receives), `both`.
    pub role: String,
    pub interface: String,
    /// The VRRP instance the role follows; none: send and receive.
    pub vrrp_instance: Option<String>,
    pub syncid: u8,
    pub group: IpAddr,
    pub port: u16,
    pub ttl: u8,
    pub maxlen: usize,
    pub sent_messages: u64,
    pub sent_records: u64,
    pub received_messages: u64,
    pub received_records: u64,
    /// Entries written into the connection table.
    pub written: u64,
    /// Datagrams, records and reports lost or refused, by reason.
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Why the sockets are not open, while they are not.
    pub error: Option<String>,
}

/// `vrrp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpResult {
    pub instances: Vec<VrrpInstance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    pub name: String,
    pub sync_group: Option<String>,
    pub interface: String,
    pub vrid: u8,
    /// `INIT`, `BACKUP`, `MASTER`, `FAULT`.
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    /// Our advert source address.
    pub address: Option<IpAddr>,
    /// The master: ourselves as master, the one we follow as backup.
    pub master: Option<IpAddr>,
    pub vips: Vec<String>,
    pub last_transition: Option<VrrpTransition>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Adverts dropped (bad, or refused by a check).
    pub adverts_dropped: u64,
    pub transitions: u64,
    /// Why the instance is not running, while it is not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpTransition {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at_unix_ms: u64,
}

/// set-weight, drain, disable, enable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub service: String,
    pub backend: SocketAddr,
    /// The override now in force (none after enable).
    #[serde(rename = "override")]
    pub override_: Option<OverrideInfo>,
    pub message: String,
}

/// `reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadResult {
    pub config_file: String,
    pub loaded_unix_ms: u64,
    /// Overrides dropped by the reload.
    pub overrides_cleared: usize,
    pub message: String,
}

/// `VIP:PORT/proto`.
pub fn service_name(vip: SocketAddr, proto: ProtoName) -> String {
    let p = match proto {
        ProtoName::Tcp => "tcp",
        ProtoName::Udp => "udp",
    };
    format!("{vip}/{p}")
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_flat_json_with_a_command_tag() {
        let r = Request::new(Command::SetWeight {
            service: ServiceRef {
                vip: "10.0.0.1:80".parse().unwrap(),
                proto: Some(ProtoName::Tcp),
            },
            backend: "10.0.0.11:80".parse().unwrap(),
            weight: 3,
        });
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"command":"set-weight","service":{"vip":"10.0.0.1:80","proto":"tcp"},"backend":"10.0.0.11:80","weight":3}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let r: Request = serde_json::from_str(r#"{"version":1,"command":"backends"}"#).unwrap();
        assert_eq!(r.command, Command::Backends { service: None });
    }

    #[test]
    fn errors_carry_a_code() {
        let line = serde_json::to_string(&Response::error(ErrorCode::NotFound, "no")).unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"ok":false,"error":{"code":"not_found","message":"no"}}"#
        );
    }

    #[test]
    fn request_lines_are_checked_whole() {
        let refused = |line: &[u8]| parse_request(line).unwrap_err().error.unwrap();
        assert_eq!(refused(b"\xff\xfe").code, ErrorCode::BadRequest);
        assert_eq!(refused(b"{").code, ErrorCode::BadRequest);
        assert_eq!(
            refused(br#"{"version":2,"command":"status"}"#).code,
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            refused(br#"{"version":1,"command":"nope"}"#).code,
            ErrorCode::BadRequest
        );
        // One weight range everywhere: keepalived's, as lbctl checks it.
        let weight = |w: u64| {
            format!(
                r#"{{"version":1,"command":"set-weight","service":{{"vip":"10.0.0.1:80","proto":"tcp"}},"backend":"10.0.0.11:80","weight":{w}}}"#
            )
        };
        assert!(parse_request(weight(65535).as_bytes()).is_ok());
        let e = refused(weight(65536).as_bytes());
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("out of range"), "{}", e.message);
        assert_eq!(
            refused(weight(4294967295).as_bytes()).code,
            ErrorCode::BadRequest
        );
        assert_eq!(
            refused(weight(4294967296).as_bytes()).code,
            ErrorCode::BadRequest
        );
        assert_eq!(
            parse_request(br#"{"version":1,"command":"status"}"#).unwrap(),
            Request::new(Command::Status)
        );
    }
}
