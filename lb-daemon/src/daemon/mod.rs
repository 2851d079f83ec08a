//! lbd's main loop: keep the data plane carrying what the configuration and
//! the health checks ask for, with backend MACs from the kernel's neighbour
//! table, and run the VRRP instances.
//!
//! ```text
//!   signals, timers, health verdicts, lbctl overrides
//!                        │
//!          Daemon::next_wake (wake.rs) ──▶ Wake
//!                        │
//!   on_stop · on_restart · on_reload · on_watchdog · on_override
//!   on_health · on_recount · on_reconcile
//!                                              │
//!                     Forwarding::reconcile (forwarding.rs)
//!                       1. desired(planned, verdicts, overrides)  (pure)
//!                       2. Resolver::resolve: MACs, next hops     (netlink)
//!                       3. Dataplane::apply, when it changed
//! ```
//!
//! - `wake.rs`: the one small `select!` turning every event into a `Wake`;
//! - this file: `Daemon` and one `on_*` method per wake-up;
//! - `forwarding.rs`: the data plane side (opening the tier, the health
//!   checks, the reconcile);
//! - `desired.rs`: what the data plane should carry, with no I/O;
//! - `resolver.rs`: the netlink lookups filling in MACs and next hops.

mod desired;
mod forwarding;
mod reload;
mod resolver;
mod sync;
mod wake;

#[cfg(test)]
mod tests;

pub use desired::desired;
pub use resolver::Resolver;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tracing::{error, info, info_span, warn, Instrument};

use crate::{
    announce::{self, route::Announcer},
    config, control,
    dataplane::{bpf::AttachMode, select::Tier},
    vrrp::{self, VrrpRuntime},
};

use forwarding::Forwarding;
use wake::{Signals, Wake};

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

/// Reads the configuration for a start or a reload (`mode`), logging each
/// finding: the errors whose bad part was skipped as errors, the rest as
/// warnings. The errors `mode` refuses are returned whole.
pub fn load_config(path: &Path, mode: config::Mode) -> Result<config::Config, config::Diagnostics> {
    let loaded = config::load_for(path, mode)?;
    for d in &loaded.warnings {
        if d.is_error() {
            error!("{d}");
        } else {
            warn!("{d}");
        }
    }
    Ok(loaded.config)
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
    let mut daemon = Daemon::start(opts).await?;
    let exit = loop {
        match daemon.next_wake().await {
            Wake::Stop { signal } => {
                if let Some(exit) = daemon.on_stop(signal).await {
                    break exit;
                }
            }
            Wake::Restart => break daemon.on_restart(),
            Wake::Reload => daemon.on_reload().await,
            Wake::Watchdog => daemon.on_watchdog(),
            Wake::Override => daemon.on_override(),
            Wake::Recount => daemon.on_recount(),
            Wake::Health => daemon.on_health(),
            Wake::Reconcile => {
                daemon.on_reconcile().await;
                if daemon.update_announce().await {
                    break Exit::Stopped;
                }
            }
            Wake::Sync(req) => daemon.on_sync(req),
            Wake::Announce => {
                if daemon.on_announce(announce::core::Event::Tick).await {
                    break Exit::Stopped;
                }
            }
        }
    };
    daemon.shutdown(exit).await;
    Ok(exit)
}

/// Everything the main loop owns.
struct Daemon {
    opts: Options,
    ops: control::Operations,
    /// `None`: a VRRP-only configuration, running without a data plane.
    forwarding: Option<Forwarding>,
    vrrp: Option<VrrpRuntime>,
    /// `lb_announce_table`: VIP routes for the host's routing daemon.
    announce: Option<Announcer>,
    /// `lvs_sync_daemon`: connection sync.
    sync: Option<sync::Sync>,
    /// What `lbctl sync` and the metrics read.
    sync_board: crate::connsync::SyncBoard,
    /// The directory sync was last handed.
    sync_directory: Option<crate::connsync::directory::Directory>,
    signals: Signals,
    /// Reconcile at `last + next`: a deadline, so that other wake-ups
    /// arriving often (the watchdog) never postpone it.
    last: tokio::time::Instant,
    next: Duration,
    recount: tokio::time::Interval,
}

