//! The IPVS implementation of the data plane: the kernel's own load
//! balancer, driven over generic netlink the way keepalived drives it.
//!
//! `apply` reads what IPVS holds, works out the difference with what the
//! configuration wants ([`diff`], a pure function) and sends only that:
//! a service is never flushed and rebuilt. Services the configuration names
//! that are already in IPVS are adopted; services it does not name are left
//! alone, unless this lbd put them there and they left the configuration.
//!
//! Mapping (as keepalived's): `lb_algo` → scheduler name; `lb_kind` →
//! forwarding method (NAT → masquerading, DR → direct routing, TUN →
//! tunnelling); `persistence_timeout`/`persistence_granularity` → the
//! persistent flag, timeout and netmask (an IPv6 prefix length for IPv6);
//! `sh-port`/`mh-port`, `sh-fallback`/`mh-fallback`, `flag-1..3` and `ops`
//! → service flags; a real server out of the pool is deleted, or with
//! `inhibit_on_failure` kept with weight 0; the `sorry_server` is present
//! while no real server has a weight (with `sorry_server_inhibit` it stays
//! with weight 0 otherwise).

pub mod attrs;
pub mod genl;
pub mod sync_daemon;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, RwLock},
};

use tracing::{info, warn};

use self::{
    attrs::{cmd, cmd_attr, fwd, info_attr, svc_flag, Dest, IpvsMessage, Key, Service},
    genl::{errno_name, Genl, GenlError},
};
use super::{
    Algo, BackendStats, Capabilities, ConnInfo, Dataplane, DataplaneError, Mode, Proto, Reader,
    ServiceSpec, ServiceStats, Stats, Timeouts,
};

/// A destination the configuration wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedDest {
    pub dest: Dest,
    /// The `sorry_server` (for messages and stats).
    pub sorry: bool,
}

/// A service the configuration wants, as IPVS would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub svc: Service,
    pub dests: Vec<WantedDest>,
}

/// One change to IPVS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    EditService(Service),
    DelService(Key),
    AddDest(Key, WantedDest),
    EditDest(Key, WantedDest),
    DelDest(Key, SocketAddr),
}

pub fn forwarding(mode: Mode) -> u32 {
    match mode {
        Mode::Nat => fwd::MASQ,
        Mode::Dr => fwd::DROUTE,
        Mode::Tun => fwd::TUNNEL,
    }
}

fn mode_of(method: u32) -> Option<Mode> {
    match method & fwd::MASK {
        fwd::MASQ => Some(Mode::Nat),
        fwd::DROUTE => Some(Mode::Dr),
        fwd::TUNNEL => Some(Mode::Tun),
        _ => None,
    }
}

pub fn key_of(spec: &ServiceSpec) -> Key {
    match spec.ipvs.fwmark {
        Some(mark) => Key::Fwmark {
            af: attrs::af_of(spec.vip.ip()),
            mark,
        },
        None => Key::Addr {
            protocol: u16::from(spec.proto.number()),
            vip: spec.vip,
        },
    }
}

/// What IPVS should hold for `spec`.
pub fn wanted(spec: &ServiceSpec) -> Wanted {
    let mut flags = spec.ipvs.sched_flags;
    if spec.hash_port {
        flags |= svc_flag::SCHED_PORT;
    }
    if spec.fallback {
        flags |= svc_flag::SCHED_FALLBACK;
    }
    if spec.ipvs.one_packet {
        flags |= svc_flag::ONEPACKET;
    }
    let v6 = spec.vip.is_ipv6();
    let (timeout, netmask) = match spec.persistence {
        Some(p) => {
            flags |= svc_flag::PERSISTENT;
            let netmask = match p.mask {
                IpAddr::V4(m) if !v6 => Service::netmask_v4(m),
                IpAddr::V6(m) if v6 => u128::from(m).count_ones().max(1),
                _ => full_netmask(v6),
            };
            (p.timeout_secs, netmask)
        }
        None => (0, full_netmask(v6)),
    };
    let svc = Service {
        key: key_of(spec),
        sched: spec.ipvs.scheduler(&spec.algo).into_owned(),
        flags,
        timeout,
        netmask,
        pe_name: None,
        stats: Default::default(),
    };
    let method = forwarding(spec.mode);
    let mut dests: Vec<WantedDest> = Vec::new();
    for b in &spec.backends {
        if b.removed || dests.iter().any(|d| d.dest.addr == b.addr) {
            continue;
        }
        dests.push(WantedDest {
            dest: Dest::new(b.addr, method, weight(b.weight)),
            sorry: false,
        });
    }
    if let Some(s) = &spec.sorry {
        let serving = dests.iter().any(|d| d.dest.weight > 0);
        let taken = dests.iter().any(|d| d.dest.addr == s.addr);
        let weight = match (serving, spec.ipvs.sorry_inhibit) {
            (false, _) => Some(weight(s.weight.max(1))),
            (true, true) => Some(0),
            (true, false) => None,
        };
        if let (Some(w), false) = (weight, taken) {
            dests.push(WantedDest {
                dest: Dest::new(s.addr, method, w),
                sorry: true,
            });
        }
    }
    Wanted { svc, dests }
}

