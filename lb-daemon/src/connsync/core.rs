//! The sans-I/O core of connection sync: what the data plane reports, the
//! datagrams heard and the time go in; datagrams to send and entries to
//! write into the connection table come out. No clock, no sockets.
//!
//! - Role: a node whose VRRP instance is MASTER sends, the others receive;
//!   the role follows the instance at once. Without an instance (lbd's
//!   extension) the node does both.
//! - Sending: records fill a message up to `maxlen` (or 255 records); a
//!   message leaves when full, or at the latest [`FLUSH_AFTER`] after its
//!   first record.
//! - Refresh policy (the data plane's side, here documented): a connection
//!   is reported when it starts, when it changes state (into ESTABLISHED,
//!   FIN, CLOSE), and, while it lives, again whenever its timestamp crosses a
//!   multiple of the sync period (half the shortest idle timeout), so a
//!   backup's copy, stamped when received, never expires while the
//!   connection lives. This is IPVS's `sync_refresh_period` idea without
//!   per-connection state.
//! - Receiving: a record maps (protocol, VIP, VIP port) to a local service
//!   and its destination to a local backend; what cannot be mapped is
//!   skipped and counted by reason. Persistence templates become
//!   persistence entries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lb_common::conn_state;
use serde::Serialize;

use super::directory::{masked, Directory};
use super::packet::{self, flags, state, DecodeError, MessageBuilder, SkipReason, SyncConn};
use crate::dataplane::{Mode, Timeouts};

/// The longest a record waits in a message before it leaves.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// What the node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// VRRP master: sends.
    Master,
    /// VRRP backup (or any state but master): receives.
    Backup,
    /// No VRRP instance named: sends and receives.
    Both,
}

impl Role {
    pub fn sends(self) -> bool {
        matches!(self, Role::Master | Role::Both)
    }
    pub fn receives(self) -> bool {
        matches!(self, Role::Backup | Role::Both)
    }
}

/// A connection as the data plane reports it (service and backend by id,
/// state as the program numbers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub protocol: u8,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub dest: SocketAddr,
    pub service: u32,
    /// `lb_common::conn_state`.
    pub state: u8,
}

/// An entry for the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A connection; with `mode` NAT its reverse entry goes with it.
    Conn {
        protocol: u8,
        client: SocketAddr,
        vip: SocketAddr,
        dest: SocketAddr,
        service: u32,
        backend: u32,
        /// `lb_common::conn_state`.
        state: u8,
        mode: Mode,
        /// lc/wlc: the entry counts towards its backend's connections.
        counted: bool,
    },
    /// A persistence entry: clients of `client` (already masked) go to
    /// `backend`.
    Persist {
        client: std::net::IpAddr,
        service: u32,
        backend: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    Write(Vec<Entry>),
    /// Turn the data plane's reporting on or off.
    Report(bool),
}

/// Counters by reason, for `lbctl` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub sent_messages: u64,
    pub sent_records: u64,
    pub received_messages: u64,
    pub received_records: u64,
    pub written: u64,
    pub skipped_unknown_service: u64,
    pub skipped_unknown_backend: u64,
    pub skipped_not_persistent: u64,
    /// Records the decoder skipped (`unknown_option`, ...).
    pub skipped_records: BTreeMap<String, u64>,
    pub bad_syncid: u64,
    /// Datagrams refused, by kind.
    pub decode_errors: BTreeMap<String, u64>,
    /// Heard while not receiving (a master hears the other master).
    pub ignored_messages: u64,
    pub unreported_unknown_service: u64,
    /// Reports naming a backend this node no longer has.
    pub unreported_unknown_backend: u64,
    pub ring_drops: u64,
    pub send_errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub syncid: u8,
    pub send_maxlen: usize,
    pub timeouts: Timeouts,
}

pub struct Core {
    params: Params,
    role: Role,
    pending: Option<(MessageBuilder, Instant)>,
    counters: Counters,
}

