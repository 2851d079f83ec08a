//! The data plane side of lbd: the tier that forwards, the services it
//! carries, their health checks, and the reconcile that brings the data
//! plane to what is [`desired`].

use std::{io, net::IpAddr, path::PathBuf, sync::Arc};

use tracing::{error, info, warn};

use super::{desired, Options, Resolver};
use crate::{
    config, control,
    dataplane::{
        bpf::{LoadOptions, XdpDataplane},
        capacity::{self, Limits},
        select::{self, Hook, Tier},
        Capabilities, Dataplane, DataplaneError, ServiceSpec, Timeouts,
    },
    health,
    net::NetError,
    services,
};

/// Why the BPF tier could not be set up at a hook (`auto` then tries the
/// next tier).
#[derive(Debug, thiserror::Error)]
pub enum BpfOpenError {
    #[error("no interface given: the XDP and TC tiers need --interface IFACE (repeatable)")]
    NoInterface,
    #[error("reading eBPF object {}: {source}", path.display())]
    ReadObject {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Loading, attaching, or setting the TUN source.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// Reading the first interface's addresses (the default TUN source).
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Why the data plane side could not start (lbd then stops).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Netlink, or an `--interface` that does not exist.
    #[error(transparent)]
    Net(#[from] NetError),
    /// No tier could be opened (boxed: it holds an error per tier).
    #[error(transparent)]
    Open(Box<select::OpenError<BpfOpenError>>),
    /// Setting `lvs_timeouts`.
    #[error(transparent)]
    Timeouts(#[from] DataplaneError),
}

/// Why a reconcile did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the kernel's neighbour table.
    #[error(transparent)]
    Neighbours(#[from] NetError),
    /// The data plane refused the services.
    #[error(transparent)]
    Apply(#[from] DataplaneError),
}

/// The data plane, what it should carry and what it carries.
pub(super) struct Forwarding {
    resolver: Resolver,
    pub(super) dataplane: Box<dyn Dataplane>,
    caps: Capabilities,
    /// The services planned from the configuration (before health and
    /// overrides).
    planned: Vec<ServiceSpec>,
    /// What the data plane was last given.
    pub(super) applied: Option<Vec<ServiceSpec>>,
    pub(super) checks: Arc<health::HealthRuntime>,
    /// Every backend had its MAC (or next hop) at the last reconcile.
    pub(super) resolved: bool,
    /// Health verdicts, applied on every reconcile.
    pub(super) health: tokio::sync::watch::Receiver<Arc<health::Verdicts>>,
}

impl Forwarding {
    /// Opens the data plane tier asked for and starts the health checks.
    pub(super) async fn start(opts: &Options, config: &config::Config) -> Result<Self, StartError> {
        let resolver = Resolver::open(&opts.interfaces).await?;
        let tier = opts.tier.unwrap_or(match config.global_defs.lb_dataplane {
            Some(config::DataplaneTier::Xdp) => Tier::Xdp,
            Some(config::DataplaneTier::Tc) => Tier::Tc,
            Some(config::DataplaneTier::Ipvs) => Tier::Ipvs,
            Some(config::DataplaneTier::Auto) | None => Tier::Auto,
        });
        let mut dataplane = select::open(tier, |hook| open_bpf(opts, &resolver, hook))
            .await
            .map_err(|e| StartError::Open(Box::new(e)))?;
        dataplane.set_timeouts(timeouts(config))?;
        let caps = dataplane.capabilities();
        info!(dataplane = %dataplane.describe(), "data plane ready");
        let checks = Arc::new(health::HealthRuntime::start(
            health::HealthPlan::from_config(config),
            health::RunnerOptions::default(),
        ));
        Ok(Forwarding {
            resolver,
            dataplane,
            caps,
            planned: plan(config, caps),
            applied: None,
            resolved: false,
            health: checks.verdicts(),
            checks,
        })
    }

    /// What the data plane in use can carry.
    pub(super) fn caps(&self) -> Capabilities {
        self.caps
    }

    /// Whether the services `new` can replace the running ones: on a BPF
    /// tier, side by side in the maps (each alone was checked when read).
    pub(super) fn admit(&self, new: &[ServiceSpec]) -> Result<(), String> {
        if !self.caps.backend_macs {
            // IPVS: the kernel's tables grow as needed.
            return Ok(());
        }
        capacity::check_change(&self.planned, new, Limits::BPF).map_err(|e| e.to_string())
    }

    /// A new configuration and the services planned from it: health
    /// checks and timeouts updated (applied at the next reconcile).
    pub(super) fn reload(&mut self, config: &config::Config, planned: Vec<ServiceSpec>) {
        self.planned = planned;
        self.checks.reload(health::HealthPlan::from_config(config));
        if let Err(e) = self.dataplane.set_timeouts(timeouts(config)) {
            error!("setting lvs_timeouts: {e}");
        }
    }

    /// Resolves backend MACs and applies the result if it changed. Returns
    /// whether every backend has a MAC.
    pub(super) async fn reconcile(
        &mut self,
        overrides: &control::Overrides,
    ) -> Result<bool, ReconcileError> {
        let mut specs = desired(&self.planned, &self.health.borrow_and_update(), overrides);
        // The BPF tiers need backend MACs (DR) and next hops (NAT, TUN);
        // IPVS leaves both to the kernel.
        let complete = if self.caps.backend_macs {
            self.resolver
                .resolve(&mut specs, self.dataplane.as_mut())
                .await?
        } else {
            true
        };
        if self.applied.as_ref() != Some(&specs) {
            self.dataplane.apply(&specs)?;
            for s in &mut specs {
                // Endpoints: the real servers and the sorry server.
                let total = s.backends.len() + usize::from(s.sorry.is_some());
                let need_mac = self.caps.backend_macs;
                let ready = s
                    .all_backends_mut()
                    .filter(|b| !need_mac || b.mac.is_some())
                    .count();
                info!(vip = %s.vip, proto = %s.proto, backends = total, ready, "service applied");
            }
            self.applied = Some(specs);
        }
        Ok(complete)
    }
}

impl Forwarding {
    /// Connection sync: the reader of the data plane's reports, for the
    /// sync task.
    pub(super) fn sync_source(&self) -> Option<Box<dyn crate::connsync::driver::ReportSource>> {
        match self.dataplane.sync_events()? {
            Ok(events) => Some(Box::new(events)),
            Err(e) => {
                error!("connection sync: reading the data plane's reports: {e}; nothing is sent");
                None
            }
        }
    }

    /// Connection sync: the data plane reports connections, or stops.
    pub(super) fn set_sync_reporting(&mut self, on: bool) -> Result<(), DataplaneError> {
        self.dataplane.set_reporting(on)
    }

    /// Each VIP address with whether all its virtual servers meet quorum
    /// (the health core's verdict; without checkers, any real server with
    /// weight). `None` until the data plane carries the services.
    pub(super) fn vip_quorum(&self) -> Option<std::collections::BTreeMap<IpAddr, bool>> {
        self.applied.as_ref()?;
        let verdicts = self.health.borrow();
        Some(crate::announce::route::quorum_by_vip(
            self.planned.iter().map(|s| {
                let q = match verdicts.services.get(&(s.vip, s.proto)) {
                    Some(v) => v.quorum_up,
                    None => s.backends.iter().any(|b| b.weight > 0),
                };
                (s.vip.ip(), q)
            }),
        ))
    }

    /// A NAT virtual server, which ECMP cannot carry.
    pub(super) fn nat_service(&self) -> Option<std::net::SocketAddr> {
        self.planned
            .iter()
            .find(|s| s.mode == crate::dataplane::Mode::Nat)
            .map(|s| s.vip)
    }
}

/// The BPF tier at `hook`: the program loaded (or a pinned one taken
/// over), attached to every interface, and the TUN source addresses set.
/// Nothing of it stays behind when it fails (another tier may take over).
async fn open_bpf(
    opts: &Options,
    resolver: &Resolver,
    hook: Hook,
) -> Result<Box<dyn Dataplane>, BpfOpenError> {
    let interfaces = resolver.interfaces();
    if interfaces.is_empty() {
        return Err(BpfOpenError::NoInterface);
    }
    let object_bytes;
    let object: &[u8] = match &opts.bpf_object {
        Some(path) => {
            object_bytes = std::fs::read(path).map_err(|source| BpfOpenError::ReadObject {
                path: path.clone(),
                source,
            })?;
            &object_bytes
        }
        None => crate::bpf_object::embedded()?,
    };
    let load = LoadOptions {
        pin_path: opts.pin_path.clone(),
        conn_table_size: opts.conn_table_size,
    };
    let mut dataplane = XdpDataplane::load_with(object, &load)?;
    let setup = async {
        for iface in interfaces {
            match hook {
                Hook::Xdp => dataplane.attach(iface, opts.xdp_mode)?,
                Hook::Tc => dataplane.attach_tc(iface)?,
            }
        }
        let (mut v4, mut v6) = (None, None);
        for ip in &opts.tunnel_source {
            match ip {
                IpAddr::V4(a) => v4 = Some(*a),
                IpAddr::V6(a) => v6 = Some(*a),
            }
        }
        if v4.is_none() || v6.is_none() {
            let (a4, a6) = resolver.addresses(interfaces[0].index).await?;
            v4 = v4.or(a4);
            v6 = v6.or(a6);
        }
        dataplane.set_tunnel_source(v4, v6)?;
        Ok::<(), BpfOpenError>(())
    };
    if let Err(e) = setup.await {
        dataplane.unpin_all();
        return Err(e);
    }
    Ok(Box::new(dataplane))
}

/// `lvs_timeouts`, with IPVS's defaults for what it leaves out.
pub(super) fn timeouts(config: &config::Config) -> Timeouts {
    let t = config.global_defs.lvs_timeouts;
    let d = Timeouts::default();
    Timeouts {
        tcp: t.tcp.unwrap_or(d.tcp),
        tcpfin: t.tcpfin.unwrap_or(d.tcpfin),
        udp: t.udp.unwrap_or(d.udp),
    }
}

/// The services a tier with `caps` carries; what it cannot carry is
/// warned about.
fn plan(config: &config::Config, caps: Capabilities) -> Vec<ServiceSpec> {
    let plan = services::plan_for(config, caps);
    for s in &plan.skipped {
        warn!("{s}");
    }
    plan.services
}
