//! lbd's main loop: keep the data plane carrying what the configuration asks
//! for, with backend MACs from the kernel's neighbour table.

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
        xdp::{AttachMode, LoadOptions, XdpDataplane},
        Dataplane, Mode, ServiceSpec,
    },
    health,
    net::{Interface, MacAddr, Netlink},
    services,
};

/// How `lbd` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_file: PathBuf,
    pub interfaces: Vec<String>,
    pub xdp_mode: AttachMode,
    /// Use this eBPF object instead of the embedded one.
    pub bpf_object: Option<PathBuf>,
    /// Where maps and links are pinned; `None`: nothing is pinned.
    pub pin_path: Option<PathBuf>,
    /// On exit, leave the program attached and the maps pinned, so the
    /// next lbd takes over without a gap (a restart); otherwise detach.
    pub keep_on_exit: bool,
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

struct State {
    netlink: Netlink,
    interfaces: Vec<Interface>,
    dataplane: XdpDataplane,
    wanted: Vec<ServiceSpec>,
    applied: Option<Vec<ServiceSpec>>,
    /// Backends already warned about, so a bad route is logged once.
    warned: HashSet<IpAddr>,
    /// Health verdicts, applied to `wanted` on every reconcile.
    health: tokio::sync::watch::Receiver<std::sync::Arc<health::Verdicts>>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let config = load_config(&opts.config_file).map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut ops =
        control::Operations::start(&opts.control, opts.config_file.clone(), &config).await?;
    let object_bytes;
    let object: &[u8] = match &opts.bpf_object {
        Some(path) => {
            object_bytes = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading eBPF object {}: {e}", path.display()))?;
            &object_bytes
        }
        None => crate::bpf_object::embedded()?,
    };
    if opts.interfaces.is_empty() {
        anyhow::bail!("no interface given: use --interface IFACE (repeatable)");
    }
    let netlink = Netlink::new()?;
    let mut interfaces = Vec::new();
    for name in &opts.interfaces {
        interfaces.push(netlink.interface(name).await?);
    }
    let load = LoadOptions {
        pin_path: opts.pin_path.clone(),
        conn_table_size: opts.conn_table_size,
    };
    let mut dataplane = XdpDataplane::load_with(object, &load)?;
    for iface in &interfaces {
        dataplane.attach(iface, opts.xdp_mode)?;
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
    info!(dataplane = %dataplane.describe(), "data plane ready");
    ops.set_dataplane(&dataplane, opts.pin_path.clone());

    let checks = Arc::new(health::HealthRuntime::start(
        health::HealthPlan::from_config(&config),
        health::RunnerOptions::default(),
    ));
    ops.set_health(checks.clone());
    let mut state = State {
        netlink,
        interfaces,
        dataplane,
        wanted: plan(&config),
        applied: None,
        warned: HashSet::new(),
        health: checks.verdicts(),
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut next = Duration::ZERO;
    // Reconcile at `last + next`: a deadline, so that other arms firing
    // often (the watchdog) never postpone it.
    let mut last = tokio::time::Instant::now();
    let mut recount = tokio::time::interval(RECOUNT);
    loop {
        tokio::select! {
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sighup.recv() => {
                ops.reloading();
                match load_config(&opts.config_file) {
                    Ok(config) => {
                        info!(file = %opts.config_file.display(), "configuration reloaded");
                        state.wanted = plan(&config);
                        checks.reload(health::HealthPlan::from_config(&config));
                        next = Duration::ZERO;
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
            _ = recount.tick() => {
                if let Err(e) = state.dataplane.recount_connections() {
                    warn!("recounting connections: {e}");
                }
            }
            // A health change is applied at once.
            Ok(()) = state.health.changed() => { next = Duration::ZERO; }
            _ = tokio::time::sleep_until(last + next) => {
                next = match state.reconcile(&ops.overrides()).instrument(info_span!("reconcile")).await {
                    Ok(true) => RESOLVE_STEADY,
                    Ok(false) => RESOLVE_PENDING,
                    Err(e) => { error!("{e:#}"); RESOLVE_PENDING }
                };
                last = tokio::time::Instant::now();
                ops.reconciled(state.applied.as_deref());
            }
        }
    }
    ops.stopping();
    if opts.keep_on_exit {
        info!("leaving the data plane attached and pinned for the next lbd");
    } else {
        // Without pins, dropping the data plane detaches XDP everywhere.
        state.dataplane.unpin_all();
    }
    drop(state);
    info!("stopped");
    Ok(())
}

fn plan(config: &config::Config) -> Vec<ServiceSpec> {
    let plan = services::plan(config);
    for s in &plan.skipped {
        warn!("{s}");
    }
    plan.services
}

impl State {
    /// Resolves backend MACs and applies the result if it changed. Returns
    /// whether every backend has a MAC.
    async fn reconcile(&mut self, overrides: &control::Overrides) -> anyhow::Result<bool> {
        let neighbours = self.netlink.neighbours().await?;
        let mut specs = self.wanted.clone();
        health::apply(&mut specs, &self.health.borrow_and_update());
        overrides.apply(&mut specs, &self.wanted);
        let mut complete = true;
        for spec in &mut specs {
            // Only DR needs backend MACs; NAT and TUN use the kernel's FIB.
            if spec.mode != Mode::Dr {
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
                let mode = s.mode;
                let ready = s
                    .all_backends_mut()
                    .filter(|b| mode != Mode::Dr || b.mac.is_some())
                    .count();
                info!(vip = %s.vip, proto = %s.proto, backends = total, ready, "service applied");
            }
            self.applied = Some(specs);
        }
        Ok(complete)
    }

    async fn backend_mac(
        &mut self,
        ip: IpAddr,
        neighbours: &std::collections::HashMap<(u32, IpAddr), MacAddr>,
    ) -> Option<MacAddr> {
        let route = match self.netlink.route(ip).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                if self.warned.insert(ip) {
                    warn!(backend = %ip, "no route to backend: it gets no traffic");
                }
                return None;
            }
            Err(e) => {
                warn!(backend = %ip, "route lookup failed: {e}");
                return None;
            }
        };
        // DR sends the frame back out of the interface it came in on, so the
        // backend must be on the link of an attached interface.
        let on_link = !route.via_gateway && self.interfaces.iter().any(|i| i.index == route.oif);
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