fn weight(w: u32) -> i32 {
    w.min(i32::MAX as u32) as i32
}

/// No persistence grouping: one client address.
fn full_netmask(v6: bool) -> u32 {
    if v6 {
        128
    } else {
        u32::MAX
    }
}

/// Whether a service's own settings differ (its destinations aside).
fn service_differs(have: &Service, want: &Service) -> bool {
    let persistent = want.flags & svc_flag::PERSISTENT != 0;
    have.sched != want.sched
        || have.flags & svc_flag::CONFIGURABLE != want.flags & svc_flag::CONFIGURABLE
        || (persistent && (have.timeout != want.timeout || have.netmask != want.netmask))
}

fn dest_differs(have: &Dest, want: &Dest) -> bool {
    have.weight != want.weight
        || have.fwd != want.fwd
        || have.u_thresh != want.u_thresh
        || have.l_thresh != want.l_thresh
}

/// The operations that turn `current` (what IPVS holds) into `wanted`.
/// `owned`: services this lbd put in IPVS (or adopted) earlier; only those
/// are deleted when the configuration stops naming them.
pub fn diff(current: &[(Service, Vec<Dest>)], wanted: &[Wanted], owned: &BTreeSet<Key>) -> Vec<Op> {
    let have: HashMap<Key, &(Service, Vec<Dest>)> = current.iter().map(|c| (c.0.key, c)).collect();
    let mut ops = Vec::new();
    let mut seen = BTreeSet::new();
    for w in wanted {
        seen.insert(w.svc.key);
    }
    for key in owned {
        if !seen.contains(key) && have.contains_key(key) {
            ops.push(Op::DelService(*key));
        }
    }
    let mut done = BTreeSet::new();
    for w in wanted {
        let key = w.svc.key;
        if !done.insert(key) {
            continue; // the planner lets no duplicate through; never send one
        }
        match have.get(&key) {
            None => {
                ops.push(Op::AddService(w.svc.clone()));
                ops.extend(w.dests.iter().map(|d| Op::AddDest(key, d.clone())));
            }
            Some((svc, dests)) => {
                if service_differs(svc, &w.svc) {
                    ops.push(Op::EditService(w.svc.clone()));
                }
                for d in &w.dests {
                    match dests.iter().find(|h| h.addr == d.dest.addr) {
                        None => ops.push(Op::AddDest(key, d.clone())),
                        Some(h) if dest_differs(h, &d.dest) => {
                            ops.push(Op::EditDest(key, d.clone()))
                        }
                        Some(_) => {}
                    }
                }
                for h in dests {
                    if !w.dests.iter().any(|d| d.dest.addr == h.addr) {
                        ops.push(Op::DelDest(key, h.addr));
                    }
                }
            }
        }
    }
    ops
}

