//! The pure core of health checking: checker states driven by probe results,
//! backends up when all their checkers are, each virtual server's quorum
//! with hysteresis. No I/O and no clock of its own: results come in with the
//! time they were taken (used only for what the snapshot shows), and the
//! core answers with how long to wait before the next probe and what to do
//! (notify scripts to run). What the data plane should carry is read with
//! [`Core::verdicts`].
//!
//! The rules are keepalived's:
//! - a checker starts up, or down with `alpha`;
//! - a success brings it up at once (and, with `misc_dynamic`, sets the
//!   weight);
//! - a failure while up is retried `retry` times, `delay_before_retry`
//!   apart, before the checker goes down; a failure while down is not
//!   retried;
//! - the next probe after a success or a final failure is `delay_loop` away;
//! - a backend is up while every one of its checkers is;
//! - a virtual server keeps quorum while the weights of its live backends
//!   add up to at least `quorum - hysteresis` (and not to 0), and regains it
//!   at `quorum + hysteresis`; without quorum its `sorry_server`, if any,
//!   takes the new connections instead of the live backends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::plan::{BackendPlan, HealthPlan, ProbeKey, ServicePlan, Timing};
use crate::dataplane::Proto;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Up; `weight` is a dynamic weight (MISC_CHECK's `misc_dynamic`), or
    /// `None` for the configured one.
    Up {
        weight: Option<u32>,
    },
    Down {
        reason: String,
    },
    /// The probe could not run for a reason of this host (out of file
    /// descriptors or buffers, no local address): says nothing about the
    /// backend, which stays as it was; counted and retried.
    LocalError {
        reason: String,
    },
}

impl Outcome {
    pub fn up() -> Self {
        Outcome::Up { weight: None }
    }
    pub fn down(reason: impl Into<String>) -> Self {
        Outcome::Down {
            reason: reason.into(),
        }
    }
}

/// One checker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerState {
    pub up: bool,
    /// Whether a result has come in yet.
    pub has_run: bool,
    retry_it: u32,
    pub dynamic_weight: Option<u32>,
    pub last_check: Option<SystemTime>,
    pub last_ok: Option<bool>,
    pub last_change: Option<SystemTime>,
    /// Why the last failed probe failed; cleared by a success.
    pub failure: Option<String>,
    /// Probes that could not run (local errors), and the last one's reason.
    pub local_errors: u64,
    pub last_local_error: Option<String>,
}

/// What a result means for the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// When to probe next.
    pub next: Duration,
    /// Whether the checker's state (up/down or dynamic weight) changed.
    pub changed: bool,
}

impl CheckerState {
    pub fn new(alpha: bool) -> Self {
        CheckerState {
            up: !alpha,
            has_run: false,
            retry_it: 0,
            dynamic_weight: None,
            last_check: None,
            last_ok: None,
            last_change: None,
            failure: if alpha {
                Some("alpha: down until the first success".into())
            } else {
                None
            },
            local_errors: 0,
            last_local_error: None,
        }
    }

    pub fn on_outcome(&mut self, t: &Timing, now: SystemTime, outcome: Outcome) -> Step {
        if let Outcome::LocalError { reason } = outcome {
            // Neither a success nor a failure: the state, retries and last
            // result stay; tried again after `delay_before_retry`.
            self.local_errors += 1;
            self.last_local_error = Some(reason);
            return Step {
                next: t.delay_before_retry,
                changed: false,
            };
        }
        self.last_check = Some(now);
        let mut next = t.delay_loop;
        let mut changed = false;
        match outcome {
            Outcome::Up { weight } => {
                self.last_ok = Some(true);
                self.retry_it = 0;
                self.failure = None;
                if !self.up {
                    self.up = true;
                    changed = true;
                }
                if weight != self.dynamic_weight {
                    self.dynamic_weight = weight;
                    changed = true;
                }
            }
            Outcome::LocalError { .. } => unreachable!("handled above"),
            Outcome::Down { reason } => {
                self.last_ok = Some(false);
                if (self.up || !self.has_run) && self.retry_it >= t.retry {
                    self.retry_it = 0;
                    if self.up {
                        self.up = false;
                        changed = true;
                    }
                    self.dynamic_weight = None;
                    self.failure = Some(reason);
                } else if self.up {
                    self.retry_it += 1;
                    next = t.delay_before_retry;
                    self.failure =
                        Some(format!("{reason} (retry {} of {})", self.retry_it, t.retry));
                } else {
                    self.failure = Some(reason);
                }
            }
        }
        if changed {
            self.last_change = Some(now);
        }
        self.has_run = true;
        Step { next, changed }
    }
}

