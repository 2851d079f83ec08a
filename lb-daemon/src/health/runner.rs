//! Runs the probes on tokio and feeds their results to the core.
//!
//! One task per probe (per distinct target and checker) sleeps until its
//! next run, runs the probe, sends the result to the actor that owns the
//! [`Core`], and gets back when to run next. Nothing waits on anything
//! else: a probe is bounded by its own timeout, at most `max_connects`
//! network probes, `max_scripts` MISC_CHECK scripts and `max_notify_scripts`
//! notify scripts run at once (the others wait for a slot of their own
//! kind, never for each other), and the actor only does arithmetic.
//! Verdicts are published on a watch channel when they change.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{info, info_span, warn, Instrument};

use super::core::{first_delay, Action, Core, Outcome, Snapshot, Verdicts};
use super::plan::{HealthPlan, ProbeKey, ProbeSpec};
use super::{dns, http, misc, smtp, tcp, udp};
use crate::config::CheckerKind;

/// A notify script gets this long before it is killed.
const NOTIFY_LIMIT: Duration = Duration::from_secs(60);

pub type ProbeFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Runs one probe. The real one does I/O; tests use fakes.
pub trait Prober: Send + Sync + 'static {
    fn probe(&self, spec: Arc<ProbeSpec>) -> ProbeFuture;
}

/// Limits of the runner.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// Network probes in flight at once.
    pub max_connects: usize,
    /// MISC_CHECK scripts running at once.
    pub max_scripts: usize,
    /// Notify scripts (notify_up/down, quorum_up/down) running at once: a
    /// pool of their own, so hanging notify scripts never hold up checks.
    pub max_notify_scripts: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            max_connects: 256,
            max_scripts: 32,
            max_notify_scripts: 32,
        }
    }
}

/// The probes that do real I/O.
pub struct NetProber {
    connects: Arc<Semaphore>,
    scripts: Arc<Semaphore>,
}

impl NetProber {
    pub fn new(opts: RunnerOptions, scripts: Arc<Semaphore>) -> Self {
        NetProber {
            connects: Arc::new(Semaphore::new(opts.max_connects.max(1))),
            scripts,
        }
    }
}

impl Prober for NetProber {
    fn probe(&self, spec: Arc<ProbeSpec>) -> ProbeFuture {
        let slots = match spec.kind {
            CheckerKind::Misc(_) => self.scripts.clone(),
            _ => self.connects.clone(),
        };
        Box::pin(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return Outcome::down("health checker stopping");
            };
            match &spec.kind {
                CheckerKind::Tcp => tcp::probe(&spec).await,
                CheckerKind::Http(_) | CheckerKind::Ssl(_) => http::probe(&spec).await,
                CheckerKind::Misc(_) => misc::probe(&spec).await,
                CheckerKind::Smtp(_) => smtp::probe(&spec).await,
                CheckerKind::Dns(_) => dns::probe(&spec).await,
                CheckerKind::Udp(_) => udp::probe(&spec).await,
            }
        })
    }
}

/// How punctual the probes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunnerStats {
    pub probes: u64,
    pub checks: u64,
    /// How late probes started after their scheduled time.
    pub late_max_ms: f64,
    pub late_mean_ms: f64,
    /// Probes that started more than 100 ms late.
    pub late_over_100ms: u64,
}

enum Control {
    Reload(HealthPlan),
    Snapshot(oneshot::Sender<Snapshot>),
    Stats(oneshot::Sender<RunnerStats>),
}

struct ProbeResult {
    key: ProbeKey,
    outcome: Outcome,
    late: Duration,
    next: oneshot::Sender<Duration>,
}

/// The running health checker; dropping it stops every probe.
pub struct HealthRuntime {
    control: mpsc::UnboundedSender<Control>,
    verdicts: watch::Receiver<Arc<Verdicts>>,
    actor: JoinHandle<()>,
}

impl Drop for HealthRuntime {
    fn drop(&mut self) {
        self.actor.abort();
    }
}

