//! lbd's main loop: keep the data plane carrying what the configuration and
//! the health checks ask for, with backend MACs from the kernel's neighbour
//! table, and run the VRRP instances.

use std::{
    collections::HashSet,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, info_span, warn, Instrument};

use crate::{
    config, control,
    dataplane::{
        bpf::{AttachMode, LoadOptions, XdpDataplane},
        select::{self, Hook, Tier},
        Capabilities, Dataplane, Mode, ServiceSpec, Timeouts,
    },
    health,
    net::{Interface, MacAddr, Netlink, Route},
    services,
    vrrp::{self, VrrpRuntime},
};

/// How `lbd` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_file: PathBuf,
    pub interfaces: Vec<String>,
    pub xdp_mode: AttachMode,
    /// Which data plane tier forwards (`--dataplane`); `None`: the
    /// configuration's `lb_dataplane`, else auto.
    pub tier: Option<Tier>,
    /// Use this eBPF object instead of the embedded one.
    pub bpf_object: Option<PathBuf>,
    /// Where maps and links are pinned; `None`: nothing is pinned.
    pub pin_path: Option<PathBuf>,
    /// On exit, leave the program attached and the maps pinned, so the
    /// next lbd takes over without a gap (a restart); otherwise detach.
    /// VRRP masters then keep their addresses too and are recorded in
    /// `run_dir` for the next lbd to resume (no transition on either node).
    pub keep_on_exit: bool,
    /// Where lbd keeps state for the next lbd (the VRRP restart state).
    pub run_dir: PathBuf,
    pub conn_table_size: Option<u32>,
    /// Outer source of TUN packets (default: the first interface's address).
    pub tunnel_source: Vec<IpAddr>,
    /// Control socket, metrics (see `control`).
    pub control: control::Options,
}

/// While some backend has no MAC, look again soon; otherwise now and then
/// to follow MAC changes.
const RESOLVE_PENDING: Duration = Duration::from_millis(200);
const RESOLVE_STEADY: Duration = Duration::from_secs(5);
/// How often connection counts are recounted from the table (lc/wlc).
const RECOUNT: Duration = Duration::from_secs(2);

/// Reads the configuration, printing its warnings; errors are returned whole.
pub fn load_config(path: &Path) -> Result<config::Config, config::Diagnostics> {
    let loaded = config::load(path)?;
    for w in &loaded.warnings {
        warn!("{w}");
    }
    Ok(loaded.config)
}

/// The data plane side of lbd: XDP, the services it carries, their health.
struct State {
    netlink: Netlink,
    interfaces: Vec<Interface>,
    dataplane: Box<dyn Dataplane>,
    caps: Capabilities,
    wanted: Vec<ServiceSpec>,
    applied: Option<Vec<ServiceSpec>>,
    /// Backends already warned about, so a bad route is logged once.
    warned: HashSet<IpAddr>,
    checks: Arc<health::HealthRuntime>,
    /// Interfaces recorded as next-hop egress in the data plane.
    egress: HashSet<u32>,
    /// Every backend had its MAC (or next hop) at the last reconcile.
    resolved: bool,
    /// Health verdicts, applied to `wanted` on every reconcile.
    health: tokio::sync::watch::Receiver<std::sync::Arc<health::Verdicts>>,
}

/// How lbd ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM/SIGINT: a stop.
    Stopped,
    /// SIGUSR1: a restart in place; the next lbd takes over the data plane
    /// and resumes the VRRP masters (exit status `RESTART_EXIT_STATUS`).
    Restart,
}

/// The exit status of a restart in place (EX_TEMPFAIL); the systemd unit
/// has `RestartForceExitStatus=75`.
pub const RESTART_EXIT_STATUS: u8 = 75;