/// A fraction of `warmup` (from `unit` in 0..=1) before the first probe, so
/// probes of many backends do not all start together (keepalived picks it at
/// random).
pub fn first_delay(warmup: Duration, unit: f64) -> Duration {
    warmup.mul_f64(unit.clamp(0.0, 1.0))
}

/// Something that changed, or is to be done, because of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A backend of a virtual server went up (back in the pool with its
    /// weight) or down (no new connections: weight 0 in the data plane).
    Backend {
        vip: SocketAddr,
        proto: Proto,
        addr: SocketAddr,
        up: bool,
        inhibit: bool,
        reason: Option<String>,
    },
    /// A virtual server gained or lost quorum.
    Quorum {
        vip: SocketAddr,
        proto: Proto,
        up: bool,
        live_weight: u64,
        sorry_server: Option<SocketAddr>,
    },
    /// Run a notify script (`notify_up`, `notify_down`, `quorum_up`,
    /// `quorum_down`).
    Notify { script: String, event: String },
}

#[derive(Debug, Clone, PartialEq)]
struct BackendState {
    alive: bool,
    last_change: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
struct ServiceState {
    quorum_up: bool,
    backends: Vec<BackendState>,
}

/// The whole health state.
#[derive(Debug, Clone)]
pub struct Core {
    plan: HealthPlan,
    checkers: HashMap<ProbeKey, CheckerState>,
    services: Vec<ServiceState>,
}

/// What the data plane should do for one virtual server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServiceVerdict {
    /// Weight for new connections of each real server (0: none; its
    /// established connections go on).
    pub backends: Vec<(SocketAddr, u32)>,
    /// The sorry server and whether it takes the new connections.
    pub sorry: Option<(SocketAddr, bool)>,
    /// Real servers out of the pool (down, or quorum lost) without
    /// `inhibit_on_failure`: keepalived deletes them from IPVS (the XDP
    /// tier keeps them with weight 0).
    pub removed: Vec<SocketAddr>,
    /// The virtual server meets its `quorum` (what `lb_announce_table`
    /// announces on).
    pub quorum_up: bool,
}

/// What the data plane should do, per virtual server (VIP, protocol).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdicts {
    pub services: HashMap<(SocketAddr, Proto), ServiceVerdict>,
}

