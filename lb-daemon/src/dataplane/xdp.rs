//! The XDP implementation of the data plane.

use std::collections::HashMap as StdHashMap;

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{xdp::XdpLinkId, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use lb_common::{
    maps as names, stat, Backend, Counters, Iface, Service, VipKey, BACKEND_F_READY, MAX_BACKENDS,
    MAX_SCHEDULE, MAX_SERVICES,
};
use tracing::{info, warn};

use super::{
    addr_words, schedule, words_addr, Algo, Dataplane, DataplaneError, Mode, ServiceSpec,
    ServiceStats, Stats,
};
use crate::net::{Interface, MacAddr};

/// Which XDP attach mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic (SKB) mode with a warning.
    Auto,
    Native,
    Skb,
}

/// An interface the program is attached to.
#[derive(Debug)]
struct Attachment {
    iface: Interface,
    mode: XdpMode,
    _link: XdpLinkId,
}

/// A service as installed in the maps.
#[derive(Debug, Default)]
struct Installed {
    id: u32,
    /// Backend address → backend id, for this service.
    backends: StdHashMap<std::net::SocketAddr, u32>,
}

/// Allocates small integer ids, reusing released ones.
#[derive(Debug)]
struct Ids {
    next: u32,
    max: u32,
    free: Vec<u32>,
    what: &'static str,
}

impl Ids {
    fn new(max: u32, what: &'static str) -> Self {
        Self {
            next: 0,
            max,
            free: Vec::new(),
            what,
        }
    }
    fn take(&mut self) -> Result<u32, DataplaneError> {
        if let Some(id) = self.free.pop() {
            return Ok(id);
        }
        if self.next >= self.max {
            return Err(DataplaneError::Capacity {
                what: self.what,
                max: self.max,
            });
        }
        self.next += 1;
        Ok(self.next - 1)
    }
    fn release(&mut self, id: u32) {
        self.free.push(id);
    }
}

pub struct XdpDataplane {
    ebpf: Ebpf,
    services_map: HashMap<MapData, VipKey, Service>,
    backends_map: Array<MapData, Backend>,
    schedule_map: Array<MapData, u32>,
    ifaces_map: HashMap<MapData, u32, Iface>,
    global_stats: PerCpuArray<MapData, Counters>,
    service_stats: PerCpuArray<MapData, Counters>,
    installed: StdHashMap<VipKey, Installed>,
    service_ids: Ids,
    backend_ids: Ids,
    attachments: Vec<Attachment>,
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, DataplaneError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or(DataplaneError::MissingMap { name })?;
    T::try_from(map).map_err(|source| DataplaneError::Map { name, source })
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

impl XdpDataplane {
    /// Loads `object` into the kernel (maps created, program verified).
    pub fn load(object: &[u8]) -> Result<Self, DataplaneError> {
        let mut ebpf = EbpfLoader::new().load(object)?;
        let program: &mut Xdp = program_mut(&mut ebpf)?;
        program.load().map_err(|source| DataplaneError::Program {
            name: lb_common::XDP_PROGRAM,
            source,
        })?;
        Ok(Self {
            services_map: take_map(&mut ebpf, names::SERVICES)?,
            backends_map: take_map(&mut ebpf, names::BACKENDS)?,
            schedule_map: take_map(&mut ebpf, names::SCHEDULE)?,
            ifaces_map: take_map(&mut ebpf, names::IFACES)?,
            global_stats: take_map(&mut ebpf, names::GLOBAL_STATS)?,
            service_stats: take_map(&mut ebpf, names::SERVICE_STATS)?,
            ebpf,
            installed: StdHashMap::new(),
            service_ids: Ids::new(MAX_SERVICES, "services"),
            backend_ids: Ids::new(MAX_BACKENDS, "backends"),
            attachments: Vec::new(),
        })
    }