impl HealthRuntime {
    /// Starts checking `plan` with the real probes (call inside a tokio
    /// runtime).
    pub fn start(plan: HealthPlan, opts: RunnerOptions) -> Self {
        let scripts = Arc::new(Semaphore::new(opts.max_scripts.max(1)));
        let prober = Arc::new(NetProber::new(opts, scripts));
        let notify_slots = Arc::new(Semaphore::new(opts.max_notify_scripts.max(1)));
        Self::start_with(plan, prober, notify_slots)
    }

    /// Starts checking `plan` with `prober`; notify scripts take a slot of
    /// `notify_slots` while they run.
    pub fn start_with(
        plan: HealthPlan,
        prober: Arc<dyn Prober>,
        notify_slots: Arc<Semaphore>,
    ) -> Self {
        let (core, actions) = Core::new(plan, None, SystemTime::now());
        let (verdicts_tx, verdicts) = watch::channel(Arc::new(core.verdicts()));
        let (control, control_rx) = mpsc::unbounded_channel();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let mut actor = Actor {
            core,
            tasks: HashMap::new(),
            prober,
            notify_slots,
            results_tx,
            verdicts_tx,
            stats: Stats::default(),
            hasher: std::collections::hash_map::RandomState::new(),
        };
        actor.run_actions(actions);
        actor.sync_tasks();
        let actor = tokio::spawn(actor.run(control_rx, results_rx));
        HealthRuntime {
            control,
            verdicts,
            actor,
        }
    }

    /// Applies a new configuration: unchanged probes keep their state and
    /// schedule, so an unchanged backend does not flap.
    pub fn reload(&self, plan: HealthPlan) {
        let _ = self.control.send(Control::Reload(plan));
    }

    /// Verdicts, updated whenever they change.
    pub fn verdicts(&self) -> watch::Receiver<Arc<Verdicts>> {
        self.verdicts.clone()
    }

    pub async fn snapshot(&self) -> Snapshot {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.send(Control::Snapshot(tx));
        rx.await.unwrap_or_default()
    }

    pub async fn stats(&self) -> RunnerStats {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.send(Control::Stats(tx));
        rx.await.unwrap_or_default()
    }
}

#[derive(Default)]
struct Stats {
    checks: u64,
    late_max: Duration,
    late_total: Duration,
    late_over_100ms: u64,
}

/// A probe task, aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Actor {
    core: Core,
    tasks: HashMap<ProbeKey, Task>,
    prober: Arc<dyn Prober>,
    /// Notify scripts' pool (MISC_CHECK's is the prober's).
    notify_slots: Arc<Semaphore>,
    results_tx: mpsc::UnboundedSender<ProbeResult>,
    verdicts_tx: watch::Sender<Arc<Verdicts>>,
    stats: Stats,
    hasher: std::collections::hash_map::RandomState,
}

