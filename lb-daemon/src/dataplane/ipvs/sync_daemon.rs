//! The kernel's own connection-sync daemons (`ipvsadm --start-daemon`),
//! started and stopped over generic netlink as keepalived's
//! `lvs_sync_daemon` does on LVS: IPVS_CMD_NEW_DAEMON / DEL_DAEMON with the
//! interface, sync id, maxlen, group, port and TTL, and IPVS_CMD_GET_DAEMON
//! to read back what runs.
//!
//! The roles follow the VRRP state as in keepalived (`ipvs_syncd_master`,
//! `ipvs_syncd_backup`): MASTER runs the sending daemon and stops the
//! receiving one, BACKUP and FAULT the reverse; `Both` (lbd's extension for
//! several active balancers) runs the two at once. [`plan`] is the pure
//! part: what runs + the wanted role → the commands, so a repeated call
//! changes nothing and a changed parameter restarts only that daemon.
//!
//! Kernel facts (net/netfilter/ipvs/ip_vs_sync.c, ip_vs_ctl.c): a master
//! sends to `group:port+N` for each of its `sync_ports` threads (N from 0;
//! one thread, port 8848, by default) with multicast loop off, so a backup on
//! the same host and namespace never hears it; a backup drops messages whose
//! sync id is not its own unless its own is 0; absent attributes take the
//! kernel's defaults (224.0.0.81, 8848, TTL 1, maxlen from the MTU).

use std::net::IpAddr;

use super::{
    attrs::{self, Attr, IpvsMessage},
    genl::{Genl, GenlError},
};

/// `IPVS_CMD_*` of the daemons.
pub const CMD_NEW_DAEMON: u8 = 9;
pub const CMD_DEL_DAEMON: u8 = 10;
pub const CMD_GET_DAEMON: u8 = 11;
/// `IPVS_CMD_ATTR_DAEMON`.
pub const CMD_ATTR_DAEMON: u16 = 3;

/// Inside `IPVS_CMD_ATTR_DAEMON` (`IPVS_DAEMON_ATTR_*`).
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// `IP_VS_IFNAME_MAXLEN`, with the NUL.
const IFNAME_MAX: usize = 16;

/// One daemon (`IP_VS_STATE_MASTER`, `IP_VS_STATE_BACKUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DaemonState {
    Master = 1,
    Backup = 2,
}

/// Which daemons should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    None,
    Master,
    Backup,
    Both,
}

impl Role {
    fn wants(self, d: DaemonState) -> bool {
        matches!(
            (self, d),
            (Role::Both, _)
                | (Role::Master, DaemonState::Master)
                | (Role::Backup, DaemonState::Backup)
        )
    }
}

/// `lvs_sync_daemon INTERFACE [id SYNCID] [maxlen LEN] [port PORT] [ttl TTL]
/// [group ADDR]`; `None` leaves the kernel's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemonParams {
    pub interface: String,
    pub syncid: u8,
    pub maxlen: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

impl SyncDaemonParams {
    pub fn new(interface: impl Into<String>, syncid: u8) -> Self {
        Self {
            interface: interface.into(),
            syncid,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        }
    }

    /// Whether a running daemon (as GET_DAEMON reports it, defaults filled
    /// in by the kernel) already is what these parameters ask for.
    pub fn satisfied_by(&self, running: &SyncDaemonParams) -> bool {
        self.interface == running.interface
            && self.syncid == running.syncid
            && self.maxlen.is_none_or(|m| Some(m) == running.maxlen)
            && self.group.is_none_or(|g| Some(g) == running.group)
            && self.port.is_none_or(|p| Some(p) == running.port)
            && self.ttl.is_none_or(|t| Some(t) == running.ttl)
    }
}

/// A daemon the kernel runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub state: DaemonState,
    pub params: SyncDaemonParams,
}

/// One command to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonOp {
    Start(DaemonState, SyncDaemonParams),
    Stop(DaemonState),
}

/// Why parameters cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("interface name `{0}` is empty or longer than 15 bytes")]
    Interface(String),
    #[error("group {0} is not a multicast address")]
    Group(IpAddr),
}

impl SyncDaemonParams {
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.interface.is_empty() || self.interface.len() >= IFNAME_MAX {
            return Err(ParamsError::Interface(self.interface.clone()));
        }
        if let Some(g) = self.group {
            if !g.is_multicast() {
                return Err(ParamsError::Group(g));
            }
        }
        Ok(())
    }
}

/// The commands that take the kernel from `running` to `role`: a daemon
/// not wanted is stopped, a wanted one that is absent or runs with other
/// parameters is (re)started; stops come first, as in keepalived (the
/// backup stops before the master starts).
pub fn plan(running: &[Daemon], role: Role, params: &SyncDaemonParams) -> Vec<DaemonOp> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for state in [DaemonState::Backup, DaemonState::Master] {
        let now = running.iter().find(|d| d.state == state);
        let wanted = role.wants(state);
        match now {
            Some(d) if !wanted || !params.satisfied_by(&d.params) => {
                stops.push(DaemonOp::Stop(state))
            }
            _ => {}
        }
        let ok = now.is_some_and(|d| params.satisfied_by(&d.params));
        if wanted && !ok {
            starts.push(DaemonOp::Start(state, params.clone()));
        }
    }
    stops.extend(starts);
    stops
}