    /// Attaches the program to `iface` and records its MAC as the source of
    /// the frames sent back out of it.
    pub fn attach(&mut self, iface: &Interface, mode: AttachMode) -> Result<(), DataplaneError> {
        self.ifaces_map
            .insert(
                iface.index,
                Iface {
                    mac: iface.mac.0,
                    _pad: [0; 2],
                },
                0,
            )
            .map_err(map_err(names::IFACES))?;
        let program = program_mut(&mut self.ebpf)?;
        let attach = |program: &mut Xdp, mode| {
            program
                .attach_to_if_index(iface.index, mode)
                .map_err(|e| DataplaneError::Attach {
                    iface: iface.name.clone(),
                    reason: error_chain(&e),
                })
        };
        let (link, mode) = match mode {
            AttachMode::Native => (attach(program, XdpMode::Driver)?, XdpMode::Driver),
            AttachMode::Skb => (attach(program, XdpMode::Skb)?, XdpMode::Skb),
            AttachMode::Auto => match attach(program, XdpMode::Driver) {
                Ok(link) => (link, XdpMode::Driver),
                Err(e) => {
                    warn!(iface = %iface.name, error = %e, "native XDP unavailable, using generic (SKB) mode");
                    (attach(program, XdpMode::Skb)?, XdpMode::Skb)
                }
            },
        };
        info!(iface = %iface.name, ifindex = iface.index, mode = ?mode, "XDP attached");
        self.attachments.push(Attachment {
            iface: iface.clone(),
            mode,
            _link: link,
        });
        Ok(())
    }

    /// Program handle, for tests that drive it with BPF_PROG_TEST_RUN.
    pub fn program(&mut self) -> Result<&mut Xdp, DataplaneError> {
        program_mut(&mut self.ebpf)
    }

    /// Records an interface MAC without attaching (BPF_PROG_TEST_RUN runs the
    /// program as if it arrived on loopback, ifindex 1 of the caller's netns).
    pub fn set_interface_mac(&mut self, ifindex: u32, mac: MacAddr) -> Result<(), DataplaneError> {
        self.ifaces_map
            .insert(
                ifindex,
                Iface {
                    mac: mac.0,
                    _pad: [0; 2],
                },
                0,
            )
            .map_err(map_err(names::IFACES))
    }

    fn install(&mut self, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        let (addr, family) = addr_words(spec.vip.ip());
        let key = VipKey {
            addr,
            port: spec.vip.port().to_be(),
            proto: spec.proto.number(),
            family,
        };
        if !self.installed.contains_key(&key) {
            let id = self.service_ids.take()?;
            self.installed.insert(
                key,
                Installed {
                    id,
                    ..Default::default()
                },
            );
        }
        let installed = self.installed.get_mut(&key).expect("inserted above");

        let mut candidates = Vec::with_capacity(spec.backends.len());
        for b in &spec.backends {
            let id = match installed.backends.get(&b.addr) {
                Some(id) => *id,
                None => {
                    let id = self.backend_ids.take()?;
                    installed.backends.insert(b.addr, id);
                    id
                }
            };
            let (addr, family) = addr_words(b.addr.ip());
            let value = Backend {
                addr,
                port: b.addr.port().to_be(),
                mac: b.mac.map(|m| m.0).unwrap_or_default(),
                flags: if b.mac.is_some() { BACKEND_F_READY } else { 0 },
                family,
                _pad: [0; 2],
            };
            self.backends_map
                .set(id, value, 0)
                .map_err(map_err(names::BACKENDS))?;
            // A backend without a MAC never enters the ring: no frame may be
            // sent to a zero MAC.
            let weight = if b.mac.is_some() { b.weight } else { 0 };
            candidates.push(schedule::Candidate { id, weight });
        }
        let ring = match spec.algo {
            Algo::Rr => schedule::round_robin(&candidates),
            Algo::Wrr => schedule::weighted_round_robin(&candidates),
        };
        // Slots first, then the length that exposes them, so the program
        // never indexes a slot that is not written yet.
        for (slot, id) in ring.iter().enumerate() {
            self.schedule_map
                .set(installed.id * MAX_SCHEDULE + slot as u32, id, 0)
                .map_err(map_err(names::SCHEDULE))?;
        }
        let service = Service {
            id: installed.id,
            sched_len: ring.len() as u32,
            mode: match spec.mode {
                Mode::Dr => lb_common::MODE_DR,
            },
            algo: match spec.algo {
                Algo::Rr => lb_common::ALGO_RR,
                Algo::Wrr => lb_common::ALGO_WRR,
            },
            _pad: [0; 2],
        };
        self.services_map
            .insert(key, service, 0)
            .map_err(map_err(names::SERVICES))?;

        // Backends that left the service: their slots are cleared so flows
        // still pointing at them are scheduled anew, then released.
        let gone: Vec<_> = installed
            .backends
            .keys()
            .filter(|a| !spec.backends.iter().any(|b| b.addr == **a))
            .copied()
            .collect();
        for addr in gone {
            if let Some(id) = installed.backends.remove(&addr) {
                self.backends_map
                    .set(id, Backend::default(), 0)
                    .map_err(map_err(names::BACKENDS))?;
                self.backend_ids.release(id);
            }
        }
        Ok(())
    }