pub async fn run(opts: Options) -> anyhow::Result<Exit> {
    let config = load_config(&opts.config_file).map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut ops =
        control::Operations::start(&opts.control, opts.config_file.clone(), &config).await?;
    // A data plane is needed only to carry virtual servers: a VRRP-only
    // configuration runs without one.
    let mut state = if config.virtual_servers.is_empty() && opts.interfaces.is_empty() {
        info!("no virtual_server and no --interface: running without a data plane");
        None
    } else {
        Some(State::start(&opts, &config).await?)
    };
    match &state {
        Some(state) => {
            ops.set_dataplane(state.dataplane.as_ref(), opts.pin_path.clone());
            ops.set_health(state.checks.clone());
        }
        None => ops.ready_without_dataplane(),
    }
    // Read (and removed) whatever the case: it is for this start only.
    let resume = vrrp::restart::take(&opts.run_dir);
    let mut vrrp = match config.vrrp_instances.is_empty() {
        true => None,
        false => Some(VrrpRuntime::start(&config, resume)?),
    };
    if let Some(rt) = &vrrp {
        ops.set_vrrp(control::vrrp_view::VrrpView::new(rt.status(), &config));
    }

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut exit = Exit::Stopped;
    let mut next = Duration::ZERO;
    // Reconcile at `last + next`: a deadline, so that other arms firing
    // often (the watchdog) never postpone it.
    let mut last = tokio::time::Instant::now();
    let mut recount = tokio::time::interval(RECOUNT);
    loop {
        tokio::select! {
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigusr1.recv() => {
                info!("SIGUSR1: restarting in place (data plane and VRRP masters kept for the next lbd)");
                exit = Exit::Restart;
                break;
            }
            _ = sighup.recv() => {
                ops.reloading();
                match load_config(&opts.config_file) {
                    Ok(config) => {
                        info!(file = %opts.config_file.display(), "configuration reloaded");
                        match &mut state {
                            Some(state) => {
                                state.wanted = plan(&config, state.caps);
                                state.checks.reload(health::HealthPlan::from_config(&config));
                                if let Err(e) = state.dataplane.set_timeouts(timeouts(&config)) {
                                    error!("setting lvs_timeouts: {e}");
                                }
                            }
                            None if !config.virtual_servers.is_empty() => warn!(
                                "virtual_server added: restart lbd with --interface to carry it"
                            ),
                            None => {}
                        }
                        next = Duration::ZERO;
                        if let Err(e) = reload_vrrp(&mut vrrp, &config).await {
                            error!("{e:#}");
                            error!("VRRP reload refused: the running instances are kept");
                        }
                        if let Some(rt) = &vrrp {
                            ops.set_vrrp(control::vrrp_view::VrrpView::new(rt.status(), &config));
                        }
                        ops.reloaded(&config);
                    }
                    Err(diags) => {
                        // A bad file never replaces a running configuration.
                        for d in &diags.0 {
                            error!("{d}");
                        }
                        error!("reload refused: the running configuration is kept");
                        ops.reload_failed(diags.to_string());
                    }
                }
            }
            _ = ops.watchdog.tick() => ops.watchdog.ping(),
            // An operator's override (lbctl set-weight, drain, ...).
            Ok(()) = ops.changes.changed() => { next = Duration::ZERO; }
            _ = recount.tick(), if state.is_some() => {
                let Some(state) = state.as_mut() else { continue };
                if let Err(e) = state.dataplane.maintain() {
                    warn!("recounting connections: {e}");
                }
            }
            // A health change is applied at once.
            Some(()) = async { state.as_mut()?.health.changed().await.ok() } => {
                next = Duration::ZERO;
            }
            _ = tokio::time::sleep_until(last + next), if state.is_some() => {
                let Some(state) = state.as_mut() else { continue };
                next = match state.reconcile(&ops.overrides()).instrument(info_span!("reconcile")).await {
                    Ok(true) => {
                        if !state.resolved {
                            state.resolved = true;
                            info!("every backend resolved");
                        }
                        RESOLVE_STEADY
                    }
                    Ok(false) => { state.resolved = false; RESOLVE_PENDING }
                    Err(e) => { error!("{e:#}"); RESOLVE_PENDING }
                };
                last = tokio::time::Instant::now();
                ops.reconciled(state.applied.as_deref());
            }
        }
    }
    ops.stopping();
    // VRRP first: on a stop a master hands over (priority 0) and removes
    // its addresses while the data plane still carries traffic. On a
    // restart in place (SIGUSR1) it keeps them, and the next lbd resumes as
    // master before the backups' master-down timers fire.
    let restart = exit == Exit::Restart;
    if let Some(vrrp) = vrrp {
        if restart {
            vrrp.shutdown_for_restart(&opts.run_dir).await;
        } else {
            vrrp.shutdown().await;
        }
    }
    if let Some(mut state) = state {
        // Detaches, or leaves forwarding for the next lbd (--on-exit keep,
        // or a restart in place).
        state.dataplane.shutdown(opts.keep_on_exit || restart);
        drop(state);
    }
    info!("stopped");
    Ok(exit)
}

