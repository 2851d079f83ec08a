//! lbd's main loop: keep the data plane carrying what the configuration asks
//! for, with backend MACs from the kernel's neighbour table.

use std::{
    collections::HashSet,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, info_span, warn, Instrument};

use crate::{
    config,
    dataplane::{xdp::AttachMode, xdp::XdpDataplane, Dataplane, ServiceSpec},
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
}

/// While some backend has no MAC, look again soon; otherwise now and then
/// to follow MAC changes.
const RESOLVE_PENDING: Duration = Duration::from_millis(200);
const RESOLVE_STEADY: Duration = Duration::from_secs(5);

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
    let mut dataplane = XdpDataplane::load(object)?;
    for iface in &interfaces {
        dataplane.attach(iface, opts.xdp_mode)?;
    }
    info!(dataplane = %dataplane.describe(), "data plane ready");

    let checks = health::HealthRuntime::start(
        health::HealthPlan::from_config(&config),
        health::RunnerOptions::default(),
    );
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
    loop {
        tokio::select! {
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sighup.recv() => {
                match load_config(&opts.config_file) {
                    Ok(config) => {
                        info!(file = %opts.config_file.display(), "configuration reloaded");
                        state.wanted = plan(&config);
                        checks.reload(health::HealthPlan::from_config(&config));
                        next = Duration::ZERO;
                    }
                    Err(diags) => {
                        // A bad file never replaces a running configuration.
                        for d in &diags.0 {
                            error!("{d}");
                        }
                        error!("reload refused: the running configuration is kept");
                    }
                }
            }
            // A health change is applied at once.
            Ok(()) = state.health.changed() => { next = Duration::ZERO; }
            _ = tokio::time::sleep(next) => {
                next = match state.reconcile().instrument(info_span!("reconcile")).await {
                    Ok(true) => RESOLVE_STEADY,
                    Ok(false) => RESOLVE_PENDING,
                    Err(e) => { error!("{e:#}"); RESOLVE_PENDING }
                };
            }
        }
    }
    // Dropping the data plane detaches XDP from every interface.
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
    async fn reconcile(&mut self) -> anyhow::Result<bool> {
        let neighbours = self.netlink.neighbours().await?;
        let mut specs = self.wanted.clone();
        health::apply(&mut specs, &self.health.borrow_and_update());
        let mut complete = true;
        for spec in &mut specs {
            for b in &mut spec.backends {
                b.mac = self.backend_mac(b.addr.ip(), &neighbours).await;
                complete &= b.mac.is_some();
            }
        }
        if self.applied.as_ref() != Some(&specs) {
            self.dataplane.apply(&specs)?;
            for s in &specs {
                let ready = s.backends.iter().filter(|b| b.mac.is_some()).count();
                info!(vip = %s.vip, proto = %s.proto, backends = s.backends.len(), ready, "service applied");
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