impl Core {
    pub fn new(params: Params, role: Role) -> Self {
        Core {
            params,
            role,
            pending: None,
            counters: Counters::default(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The actions that put the node in its current role (at start).
    pub fn start(&self) -> Vec<Action> {
        vec![Action::Report(self.role.sends())]
    }

    /// The VRRP instance changed state: the role follows at once. A master
    /// that steps down sends what it holds first.
    pub fn set_role(&mut self, role: Role) -> Vec<Action> {
        if role == self.role {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !role.sends() {
            out.extend(self.flush());
        }
        self.role = role;
        out.push(Action::Report(role.sends()));
        out
    }

    /// When [`Core::tick`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|(_, t)| *t + FLUSH_AFTER)
    }

    /// Sends a message whose first record has waited [`FLUSH_AFTER`].
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.deadline() {
            Some(d) if now >= d => self.flush().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The data plane lost reports (its ring buffer was full).
    pub fn ring_dropped(&mut self, n: u64) {
        self.counters.ring_drops += n;
    }

    /// A report named a backend the directory does not know (a slot
    /// reused since the report was written).
    pub fn unknown_backend_report(&mut self) {
        self.counters.unreported_unknown_backend += 1;
    }

    /// A datagram could not be sent.
    pub fn send_failed(&mut self) {
        self.counters.send_errors += 1;
    }

    /// The data plane reports a connection (or its state change).
    pub fn report(&mut self, r: &Report, dir: &Directory, now: Instant) -> Vec<Action> {
        if !self.role.sends() {
            return Vec::new();
        }
        let Some(svc) = dir.service_by_id(r.service) else {
            self.counters.unreported_unknown_service += 1;
            return Vec::new();
        };
        let fwd = forward_flags(svc.mode);
        let mut records = vec![SyncConn {
            protocol: r.protocol,
            flags: fwd,
            state: ipvs_state(r.protocol, r.state),
            client: r.client,
            vip: r.vip,
            dest: r.dest,
            fwmark: 0,
            timeout: timeout_secs(&self.params.timeouts, r.state),
            seq: None,
            pe_data: None,
            pe_name: None,
        }];
        if let Some(p) = svc.persistence {
            // The template, as IPVS keeps it: the client (masked), no client
            // port, the service and the destination.
            records.push(SyncConn {
                protocol: r.protocol,
                flags: fwd | flags::TEMPLATE,
                state: state::TEMPLATE_NONE,
                client: SocketAddr::new(masked(r.client.ip(), p.mask), 0),
                vip: r.vip,
                dest: r.dest,
                fwmark: 0,
                timeout: p.timeout_secs,
                seq: None,
                pe_data: None,
                pe_name: None,
            });
        }
        let mut out = Vec::new();
        for rec in &records {
            out.extend(self.push(rec, now));
        }
        out
    }

    fn push(&mut self, rec: &SyncConn, now: Instant) -> Option<Action> {
        let (syncid, maxlen) = (self.params.syncid, self.params.send_maxlen);
        let (b, _) = self
            .pending
            .get_or_insert_with(|| (MessageBuilder::new(syncid, maxlen), now));
        match b.push(rec) {
            Ok(()) => None,
            Err(packet::EncodeError::Full) => {
                let full = self.flush();
                let mut b = MessageBuilder::new(syncid, maxlen);
                // A record alone always fits a message of a sane maxlen; if
                // it does not, it is lost (and counted as a send error).
                if b.push(rec).is_err() {
                    self.counters.send_errors += 1;
                } else {
                    self.pending = Some((b, now));
                }
                full
            }
            Err(_) => {
                self.counters.send_errors += 1;
                None
            }
        }
    }

    fn flush(&mut self) -> Option<Action> {
        let (b, _) = self.pending.take()?;
        if b.is_empty() {
            return None;
        }
        self.counters.sent_messages += 1;
        self.counters.sent_records += b.count() as u64;
        Some(Action::Send(b.finish()))
    }

    /// A datagram heard on the sync group.
    pub fn receive(&mut self, buf: &[u8], dir: &Directory) -> Vec<Action> {
        if !self.role.receives() {
            self.counters.ignored_messages += 1;
            return Vec::new();
        }
        let msg = match packet::decode(buf, self.params.syncid) {
            Ok(m) => m,
            Err(DecodeError::OtherSyncId { .. }) => {
                self.counters.bad_syncid += 1;
                return Vec::new();
            }
            Err(e) => {
                *self
                    .counters
                    .decode_errors
                    .entry(error_kind(&e).to_string())
                    .or_default() += 1;
                return Vec::new();
            }
        };
        self.counters.received_messages += 1;
        self.counters.received_records += (msg.conns.len() + msg.skipped.len()) as u64;
        for s in &msg.skipped {
            *self
                .counters
                .skipped_records
                .entry(skip_name(*s).to_string())
                .or_default() += 1;
        }
        let mut entries = Vec::new();
        for c in &msg.conns {
            if let Some(e) = self.entry(c, dir) {
                entries.push(e);
            }
        }
        if entries.is_empty() {
            return Vec::new();
        }
        self.counters.written += entries.len() as u64;
        vec![Action::Write(entries)]
    }

    fn entry(&mut self, c: &SyncConn, dir: &Directory) -> Option<Entry> {
        let Some(svc) = dir.service(c.protocol, c.vip) else {
            self.counters.skipped_unknown_service += 1;
            return None;
        };
        let Some(&backend) = svc.backends.get(&c.dest) else {
            self.counters.skipped_unknown_backend += 1;
            return None;
        };
        if c.is_template() {
            let Some(p) = svc.persistence else {
                self.counters.skipped_not_persistent += 1;
                return None;
            };
            return Some(Entry::Persist {
                client: masked(c.client.ip(), p.mask),
                service: svc.id,
                backend,
            });
        }
        Some(Entry::Conn {
            protocol: c.protocol,
            client: c.client,
            vip: c.vip,
            dest: c.dest,
            service: svc.id,
            backend,
            state: local_state(c.protocol, c.state),
            // The local service decides how its packets leave.
            mode: svc.mode,
            counted: svc.counts_connections(),
        })
    }
}

fn forward_flags(mode: Mode) -> u32 {
    match mode {
        Mode::Dr => flags::DROUTE,
        Mode::Nat => flags::MASQ,
        Mode::Tun => flags::TUNNEL,
    }
}

const IPPROTO_UDP: u8 = 17;

/// The program's state as IPVS numbers it.
pub fn ipvs_state(protocol: u8, s: u8) -> u16 {
    if protocol == IPPROTO_UDP {
        return state::UDP_NORMAL;
    }
    match s {
        conn_state::SYN => state::TCP_SYN_RECV,
        conn_state::ESTABLISHED => state::TCP_ESTABLISHED,
        conn_state::FIN => state::TCP_FIN_WAIT,
        conn_state::CLOSE => state::TCP_CLOSE,
        _ => state::TCP_NONE,
    }
}

/// An IPVS state as the program keeps it: its five states are coarser.
pub fn local_state(protocol: u8, s: u16) -> u8 {
    if protocol == IPPROTO_UDP {
        return conn_state::UDP;
    }
    match s {
        state::TCP_ESTABLISHED => conn_state::ESTABLISHED,
        state::TCP_FIN_WAIT
        | state::TCP_TIME_WAIT
        | state::TCP_CLOSE_WAIT
        | state::TCP_LAST_ACK => conn_state::FIN,
        state::TCP_CLOSE => conn_state::CLOSE,
        _ => conn_state::SYN,
    }
}

fn timeout_secs(t: &Timeouts, s: u8) -> u32 {
    match s {
        conn_state::ESTABLISHED => t.tcp,
        conn_state::FIN => t.tcpfin,
        conn_state::UDP => t.udp,
        conn_state::CLOSE => 10,
        _ => 60,
    }
}

fn error_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::TooShort(_) => "too_short",
        DecodeError::SizeMismatch { .. } => "size_mismatch",
        DecodeError::OtherSyncId { .. } => "other_syncid",
        DecodeError::Version0 => "version0",
        DecodeError::RecordOverrun { .. } => "record_overrun",
        DecodeError::RecordVersion { .. } => "record_version",
        DecodeError::AddressType { .. } => "address_type",
        DecodeError::RecordTooShort { .. } => "record_too_short",
        DecodeError::BadOption { .. } => "bad_option",
    }
}

fn skip_name(s: SkipReason) -> &'static str {
    match s {
        SkipReason::UnknownOption => "unknown_option",
        SkipReason::UnknownProtocol => "unknown_protocol",
        SkipReason::BadState => "bad_state",
    }
}

#[cfg(test)]
mod tests;
