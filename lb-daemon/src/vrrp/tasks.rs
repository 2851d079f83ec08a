//! The VRRP runtime: one driver task per unit (a `vrrp_sync_group` with its
//! members, or a lone instance) carrying out what the sans-I/O core asks.
//!
//! Around each driver: a reader task per instance socket and the tracker
//! tasks, all feeding one bounded channel. The driver checks stop, then
//! timers, then messages (in that order, so a flood of packets never
//! starves the advert timer), feeds the core, and carries out the returned
//! actions in order. A sync group is updated after every event, in the
//! same task, so its members move together without races.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, info_span, warn, Instrument, Span};

use crate::config::Config;

use super::addresses::{Kernel, Link};
use super::config_map::{self, weighted, InstanceSpec, UnitSpec};
use super::garp::GarpSender;
use super::instance::{Action, Event, Instance, State, TrackerEffect};
use super::network::{Received, VrrpSocket};
use super::notify;
use super::restart::{self, KeptMaster, RestartState};
use super::status::{now_secs, InstanceStatus, StatusBoard, Transition};
use super::sync_group::SyncGroup;
use super::timing;
use super::track::{self, TrackerMsg};

/// How long a unit that could not start waits before trying again.
const RETRY: Duration = Duration::from_secs(1);
/// At most one socket-error log line per instance this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a stopping unit may take (priority 0, removing addresses).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const CHANNEL: usize = 256;

/// The running VRRP instances of one configuration.
pub struct VrrpRuntime {
    status: StatusBoard,
    units: BTreeMap<String, Unit>,
    /// What the previous lbd left for a restart; used by the units started
    /// with the runtime only (not by those a reload starts).
    resume: Option<Arc<RestartState>>,
}

struct Unit {
    spec: UnitSpec,
    stop: watch::Sender<bool>,
    /// Set before `stop` for a restart: masters keep their addresses.
    keep_masters: Arc<AtomicBool>,
    /// The masters it kept (empty unless `keep_masters`).
    task: JoinHandle<Vec<KeptMaster>>,
}

impl VrrpRuntime {
    /// Starts every instance of `config`. Fails, starting nothing, when the
    /// configuration cannot run; an interface that is missing is retried.
    /// `resume`: what the previous lbd recorded when it exited for a
    /// restart (see [`restart`]); its masters resume as master.
    pub fn start(config: &Config, resume: Option<RestartState>) -> anyhow::Result<VrrpRuntime> {
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
    pub async fn reload(&mut self, config: &Config) -> anyhow::Result<()> {
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
                "recording the masters for the next lbd: {e:#}; it will start them as backups"
            ),
        }
    }

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
        let key = spec.key();
        let status = self.status.clone();
        let unit = spec.clone();
        let keep_masters = Arc::new(AtomicBool::new(false));
        let keep = keep_masters.clone();
        let resume = self.resume.clone();
        let task = tokio::spawn(async move {
            // A netlink connection per unit: a connection serves one dump
            // at a time (a second one gets EBUSY).
            match Kernel::new() {
                Ok(kernel) => {
                    let mut driver = Driver::new(unit, kernel, status);
                    driver.resume = resume;
                    driver.keep_masters = keep;
                    driver.run(stop_rx).await
                }
                Err(e) => {
                    error!(unit = %unit.key(), "netlink: {e}");
                    Vec::new()
                }
            }
        });
        self.units.insert(
            key,
            Unit {
                spec,
                stop,
                keep_masters,
                task,
            },
        );
    }
}

fn plan(config: &Config) -> anyhow::Result<Vec<UnitSpec>> {
    let g = &config.global_defs;
    if !g.vrrp_startup_delay.is_zero() {
        warn!("vrrp_startup_delay is not supported yet: instances start at once");
    }
    if !g.vrrp_garp_interval.is_zero() || !g.vrrp_gna_interval.is_zero() {
        warn!("vrrp_garp_interval / vrrp_gna_interval are not supported yet: announcements go out back to back");
    }
    if g.script_user.is_some() || config.vrrp_scripts.iter().any(|s| s.user.is_some()) {
        warn!("script users are not supported yet: scripts run as lbd's own user");
    }
    config_map::plan(config).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| format!("error: {e}")).collect();
        anyhow::anyhow!("VRRP configuration:\n{}", text.join("\n"))
    })
}

