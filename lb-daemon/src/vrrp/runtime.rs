//! The VRRP runtime's lifecycle: start every unit of a configuration,
//! reload (keeping unchanged units), stop (priority 0, addresses removed)
//! or stop for a restart (masters keep their addresses and are recorded for
//! the next lbd). The tasks themselves are in [`super::tasks`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::Config;

use super::config_map::{self, MapError, UnitSpec};
use super::restart::{self, KeptMaster, RestartState};
use super::status::StatusBoard;
use super::tasks;

/// How long a stopping unit may take (priority 0, removing addresses).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A configuration the VRRP runtime cannot run: every error found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VRRP configuration:\n{}", lines(.0))]
pub struct ConfigError(pub Vec<MapError>);

fn lines(errors: &[MapError]) -> String {
    let text: Vec<String> = errors.iter().map(|e| format!("error: {e}")).collect();
    text.join("\n")
}

/// The running VRRP instances of one configuration.
pub struct VrrpRuntime {
    status: StatusBoard,
    units: BTreeMap<String, Unit>,
    /// What the previous lbd left for a restart; used by the units started
    /// with the runtime only (not by those a reload starts).
    resume: Option<Arc<RestartState>>,
}

/// A running unit as the runtime holds it: enough to stop it.
struct Unit {
    spec: UnitSpec,
    stop: watch::Sender<bool>,
    /// Set before `stop` for a restart: masters keep their addresses.
    keep_masters: Arc<AtomicBool>,
    /// The driver task; it returns the masters it kept (empty unless
    /// `keep_masters`).
    task: JoinHandle<Vec<KeptMaster>>,
}

impl VrrpRuntime {
    /// Starts every instance of `config`. Fails, starting nothing, when the
    /// configuration cannot run; an interface that is missing is retried.
    /// `resume`: what the previous lbd recorded when it exited for a
    /// restart (see [`restart`]); its masters resume as master.
    pub fn start(
        config: &Config,
        resume: Option<RestartState>,
    ) -> Result<VrrpRuntime, ConfigError> {
        let plan = plan(config)?;
        let mut rt = VrrpRuntime {
            status: StatusBoard::default(),
            units: BTreeMap::new(),
            resume: resume.map(Arc::new),
        };
        for spec in plan {
            rt.spawn(spec);
        }
        rt.resume = None;
        Ok(rt)
    }

    /// The shared status of every instance.
    pub fn status(&self) -> StatusBoard {
        self.status.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Applies a new configuration: units whose configuration is unchanged
    /// keep running (and keep their state); the others are stopped as on
    /// shutdown and started anew. A configuration that cannot run is
    /// refused whole, the running one kept.
    pub async fn reload(&mut self, config: &Config) -> Result<(), ConfigError> {
        let plan = plan(config)?;
        let mut wanted: BTreeMap<String, UnitSpec> =
            plan.into_iter().map(|u| (u.key(), u)).collect();
        let keys: Vec<String> = self.units.keys().cloned().collect();
        for key in keys {
            let keep = wanted
                .get(&key)
                .is_some_and(|w| w.same_as(&self.units[&key].spec));
            if keep {
                wanted.remove(&key);
                debug!(unit = %key, "unchanged: keeps its state");
            } else if let Some(unit) = self.units.remove(&key) {
                info!(unit = %key, "changed or removed: stopping");
                self.stop_unit(unit).await;
            }
        }
        for (key, spec) in wanted {
            info!(unit = %key, "starting");
            self.spawn(spec);
        }
        Ok(())
    }

    /// Stops every instance: a master sends priority 0 and removes its
    /// addresses; notify_stop runs.
    pub async fn shutdown(self) {
        self.stop_all(false).await;
    }

    /// Stops for a restart (`--on-exit keep`): a master keeps its addresses
    /// and sends no priority 0, and is recorded in `run_dir` so that the
    /// next lbd resumes it; backups stop as on [`VrrpRuntime::shutdown`].
    pub async fn shutdown_for_restart(self, run_dir: &Path) {
        let kept = self.stop_all(true).await;
        if kept.is_empty() {
            return;
        }
        let names: Vec<&str> = kept.iter().map(|k| k.instance.as_str()).collect();
        let state = RestartState::new(kept.clone(), std::time::SystemTime::now());
        match restart::write(run_dir, &state) {
            Ok(()) => info!(
                file = %restart::path(run_dir).display(),
                instances = ?names,
                "masters keep their addresses for the next lbd"
            ),
            Err(e) => error!(
                dir = %run_dir.display(),
                "recording the masters for the next lbd: {e}; it will start them as backups"
            ),
        }
    }

    /// Signals every unit first, then waits for each: they stop in
    /// parallel.
    async fn stop_all(mut self, keep_masters: bool) -> Vec<KeptMaster> {
        let units = std::mem::take(&mut self.units);
        for unit in units.values() {
            unit.keep_masters.store(keep_masters, Ordering::SeqCst);
            let _ = unit.stop.send(true);
        }
        let mut kept = Vec::new();
        for (_, unit) in units {
            kept.extend(self.stop_unit(unit).await);
        }
        kept
    }

    async fn stop_unit(&self, unit: Unit) -> Vec<KeptMaster> {
        let _ = unit.stop.send(true);
        let mut task = unit.task;
        let kept = match tokio::time::timeout(STOP_TIMEOUT, &mut task).await {
            Ok(Ok(kept)) => kept,
            Ok(Err(_)) => Vec::new(),
            Err(_) => {
                warn!(unit = %unit.spec.key(), "did not stop in time: aborted");
                task.abort();
                Vec::new()
            }
        };
        for i in &unit.spec.instances {
            self.status.remove(i.name());
        }
        kept
    }

    fn spawn(&mut self, spec: UnitSpec) {
        let (stop, stop_rx) = watch::channel(false);
        let keep_masters = Arc::new(AtomicBool::new(false));
        let task = tasks::spawn_driver(
            spec.clone(),
            self.status.clone(),
            self.resume.clone(),
            keep_masters.clone(),
            stop_rx,
        );
        self.units.insert(
            spec.key(),
            Unit {
                spec,
                stop,
                keep_masters,
                task,
            },
        );
    }
}

fn plan(config: &Config) -> Result<Vec<UnitSpec>, ConfigError> {
    let g = &config.global_defs;
    super::fifo::configure(g);
    if !g.vrrp_startup_delay.is_zero() {
        warn!("vrrp_startup_delay is not supported yet: instances start at once");
    }
    if !g.vrrp_garp_interval.is_zero() || !g.vrrp_gna_interval.is_zero() {
        warn!("vrrp_garp_interval / vrrp_gna_interval are not supported yet: announcements go out back to back");
    }
    config_map::plan(config).map_err(ConfigError)
}