impl Daemon {
    /// Loads the configuration, starts operations (control socket,
    /// metrics), the data plane and its health checks, and VRRP.
    async fn start(opts: Options) -> anyhow::Result<Daemon> {
        let config = load_config(&opts.config_file, config::Mode::Start)
            .map_err(|d| anyhow::anyhow!("{d}"))?;
        if !config.virtual_servers.is_empty() && crate::check::bpf_limits_apply(opts.tier, &config)
        {
            // Refused before any map is written: never a partial programming.
            crate::services::check_capacity(&config, crate::dataplane::capacity::Limits::BPF)
                .map_err(|d| anyhow::anyhow!("{d}"))?;
        }
        crate::script::policy::install(&config);
        let mut ops =
            control::Operations::start(&opts.control, opts.config_file.clone(), &config).await?;
        // A data plane is needed only to carry virtual servers: a VRRP-only
        // configuration runs without one.
        let forwarding = if config.virtual_servers.is_empty() && opts.interfaces.is_empty() {
            info!("no virtual_server and no --interface: running without a data plane");
            None
        } else {
            Some(Forwarding::start(&opts, &config).await?)
        };
        match &forwarding {
            Some(f) => {
                ops.set_dataplane(f.dataplane.as_ref(), opts.pin_path.clone());
                ops.set_health(f.checks.clone());
            }
            None => ops.ready_without_dataplane(),
        }
        let announce = match (config.global_defs.lb_announce.table, &forwarding) {
            (None, _) => None,
            (Some(_), None) => {
                anyhow::bail!("lb_announce_table: announcing needs a data plane (virtual servers and --interface)")
            }
            (Some(table), Some(f)) => {
                if let Some(vip) = f.nat_service() {
                    return Err(announce::route::AnnounceError::Nat(vip).into());
                }
                Some(Announcer::start(
                    &config.global_defs.lb_announce,
                    table,
                    &opts.run_dir,
                    crate::net::Netlink::new()?,
                    std::time::Instant::now(),
                )?)
            }
        };
        // Read (and removed) whatever the case: it is for this start only.
        let resume = vrrp::restart::take(&opts.run_dir);
        let vrrp = match config.vrrp_instances.is_empty() {
            true => None,
            false => Some(VrrpRuntime::start(&config, resume)?),
        };
        if let Some(rt) = &vrrp {
            ops.set_vrrp(control::vrrp_view::VrrpView::new(rt.status(), &config));
        }
        let mut forwarding = forwarding;
        let sync_board = crate::connsync::SyncBoard::default();
        ops.set_sync(sync_board.clone());
        let sync = sync::start_sync(&config, forwarding.as_mut(), vrrp.as_ref(), &sync_board);
        let signals = Signals::new()?;
        Ok(Daemon {
            opts,
            ops,
            forwarding,
            vrrp,
            announce,
            sync,
            sync_board,
            sync_directory: None,
            signals,
            last: tokio::time::Instant::now(),
            next: Duration::ZERO,
            recount: tokio::time::interval(RECOUNT),
        })
    }

    /// SIGINT or SIGTERM. While announcing, the first one drains: the VIPs
    /// are withdrawn, forwarding goes on for `lb_announce_drain`, then lbd
    /// stops; a second one stops at once.
    async fn on_stop(&mut self, signal: &str) -> Option<Exit> {
        match &self.announce {
            Some(a) if !a.draining() => {
                info!(
                    "{signal}: draining (VIPs withdrawn, forwarding until the drain time is over)"
                );
                if self.on_announce(announce::core::Event::Drain).await {
                    return Some(Exit::Stopped);
                }
                None
            }
            _ => {
                info!("{signal}: stopping");
                Some(Exit::Stopped)
            }
        }
    }

    /// An event for announcing; true when the drain is over.
    async fn on_announce(&mut self, event: announce::core::Event) -> bool {
        let Some(a) = self.announce.as_mut() else {
            return false;
        };
        let now = std::time::Instant::now();
        let stop = a.handle(event, now).await;
        self.ops.set_announce(a.status(now));
        stop
    }

    /// Announcing follows the data plane and the quorum of each VIP.
    async fn update_announce(&mut self) -> bool {
        let (Some(a), Some(f)) = (self.announce.as_mut(), self.forwarding.as_ref()) else {
            return false;
        };
        let now = std::time::Instant::now();
        let quorum = f.vip_quorum();
        let mut stop = a
            .handle(announce::core::Event::Attached(quorum.is_some()), now)
            .await;
        if let Some(q) = quorum {
            stop |= a.handle(announce::core::Event::Vips(q), now).await;
        }
        self.ops.set_announce(a.status(now));
        stop
    }

    /// SIGUSR1.
    fn on_restart(&self) -> Exit {
        info!("SIGUSR1: restarting in place (data plane and VRRP masters kept for the next lbd)");
        Exit::Restart
    }