/// What an operation did, for logs and errors.
fn describe_op(op: &Op) -> String {
    let role = |d: &WantedDest| {
        if d.sorry {
            "sorry_server"
        } else {
            "real_server"
        }
    };
    match op {
        Op::AddService(s) => format!("adding service {} (lb_algo {})", s.key, s.sched),
        Op::EditService(s) => format!("changing service {} (lb_algo {})", s.key, s.sched),
        Op::DelService(k) => format!("removing service {k}"),
        Op::AddDest(k, d) => format!(
            "adding {} {} to service {k} (weight {}, {})",
            role(d),
            d.dest.addr,
            d.dest.weight,
            fwd::name(d.dest.fwd)
        ),
        Op::EditDest(k, d) => format!(
            "setting {} {} of service {k} to weight {}, {}",
            role(d),
            d.dest.addr,
            d.dest.weight,
            fwd::name(d.dest.fwd)
        ),
        Op::DelDest(k, a) => format!("removing real server {a} from service {k}"),
    }
}

/// The kernel's refusal of `op`, explained with the configuration field
/// that caused it.
pub fn explain(op: &Op, e: &GenlError) -> String {
    let errno = e.errno().unwrap_or(0);
    let what = describe_op(op);
    let name = errno_name(errno);
    let why = match (op, errno) {
        (_, libc::EPERM) => "not permitted: lbd needs CAP_NET_ADMIN".to_string(),
        (Op::AddService(s) | Op::EditService(s), libc::ENOENT) => format!(
            "lb_algo {}: the kernel has no IPVS scheduler `{}` (module ip_vs_{} not loaded or not built)",
            s.sched, s.sched, s.sched
        ),
        (Op::AddService(_), libc::EEXIST) => {
            "the service is already in IPVS (added by someone else meanwhile)".to_string()
        }
        (Op::AddService(s) | Op::EditService(s), libc::EINVAL) => format!(
            "the kernel refused the service's settings (lb_algo {}, flags {:#x}, persistence_timeout {}, persistence_granularity {})",
            s.sched,
            s.flags,
            s.timeout,
            netmask_text(s)
        ),
        (Op::AddService(_), libc::EAFNOSUPPORT) => {
            "this kernel's IPVS has no IPv6 (CONFIG_IP_VS_IPV6)".to_string()
        }
        (Op::AddService(_), libc::EPROTONOSUPPORT) => {
            "protocol: this kernel's IPVS does not carry it".to_string()
        }
        (Op::AddDest(..) | Op::EditDest(..) | Op::DelDest(..) | Op::EditService(_) | Op::DelService(_), libc::ESRCH) => {
            "the service is not in IPVS (removed by someone else meanwhile)".to_string()
        }
        (Op::AddDest(..), libc::EEXIST) => "the real server is already in the service".to_string(),
        (Op::EditDest(..) | Op::DelDest(..), libc::ENOENT) => {
            "the real server is not in the service (removed by someone else meanwhile)".to_string()
        }
        (Op::AddDest(_, d) | Op::EditDest(_, d), libc::EINVAL) => format!(
            "the kernel refused weight {} / lb_kind {} for {} (a real server of another address family needs lb_kind TUN)",
            d.dest.weight,
            fwd::name(d.dest.fwd),
            d.dest.addr
        ),
        _ => e.to_string(),
    };
    format!("{what}: {why} [{name}]")
}

fn netmask_text(s: &Service) -> String {
    if s.key.af() == attrs::AF_INET6 {
        format!("{}", s.netmask)
    } else {
        Ipv4Addr::from(s.netmask.to_ne_bytes()).to_string()
    }
}

/// Each service's sorry server: IPVS holds it as one more destination.
pub type SorryServers = BTreeMap<Key, SocketAddr>;

/// The IPVS data plane.
pub struct IpvsDataplane {
    genl: Genl,
    /// Services this lbd put in IPVS or adopted.
    owned: BTreeSet<Key>,
    /// Each owned service's sorry server, for stats (shared with readers).
    sorry: Arc<RwLock<SorryServers>>,
    /// Refusals already logged, so a retry of the same change does not
    /// repeat them (cleared once everything applies).
    reported: BTreeSet<String>,
    version: u32,
    conn_table: u32,
}