async fn reload_vrrp(
    vrrp: &mut Option<VrrpRuntime>,
    config: &config::Config,
) -> anyhow::Result<()> {
    match vrrp {
        Some(rt) => rt.reload(config).await,
        None if config.vrrp_instances.is_empty() => Ok(()),
        None => {
            *vrrp = Some(VrrpRuntime::start(config, None)?);
            Ok(())
        }
    }
}

/// The BPF tier at `hook`: the program loaded (or a pinned one taken
/// over), attached to every interface, and the TUN source addresses set.
/// Nothing of it stays behind when it fails (another tier may take over).
async fn open_bpf(
    opts: &Options,
    netlink: &Netlink,
    interfaces: &[Interface],
    hook: Hook,
) -> anyhow::Result<Box<dyn Dataplane>> {
    if interfaces.is_empty() {
        anyhow::bail!(
            "no interface given: the XDP and TC tiers need --interface IFACE (repeatable)"
        );
    }
    let object_bytes;
    let object: &[u8] = match &opts.bpf_object {
        Some(path) => {
            object_bytes = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading eBPF object {}: {e}", path.display()))?;
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
            let (a4, a6) = netlink.addresses(interfaces[0].index).await?;
            v4 = v4.or(a4);
            v6 = v6.or(a6);
        }
        dataplane.set_tunnel_source(v4, v6)?;
        anyhow::Ok(())
    };
    if let Err(e) = setup.await {
        dataplane.unpin_all();
        return Err(e);
    }
    Ok(Box::new(dataplane))
}

/// `lvs_timeouts`, with IPVS's defaults for what it leaves out.
fn timeouts(config: &config::Config) -> Timeouts {
    let t = config.global_defs.lvs_timeouts;
    let d = Timeouts::default();
    Timeouts {
        tcp: t.tcp.unwrap_or(d.tcp),
        tcpfin: t.tcpfin.unwrap_or(d.tcpfin),
        udp: t.udp.unwrap_or(d.udp),
    }
}

fn plan(config: &config::Config, caps: Capabilities) -> Vec<ServiceSpec> {
    let plan = services::plan_for(config, caps);
    for s in &plan.skipped {
        warn!("{s}");
    }
    plan.services
}

impl State {
    /// Opens the data plane tier asked for and starts the health checks.
    async fn start(opts: &Options, config: &config::Config) -> anyhow::Result<State> {
        let netlink = Netlink::new()?;
        let mut interfaces = Vec::new();
        for name in &opts.interfaces {
            interfaces.push(netlink.interface(name).await?);
        }
        let tier = opts.tier.unwrap_or(match config.global_defs.lb_dataplane {
            Some(config::DataplaneTier::Xdp) => Tier::Xdp,
            Some(config::DataplaneTier::Tc) => Tier::Tc,
            Some(config::DataplaneTier::Ipvs) => Tier::Ipvs,
            Some(config::DataplaneTier::Auto) | None => Tier::Auto,
        });
        let mut dataplane =
            select::open(tier, |hook| open_bpf(opts, &netlink, &interfaces, hook)).await?;
        dataplane.set_timeouts(timeouts(config))?;
        let caps = dataplane.capabilities();
        info!(dataplane = %dataplane.describe(), "data plane ready");
        let checks = Arc::new(health::HealthRuntime::start(
            health::HealthPlan::from_config(config),
            health::RunnerOptions::default(),
        ));
        let egress = interfaces.iter().map(|i| i.index).collect();
        Ok(State {
            netlink,
            interfaces,
            dataplane,
            caps,
            wanted: plan(config, caps),
            applied: None,
            warned: HashSet::new(),
            egress,
            resolved: false,
            health: checks.verdicts(),
            checks,
        })
    }