impl Core {
    /// A core for `plan`. With `previous` (a reload), checkers whose probe is
    /// unchanged keep their state, so an unchanged backend does not flap.
    pub fn new(plan: HealthPlan, previous: Option<&Core>, now: SystemTime) -> (Core, Vec<Action>) {
        let mut checkers = HashMap::new();
        for (key, spec) in &plan.probes {
            let state = previous
                .and_then(|p| p.checkers.get(key).cloned())
                .unwrap_or_else(|| CheckerState::new(spec.timing.alpha));
            checkers.insert(key.clone(), state);
        }
        let mut core = Core {
            plan,
            checkers,
            services: Vec::new(),
        };
        let mut actions = Vec::new();
        for si in 0..core.plan.services.len() {
            let svc = &core.plan.services[si];
            let before = previous.and_then(|p| {
                p.plan
                    .services
                    .iter()
                    .position(|s| s.vip == svc.vip && s.proto == svc.proto)
                    .map(|i| (&p.plan.services[i], &p.services[i]))
            });
            let mut backends = Vec::new();
            for b in &svc.backends {
                let alive = core.backend_alive(&b.probes);
                let old = before.and_then(|(ps, ss)| {
                    ps.backends
                        .iter()
                        .position(|pb| pb.addr == b.addr)
                        .map(|i| &ss.backends[i])
                });
                let mut state = BackendState {
                    alive,
                    last_change: old.and_then(|o| o.last_change),
                };
                if let Some(old) = old {
                    if old.alive != alive {
                        state.last_change = Some(now);
                        actions.push(core.backend_action(svc, b, alive));
                        actions.extend(backend_notify(
                            alive,
                            b.notify_up.as_ref(),
                            b.notify_down.as_ref(),
                            svc.vip,
                            b.addr,
                        ));
                    }
                }
                backends.push(state);
            }
            core.services.push(ServiceState {
                quorum_up: true,
                backends,
            });
            match before {
                Some((_, old)) => {
                    core.services[si].quorum_up = old.quorum_up;
                    actions.extend(core.update_quorum(si));
                }
                None => {
                    let svc = &core.plan.services[si];
                    let sum = core.live_weight(si);
                    let up = sum >= u64::from(svc.quorum) + u64::from(svc.hysteresis);
                    core.services[si].quorum_up = up;
                    if !up {
                        actions.push(Action::Quorum {
                            vip: svc.vip,
                            proto: svc.proto,
                            up,
                            live_weight: sum,
                            sorry_server: svc.sorry_server,
                        });
                        actions.extend(quorum_notify(false, svc.quorum_down.as_ref(), svc.vip));
                    }
                }
            }
        }
        (core, actions)
    }

    pub fn plan(&self) -> &HealthPlan {
        &self.plan
    }

    pub fn checker(&self, key: &ProbeKey) -> Option<&CheckerState> {
        self.checkers.get(key)
    }

    /// A probe's result. Returns when to probe next and what to do; the
    /// verdicts may have changed when any checker state did.
    pub fn on_result(
        &mut self,
        key: &ProbeKey,
        now: SystemTime,
        outcome: Outcome,
    ) -> (Step, Vec<Action>) {
        let Some(spec) = self.plan.probes.get(key) else {
            // A probe of an older configuration: it is being stopped.
            return (
                Step {
                    next: Duration::from_secs(3600),
                    changed: false,
                },
                Vec::new(),
            );
        };
        let timing = spec.timing;
        let step = self
            .checkers
            .get_mut(key)
            .expect("every planned probe has a state")
            .on_outcome(&timing, now, outcome);
        let mut actions = Vec::new();
        if !step.changed {
            return (step, actions);
        }
        for si in 0..self.plan.services.len() {
            let mut touched = false;
            for bi in 0..self.plan.services[si].backends.len() {
                let b = &self.plan.services[si].backends[bi];
                if !b.probes.contains(key) {
                    continue;
                }
                touched = true;
                let alive = self.backend_alive(&b.probes);
                let state = &mut self.services[si].backends[bi];
                if state.alive != alive {
                    state.alive = alive;
                    state.last_change = Some(now);
                    actions.push(self.backend_action(&self.plan.services[si], b, alive));
                    actions.extend(backend_notify(
                        alive,
                        b.notify_up.as_ref(),
                        b.notify_down.as_ref(),
                        self.plan.services[si].vip,
                        b.addr,
                    ));
                }
            }
            if touched {
                actions.extend(self.update_quorum(si));
            }
        }
        (step, actions)
    }

    fn backend_action(&self, svc: &ServicePlan, b: &BackendPlan, up: bool) -> Action {
        let reason = if up {
            None
        } else {
            b.probes
                .iter()
                .filter_map(|k| self.checkers.get(k))
                .find(|c| !c.up)
                .and_then(|c| c.failure.clone())
        };
        Action::Backend {
            vip: svc.vip,
            proto: svc.proto,
            addr: b.addr,
            up,
            inhibit: b.inhibit,
            reason,
        }
    }