    fn uninstall(&mut self, key: VipKey) -> Result<(), DataplaneError> {
        let Some(installed) = self.installed.remove(&key) else {
            return Ok(());
        };
        match self.services_map.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::SERVICES)(e)),
        }
        for id in installed.backends.into_values() {
            self.backends_map
                .set(id, Backend::default(), 0)
                .map_err(map_err(names::BACKENDS))?;
            self.backend_ids.release(id);
        }
        self.service_ids.release(installed.id);
        Ok(())
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, DataplaneError> {
    let name = lb_common::XDP_PROGRAM;
    let program = ebpf.program_mut(name).ok_or(DataplaneError::Program {
        name,
        source: aya::programs::ProgramError::NotLoaded,
    })?;
    program
        .try_into()
        .map_err(|source| DataplaneError::Program { name, source })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn sum(values: &aya::maps::PerCpuValues<Counters>) -> (u64, u64) {
    values
        .iter()
        .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
}

impl Dataplane for XdpDataplane {
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .attachments
            .iter()
            .map(|a| {
                let mode = match a.mode {
                    XdpMode::Driver => "native",
                    XdpMode::Skb => "skb",
                    _ => "default",
                };
                format!("{} ({mode})", a.iface.name)
            })
            .collect();
        format!("xdp on {}", parts.join(", "))
    }

    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError> {
        for spec in services {
            self.install(spec).map_err(|e| match e {
                DataplaneError::Service { .. } => e,
                other => DataplaneError::Service {
                    vip: spec.vip,
                    proto: spec.proto,
                    reason: other.to_string(),
                },
            })?;
        }
        let wanted: Vec<VipKey> = services
            .iter()
            .map(|s| {
                let (addr, family) = addr_words(s.vip.ip());
                VipKey {
                    addr,
                    port: s.vip.port().to_be(),
                    proto: s.proto.number(),
                    family,
                }
            })
            .collect();
        let stale: Vec<VipKey> = self
            .installed
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            self.uninstall(key)?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats, DataplaneError> {
        let mut global = Vec::new();
        for (i, name) in stat::NAMES.iter().enumerate() {
            let v = self
                .global_stats
                .get(&(i as u32), 0)
                .map_err(map_err(names::GLOBAL_STATS))?;
            let (p, b) = sum(&v);
            global.push((name.to_string(), p, b));
        }
        let mut services = Vec::new();
        for (key, inst) in &self.installed {
            let v = self
                .service_stats
                .get(&inst.id, 0)
                .map_err(map_err(names::SERVICE_STATS))?;
            let (packets, bytes) = sum(&v);
            services.push(ServiceStats {
                vip: std::net::SocketAddr::new(
                    words_addr(key.addr, key.family),
                    u16::from_be(key.port),
                ),
                proto: if key.proto == lb_common::IPPROTO_UDP {
                    super::Proto::Udp
                } else {
                    super::Proto::Tcp
                },
                packets,
                bytes,
            });
        }
        services.sort_by_key(|s| (s.vip, s.proto as u8));
        Ok(Stats { global, services })
    }
}