impl IpvsDataplane {
    /// Connects to the kernel's IPVS; fails clearly when it is missing or
    /// lbd may not drive it.
    pub fn open() -> Result<Self, DataplaneError> {
        let unavailable = |reason: String| DataplaneError::Unavailable {
            tier: "ipvs".into(),
            reason,
        };
        let genl = Genl::open().map_err(|e| match e.errno() {
            Some(libc::ENOENT) => unavailable(
                "the kernel has no IPVS: the generic netlink family `IPVS` is not registered \
                 (load it with `modprobe ip_vs`)"
                    .into(),
            ),
            _ => unavailable(format!("opening a generic netlink socket: {e}")),
        })?;
        let reply = genl
            .request(IpvsMessage {
                cmd: cmd::GET_INFO,
                attrs: Vec::new(),
            })
            .map_err(|e| match e.errno() {
                Some(libc::EPERM) => unavailable("not permitted: lbd needs CAP_NET_ADMIN".into()),
                _ => unavailable(format!("IPVS GET_INFO: {e}")),
            })?;
        let info = reply.first();
        Ok(Self {
            genl,
            owned: BTreeSet::new(),
            sorry: Arc::default(),
            reported: BTreeSet::new(),
            version: info
                .and_then(|m| attrs::u32_in(m, info_attr::VERSION))
                .unwrap_or(0),
            conn_table: info
                .and_then(|m| attrs::u32_in(m, info_attr::CONN_TAB_SIZE))
                .unwrap_or(0),
        })
    }

    /// Every service in IPVS with its destinations.
    pub fn read(&self) -> Result<Vec<(Service, Vec<Dest>)>, DataplaneError> {
        read_tables(&self.genl)
    }

    /// A reader of IPVS's tables on a socket of its own, for the control
    /// API and the metrics (`lbctl services`, `backends`, `stats`).
    pub fn reader(&self) -> Result<IpvsReader, DataplaneError> {
        let genl = Genl::open().map_err(|e| {
            DataplaneError::Ipvs(format!("opening a second socket for reading: {e}"))
        })?;
        Ok(IpvsReader {
            genl: Mutex::new(genl),
            sorry: self.sorry.clone(),
        })
    }

    /// Sends one operation.
    pub fn execute(&self, op: &Op) -> Result<(), GenlError> {
        let msg = match op {
            Op::AddService(s) => attrs::service_request(cmd::NEW_SERVICE, s),
            Op::EditService(s) => attrs::service_request(cmd::SET_SERVICE, s),
            Op::DelService(k) => IpvsMessage {
                cmd: cmd::DEL_SERVICE,
                attrs: vec![attrs::Attr::nested(cmd_attr::SERVICE, k.attrs())],
            },
            Op::AddDest(k, d) => attrs::dest_request(cmd::NEW_DEST, k, d.dest.attrs()),
            Op::EditDest(k, d) => attrs::dest_request(cmd::SET_DEST, k, d.dest.attrs()),
            Op::DelDest(k, a) => attrs::dest_request(cmd::DEL_DEST, k, Dest::id_attrs(*a)),
        };
        self.genl.request(msg).map(|_| ())
    }

    /// The connection timeouts IPVS uses now.
    pub fn timeouts(&self) -> Result<Timeouts, DataplaneError> {
        let reply = self
            .genl
            .request(IpvsMessage {
                cmd: cmd::GET_CONFIG,
                attrs: Vec::new(),
            })
            .map_err(|e| DataplaneError::Ipvs(format!("GET_CONFIG: {e}")))?;
        let m = reply
            .first()
            .ok_or_else(|| DataplaneError::Ipvs("GET_CONFIG: no reply".into()))?;
        let get = |k| attrs::u32_in(m, k).unwrap_or(0);
        Ok(Timeouts {
            tcp: get(cmd_attr::TIMEOUT_TCP),
            tcpfin: get(cmd_attr::TIMEOUT_TCP_FIN),
            udp: get(cmd_attr::TIMEOUT_UDP),
        })
    }

    /// Services this lbd owns in IPVS.
    pub fn owned(&self) -> impl Iterator<Item = &Key> {
        self.owned.iter()
    }
}