    fn backend_alive(&self, probes: &[ProbeKey]) -> bool {
        probes
            .iter()
            .all(|k| self.checkers.get(k).is_some_and(|c| c.up))
    }

    /// keepalived's effective weight: the configured one moved by each
    /// dynamic weight a checker reported.
    fn effective_weight(&self, si: usize, bi: usize) -> u32 {
        let b = &self.plan.services[si].backends[bi];
        let base = i64::from(b.weight);
        let mut w = base;
        for k in &b.probes {
            if let Some(d) = self.checkers.get(k).and_then(|c| c.dynamic_weight) {
                w += i64::from(d) - base;
            }
        }
        w.clamp(0, i64::from(u32::MAX)) as u32
    }

    fn live_weight(&self, si: usize) -> u64 {
        (0..self.plan.services[si].backends.len())
            .filter(|&bi| self.services[si].backends[bi].alive)
            .map(|bi| u64::from(self.effective_weight(si, bi)))
            .sum()
    }

    fn update_quorum(&mut self, si: usize) -> Vec<Action> {
        let sum = self.live_weight(si);
        let svc = &self.plan.services[si];
        let state = &mut self.services[si];
        let (q, h) = (i64::from(svc.quorum), i64::from(svc.hysteresis));
        let up = if !state.quorum_up && sum as i64 >= q + h {
            true
        } else if state.quorum_up && (sum == 0 || (sum as i64) < q - h) {
            false
        } else {
            return Vec::new();
        };
        state.quorum_up = up;
        let mut out = vec![Action::Quorum {
            vip: svc.vip,
            proto: svc.proto,
            up,
            live_weight: sum,
            sorry_server: svc.sorry_server,
        }];
        let script = if up { &svc.quorum_up } else { &svc.quorum_down };
        out.extend(quorum_notify(up, script.as_ref(), svc.vip));
        out
    }

    pub fn verdicts(&self) -> Verdicts {
        let mut out = Verdicts::default();
        for (si, svc) in self.plan.services.iter().enumerate() {
            let state = &self.services[si];
            let sorry_active = !state.quorum_up && svc.sorry_server.is_some();
            let backends = svc
                .backends
                .iter()
                .enumerate()
                .map(|(bi, b)| {
                    let w = if state.backends[bi].alive && !sorry_active {
                        self.effective_weight(si, bi)
                    } else {
                        0
                    };
                    (b.addr, w)
                })
                .collect();
            out.services.insert(
                (svc.vip, svc.proto),
                ServiceVerdict {
                    backends,
                    sorry: svc.sorry_server.map(|s| (s, sorry_active)),
                    removed: svc
                        .backends
                        .iter()
                        .enumerate()
                        .filter(|(bi, b)| {
                            !b.inhibit && (!state.backends[*bi].alive || sorry_active)
                        })
                        .map(|(_, b)| b.addr)
                        .collect(),
                    quorum_up: state.quorum_up,
                },
            );
        }
        out
    }

