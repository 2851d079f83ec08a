//! Operations: the control socket (lbctl), Prometheus metrics and systemd
//! notifications, as one [`Operations`] handle the main loop feeds and
//! consults at a few points:
//!
//! - after loading the data plane: [`Operations::set_dataplane`],
//!   [`Operations::set_health`] (and, once VRRP runs, `set_vrrp`);
//! - in reconcile, [`Operations::overrides`] on top of the health verdicts;
//!   an arm on [`Operations::changes`] reconciles at once when they change;
//! - after each reconcile, [`Operations::reconciled`] (READY=1 the first
//!   time services are applied);
//! - an arm on [`Watchdog::tick`] sends WATCHDOG=1 from the main loop;
//! - SIGHUP: [`Operations::reloading`], then [`Operations::reloaded`] or
//!   [`Operations::reload_failed`].
//!
//! Everything else runs in tasks of its own. Wiring VRRP is one call: an
//! `impl VrrpStatus for vrrp::StatusBoard` mapping each `InstanceStatus` to
//! a [`protocol::VrrpInstance`], then `ops.set_vrrp(Arc::new(board))`; a
//! daemon running without a data plane calls
//! [`Operations::ready_without_dataplane`] instead of `reconciled`.

pub mod client;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod overrides;
pub mod protocol;
pub mod server;
pub mod views;
pub mod vrrp_view;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tracing::{error, info};

pub use hub::{Hub, VrrpStatus};
pub use overrides::Overrides;
pub use protocol::VrrpInstance;

use crate::{
    config::Config,
    dataplane::{Dataplane, ServiceSpec},
    health::HealthRuntime,
};

/// How lbd exposes itself to operators.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Control socket; `None`: none.
    pub socket: Option<PathBuf>,
    /// Group allowed on the control socket (name or number; default root).
    pub group: Option<String>,
    /// Prometheus metrics listen address; `None`: off.
    pub metrics_addr: Option<SocketAddr>,
}

pub struct Operations {
    hub: Arc<Hub>,
    /// Fires when an operator changed an override.
    pub changes: watch::Receiver<u64>,
    pub watchdog: notify::Watchdog,
    tasks: Vec<JoinHandle<()>>,
    _socket: Option<server::SocketGuard>,
    ready: bool,
}

impl Drop for Operations {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Operations {
    /// Starts the control socket and the metrics endpoint (call inside the
    /// runtime). A control socket that cannot be set up is logged and lbd
    /// runs without it; a metrics address that cannot be bound is an error.
    pub async fn start(
        opts: &Options,
        config_file: PathBuf,
        config: &Config,
    ) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::new(config_file, config));
        let mut tasks = Vec::new();
        let mut socket = None;
        if let Some(path) = &opts.socket {
            let gid = match &opts.group {
                Some(g) => server::group_id(g)?,
                None => 0,
            };
            match server::bind(path, gid) {
                Ok((listener, guard)) => {
                    info!(socket = %path.display(), gid, "control socket ready");
                    tasks.push(tokio::spawn(server::serve(listener, hub.clone(), gid)));
                    socket = Some(guard);
                }
                Err(e) => error!("control socket: {e:#}; lbctl will read the pinned maps only"),
            }
        }
        if let Some(addr) = opts.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
            info!(%addr, "metrics served at http://{addr}/metrics");
            tasks.push(tokio::spawn(metrics::serve(listener, hub.clone())));
        }
        let changes = hub.override_changes.subscribe();
        Ok(Self {
            hub,
            changes,
            watchdog: notify::Watchdog::from_env(),
            tasks,
            _socket: socket,
            ready: false,
        })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The data plane is loaded and attached.
    pub fn set_dataplane(&self, dp: &dyn Dataplane, pin_path: Option<PathBuf>) {
        match dp.reader() {
            Some(Ok(view)) => self.hub.set_dataplane(hub::DataplaneInfo {
                kind: dp.tier().into(),
                interfaces: server::interfaces(dp.attached()),
                pin_path,
                view,
            }),
            Some(Err(e)) => {
                error!(dataplane = %dp.describe(), "control: cannot open the data plane for reading: {e}")
            }
            None => {}
        }
    }

    pub fn set_health(&self, health: Arc<HealthRuntime>) {
        self.hub.set_health(health);
    }

    /// VRRP status for `lbctl vrrp` and the metrics.
    pub fn set_vrrp(&self, vrrp: Arc<dyn VrrpStatus>) {
        self.hub.set_vrrp(vrrp);
    }

    /// Connection sync's board, for `lbctl sync` and the metrics.
    pub fn set_sync(&self, board: crate::connsync::SyncBoard) {
        self.hub.set_sync(board);
    }

    /// The operators' overrides, to apply on top of the health verdicts.
    pub fn overrides(&self) -> Overrides {
        self.hub.overrides()
    }

    /// What `lb_announce_table` announces, for `lbctl status`.
    pub fn set_announce(&self, status: Vec<(std::net::IpAddr, crate::announce::core::Why)>) {
        self.hub.set_announce(
            status
                .into_iter()
                .map(|(vip, why)| protocol::AnnounceInfo {
                    vip: vip.to_string(),
                    state: why.to_string(),
                })
                .collect(),
        );
    }

    /// A reconcile ran; `applied` is what the data plane carries. The first
    /// time services are applied, systemd hears READY=1.
    pub fn reconciled(&mut self, applied: Option<&[ServiceSpec]>) {
        if !self.ready && applied.is_some() {
            self.ready = true;
            notify::ready("services applied");
        }
    }

    /// lbd runs without a data plane (nothing to reconcile): READY=1 now.
    pub fn ready_without_dataplane(&mut self) {
        if !self.ready {
            self.ready = true;
            notify::ready("running without a data plane");
        }
    }

    /// SIGHUP received: RELOADING=1.
    pub fn reloading(&self) {
        notify::reloading();
    }

    /// The configuration was reloaded: overrides are dropped.
    pub fn reloaded(&self, config: &Config) {
        self.hub.set_config(config);
        let cleared = self.hub.change_overrides(|o| o.clear());
        if cleared > 0 {
            info!(cleared, "reload: operator overrides cleared");
        }
        self.hub.set_reload_result(protocol::ReloadInfo {
            ok: true,
            at_unix_ms: protocol::unix_ms(std::time::SystemTime::now()),
            error: None,
            overrides_cleared: cleared,
        });
        if self.ready {
            notify::ready("configuration reloaded");
        }
    }

    /// The configuration had errors; the running one is kept.
    pub fn reload_failed(&self, error: String) {
        self.hub.set_reload_result(protocol::ReloadInfo {
            ok: false,
            at_unix_ms: protocol::unix_ms(std::time::SystemTime::now()),
            error: Some(error),
            overrides_cleared: 0,
        });
        if self.ready {
            notify::ready("reload refused, running configuration kept");
        }
    }

    /// lbd is stopping: STOPPING=1.
    pub fn stopping(&self) {
        notify::stopping();
    }
}

/// How often the main loop pings the watchdog: half of WATCHDOG_USEC.
pub fn watchdog_interval(usec: Duration) -> Duration {
    (usec / 2).max(Duration::from_millis(10))
}