impl Actor {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut results: mpsc::UnboundedReceiver<ProbeResult>,
    ) {
        loop {
            tokio::select! {
                c = control.recv() => match c {
                    None => break,
                    Some(Control::Reload(plan)) => self.reload(plan),
                    Some(Control::Snapshot(tx)) => { let _ = tx.send(self.core.snapshot()); }
                    Some(Control::Stats(tx)) => { let _ = tx.send(self.stats()); }
                },
                Some(r) = results.recv() => self.on_result(r),
            }
        }
    }

    fn stats(&self) -> RunnerStats {
        let s = &self.stats;
        RunnerStats {
            probes: self.tasks.len() as u64,
            checks: s.checks,
            late_max_ms: s.late_max.as_secs_f64() * 1e3,
            late_mean_ms: if s.checks == 0 {
                0.0
            } else {
                s.late_total.as_secs_f64() * 1e3 / s.checks as f64
            },
            late_over_100ms: s.late_over_100ms,
        }
    }

    fn on_result(&mut self, r: ProbeResult) {
        self.stats.checks += 1;
        self.stats.late_total += r.late;
        self.stats.late_max = self.stats.late_max.max(r.late);
        if r.late > Duration::from_millis(100) {
            self.stats.late_over_100ms += 1;
        }
        let (step, actions) = self.core.on_result(&r.key, SystemTime::now(), r.outcome);
        let _ = r.next.send(step.next);
        if step.changed {
            self.log_checker(&r.key);
            self.publish();
        }
        self.run_actions(actions);
    }

    fn log_checker(&self, key: &ProbeKey) {
        let (Some(spec), Some(c)) = (self.core.plan().probes.get(key), self.core.checker(key))
        else {
            return;
        };
        let kind = spec.kind_name();
        if c.up {
            info!(checker = kind, backend = %spec.backend, target = %spec.target, weight = ?c.dynamic_weight, "checker up");
        } else {
            warn!(checker = kind, backend = %spec.backend, target = %spec.target, reason = c.failure.as_deref().unwrap_or(""), "checker down");
        }
    }

    fn publish(&self) {
        let v = self.core.verdicts();
        self.verdicts_tx.send_if_modified(|cur| {
            if **cur == v {
                false
            } else {
                *cur = Arc::new(v);
                true
            }
        });
    }

    fn reload(&mut self, plan: HealthPlan) {
        let (core, actions) = Core::new(plan, Some(&self.core), SystemTime::now());
        self.core = core;
        self.sync_tasks();
        self.publish();
        self.run_actions(actions);
        info!(probes = self.tasks.len(), "health checks reloaded");
    }

    /// One task per planned probe: stale ones stop, new ones start.
    fn sync_tasks(&mut self) {
        let probes = &self.core.plan().probes;
        self.tasks.retain(|k, _| probes.contains_key(k));
        let new: Vec<Arc<ProbeSpec>> = probes
            .iter()
            .filter(|(k, _)| !self.tasks.contains_key(*k))
            .map(|(_, s)| s.clone())
            .collect();
        for spec in new {
            let unit = (self.hasher.hash_one(&spec.key) % 10_000) as f64 / 10_000.0;
            let first = first_delay(spec.timing.warmup, unit);
            let span = info_span!("checker", kind = spec.kind_name(), backend = %spec.backend, target = %spec.target);
            let fut = probe_loop(
                spec.clone(),
                first,
                self.prober.clone(),
                self.results_tx.clone(),
            )
            .instrument(span);
            self.tasks.insert(spec.key.clone(), Task(tokio::spawn(fut)));
        }
    }

    fn run_actions(&self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Backend {
                    vip,
                    proto,
                    addr,
                    up: true,
                    ..
                } => {
                    info!(%vip, %proto, backend = %addr, "backend up: back in the pool");
                }
                Action::Backend {
                    vip,
                    proto,
                    addr,
                    up: false,
                    inhibit,
                    reason,
                } => {
                    warn!(%vip, %proto, backend = %addr, inhibit, reason = reason.as_deref().unwrap_or(""), "backend down: no new connections");
                }
                Action::Quorum {
                    vip,
                    proto,
                    up,
                    live_weight,
                    sorry_server,
                } => {
                    if up {
                        info!(%vip, %proto, live_weight, "quorum gained");
                    } else {
                        warn!(%vip, %proto, live_weight, sorry_server = ?sorry_server, "quorum lost");
                    }
                }
                Action::Notify { script, event } => {
                    let slots = self.notify_slots.clone();
                    tokio::spawn(async move {
                        let Ok(_slot) = slots.acquire_owned().await else {
                            return;
                        };
                        info!(%script, %event, "running notify script");
                        match misc::run_script(&script, None, &[], NOTIFY_LIMIT).await {
                            misc::ScriptEnd::Exited(0) => {}
                            end => warn!(%script, %event, "notify script {end}"),
                        }
                    });
                }
            }
        }
    }
}

async fn probe_loop(
    spec: Arc<ProbeSpec>,
    first: Duration,
    prober: Arc<dyn Prober>,
    results: mpsc::UnboundedSender<ProbeResult>,
) {
    let mut due = Instant::now() + first;
    loop {
        sleep_until(due).await;
        let late = Instant::now().saturating_duration_since(due);
        let outcome = prober.probe(spec.clone()).await;
        let (tx, rx) = oneshot::channel();
        let msg = ProbeResult {
            key: spec.key.clone(),
            outcome,
            late,
            next: tx,
        };
        if results.send(msg).is_err() {
            return;
        }
        let Ok(next) = rx.await else { return };
        due = Instant::now() + next;
    }
}