    /// Everything about every backend and checker, for `lbctl backends`.
    pub fn snapshot(&self) -> Snapshot {
        let ms = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
        };
        let mut services = Vec::new();
        for (si, svc) in self.plan.services.iter().enumerate() {
            let state = &self.services[si];
            let sorry_active = !state.quorum_up && svc.sorry_server.is_some();
            let mut backends = Vec::new();
            for (bi, b) in svc.backends.iter().enumerate() {
                let bs = &state.backends[bi];
                let weight = self.effective_weight(si, bi);
                let status = match (bs.alive, sorry_active, b.inhibit) {
                    (true, false, _) => BackendStatus::InPool,
                    (true, true, _) => BackendStatus::QuorumLost,
                    (false, _, true) => BackendStatus::Inhibited,
                    (false, _, false) => BackendStatus::Removed,
                };
                let checkers = b
                    .probes
                    .iter()
                    .filter_map(|k| {
                        let spec = self.plan.probes.get(k)?;
                        let c = self.checkers.get(k)?;
                        Some(CheckerHealth {
                            kind: spec.kind_name(),
                            target: spec.target,
                            up: c.up,
                            last_result: c.last_ok.map(|ok| if ok { "success" } else { "failure" }),
                            last_check_unix_ms: ms(c.last_check),
                            last_change_unix_ms: ms(c.last_change),
                            failure: c.failure.clone(),
                            dynamic_weight: c.dynamic_weight,
                            local_errors: c.local_errors,
                            last_local_error: c.last_local_error.clone(),
                        })
                    })
                    .collect();
                backends.push(BackendHealth {
                    addr: b.addr,
                    up: bs.alive,
                    status,
                    configured_weight: b.weight,
                    weight,
                    last_change_unix_ms: ms(bs.last_change),
                    checkers,
                });
            }
            services.push(ServiceHealth {
                vip: svc.vip,
                proto: svc.proto,
                quorum: svc.quorum,
                hysteresis: svc.hysteresis,
                live_weight: self.live_weight(si),
                quorum_up: state.quorum_up,
                sorry_server: svc.sorry_server,
                sorry_active,
                backends,
            });
        }
        Snapshot { services }
    }
}

fn backend_notify(
    alive: bool,
    up: Option<&String>,
    down: Option<&String>,
    vip: SocketAddr,
    addr: SocketAddr,
) -> Vec<Action> {
    let (script, what) = if alive { (up, "up") } else { (down, "down") };
    script
        .map(|s| Action::Notify {
            script: s.clone(),
            event: format!("real server {addr} of {vip} {what}"),
        })
        .into_iter()
        .collect()
}

fn quorum_notify(up: bool, script: Option<&String>, vip: SocketAddr) -> Vec<Action> {
    script
        .map(|s| Action::Notify {
            script: s.clone(),
            event: format!(
                "virtual server {vip} {} quorum",
                if up { "gained" } else { "lost" }
            ),
        })
        .into_iter()
        .collect()
}

/// Where a backend stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendStatus {
    /// Up, taking new connections.
    InPool,
    /// Down, out of the pool (established connections finish).
    Removed,
    /// Down with `inhibit_on_failure`: weight 0.
    Inhibited,
    /// Up, but the virtual server lost quorum and its sorry server serves.
    QuorumLost,
}

/// Health of every backend and checker: what `lbctl backends` shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Snapshot {
    pub services: Vec<ServiceHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceHealth {
    pub vip: SocketAddr,
    pub proto: Proto,
    pub quorum: u32,
    pub hysteresis: u32,
    /// Sum of the weights of the live backends.
    pub live_weight: u64,
    pub quorum_up: bool,
    pub sorry_server: Option<SocketAddr>,
    pub sorry_active: bool,
    pub backends: Vec<BackendHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendHealth {
    pub addr: SocketAddr,
    pub up: bool,
    pub status: BackendStatus,
    pub configured_weight: u32,
    /// Effective weight (dynamic weights applied) when in the pool.
    pub weight: u32,
    pub last_change_unix_ms: Option<u64>,
    pub checkers: Vec<CheckerHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerHealth {
    pub kind: &'static str,
    pub target: SocketAddr,
    pub up: bool,
    /// `success` or `failure`; none before the first result.
    pub last_result: Option<&'static str>,
    pub last_check_unix_ms: Option<u64>,
    pub last_change_unix_ms: Option<u64>,
    pub failure: Option<String>,
    pub dynamic_weight: Option<u32>,
    /// Probes that could not run for a local reason (never a failure).
    pub local_errors: u64,
    pub last_local_error: Option<String>,
}
