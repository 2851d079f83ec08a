//! The XDP implementation of the data plane.

use std::{
    collections::HashMap as StdHashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{links::FdLink, links::PinnedLink, xdp::XdpLink, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use lb_common::{
    conn_state, maps as names, stat, svc, Backend, Conn, ConnCounts, Counters, FlowKey, Iface,
    Service, ServiceSlot, Settings, VipKey, BACKEND_F_NEXTHOP, BACKEND_F_READY, BACKEND_F_SORRY,
    BACKEND_F_USED, MAX_BACKENDS, MAX_LC_BACKENDS, MAX_SERVICES, SCHED_CAPACITY, VIP_FILTER_SHARED,
};
use tracing::{debug, info, warn};

use super::{
    addr_words,
    regions::{Region, Regions},
    schedule::{self, Candidate, MaglevBackend},
    words_addr, Algo, BackendSpec, BackendStats, ConnInfo, Dataplane, DataplaneError, Mode, Proto,
    ServiceSpec, ServiceStats, Stats, Timeouts,
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

/// Options for loading the program.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Pin maps and links here and reuse what is already pinned, so a
    /// restarted daemon takes over a running data plane without a gap.
    pub pin_path: Option<PathBuf>,
    /// Entries of the connection table (default `lb_common::CONN_TABLE_SIZE`).
    pub conn_table_size: Option<u32>,
}

/// An interface the program is attached to.
#[derive(Debug)]
struct Attachment {
    iface: Interface,
    mode: &'static str,
}

/// A service as installed in the maps.
#[derive(Debug)]
struct Installed {
    id: u32,
    /// What was last written (None: adopted from pinned maps, unknown).
    spec: Option<ServiceSpec>,
    /// Backend address → slot id (the sorry server included).
    backends: StdHashMap<SocketAddr, u32>,
    region: Region,
    maglev_size: Option<u32>,
    /// Which of the service's two `SERVICE_SLOTS` holds its current value.
    half: u32,
}

/// Allocates small integer ids in turn, wrapping around: a released id is
/// handed out again only after every other free id has been, so a flow
/// still pointing at a removed service or backend practically never finds
/// a new one under the same id (and released ids wait at least one round).
#[derive(Debug)]
struct Ids {
    cursor: u32,
    max: u32,
    in_use: std::collections::HashSet<u32>,
    retiring: Vec<u32>,
    what: &'static str,
}

impl Ids {
    fn new(max: u32, what: &'static str) -> Self {
        Self {
            cursor: 0,
            max,
            in_use: std::collections::HashSet::new(),
            retiring: Vec::new(),
            what,
        }
    }
    fn take(&mut self) -> Result<u32, DataplaneError> {
        if self.in_use.len() + self.retiring.len() >= self.max as usize {
            return Err(DataplaneError::Capacity {
                what: self.what,
                max: self.max,
            });
        }
        loop {
            let id = self.cursor;
            self.cursor = (self.cursor + 1) % self.max;
            if !self.in_use.contains(&id) && !self.retiring.contains(&id) {
                self.in_use.insert(id);
                return Ok(id);
            }
        }
    }
    fn claim(&mut self, id: u32) {
        self.in_use.insert(id);
        self.cursor = self.cursor.max((id + 1) % self.max);
    }
    fn release(&mut self, id: u32) {
        if self.in_use.remove(&id) {
            self.retiring.push(id);
        }
    }
    fn next_round(&mut self) {
        self.retiring.clear();
    }
}

struct Maps {
    services: HashMap<MapData, VipKey, Service>,
    backends: Array<MapData, Backend>,
    schedule: Array<MapData, u32>,
    #[allow(dead_code)] // written by the program only; kept to hold the map
    rr_cursor: Array<MapData, u64>,
    conns: HashMap<MapData, FlowKey, Conn>,
    backend_conns: Array<MapData, ConnCounts>,
    ifaces: Array<MapData, Iface>,
    settings: Array<MapData, Settings>,
    vip_filter: Array<MapData, u32>,
    service_slots: Array<MapData, ServiceSlot>,
    global_stats: PerCpuArray<MapData, Counters>,
    service_stats: PerCpuArray<MapData, Counters>,
    backend_stats: PerCpuArray<MapData, Counters>,
}

pub struct XdpDataplane {
    ebpf: Ebpf,
    maps: Maps,
    installed: StdHashMap<VipKey, Installed>,
    service_ids: Ids,
    backend_ids: Ids,
    regions: Regions,
    settings: Settings,
    attachments: Vec<Attachment>,
    pin_path: Option<PathBuf>,
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

fn vip_key(vip: SocketAddr, proto: Proto) -> VipKey {
    let (addr, family) = addr_words(vip.ip());
    VipKey {
        addr,
        port: vip.port().to_be(),
        proto: proto.number(),
        family,
    }
}

/// Before adopting maps a previous lbd pinned: each must have the type,
/// key and value sizes this lbd's program declares, or the program would be
/// refused (or worse, misread them). A different version of lbd may have
/// pinned them; it keeps forwarding until it is stopped with
/// `--on-exit detach` (or its pins are removed). A connection table of
/// another size is kept as it is, with a warning: adopting it is what keeps
/// the flows.
fn check_pins(
    object: &[u8],
    pins: &[(&'static str, PathBuf)],
    conn_table_size: Option<u32>,
) -> Result<(), DataplaneError> {
    let obj = aya_obj::Object::parse(object).map_err(|e| DataplaneError::Pin {
        path: "the embedded object".into(),
        reason: e.to_string(),
    })?;
    for (name, path) in pins {
        let (Some(def), true) = (obj.maps.get(*name), path.exists()) else {
            continue;
        };
        let shown = path.display().to_string();
        let info = aya::maps::MapInfo::from_pin(path).map_err(|e| DataplaneError::Pin {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let pinned_type = info.map_type().map(|t| t as u32).unwrap_or(u32::MAX);
        let mismatch = [
            ("map type", pinned_type, def.map_type()),
            ("key size", info.key_size(), def.key_size()),
            ("value size", info.value_size(), def.value_size()),
        ]
        .into_iter()
        .find(|(_, pinned, wanted)| pinned != wanted);
        if let Some((what, pinned, wanted)) = mismatch {
            return Err(DataplaneError::Pin {
                path: shown,
                reason: format!(
                    "pinned by another version of lbd ({what} {pinned}, this lbd needs {wanted}); \
                     stop that lbd with --on-exit detach, or remove the pins, before starting this one"
                ),
            });
        }
        let sized = *name == names::CONNS || *name == names::NAT_REV;
        let wanted = match conn_table_size {
            Some(n) if sized => n,
            _ => def.max_entries(),
        };
        if info.max_entries() != wanted {
            if !sized {
                return Err(DataplaneError::Pin {
                    path: shown,
                    reason: format!(
                        "pinned by another version of lbd ({} entries, this lbd needs {wanted}); \
                         stop that lbd with --on-exit detach, or remove the pins, before starting this one",
                        info.max_entries()
                    ),
                });
            }
            warn!(
                map = name,
                pinned = info.max_entries(),
                asked = wanted,
                "keeping the pinned connection table's size (its flows go on); a new size takes effect after a stop with --on-exit detach"
            );
        }
    }
    Ok(())
}

/// Index in `SERVICE_SLOTS` of one of service `id`'s two slots.
fn slot_index(id: u32, half: u32) -> u32 {
    2 * id + half
}

fn key_vip(key: &VipKey) -> (SocketAddr, Proto) {
    (
        SocketAddr::new(words_addr(key.addr, key.family), u16::from_be(key.port)),
        if key.proto == lb_common::IPPROTO_UDP {
            Proto::Udp
        } else {
            Proto::Tcp
        },
    )
}

fn prefix_mask(mask: IpAddr) -> [u32; 4] {
    addr_words(mask).0
}

impl XdpDataplane {
    /// Loads the object (maps created or, with a pin path, reused).
    pub fn load(object: &[u8]) -> Result<Self, DataplaneError> {
        Self::load_with(object, &LoadOptions::default())
    }

    pub fn load_with(object: &[u8], opts: &LoadOptions) -> Result<Self, DataplaneError> {
        let mut loader = EbpfLoader::new();
        if let Some(size) = opts.conn_table_size {
            loader.map_max_entries(names::CONNS, size);
            loader.map_max_entries(names::NAT_REV, size);
        }
        let pins: Vec<(&'static str, PathBuf)> = match &opts.pin_path {
            Some(dir) => {
                crate::bpffs::ensure(dir).map_err(|e| DataplaneError::Pin {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                names::ALL.iter().map(|n| (*n, dir.join(n))).collect()
            }
            None => Vec::new(),
        };
        let adopting = pins.iter().any(|(_, p)| p.exists());
        if adopting {
            check_pins(object, &pins, opts.conn_table_size)?;
        }
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(object)?;
        let program: &mut Xdp = program_mut(&mut ebpf)?;
        program.load().map_err(|source| DataplaneError::Program {
            name: lb_common::XDP_PROGRAM,
            source,
        })?;
        let maps = Maps {
            services: take_map(&mut ebpf, names::SERVICES)?,
            backends: take_map(&mut ebpf, names::BACKENDS)?,
            schedule: take_map(&mut ebpf, names::SCHEDULE)?,
            rr_cursor: take_map(&mut ebpf, names::RR_CURSOR)?,
            conns: take_map(&mut ebpf, names::CONNS)?,
            backend_conns: take_map(&mut ebpf, names::BACKEND_CONNS)?,
            ifaces: take_map(&mut ebpf, names::IFACES)?,
            settings: take_map(&mut ebpf, names::SETTINGS)?,
            vip_filter: take_map(&mut ebpf, names::VIP_FILTER)?,
            service_slots: take_map(&mut ebpf, names::SERVICE_SLOTS)?,
            global_stats: take_map(&mut ebpf, names::GLOBAL_STATS)?,
            service_stats: take_map(&mut ebpf, names::SERVICE_STATS)?,
            backend_stats: take_map(&mut ebpf, names::BACKEND_STATS)?,
        };
        let mut dp = Self {
            ebpf,
            maps,
            installed: StdHashMap::new(),
            service_ids: Ids::new(MAX_SERVICES, "services"),
            backend_ids: Ids::new(MAX_BACKENDS, "backends"),
            regions: Regions::new(SCHED_CAPACITY),
            settings: Settings::ipvs_defaults(crate::clock::hz()),
            attachments: Vec::new(),
            pin_path: opts.pin_path.clone(),
        };
        if adopting {
            dp.adopt()?;
        } else {
            dp.write_settings()?;
        }
        Ok(dp)
    }

    /// Rebuilds the bookkeeping from maps a previous daemon left pinned.
    fn adopt(&mut self) -> Result<(), DataplaneError> {
        if let Ok(s) = self.maps.settings.get(&0, 0) {
            if s.tcp_timeout != 0 {
                self.settings = s;
            }
        }
        let mut services = Vec::new();
        for item in self.maps.services.iter() {
            let (key, value) = item.map_err(map_err(names::SERVICES))?;
            services.push((key, value));
        }
        let mut slots: StdHashMap<u32, StdHashMap<SocketAddr, u32>> = StdHashMap::new();
        for id in 0..MAX_BACKENDS {
            let b = self
                .maps
                .backends
                .get(&id, 0)
                .map_err(map_err(names::BACKENDS))?;
            if b.flags & BACKEND_F_USED != 0 {
                let addr = SocketAddr::new(words_addr(b.addr, b.family), u16::from_be(b.port));
                slots.entry(b.service).or_default().insert(addr, id);
                self.backend_ids.claim(id);
            }
        }
        for (key, value) in services {
            self.service_ids.claim(value.id);
            let region = Region {
                off: value.sched_off,
                len: value.sched_len,
            };
            self.regions.claim(region);
            // The half the prefilter points at is current; when it points
            // at neither (several services share the prefilter slot, so
            // the program reads SERVICES), half 0 is rewritten.
            let filter = lb_common::vip_filter_index(&key.addr, key.port);
            let pointed = self
                .maps
                .vip_filter
                .get(&filter, 0)
                .map_err(map_err(names::VIP_FILTER))?;
            let half = if pointed == slot_index(value.id, 1) + 1 {
                1
            } else {
                if pointed != slot_index(value.id, 0) + 1 {
                    self.write_slot(value.id, 0, key, value)?;
                }
                0
            };
            self.installed.insert(
                key,
                Installed {
                    id: value.id,
                    spec: None,
                    backends: slots.remove(&value.id).unwrap_or_default(),
                    region,
                    maglev_size: (value.algo == lb_common::ALGO_MH).then_some(value.sched_len),
                    half,
                },
            );
        }
        let keys: Vec<VipKey> = self.installed.keys().copied().collect();
        for key in &keys {
            self.point_filter(key)?;
        }
        info!(
            services = self.installed.len(),
            "adopted the pinned data plane of a previous lbd"
        );
        Ok(())
    }

    fn write_settings(&mut self) -> Result<(), DataplaneError> {
        self.maps
            .settings
            .set(0, self.settings, 0)
            .map_err(map_err(names::SETTINGS))
    }

    /// Attaches the program to `iface` and records its MAC as the source of
    /// the frames sent back out of it. With a pin path, a link a previous
    /// daemon left there is taken over: the new program replaces the old
    /// one atomically, and not a packet goes unhandled.
    pub fn attach(&mut self, iface: &Interface, mode: AttachMode) -> Result<(), DataplaneError> {
        self.set_interface(iface)?;
        let link_pin = self
            .pin_path
            .as_ref()
            .map(|d| d.join(format!("link_{}", iface.name)));
        if let Some(pin) = link_pin.as_ref().filter(|p| p.exists()) {
            let mut attach = || -> Result<(), Box<dyn std::error::Error>> {
                let pinned = PinnedLink::from_pin(pin)?;
                let link = XdpLink::try_from(FdLink::from(pinned))?;
                program_mut(&mut self.ebpf)?.attach_to_link(link)?;
                Ok(())
            };
            match attach() {
                Ok(()) => {
                    info!(iface = %iface.name, "took over the XDP link pinned by a previous lbd");
                    self.attachments.push(Attachment {
                        iface: iface.clone(),
                        mode: "pinned",
                    });
                    return Ok(());
                }
                Err(e) => {
                    warn!(iface = %iface.name, "cannot take over the pinned XDP link ({e}); attaching anew");
                    let _ = std::fs::remove_file(pin);
                }
            }
        }
        let program = program_mut(&mut self.ebpf)?;
        let attach = |program: &mut Xdp, mode| {
            program
                .attach_to_if_index(iface.index, mode)
                .map_err(|e| DataplaneError::Attach {
                    iface: iface.name.clone(),
                    reason: error_chain(&e),
                })
        };
        let (link, mode_name) = match mode {
            AttachMode::Native => (attach(program, XdpMode::Driver)?, "native"),
            AttachMode::Skb => (attach(program, XdpMode::Skb)?, "skb"),
            AttachMode::Auto => match attach(program, XdpMode::Driver) {
                Ok(link) => (link, "native"),
                Err(e) => {
                    warn!(iface = %iface.name, error = %e, "native XDP unavailable, using generic (SKB) mode");
                    (attach(program, XdpMode::Skb)?, "skb")
                }
            },
        };
        if let Some(pin) = link_pin {
            let owned = program
                .take_link(link)
                .map_err(|source| DataplaneError::Program {
                    name: lb_common::XDP_PROGRAM,
                    source,
                })?;
            let fd = FdLink::try_from(owned).map_err(|e| DataplaneError::Pin {
                path: pin.display().to_string(),
                reason: e.to_string(),
            })?;
            let pinned = fd.pin(&pin).map_err(|e| DataplaneError::Pin {
                path: pin.display().to_string(),
                reason: e.to_string(),
            })?;
            // Kept as ours again, so dropping it (without --keep) detaches.
            let link =
                XdpLink::try_from(FdLink::from(pinned)).map_err(|e| DataplaneError::Pin {
                    path: pin.display().to_string(),
                    reason: e.to_string(),
                })?;
            program_mut(&mut self.ebpf)?
                .attach_to_link(link)
                .map_err(|source| DataplaneError::Program {
                    name: lb_common::XDP_PROGRAM,
                    source,
                })?;
        }
        info!(iface = %iface.name, ifindex = iface.index, mode = mode_name, "XDP attached");
        self.attachments.push(Attachment {
            iface: iface.clone(),
            mode: mode_name,
        });
        Ok(())
    }

    /// Attaches the same balancer at TC ingress (clsact) instead of XDP, for
    /// interfaces where XDP cannot serve. TC attachments are not pinned: a
    /// restart re-attaches them.
    pub fn attach_tc(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        use aya::programs::{tc, tc::SchedClassifierLink, SchedClassifier, TcAttachType};
        self.set_interface(iface)?;
        let attach_err = |reason: String| DataplaneError::Attach {
            iface: iface.name.clone(),
            reason,
        };
        let pin_err = |pin: &std::path::Path, reason: String| DataplaneError::Pin {
            path: pin.display().to_string(),
            reason,
        };
        let link_pin = self
            .pin_path
            .as_ref()
            .map(|d| d.join(format!("tclink_{}", iface.name)));
        // A link a previous lbd pinned (TCX, kernel 6.6+): the new program
        // replaces the old one in it atomically, as for XDP.
        if let Some(pin) = link_pin.as_ref().filter(|p| p.exists()) {
            let taken = (|| -> Result<(), Box<dyn std::error::Error>> {
                let pinned = PinnedLink::from_pin(pin)?;
                let link = SchedClassifierLink::try_from(FdLink::from(pinned))?;
                self.tc_program()?.attach_to_link(link)?;
                Ok(())
            })();
            match taken {
                Ok(()) => {
                    info!(iface = %iface.name, "took over the TC link pinned by a previous lbd");
                    self.attachments.push(Attachment {
                        iface: iface.clone(),
                        mode: "tc",
                    });
                    return Ok(());
                }
                Err(e) => {
                    warn!(iface = %iface.name, "cannot take over the pinned TC link ({e}); attaching anew");
                    let _ = std::fs::remove_file(pin);
                }
            }
        }
        // An existing clsact qdisc is fine.
        let _ = tc::qdisc_add_clsact(&iface.name);
        let prog: &mut SchedClassifier = self.tc_program()?;
        let link = prog
            .attach(&iface.name, TcAttachType::Ingress)
            .map_err(|e| attach_err(error_chain(&e)))?;
        // Pinned when the kernel makes it a bpf_link (TCX, 6.6+, which aya
        // then uses); older kernels attach through netlink, and a restart
        // re-attaches (taking a netlink link out of aya would detach it).
        let tcx = aya::util::KernelVersion::current()
            .map(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
            .unwrap_or(false);
        if let (Some(pin), true) = (link_pin, tcx) {
            let owned = prog
                .take_link(link)
                .map_err(|source| DataplaneError::Program {
                    name: lb_common::TC_PROGRAM,
                    source,
                })?;
            match FdLink::try_from(owned) {
                Ok(fd) => {
                    let pinned = fd.pin(&pin).map_err(|e| pin_err(&pin, e.to_string()))?;
                    let link = SchedClassifierLink::try_from(FdLink::from(pinned))
                        .map_err(|e| pin_err(&pin, e.to_string()))?;
                    self.tc_program()?.attach_to_link(link).map_err(|source| {
                        DataplaneError::Program {
                            name: lb_common::TC_PROGRAM,
                            source,
                        }
                    })?;
                }
                Err(e) => {
                    warn!(iface = %iface.name, "TC link not pinnable ({e}): a restart re-attaches")
                }
            }
        }
        info!(iface = %iface.name, ifindex = iface.index, "TC attached (clsact ingress)");
        self.attachments.push(Attachment {
            iface: iface.clone(),
            mode: "tc",
        });
        Ok(())
    }

    /// Removes the pins (links and maps), so that dropping the data plane
    /// detaches the program and frees everything.
    pub fn unpin_all(&mut self) {
        if let Some(dir) = &self.pin_path {
            for a in &self.attachments {
                let _ = std::fs::remove_file(dir.join(format!("link_{}", a.iface.name)));
                let _ = std::fs::remove_file(dir.join(format!("tclink_{}", a.iface.name)));
            }
            for n in names::ALL {
                let _ = std::fs::remove_file(dir.join(n));
            }
        }
    }

    /// The TC program (loaded on first use), for tests that drive it with
    /// BPF_PROG_TEST_RUN.
    pub fn tc_program(&mut self) -> Result<&mut aya::programs::SchedClassifier, DataplaneError> {
        let name = lb_common::TC_PROGRAM;
        let prog: &mut aya::programs::SchedClassifier = self
            .ebpf
            .program_mut(name)
            .ok_or(DataplaneError::Program {
                name,
                source: aya::programs::ProgramError::NotLoaded,
            })?
            .try_into()
            .map_err(|source| DataplaneError::Program { name, source })?;
        if prog.fd().is_err() {
            prog.load()
                .map_err(|source| DataplaneError::Program { name, source })?;
        }
        Ok(prog)
    }

    /// A read-only view of the maps with handles of its own, for readers
    /// outside the main loop (control API, metrics).
    pub fn view(&self) -> Result<super::view::MapView, DataplaneError> {
        use aya::maps::IterableMap;
        use std::os::fd::AsFd;
        let m = &self.maps;
        super::view::MapView::from_fds(|name| {
            let data: &MapData = match name {
                names::SERVICES => m.services.map(),
                names::BACKENDS => IterableMap::<u32, Backend>::map(&m.backends),
                names::BACKEND_CONNS => IterableMap::<u32, ConnCounts>::map(&m.backend_conns),
                names::CONNS => m.conns.map(),
                names::SETTINGS => IterableMap::<u32, Settings>::map(&m.settings),
                names::GLOBAL_STATS => m.global_stats.map(),
                names::SERVICE_STATS => m.service_stats.map(),
                names::BACKEND_STATS => m.backend_stats.map(),
                _ => return None,
            };
            Some(data.fd().as_fd())
        })
    }

    /// Interfaces the program is attached to, with their mode (`native`,
    /// `skb`, or `pinned` for a link taken over from a previous lbd).
    pub fn attached(&self) -> Vec<(String, &'static str)> {
        self.attachments
            .iter()
            .map(|a| (a.iface.name.clone(), a.mode))
            .collect()
    }

    /// Program handle, for tests that drive it with BPF_PROG_TEST_RUN.
    pub fn program(&mut self) -> Result<&mut Xdp, DataplaneError> {
        program_mut(&mut self.ebpf)
    }

    /// Records an interface the program sends out of: its MAC (the source
    /// of its frames) and MTU.
    pub fn set_interface(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        self.write_iface(iface.index, iface.mac, iface.mtu)
    }

    /// Records an interface's MAC (BPF_PROG_TEST_RUN runs the program as if
    /// the frame arrived on loopback, ifindex 1 of the caller's namespace).
    pub fn set_interface_mac(&mut self, ifindex: u32, mac: MacAddr) -> Result<(), DataplaneError> {
        self.write_iface(ifindex, mac, 1500)
    }

    fn write_iface(&mut self, ifindex: u32, mac: MacAddr, mtu: u32) -> Result<(), DataplaneError> {
        if ifindex >= lb_common::MAX_IFINDEX {
            return Err(DataplaneError::Capacity {
                what: "interface index",
                max: lb_common::MAX_IFINDEX - 1,
            });
        }
        self.maps
            .ifaces
            .set(
                ifindex,
                Iface {
                    mac: mac.0,
                    present: 1,
                    _pad: 0,
                    mtu,
                },
                0,
            )
            .map_err(map_err(names::IFACES))
    }

    /// Outer source addresses of TUN packets.
    pub fn set_tunnel_source(
        &mut self,
        v4: Option<std::net::Ipv4Addr>,
        v6: Option<std::net::Ipv6Addr>,
    ) -> Result<(), DataplaneError> {
        if let Some(v4) = v4 {
            self.settings.tun_src4 = u32::from_ne_bytes(v4.octets());
        }
        if let Some(v6) = v6 {
            self.settings.tun_src6 = addr_words(IpAddr::V6(v6)).0;
        }
        self.write_settings()
    }

    fn backend_value(&self, b: &BackendSpec, mode: Mode, service: u32, sorry: bool) -> Backend {
        let (addr, family) = addr_words(b.addr.ip());
        // DR needs the MAC; NAT and TUN find their next hop in the FIB.
        let ready = mode != Mode::Dr || b.mac.is_some();
        let mut flags = BACKEND_F_USED;
        if ready {
            flags |= BACKEND_F_READY;
        }
        if mode != Mode::Dr && b.mac.is_some() && b.via.is_some() {
            flags |= BACKEND_F_NEXTHOP;
        }
        if sorry {
            flags |= BACKEND_F_SORRY;
        }
        Backend {
            addr,
            port: b.addr.port().to_be(),
            // For NAT and TUN the MAC is the next hop's, for display.
            mac: b.mac.map(|m| m.0).unwrap_or_default(),
            flags,
            family,
            _pad: [0; 2],
            weight: if ready { b.weight } else { 0 },
            service,
            oif: b.via.unwrap_or(0),
        }
    }

    fn install(&mut self, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        let key = vip_key(spec.vip, spec.proto);
        if let Some(inst) = self.installed.get(&key) {
            if inst.spec.as_ref() == Some(spec) {
                return Ok(());
            }
        } else {
            let id = self.service_ids.take()?;
            self.installed.insert(
                key,
                Installed {
                    id,
                    spec: None,
                    backends: StdHashMap::new(),
                    region: Region { off: 0, len: 0 },
                    maglev_size: None,
                    half: 1,
                },
            );
        }
        let (id, old_region, old_maglev) = {
            let inst = &self.installed[&key];
            (inst.id, inst.region, inst.maglev_size)
        };

        // Slots for every backend (and the sorry server).
        let mut ids = Vec::with_capacity(spec.backends.len());
        let members: Vec<(&BackendSpec, bool)> = spec
            .backends
            .iter()
            .map(|b| (b, false))
            .chain(spec.sorry.iter().map(|b| (b, true)))
            .collect();
        for (b, sorry) in &members {
            let known = self.installed[&key].backends.get(&b.addr).copied();
            let bid = match known {
                Some(bid) => bid,
                None => {
                    let bid = self.backend_ids.take()?;
                    self.maps
                        .backend_conns
                        .set(bid, ConnCounts::default(), 0)
                        .map_err(map_err(names::BACKEND_CONNS))?;
                    self.installed
                        .get_mut(&key)
                        .expect("installed above")
                        .backends
                        .insert(b.addr, bid);
                    bid
                }
            };
            let value = self.backend_value(b, spec.mode, id, *sorry);
            self.maps
                .backends
                .set(bid, value, 0)
                .map_err(map_err(names::BACKENDS))?;
            if !*sorry {
                ids.push((bid, value));
            }
        }
        let candidates: Vec<Candidate> = ids
            .iter()
            .map(|(bid, v)| Candidate {
                id: *bid,
                weight: v.weight,
            })
            .collect();
        let mut maglev_size = None;
        let table = match spec.algo {
            Algo::Rr => schedule::round_robin(&candidates),
            Algo::Wrr => schedule::weighted_round_robin(&candidates),
            Algo::Sh => schedule::source_hash_table(&candidates),
            Algo::Mh => {
                let m = schedule::maglev_size(candidates.len(), old_maglev);
                maglev_size = Some(m);
                let mb: Vec<MaglevBackend> = ids
                    .iter()
                    .map(|(bid, v)| MaglevBackend {
                        id: *bid,
                        weight: v.weight,
                        offset_hash: schedule::backend_hash(&v.addr, v.port, 0x6d61_676c),
                        skip_hash: schedule::backend_hash(&v.addr, v.port, 0x736b_6970),
                    })
                    .collect();
                schedule::maglev_table(&mb, m)
            }
            Algo::Lc | Algo::Wlc => {
                if ids.len() > MAX_LC_BACKENDS as usize {
                    return Err(DataplaneError::Service {
                        vip: spec.vip,
                        proto: spec.proto,
                        reason: format!(
                            "lb_algo {} weighs at most {MAX_LC_BACKENDS} real servers, this one has {}",
                            spec.algo,
                            ids.len()
                        ),
                    });
                }
                ids.iter().map(|(bid, _)| *bid).collect()
            }
        };
        let region = self
            .regions
            .alloc(table.len() as u32)
            .ok_or(DataplaneError::Capacity {
                what: "scheduling slots",
                max: SCHED_CAPACITY,
            })?;
        // The table first, then the service that points at it: a packet
        // sees the old table or the new one, never a half-written one.
        for (i, bid) in table.iter().enumerate() {
            self.maps
                .schedule
                .set(region.off + i as u32, bid, 0)
                .map_err(map_err(names::SCHEDULE))?;
        }
        let mut flags = 0;
        if spec.hash_port {
            flags |= svc::HASH_PORT;
        }
        if spec.fallback {
            flags |= svc::FALLBACK;
        }
        let mut persist_timeout = 0;
        let mut persist_mask = [0; 4];
        if let Some(p) = spec.persistence {
            flags |= svc::PERSIST;
            persist_timeout = crate::clock::from_secs(p.timeout_secs);
            persist_mask = prefix_mask(p.mask);
        }
        let mut sorry_id = 0;
        if let Some(s) = &spec.sorry {
            flags |= svc::SORRY;
            sorry_id = self.installed[&key].backends[&s.addr];
        }
        let service = Service {
            id,
            flags,
            sched_off: region.off,
            sched_len: region.len,
            sorry: sorry_id,
            persist_timeout,
            persist_mask,
            mode: spec.mode.code(),
            algo: spec.algo.code(),
            _pad: [0; 2],
        };
        self.maps
            .services
            .insert(key, service, 0)
            .map_err(map_err(names::SERVICES))?;
        // The prefilter's copy: the other half, then the prefilter moved to
        // it (the program falls back to SERVICES until then).
        let half = 1 - self.installed[&key].half;
        self.write_slot(id, half, key, service)?;
        self.installed.get_mut(&key).expect("installed above").half = half;
        self.point_filter(&key)?;
        self.regions.release(old_region);

        // Backends that left: cleared so flows still pointing at them are
        // scheduled anew, and released.
        let inst = self.installed.get_mut(&key).expect("installed above");
        let gone: Vec<SocketAddr> = inst
            .backends
            .keys()
            .filter(|a| !members.iter().any(|(b, _)| b.addr == **a))
            .copied()
            .collect();
        for addr in gone {
            if let Some(bid) = inst.backends.remove(&addr) {
                self.maps
                    .backends
                    .set(bid, Backend::default(), 0)
                    .map_err(map_err(names::BACKENDS))?;
                self.backend_ids.release(bid);
            }
        }
        inst.region = region;
        inst.maglev_size = maglev_size;
        inst.spec = Some(spec.clone());
        debug!(vip = %spec.vip, proto = %spec.proto, algo = %spec.algo, slots = table.len(), "service written");
        Ok(())
    }

    fn write_slot(
        &mut self,
        id: u32,
        half: u32,
        vip: VipKey,
        service: Service,
    ) -> Result<(), DataplaneError> {
        self.maps
            .service_slots
            .set(slot_index(id, half), ServiceSlot { vip, service }, 0)
            .map_err(map_err(names::SERVICE_SLOTS))
    }

    /// Points the prefilter slot of `key` at what the program should read
    /// there, from the services now installed: nothing, the current half of
    /// the one service hashing there, or `SERVICES` when several do.
    fn point_filter(&mut self, key: &VipKey) -> Result<(), DataplaneError> {
        let filter = lb_common::vip_filter_index(&key.addr, key.port);
        let mut there = self
            .installed
            .iter()
            .filter(|(k, _)| lb_common::vip_filter_index(&k.addr, k.port) == filter);
        let value = match (there.next(), there.next()) {
            (None, _) => 0,
            (Some((_, inst)), None) => slot_index(inst.id, inst.half) + 1,
            (Some(_), Some(_)) => VIP_FILTER_SHARED,
        };
        self.maps
            .vip_filter
            .set(filter, value, 0)
            .map_err(map_err(names::VIP_FILTER))
    }

    fn uninstall(&mut self, key: VipKey) -> Result<(), DataplaneError> {
        let Some(inst) = self.installed.remove(&key) else {
            return Ok(());
        };
        self.point_filter(&key)?;
        match self.maps.services.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::SERVICES)(e)),
        }
        for half in [0, 1] {
            self.write_slot(inst.id, half, VipKey::default(), Service::default())?;
        }
        for bid in inst.backends.into_values() {
            self.maps
                .backends
                .set(bid, Backend::default(), 0)
                .map_err(map_err(names::BACKENDS))?;
            self.backend_ids.release(bid);
        }
        self.regions.release(inst.region);
        self.service_ids.release(inst.id);
        Ok(())
    }

    /// Recounts active/inactive connections per backend from the table.
    ///
    /// The program adjusts the counts as flows start and change state, but
    /// it never sees a flow expire or get evicted; this recount is the truth
    /// lc/wlc weigh between its runs. A flow that changes state while the
    /// recount runs is off by one until the next recount.
    pub fn recount_connections(&mut self) -> Result<(), DataplaneError> {
        let now = crate::clock::now();
        let mut counts: StdHashMap<u32, ConnCounts> = StdHashMap::new();
        for item in self.maps.conns.iter() {
            let Ok((_, c)) = item else { continue };
            if now.wrapping_sub(c.last_seen) > self.settings.timeout(c.state) {
                continue;
            }
            let e = counts.entry(c.backend).or_default();
            if conn_state::is_active(c.state) {
                e.active += 1;
            } else {
                e.inactive += 1;
            }
        }
        let ids: Vec<u32> = self
            .installed
            .values()
            .flat_map(|i| i.backends.values().copied())
            .collect();
        for id in ids {
            let v = counts.remove(&id).unwrap_or_default();
            self.maps
                .backend_conns
                .set(id, v, 0)
                .map_err(map_err(names::BACKEND_CONNS))?;
        }
        Ok(())
    }

    /// The installed table of a service (ring, buckets, Maglev table or
    /// candidate list) and its backends' slot ids, read back from the maps:
    /// what differential tests feed the reference model.
    pub fn installed_table(
        &self,
        vip: SocketAddr,
        proto: Proto,
    ) -> Option<(Vec<u32>, StdHashMap<SocketAddr, u32>)> {
        let inst = self.installed.get(&vip_key(vip, proto))?;
        let table = (0..inst.region.len)
            .map(|i| self.maps.schedule.get(&(inst.region.off + i), 0).ok())
            .collect::<Option<Vec<u32>>>()?;
        Some((table, inst.backends.clone()))
    }

    /// Live connections, at most `limit`.
    pub fn connections(&self, limit: usize) -> Result<Vec<ConnInfo>, DataplaneError> {
        read_connections(&self.maps.conns, &self.maps.backends, &self.settings, limit)
    }
}

fn state_name(state: u8) -> &'static str {
    match state {
        conn_state::SYN => "SYN_RECV",
        conn_state::ESTABLISHED => "ESTABLISHED",
        conn_state::FIN => "FIN_WAIT",
        conn_state::CLOSE => "CLOSE",
        conn_state::UDP => "UDP",
        _ => "?",
    }
}

/// Live entries of a connection table (shared with lbctl's read-only view).
pub fn read_connections<C, B>(
    conns: &HashMap<C, FlowKey, Conn>,
    backends: &Array<B, Backend>,
    settings: &Settings,
    limit: usize,
) -> Result<Vec<ConnInfo>, DataplaneError>
where
    C: std::borrow::Borrow<MapData>,
    B: std::borrow::Borrow<MapData>,
{
    let now = crate::clock::now();
    let mut out = Vec::new();
    for item in conns.iter() {
        if out.len() >= limit {
            break;
        }
        let Ok((k, c)) = item else { continue };
        let idle = now.wrapping_sub(c.last_seen);
        let timeout = settings.timeout(c.state);
        if idle > timeout {
            continue;
        }
        let Ok(b) = backends.get(&c.backend, 0) else {
            continue;
        };
        out.push(ConnInfo {
            proto: if k.proto == lb_common::IPPROTO_UDP {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            client: SocketAddr::new(words_addr(k.src, k.family), u16::from_be(k.sport)),
            vip: SocketAddr::new(words_addr(k.dst, k.family), u16::from_be(k.dport)),
            backend: SocketAddr::new(words_addr(b.addr, b.family), u16::from_be(b.port)),
            state: state_name(c.state),
            idle_secs: crate::clock::to_secs(idle),
            expires_secs: crate::clock::to_secs(timeout - idle),
        });
    }
    Ok(out)
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

fn sum(values: &aya::maps::PerCpuValues<Counters>) -> Counters {
    values.iter().fold(Counters::default(), |a, c| Counters {
        packets: a.packets + c.packets,
        bytes: a.bytes + c.bytes,
        new_conns: a.new_conns + c.new_conns,
    })
}

/// Reads the counters of every service in `services` (shared with lbctl).
pub fn read_stats<S, B, BC, G, SS, BS>(
    services: &HashMap<S, VipKey, Service>,
    backends: &Array<B, Backend>,
    backend_conns: &Array<BC, ConnCounts>,
    global: &PerCpuArray<G, Counters>,
    service_stats: &PerCpuArray<SS, Counters>,
    backend_stats: &PerCpuArray<BS, Counters>,
) -> Result<Stats, DataplaneError>
where
    S: std::borrow::Borrow<MapData>,
    B: std::borrow::Borrow<MapData>,
    BC: std::borrow::Borrow<MapData>,
    G: std::borrow::Borrow<MapData>,
    SS: std::borrow::Borrow<MapData>,
    BS: std::borrow::Borrow<MapData>,
{
    let mut out = Stats::default();
    for (i, name) in stat::NAMES.iter().enumerate() {
        let c = sum(&global
            .get(&(i as u32), 0)
            .map_err(map_err(names::GLOBAL_STATS))?);
        out.global.push((name.to_string(), c.packets, c.bytes));
    }
    let mut by_service: StdHashMap<u32, Vec<BackendStats>> = StdHashMap::new();
    for id in 0..backends.len() {
        let Ok(b) = backends.get(&id, 0) else {
            continue;
        };
        if b.flags & BACKEND_F_USED == 0 {
            continue;
        }
        let c = sum(&backend_stats
            .get(&id, 0)
            .map_err(map_err(names::BACKEND_STATS))?);
        let conns = backend_conns.get(&id, 0).unwrap_or_default();
        by_service.entry(b.service).or_default().push(BackendStats {
            addr: SocketAddr::new(words_addr(b.addr, b.family), u16::from_be(b.port)),
            weight: b.weight,
            mac: (b.mac != [0; 6]).then_some(MacAddr(b.mac)),
            ready: b.flags & BACKEND_F_READY != 0,
            sorry: b.flags & BACKEND_F_SORRY != 0,
            active: conns.active,
            inactive: conns.inactive,
            packets: c.packets,
            bytes: c.bytes,
            new_conns: c.new_conns,
        });
    }
    for item in services.iter() {
        let (key, value) = item.map_err(map_err(names::SERVICES))?;
        let c = sum(&service_stats
            .get(&value.id, 0)
            .map_err(map_err(names::SERVICE_STATS))?);
        let (vip, proto) = key_vip(&key);
        let mut backends = by_service.remove(&value.id).unwrap_or_default();
        backends.sort_by_key(|b| (b.sorry, b.addr));
        out.services.push(ServiceStats {
            vip,
            proto,
            algo: Algo::from_code(value.algo),
            mode: Mode::from_code(value.mode),
            packets: c.packets,
            bytes: c.bytes,
            new_conns: c.new_conns,
            backends,
            fwmark: None,
        });
    }
    out.services.sort_by_key(|s| (s.vip, s.proto as u8));
    Ok(out)
}

impl Dataplane for XdpDataplane {
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .attachments
            .iter()
            .map(|a| format!("{} ({})", a.iface.name, a.mode))
            .collect();
        format!("xdp on {}", parts.join(", "))
    }

    fn apply(&mut self, services: &[ServiceSpec]) -> Result<(), DataplaneError> {
        self.regions.next_round();
        self.service_ids.next_round();
        self.backend_ids.next_round();
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
        let wanted: Vec<VipKey> = services.iter().map(|s| vip_key(s.vip, s.proto)).collect();
        let stale: Vec<VipKey> = self
            .installed
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            self.uninstall(key)?;
        }
        let nat = u32::from(services.iter().any(|s| s.mode == Mode::Nat));
        if nat != self.settings.nat_enabled {
            self.settings.nat_enabled = nat;
            self.write_settings()?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats, DataplaneError> {
        read_stats(
            &self.maps.services,
            &self.maps.backends,
            &self.maps.backend_conns,
            &self.maps.global_stats,
            &self.maps.service_stats,
            &self.maps.backend_stats,
        )
    }

    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), DataplaneError> {
        self.settings.tcp_timeout = crate::clock::from_secs(t.tcp);
        self.settings.tcpfin_timeout = crate::clock::from_secs(t.tcpfin);
        self.settings.udp_timeout = crate::clock::from_secs(t.udp);
        self.write_settings()
    }

    fn maintain(&mut self) -> Result<(), DataplaneError> {
        self.recount_connections()
    }

    fn record_interface(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        self.set_interface(iface)
    }

    fn tier(&self) -> &'static str {
        if self.attachments.iter().all(|a| a.mode == "tc") && !self.attachments.is_empty() {
            "tc"
        } else {
            "xdp"
        }
    }

    fn map_view(&self) -> Option<Result<super::view::MapView, DataplaneError>> {
        Some(self.view())
    }

    fn attached(&self) -> Vec<(String, &'static str)> {
        XdpDataplane::attached(self)
    }

    fn shutdown(&mut self, keep: bool) {
        if keep {
            info!("leaving the data plane attached and pinned for the next lbd");
        } else {
            // Without pins, dropping the data plane detaches XDP everywhere.
            self.unpin_all();
        }
    }
}