/// The NEW_DAEMON / DEL_DAEMON message of one command.
pub fn request(op: &DaemonOp) -> IpvsMessage {
    match op {
        DaemonOp::Stop(state) => IpvsMessage {
            cmd: CMD_DEL_DAEMON,
            attrs: vec![Attr::nested(
                CMD_ATTR_DAEMON,
                vec![Attr::u32(daemon_attr::STATE, *state as u32)],
            )],
        },
        DaemonOp::Start(state, p) => {
            let mut a = vec![
                Attr::u32(daemon_attr::STATE, *state as u32),
                Attr::string(daemon_attr::MCAST_IFN, &p.interface),
                Attr::u32(daemon_attr::SYNC_ID, u32::from(p.syncid)),
            ];
            if let Some(m) = p.maxlen {
                a.push(Attr::u16(daemon_attr::SYNC_MAXLEN, m));
            }
            match p.group {
                Some(IpAddr::V4(g)) => a.push(Attr::bytes(daemon_attr::MCAST_GROUP, g.octets())),
                Some(IpAddr::V6(g)) => a.push(Attr::bytes(daemon_attr::MCAST_GROUP6, g.octets())),
                None => {}
            }
            if let Some(port) = p.port {
                a.push(Attr::u16(daemon_attr::MCAST_PORT, port));
            }
            if let Some(t) = p.ttl {
                a.push(Attr::bytes(daemon_attr::MCAST_TTL, [t]));
            }
            IpvsMessage {
                cmd: CMD_NEW_DAEMON,
                attrs: vec![Attr::nested(CMD_ATTR_DAEMON, a)],
            }
        }
    }
}

/// One daemon of a GET_DAEMON reply.
pub fn parse_daemon(msg: &IpvsMessage) -> Result<Daemon, String> {
    let nested = attrs::nested_in(msg, CMD_ATTR_DAEMON).map_err(|e| e.to_string())?;
    let get = |k: u16| nested.iter().find(|a| a.kind == k);
    let need = |k: u16, what: &str| get(k).ok_or_else(|| format!("daemon without its {what}"));
    let state = match need(daemon_attr::STATE, "state")?
        .as_u32()
        .map_err(|e| e.to_string())?
    {
        1 => DaemonState::Master,
        2 => DaemonState::Backup,
        s => return Err(format!("daemon state {s}")),
    };
    let interface = need(daemon_attr::MCAST_IFN, "interface")?
        .as_string()
        .map_err(|e| e.to_string())?;
    let syncid = need(daemon_attr::SYNC_ID, "sync id")?
        .as_u32()
        .map_err(|e| e.to_string())?;
    let u16_of = |k| get(k).and_then(|a| a.as_u16().ok());
    let group = match (
        get(daemon_attr::MCAST_GROUP),
        get(daemon_attr::MCAST_GROUP6),
    ) {
        (_, Some(a)) => {
            let o: [u8; 16] = a_bytes(a)?;
            Some(IpAddr::from(o))
        }
        (Some(a), None) => {
            let o: [u8; 4] = a_bytes(a)?;
            Some(IpAddr::from(o))
        }
        _ => None,
    };
    Ok(Daemon {
        state,
        params: SyncDaemonParams {
            interface,
            syncid: u8::try_from(syncid).map_err(|_| format!("sync id {syncid}"))?,
            maxlen: u16_of(daemon_attr::SYNC_MAXLEN),
            group,
            port: u16_of(daemon_attr::MCAST_PORT),
            ttl: get(daemon_attr::MCAST_TTL).and_then(|a| match &a.value {
                attrs::Value::Bytes(b) => b.first().copied(),
                attrs::Value::Nested(_) => None,
            }),
        },
    })
}

fn a_bytes<const N: usize>(a: &Attr) -> Result<[u8; N], String> {
    match &a.value {
        attrs::Value::Bytes(b) => b
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("attribute {}: {} bytes, want {N}", a.kind, b.len())),
        attrs::Value::Nested(_) => Err(format!("attribute {} is nested", a.kind)),
    }
}

/// What went wrong driving the daemons.
#[derive(Debug, thiserror::Error)]
pub enum SyncDaemonError {
    #[error("lvs_sync_daemon: {0}")]
    Params(#[from] ParamsError),
    #[error("reading the IPVS sync daemons: {0}")]
    Read(String),
    #[error("{what} the {state:?} sync daemon on {interface}: {source}")]
    Kernel {
        what: &'static str,
        state: DaemonState,
        interface: String,
        #[source]
        source: GenlError,
    },
}

/// The daemons the kernel runs now (GET_DAEMON).
pub fn daemons(genl: &Genl) -> Result<Vec<Daemon>, SyncDaemonError> {
    let replies = genl
        .dump(IpvsMessage {
            cmd: CMD_GET_DAEMON,
            attrs: Vec::new(),
        })
        .map_err(|e| SyncDaemonError::Read(e.to_string()))?;
    replies
        .iter()
        .map(parse_daemon)
        .collect::<Result<_, _>>()
        .map_err(SyncDaemonError::Read)
}

/// Makes the kernel run the daemons of `role` with `params`; returns the
/// commands it sent.
pub fn set_role(
    genl: &Genl,
    role: Role,
    params: &SyncDaemonParams,
) -> Result<Vec<DaemonOp>, SyncDaemonError> {
    params.validate()?;
    let ops = plan(&daemons(genl)?, role, params);
    for op in &ops {
        let (what, state) = match op {
            DaemonOp::Start(s, _) => ("starting", *s),
            DaemonOp::Stop(s) => ("stopping", *s),
        };
        genl.request(request(op))
            .map_err(|source| SyncDaemonError::Kernel {
                what,
                state,
                interface: params.interface.clone(),
                source,
            })?;
    }
    Ok(ops)
}

#[cfg(test)]
mod tests;