/// What the driver's channel carries.
enum Input {
    Packet(usize, Received),
    Tracker(TrackerMsg),
}

/// One instance as the driver runs it.
struct Member {
    spec: InstanceSpec,
    span: Span,
    run: Option<Running>,
    last_transition: Option<Transition>,
    error: Option<String>,
}

/// What exists once an instance is set up.
struct Running {
    core: Instance,
    socket: Arc<VrrpSocket>,
    link: Link,
    /// By `dev` of the virtual addresses (`None`: the instance's interface).
    garp: BTreeMap<Option<String>, GarpSender>,
    reader: JoinHandle<()>,
    last_error_log: Option<Instant>,
}

struct Driver {
    unit: UnitSpec,
    kernel: Kernel,
    status: StatusBoard,
    members: Vec<Member>,
    group: Option<SyncGroup>,
    /// The previous lbd's masters, for setup.
    resume: Option<Arc<RestartState>>,
    /// Read on stop: masters keep their addresses (a restart).
    keep_masters: Arc<AtomicBool>,
}

impl Driver {
    fn new(unit: UnitSpec, kernel: Kernel, status: StatusBoard) -> Driver {
        let members = unit
            .instances
            .iter()
            .map(|spec| Member {
                span: info_span!("vrrp", instance = %spec.name()),
                spec: spec.clone(),
                run: None,
                last_transition: None,
                error: None,
            })
            .collect();
        let group = unit.group.as_ref().map(|g| SyncGroup::new(g.name.clone()));
        Driver {
            unit,
            kernel,
            status,
            members,
            group,
            resume: None,
            keep_masters: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs until `stop`; returns the masters kept for a restart.
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Vec<KeptMaster> {
        let (tx, mut rx) = mpsc::channel::<Input>(CHANNEL);
        for i in 0..self.members.len() {
            self.publish(i);
        }
        // Set every member up, retrying what the kernel does not have yet.
        loop {
            let mut missing = false;
            for i in 0..self.members.len() {
                if self.members[i].run.is_some() {
                    continue;
                }
                let span = self.members[i].span.clone();
                match self.setup(i, &tx).instrument(span).await {
                    Ok(run) => {
                        self.members[i].run = Some(run);
                        self.members[i].error = None;
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        if self.members[i].error.as_ref() != Some(&msg) {
                            let _g = self.members[i].span.enter();
                            error!("cannot start: {msg} (retrying)");
                        }
                        self.members[i].error = Some(msg);
                        missing = true;
                    }
                }
                self.publish(i);
            }
            if !missing {
                break;
            }
            tokio::select! {
                _ = stop.changed() => {
                    for m in &self.members {
                        if let Some(run) = &m.run {
                            run.reader.abort();
                        }
                    }
                    return Vec::new();
                }
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
        let trackers = self.start_trackers(&tx, &stop);
        drop(tx);
        // Initial tracker states before Startup, so an instance whose
        // interface is down starts in Fault as keepalived's does.
        if let Ok(links) = self.kernel.links().await {
            for i in 0..self.members.len() {
                for t in self.members[i].spec.interfaces.clone() {
                    let up = links.iter().any(|l| l.name == t.name && l.up);
                    self.tracker_event(i, TrackerMsg::Link { name: t.name, up })
                        .await;
                }
            }
        }
        for i in 0..self.members.len() {
            for t in self.members[i].spec.scripts.clone() {
                let up = !t.script.init_fail;
                let msg = TrackerMsg::Script {
                    name: t.script.name.clone(),
                    up,
                };
                self.tracker_event(i, msg).await;
            }
        }
        for i in 0..self.members.len() {
            self.event(i, Event::Startup).await;
        }

        loop {
            let deadline = self
                .members
                .iter()
                .filter_map(|m| m.run.as_ref()?.core.next_deadline())
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = sleep => {
                    let now = Instant::now();
                    for i in 0..self.members.len() {
                        let due = self.members[i]
                            .run
                            .as_ref()
                            .and_then(|r| r.core.next_deadline())
                            .is_some_and(|d| d <= now);
                        if due {
                            self.event(i, Event::TimerFired).await;
                        }
                    }
                }
                input = rx.recv() => match input {
                    Some(Input::Packet(i, r)) => self.packet(i, r).await,
                    Some(Input::Tracker(msg)) => {
                        for i in 0..self.members.len() {
                            self.tracker_event(i, msg.clone()).await;
                        }
                    }
                    None => break,
                },
            }
        }

        let mut kept = Vec::new();
        if self.keep_masters.load(Ordering::SeqCst) {
            // A restart: masters are left as they are (addresses in place,
            // no priority 0, no notify) for the next lbd to resume; the
            // others stop. No sync group round: the group is going away.
            for i in 0..self.members.len() {
                let m = &self.members[i];
                let Some(run) = &m.run else { continue };
                if run.core.state() == State::Master {
                    let _g = m.span.enter();
                    info!("master: addresses kept for the next lbd (restart)");
                    kept.push(KeptMaster {
                        instance: m.spec.name().to_string(),
                        vrid: m.spec.config.virtual_router_id,
                        interface: m.spec.interface.clone(),
                    });
                    continue;
                }
                let actions = {
                    let m = &mut self.members[i];
                    let Some(run) = m.run.as_mut() else { continue };
                    let _g = m.span.enter();
                    run.core.handle(Event::Shutdown, Instant::now())
                };
                self.apply(i, actions).await;
            }
        } else {
            // Shutdown: priority 0 from a master, addresses removed, notify_stop.
            for i in 0..self.members.len() {
                self.event(i, Event::Shutdown).await;
            }
        }
        for t in trackers {
            t.abort();
        }
        for m in &mut self.members {
            if let Some(run) = &m.run {
                run.reader.abort();
            }
        }
        kept
    }

    async fn setup(&mut self, i: usize, tx: &mpsc::Sender<Input>) -> anyhow::Result<Running> {
        let spec = self.members[i].spec.clone();
        let link = self
            .kernel
            .link(&spec.interface)
            .await?
            .ok_or_else(|| anyhow::anyhow!("interface `{}` not found", spec.interface))?;
        let src = match spec.configured_src() {
            Some(a) => a,
            None => self
                .kernel
                .primary_address(link.index, spec.is_ipv6())
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "interface `{}` has no {} address to send adverts from",
                        spec.interface,
                        if spec.is_ipv6() {
                            "IPv6 link-local"
                        } else {
                            "IPv4"
                        }
                    )
                })?,
        };
        let mut params = spec.params(src);
        params.resume_master = self.resumes(&spec, &params).await;
        let resume_master = params.resume_master;
        let core = Instance::new(params)
            .map_err(|e| anyhow::anyhow!("vrrp_instance `{}`: {e}", spec.name()))?;
        for w in core.warnings() {
            warn!("{w}");
        }
        let socket = Arc::new(
            VrrpSocket::open(&spec.interface, link.index, src, &spec.unicast_peers())
                .map_err(|e| anyhow::anyhow!("VRRP socket on `{}`: {e}", spec.interface))?,
        );
        // Announcements go out of each virtual address's interface.
        let mut garp = BTreeMap::new();
        let devs: BTreeSet<Option<String>> = spec
            .config
            .virtual_ipaddress
            .iter()
            .chain(&spec.config.virtual_ipaddress_excluded)
            .map(|a| a.dev.clone())
            .collect();
        for dev in devs {
            let l = match &dev {
                None => link.clone(),
                Some(name) => match self.kernel.link(name).await? {
                    Some(l) => l,
                    None => {
                        anyhow::bail!("interface `{name}` (dev of a virtual address) not found")
                    }
                },
            };
            if let Some(mac) = l.mac {
                garp.insert(dev, GarpSender::open(l.index, mac)?);
            }
        }
        // Addresses a previous run left behind (kill -9) must go: a backup
        // never holds them.
        // Unless this instance resumes as master after a restart.
        let mut stale = false;
        for a in &spec.config.virtual_ipaddress {
            stale |= self.kernel.has_address(a.addr).await.unwrap_or(false);
        }
        if stale && !resume_master {
            info!("removing virtual addresses left from an earlier run");
            self.remove_addresses(&spec, link.index).await;
        }
        let reader = {
            let socket = socket.clone();
            let tx = tx.clone();
            let peers = spec.unicast_peers();
            tokio::spawn(
                async move { read_loop(i, socket, peers, tx).await }
                    .instrument(self.members[i].span.clone()),
            )
        };
        info!(interface = %spec.interface, %src, vrid = spec.config.virtual_router_id, "VRRP instance ready");
        Ok(Running {
            core,
            socket,
            link,
            garp,
            reader,
            last_error_log: None,
        })
    }