    /// SIGHUP: the file is read again; a bad one never replaces the running
    /// configuration.
    async fn on_reload(&mut self) {
        self.ops.reloading();
        // Read and checked on the blocking pool: VRRP keeps its adverts
        // going on the runtime while a big file is parsed.
        let path = self.opts.config_file.clone();
        let caps = self.forwarding.as_ref().map(|f| f.caps());
        let prepared = tokio::task::spawn_blocking(move || reload::prepare(&path, caps))
            .await
            .unwrap_or_else(|e| {
                Err(config::Diagnostics(vec![config::Diagnostic::at(
                    config::Severity::Error,
                    &config::Location::default(),
                    format!("reading the configuration failed: {e}"),
                )]))
            });
        let prepared = match prepared {
            Ok(p) => p,
            Err(diags) => {
                for d in &diags.0 {
                    error!("{d}");
                }
                error!("reload refused: the running configuration is kept");
                self.ops.reload_failed(diags.to_string());
                return;
            }
        };
        let admitted = match (&self.forwarding, &prepared.planned) {
            (Some(f), Some(Ok(planned))) => f.admit(planned),
            (_, Some(Err(reason))) => Err(reason.clone()),
            _ => Ok(()),
        };
        if let Err(reason) = admitted {
            error!("{reason}");
            error!("reload refused: the running configuration is kept");
            self.ops.reload_failed(reason);
            return;
        }
        let reload::Prepared {
            config,
            planned,
            scripts,
            script_findings,
        } = prepared;
        info!(file = %self.opts.config_file.display(), "configuration reloaded");
        crate::script::policy::set(scripts, &script_findings);
        match &mut self.forwarding {
            Some(f) => f.reload(&config, planned.and_then(Result::ok).unwrap_or_default()),
            None if !config.virtual_servers.is_empty() => {
                warn!("virtual_server added: restart lbd with --interface to carry it")
            }
            None => {}
        }
        self.next = Duration::ZERO;
        let had_vrrp = self.vrrp.is_some();
        if let Err(e) = self.reload_vrrp(&config).await {
            error!("{e:#}");
            error!("VRRP reload refused: the running instances are kept");
        }
        let vrrp_started = !had_vrrp && self.vrrp.is_some();
        self.reload_sync(&config, vrrp_started).await;
        if let Some(rt) = &self.vrrp {
            self.ops
                .set_vrrp(control::vrrp_view::VrrpView::new(rt.status(), &config));
        }
        self.ops.reloaded(&config);
    }

    /// VRRP instances follow the new configuration; the first ones start
    /// their runtime.
    async fn reload_vrrp(&mut self, config: &config::Config) -> anyhow::Result<()> {
        match &mut self.vrrp {
            Some(rt) => Ok(rt.reload(config).await?),
            None if config.vrrp_instances.is_empty() => Ok(()),
            None => {
                self.vrrp = Some(VrrpRuntime::start(config, None)?);
                Ok(())
            }
        }
    }

    fn on_watchdog(&mut self) {
        self.ops.watchdog.ping();
    }

    /// An operator's override (lbctl set-weight, drain, ...) is applied at
    /// once.
    fn on_override(&mut self) {
        self.next = Duration::ZERO;
    }

    /// A health change is applied at once.
    fn on_health(&mut self) {
        self.next = Duration::ZERO;
    }

    /// Connection counts for lc/wlc, recounted from the table.
    fn on_recount(&mut self) {
        let Some(f) = self.forwarding.as_mut() else {
            return;
        };
        if let Err(e) = f.dataplane.maintain() {
            warn!("recounting connections: {e}");
        }
        self.update_sync_drops();
    }

    /// The data plane is brought to what is desired; soon again while some
    /// backend is unresolved.
    async fn on_reconcile(&mut self) {
        let Some(f) = self.forwarding.as_mut() else {
            return;
        };
        let overrides = self.ops.overrides();
        self.next = match f
            .reconcile(&overrides)
            .instrument(info_span!("reconcile"))
            .await
        {
            Ok(true) => {
                if !f.resolved {
                    f.resolved = true;
                    info!("every backend resolved");
                }
                RESOLVE_STEADY
            }
            Ok(false) => {
                f.resolved = false;
                RESOLVE_PENDING
            }
            Err(e) => {
                // The data plane refusing the services is not cured by
                // trying again at once (neighbours may be).
                let again = match e {
                    forwarding::ReconcileError::Apply(_) => RESOLVE_STEADY,
                    forwarding::ReconcileError::Neighbours(_) => RESOLVE_PENDING,
                };
                // With its causes, as lbd logs every error.
                error!("{:#}", anyhow::Error::from(e));
                again
            }
        };
        self.last = tokio::time::Instant::now();
        self.ops.reconciled(f.applied.as_deref());
        self.publish_directory();
    }

    async fn shutdown(mut self, exit: Exit) {
        self.ops.stopping();
        // Sync first: a master sends what it holds while it is still master.
        self.stop_sync().await;
        // VRRP first: on a stop a master hands over (priority 0) and removes
        // its addresses while the data plane still carries traffic. On a
        // restart in place (SIGUSR1) it keeps them, and the next lbd resumes
        // as master before the backups' master-down timers fire.
        let restart = exit == Exit::Restart;
        if let (Some(a), true) = (&self.announce, restart) {
            a.keep_for_restart(&self.opts.run_dir);
        }
        if let Some(vrrp) = self.vrrp {
            if restart {
                vrrp.shutdown_for_restart(&self.opts.run_dir).await;
            } else {
                vrrp.shutdown().await;
            }
        }
        if let Some(mut f) = self.forwarding {
            // Detaches, or leaves forwarding for the next lbd (--on-exit
            // keep, or a restart in place).
            f.dataplane.shutdown(self.opts.keep_on_exit || restart);
            drop(f);
        }
        info!("stopped");
    }
}