    /// Resolves backend MACs and applies the result if it changed. Returns
    /// whether every backend has a MAC.
    async fn reconcile(&mut self, overrides: &control::Overrides) -> anyhow::Result<bool> {
        let mut specs = self.wanted.clone();
        health::apply(&mut specs, &self.health.borrow_and_update());
        overrides.apply(&mut specs, &self.wanted);
        let mut complete = true;
        // The BPF tiers need backend MACs (DR) and next hops (NAT, TUN);
        // IPVS leaves both to the kernel.
        let neighbours = if self.caps.backend_macs {
            self.netlink.neighbours().await?
        } else {
            Default::default()
        };
        for spec in &mut specs {
            if !self.caps.backend_macs {
                continue;
            }
            if spec.mode != Mode::Dr {
                // NAT and TUN take their next hop from the kernel's FIB,
                // which has no answer (and XDP cannot ask for one) until the
                // neighbour is resolved: keep it resolved.
                for b in spec.all_backends_mut() {
                    match self.next_hop(b.addr.ip(), &neighbours).await {
                        Some((mac, oif)) => {
                            b.mac = Some(mac);
                            b.via = Some(oif);
                        }
                        None => complete = false,
                    }
                }
                continue;
            }
            for b in spec.all_backends_mut() {
                b.mac = self.backend_mac(b.addr.ip(), &neighbours).await;
                complete &= b.mac.is_some();
            }
        }
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

    /// The MAC of the next hop towards a NAT/TUN backend and the interface
    /// it is on (recorded in the data plane, so the program can send there
    /// directly); when unresolved, asks the kernel to resolve it.
    async fn next_hop(
        &mut self,
        ip: IpAddr,
        neighbours: &std::collections::HashMap<(u32, IpAddr), MacAddr>,
    ) -> Option<(MacAddr, u32)> {
        let route = self
            .route_to_backend(ip, "its packets go to the kernel")
            .await?;
        let hop = route.gateway.unwrap_or(ip);
        if let Some(mac) = neighbours.get(&(route.oif, hop)) {
            if !self.egress.contains(&route.oif) {
                match self.netlink.interface_by_index(route.oif).await {
                    Ok(iface) => match self.dataplane.record_interface(&iface) {
                        Ok(()) => {
                            self.egress.insert(route.oif);
                        }
                        Err(e) => warn!(iface = %iface.name, "recording interface: {e}"),
                    },
                    Err(e) => warn!(ifindex = route.oif, "reading interface: {e}"),
                }
            }
            return Some((*mac, route.oif));
        }
        if let Err(e) = self.netlink.prompt_resolution(route.oif, hop).await {
            warn!(backend = %ip, next_hop = %hop, "could not ask the kernel to resolve the next hop: {e}");
        }
        None
    }

    /// The kernel's route to a backend; a missing route is warned about
    /// once per backend, with `without` saying what that means for it.
    async fn route_to_backend(&mut self, ip: IpAddr, without: &str) -> Option<Route> {
        match self.netlink.route(ip).await {
            Ok(Some(r)) => Some(r),
            Ok(None) => {
                if self.warned.insert(ip) {
                    warn!(backend = %ip, "no route to backend: {without}");
                }
                None
            }
            Err(e) => {
                warn!(backend = %ip, "route lookup failed: {e}");
                None
            }
        }
    }

    async fn backend_mac(
        &mut self,
        ip: IpAddr,
        neighbours: &std::collections::HashMap<(u32, IpAddr), MacAddr>,
    ) -> Option<MacAddr> {
        let route = self.route_to_backend(ip, "it gets no traffic").await?;
        // DR sends the frame back out of the interface it came in on, so the
        // backend must be on the link of an attached interface.
        let on_link = !route.via_gateway() && self.interfaces.iter().any(|i| i.index == route.oif);
        if !on_link {
            if self.warned.insert(ip) {
                warn!(backend = %ip, "backend is not on the link of an attached interface (DR needs it there): it gets no traffic");
            }
            return None;
        }
        if let Some(mac) = neighbours.get(&(route.oif, ip)) {
            return Some(*mac);
        }
        if let Err(e) = self.netlink.prompt_resolution(route.oif, ip).await {
            warn!(backend = %ip, "could not ask the kernel to resolve the backend's MAC: {e}");
        }
        None
    }
}