    /// Whether the previous lbd left this instance as master moments ago
    /// (within its master-down interval, so no backup has taken over) with
    /// every virtual address still in place.
    async fn resumes(&self, spec: &InstanceSpec, params: &super::params::InstanceParams) -> bool {
        let Some(state) = &self.resume else {
            return false;
        };
        let vrid = spec.config.virtual_router_id;
        if state.find(spec.name(), vrid, &spec.interface).is_none() {
            return false;
        }
        let age = state.age(std::time::SystemTime::now());
        let window = timing::master_down_interval(
            params.version,
            params.priority,
            params.advert_int,
            params.down_timer_adverts,
        );
        if age >= window {
            info!(
                age_ms = age.as_millis() as u64,
                window_ms = window.as_millis() as u64,
                "was master before the restart, too long ago: starting as usual"
            );
            return false;
        }
        for a in &spec.config.virtual_ipaddress {
            if !self.kernel.has_address(a.addr).await.unwrap_or(false) {
                info!(addr = %a.addr, "was master before the restart, but a virtual address is gone: starting as usual");
                return false;
            }
        }
        true
    }

    fn start_trackers(
        &self,
        tx: &mpsc::Sender<Input>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        // Trackers talk TrackerMsg; forward into the driver's channel.
        let (ttx, mut trx) = mpsc::channel::<TrackerMsg>(CHANNEL);
        let fwd = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = trx.recv().await {
                if fwd.send(Input::Tracker(m)).await.is_err() {
                    return;
                }
            }
        }));
        let links: BTreeSet<String> = self
            .members
            .iter()
            .flat_map(|m| m.spec.interfaces.iter().map(|t| t.name.clone()))
            .collect();
        if !links.is_empty() {
            tasks.push(tokio::spawn(track::watch_links(
                links.into_iter().collect(),
                ttx.clone(),
                stop.clone(),
            )));
        }
        let mut scripts = BTreeMap::new();
        for m in &self.members {
            for t in &m.spec.scripts {
                scripts.insert(t.script.name.clone(), t.script.clone());
            }
        }
        for (_, script) in scripts {
            let span = info_span!("vrrp_script", script = %script.name);
            tasks.push(tokio::spawn(
                track::run_script(script, ttx.clone(), stop.clone()).instrument(span),
            ));
        }
        tasks
    }

    /// Feeds one tracker report to instance `i` if it tracks that object.
    async fn tracker_event(&mut self, i: usize, msg: TrackerMsg) {
        let spec = &self.members[i].spec;
        let (tracker, effect) = match &msg {
            TrackerMsg::Link { name, up } => {
                let Some(t) = spec.interfaces.iter().find(|t| &t.name == name) else {
                    return;
                };
                let effect = match t.weight {
                    None => TrackerEffect::Fault(!up),
                    Some(w) => TrackerEffect::Weight(weighted(*up, w, t.reverse)),
                };
                (format!("interface:{name}"), effect)
            }
            TrackerMsg::Script { name, up } => {
                let Some(t) = spec.scripts.iter().find(|t| &t.script.name == name) else {
                    return;
                };
                let effect = if t.weight == 0 {
                    TrackerEffect::Fault(!up)
                } else {
                    TrackerEffect::Weight(weighted(*up, t.weight, t.reverse))
                };
                (format!("script:{name}"), effect)
            }
        };
        self.event(i, Event::TrackerChanged { tracker, effect })
            .await;
    }

    async fn packet(&mut self, i: usize, r: Received) {
        let span = self.members[i].span.clone();
        let Some(run) = self.members[i].run.as_mut() else {
            return;
        };
        match r.advert {
            Ok(advert) => {
                self.event(i, Event::AdvertReceived { src: r.src, advert })
                    .await
            }
            Err((err, vrid)) => {
                // Counted against us when it claims our VRID (or is too
                // short to claim any); the core logs once per reason.
                if vrid.is_none() || vrid == Some(run.core.params().vrid) {
                    let _g = span.enter();
                    run.core.note_decode_error(r.src, &err);
                }
                self.publish(i);
            }
        }
    }

    /// Feeds `event` to instance `i`, carries out its actions, then lets
    /// the sync group react.
    async fn event(&mut self, i: usize, event: Event) {
        let actions = {
            let m = &mut self.members[i];
            let Some(run) = m.run.as_mut() else { return };
            let _g = m.span.enter();
            run.core.handle(event, Instant::now())
        };
        self.apply(i, actions).await;
        self.publish(i);
        self.sync().await;
    }

    /// Two rounds settle any group (see [`SyncGroup`]); four is a bound.
    async fn sync(&mut self) {
        for _ in 0..4 {
            let Some(group) = self.group.as_mut() else {
                return;
            };
            let statuses: Vec<_> = self
                .members
                .iter()
                .filter_map(|m| m.run.as_ref().map(|r| r.core.member_status()))
                .collect();
            let decision = group.update(&statuses);
            if let Some((_, to)) = decision.transition {
                if let Some(g) = &self.unit.group {
                    notify::run(&g.notify, notify::Subject::Group { name: &g.name }, to);
                }
            }
            if decision.commands.is_empty() {
                return;
            }
            for (name, command) in decision.commands {
                let Some(j) = self.members.iter().position(|m| m.spec.name() == name) else {
                    continue;
                };
                let actions = {
                    let m = &mut self.members[j];
                    let Some(run) = m.run.as_mut() else { continue };
                    let _g = m.span.enter();
                    run.core.handle(Event::Sync(command), Instant::now())
                };
                self.apply(j, actions).await;
                self.publish(j);
            }
        }
    }

    async fn apply(&mut self, i: usize, actions: Vec<Action>) {
        let span = self.members[i].span.clone();
        for action in actions {
            let spec = self.members[i].spec.clone();
            let Some(run) = self.members[i].run.as_mut() else {
                return;
            };
            match action {
                Action::SendAdvert { priority } => {
                    let advert = run.core.advert(priority);
                    if let Err(e) = run.socket.send(&advert) {
                        let now = Instant::now();
                        if run
                            .last_error_log
                            .is_none_or(|t| now.duration_since(t) >= ERROR_LOG_EVERY)
                        {
                            run.last_error_log = Some(now);
                            let _g = span.enter();
                            warn!("sending advert: {e}");
                        }
                    }
                }
                Action::AddAddresses => {
                    let index = run.link.index;
                    self.add_addresses(&spec, index)
                        .instrument(span.clone())
                        .await;
                }
                Action::RemoveAddresses => {
                    let index = run.link.index;
                    self.remove_addresses(&spec, index)
                        .instrument(span.clone())
                        .await;
                }
                Action::SendGratuitous { count } => {
                    let _g = span.enter();
                    for a in spec
                        .config
                        .virtual_ipaddress
                        .iter()
                        .chain(&spec.config.virtual_ipaddress_excluded)
                    {
                        if let Some(g) = run.garp.get(&a.dev) {
                            if let Err(e) = g.announce(a.addr, count) {
                                debug!(addr = %a.addr, "gratuitous announcement: {e}");
                            }
                        }
                    }
                }
                Action::StateChanged { from, to, reason } => {
                    self.members[i].last_transition = Some(Transition {
                        from,
                        to,
                        reason,
                        at: now_secs(),
                    });
                }
                Action::Notify(state) => {
                    let priority = run.core.effective_priority();
                    let _g = span.enter();
                    notify::run(
                        &spec.config.notify,
                        notify::Subject::Instance {
                            name: spec.name(),
                            priority,
                        },
                        state,
                    );
                }
            }
        }
    }

    async fn add_addresses(&self, spec: &InstanceSpec, index: u32) {
        let c = &spec.config;
        for a in c
            .virtual_ipaddress
            .iter()
            .chain(&c.virtual_ipaddress_excluded)
        {
            match self.kernel.add_address(a, index).await {
                Ok(()) => debug!(addr = %a.addr, "virtual address added"),
                Err(e) => error!("{e:#}"),
            }
        }
        for r in &c.virtual_routes {
            if let Err(e) = self.kernel.add_route(r, index).await {
                error!("{e:#}");
            }
        }
    }

    async fn remove_addresses(&self, spec: &InstanceSpec, index: u32) {
        let c = &spec.config;
        for r in &c.virtual_routes {
            if let Err(e) = self.kernel.remove_route(r, index).await {
                warn!("{e:#}");
            }
        }
        for a in c
            .virtual_ipaddress
            .iter()
            .chain(&c.virtual_ipaddress_excluded)
        {
            match self.kernel.remove_address(a, index).await {
                Ok(()) => debug!(addr = %a.addr, "virtual address removed"),
                Err(e) => warn!("{e:#}"),
            }
        }
    }

    fn publish(&self, i: usize) {
        let m = &self.members[i];
        let c = &m.spec.config;
        let (state, effective, address, master, counters) = match &m.run {
            Some(r) => {
                let src = r.socket.src();
                let master = if r.core.state() == State::Master {
                    Some(src)
                } else {
                    r.core.current_master().map(|(a, _)| a)
                };
                (
                    r.core.state(),
                    r.core.effective_priority(),
                    Some(src),
                    master,
                    r.core.counters().clone(),
                )
            }
            None => (
                State::Initialize,
                c.priority,
                None,
                None,
                Default::default(),
            ),
        };
        self.status.put(InstanceStatus {
            name: c.name.clone(),
            group: self.unit.group.as_ref().map(|g| g.name.clone()),
            interface: m.spec.interface.clone(),
            vrid: c.virtual_router_id,
            state,
            priority: c.priority,
            effective_priority: effective,
            address,
            master,
            last_transition: m.last_transition.clone(),
            counters,
            error: m.error.clone(),
        });
    }
}

/// Reads packets for instance `i` until the driver goes away. Our own
/// adverts and, in unicast mode, packets from strangers are dropped here.
async fn read_loop(i: usize, socket: Arc<VrrpSocket>, peers: Vec<IpAddr>, tx: mpsc::Sender<Input>) {
    let own = socket.src();
    let mut last_log: Option<Instant> = None;
    loop {
        match socket.recv().await {
            Ok(r) => {
                if r.src == own {
                    continue;
                }
                if !peers.is_empty() && !peers.contains(&r.src) {
                    debug!(src = %r.src, "advert from an address that is not a unicast_peer");
                    continue;
                }
                if tx.send(Input::Packet(i, r)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let now = Instant::now();
                if last_log.is_none_or(|t| now.duration_since(t) >= ERROR_LOG_EVERY) {
                    last_log = Some(now);
                    warn!("receiving: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