/// Every service in IPVS with its destinations (GET_SERVICE, GET_DEST).
fn read_tables(genl: &Genl) -> Result<Vec<(Service, Vec<Dest>)>, DataplaneError> {
    let err = |what: &str, e: GenlError| DataplaneError::Ipvs(format!("reading {what}: {e}"));
    let replies = genl
        .dump(IpvsMessage {
            cmd: cmd::GET_SERVICE,
            attrs: Vec::new(),
        })
        .map_err(|e| err("services", e))?;
    let mut out = Vec::new();
    for r in replies {
        let svc = attrs::nested_in(&r, cmd_attr::SERVICE)
            .and_then(|a| Service::parse(&a))
            .map_err(|e| DataplaneError::Ipvs(format!("reading services: {e}")))?;
        let dests = genl
            .dump(IpvsMessage {
                cmd: cmd::GET_DEST,
                attrs: vec![attrs::Attr::nested(cmd_attr::SERVICE, svc.key.attrs())],
            })
            .map_err(|e| err(&format!("real servers of {}", svc.key), e))?
            .iter()
            .map(|m| {
                attrs::nested_in(m, cmd_attr::DEST).and_then(|a| Dest::parse(&a, svc.key.af()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                DataplaneError::Ipvs(format!("reading real servers of {}: {e}", svc.key))
            })?;
        out.push((svc, dests));
    }
    Ok(out)
}

/// IPVS's tables as the data plane's counters: a service's packets and
/// bytes count both directions, `new_conns` is IPVS's connection counter,
/// and a destination's active and inactive connections are IPVS's own.
pub fn stats_of(tables: Vec<(Service, Vec<Dest>)>, sorry: &SorryServers) -> Stats {
    let mut out = Stats::default();
    let (mut inp, mut inb, mut outp, mut outb) = (0, 0, 0, 0);
    for (svc, dests) in tables {
        let (vip, proto, fwmark) = match svc.key {
            Key::Addr { protocol, vip } => match protocol {
                attrs::IPPROTO_TCP => (vip, Proto::Tcp, None),
                attrs::IPPROTO_UDP => (vip, Proto::Udp, None),
                _ => continue, // SCTP: not ours to show
            },
            Key::Fwmark { af, mark } => {
                let any = if af == attrs::AF_INET6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                (SocketAddr::new(any, 0), Proto::Tcp, Some(mark))
            }
        };
        inp += svc.stats.inpkts;
        inb += svc.stats.inbytes;
        outp += svc.stats.outpkts;
        outb += svc.stats.outbytes;
        let sorry = sorry.get(&svc.key);
        out.services.push(ServiceStats {
            vip,
            fwmark,
            proto,
            algo: algo_of(&svc.sched),
            mode: dests.first().and_then(|d| mode_of(d.fwd)),
            packets: svc.stats.inpkts + svc.stats.outpkts,
            bytes: svc.stats.inbytes + svc.stats.outbytes,
            new_conns: svc.stats.conns,
            backends: dests
                .iter()
                .map(|d| BackendStats {
                    addr: d.addr,
                    weight: d.weight.max(0) as u32,
                    mac: None,
                    ready: d.weight > 0,
                    sorry: sorry == Some(&d.addr),
                    active: u64::from(d.active),
                    inactive: u64::from(d.inactive),
                    packets: d.stats.inpkts + d.stats.outpkts,
                    bytes: d.stats.inbytes + d.stats.outbytes,
                    new_conns: d.stats.conns,
                })
                .collect(),
        });
    }
    out.global = vec![("in".into(), inp, inb), ("out".into(), outp, outb)];
    out
}

/// Reads IPVS's tables on a socket of its own (see [`IpvsDataplane::reader`]).
pub struct IpvsReader {
    genl: Mutex<Genl>,
    sorry: Arc<RwLock<SorryServers>>,
}

impl Reader for IpvsReader {
    fn stats(&self) -> Result<Stats, DataplaneError> {
        let tables = read_tables(&self.genl.lock().unwrap_or_else(|p| p.into_inner()))?;
        let sorry = self.sorry.read().unwrap_or_else(|p| p.into_inner());
        Ok(stats_of(tables, &sorry))
    }

    fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        Self::no_connections(limit)
    }
}

impl IpvsReader {
    /// `lbctl conns`: the tier does not list its connections.
    pub fn no_connections(_limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        Err(DataplaneError::Unavailable {
            tier: "ipvs".into(),
            reason: "the connection list is not available on the ipvs tier \
                     (IPVS's connections are the kernel's: `ipvsadm -Lnc`)"
                .into(),
        })
    }
}

fn algo_of(sched: &str) -> Option<Algo> {
    [Algo::Rr, Algo::Wrr, Algo::Lc, Algo::Wlc, Algo::Sh, Algo::Mh]
        .into_iter()
        .find(|a| a.to_string() == sched)
}

impl Dataplane for IpvsDataplane {
    fn describe(&self) -> String {
        let v = self.version;
        format!(
            "ipvs (IPVS {}.{}.{}, connection table {})",
            (v >> 16) & 0xff,
            (v >> 8) & 0xff,
            v & 0xff,
            self.conn_table
        )
    }

    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError> {
        let wanted: Vec<Wanted> = services.iter().map(wanted).collect();
        let current = self.read()?;
        for w in &wanted {
            if !self.owned.contains(&w.svc.key) && current.iter().any(|c| c.0.key == w.svc.key) {
                info!(service = %w.svc.key, "adopting the service already in IPVS");
            }
        }
        let ops = diff(&current, &wanted, &self.owned);
        let mut failed_services = BTreeSet::new();
        let mut errors = Vec::new();
        for op in &ops {
            let key = match op {
                Op::AddService(s) | Op::EditService(s) => s.key,
                Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => {
                    *k
                }
            };
            if failed_services.contains(&key) {
                continue;
            }
            match self.execute(op) {
                Ok(()) => info!("IPVS: {}", describe_op(op)),
                Err(e) => {
                    let msg = explain(op, &e);
                    if self.reported.insert(msg.clone()) {
                        warn!("IPVS: {msg}");
                    }
                    if matches!(op, Op::AddService(_)) {
                        failed_services.insert(key);
                    }
                    errors.push(msg);
                }
            }
        }
        self.owned = wanted
            .iter()
            .map(|w| w.svc.key)
            .filter(|k| !failed_services.contains(k))
            .collect();
        *self.sorry.write().unwrap_or_else(|p| p.into_inner()) = wanted
            .iter()
            .flat_map(|w| {
                w.dests
                    .iter()
                    .filter(|d| d.sorry)
                    .map(|d| (w.svc.key, d.dest.addr))
            })
            .collect();
        match errors.len() {
            0 => {
                self.reported.clear();
                Ok(())
            }
            1 => Err(DataplaneError::Ipvs(errors.remove(0))),
            n => Err(DataplaneError::Ipvs(format!(
                "{n} changes failed: {}",
                errors.join("; ")
            ))),
        }
    }

    fn stats(&self) -> Result<Stats, DataplaneError> {
        let sorry = self.sorry.read().unwrap_or_else(|p| p.into_inner());
        Ok(stats_of(self.read()?, &sorry))
    }

    fn tier(&self) -> &'static str {
        "ipvs"
    }

    fn reader(&self) -> Option<Result<Box<dyn Reader>, DataplaneError>> {
        Some(IpvsDataplane::reader(self).map(|r| Box::new(r) as Box<dyn Reader>))
    }

    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), DataplaneError> {
        // 0 leaves a timeout unchanged (the kernel's convention).
        self.genl
            .request(IpvsMessage {
                cmd: cmd::SET_CONFIG,
                attrs: vec![
                    attrs::Attr::u32(cmd_attr::TIMEOUT_TCP, t.tcp),
                    attrs::Attr::u32(cmd_attr::TIMEOUT_TCP_FIN, t.tcpfin),
                    attrs::Attr::u32(cmd_attr::TIMEOUT_UDP, t.udp),
                ],
            })
            .map(|_| ())
            .map_err(|e| {
                DataplaneError::Ipvs(format!(
                    "setting timeouts (tcp {}, tcpfin {}, udp {}): {e}",
                    t.tcp, t.tcpfin, t.udp
                ))
            })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::IPVS
    }

    fn shutdown(&mut self, keep: bool) {
        if keep {
            info!("leaving the IPVS services in place for the next lbd");
            return;
        }
        for key in std::mem::take(&mut self.owned) {
            let op = Op::DelService(key);
            match self.execute(&op) {
                Ok(()) => info!("IPVS: {}", describe_op(&op)),
                Err(e) => warn!("IPVS: {}", explain(&op, &e)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
