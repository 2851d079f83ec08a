//! The VRRP state machine of one virtual router (RFC 5798 section 6.4, as
//! keepalived implements it), with no I/O and no clock of its own.
//!
//! The caller feeds [`Event`]s with the current time and carries out the
//! returned [`Action`]s in order (the order matters: a new master sends its
//! advert before adding addresses, so the old master lets go first). It
//! calls [`Instance::handle`] with [`Event::TimerFired`] once
//! [`Instance::next_deadline`] has passed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::counters::Counters;
use super::packet::{Advert, AdvertInterval, DecodeError, Version};
use super::params::{InitialState, InstanceParams, ParamError, PRIORITY_OWNER};
use super::reason::DropReason;
use super::sync_group::{MemberStatus, SyncCommand};
use super::timing;
use super::validate::validate;

/// RFC 5798 states, plus keepalived's Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    Backup,
    Master,
    /// A tracked interface or script (or the sync group) is down.
    Fault,
}

impl State {
    /// keepalived's spelling, for logs and notify scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a state change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// Startup into Backup (or Fault when a tracker is down).
    Startup,
    /// Address owner with initial state MASTER: master at once.
    OwnerStartup,
    /// The previous lbd was master and exited for a restart: master at
    /// once, its addresses kept ([`InstanceParams::resume_master`]).
    Resumed,
    /// No advert within the master-down interval (or the skew time after a
    /// priority-0 advert).
    MasterDown,
    /// As master, received a higher-priority advert.
    HigherPriority,
    /// As master, received an equal-priority advert from a higher address.
    HigherAddress,
    /// A tracker reported a fault.
    Fault,
    /// The last fault cleared.
    FaultCleared,
    /// Pulled along by the sync group.
    SyncGroup,
    Shutdown,
}

/// What a tracker currently says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrackerEffect {
    /// This tracker's current contribution to the priority (a weighted
    /// tracker); 0 removes it. It replaces the tracker's previous value
    /// rather than adding to it, so repeating an update is harmless.
    Weight(i32),
    /// An unweighted tracker: `true` while it is down, putting the instance
    /// in Fault.
    Fault(bool),
}

/// Inputs to the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Startup,
    /// An advert decoded from `src` (our VRID or not; checked here).
    AdvertReceived {
        src: IpAddr,
        advert: Advert,
    },
    /// A deadline from [`Instance::next_deadline`] has passed.
    TimerFired,
    TrackerChanged {
        tracker: String,
        effect: TrackerEffect,
    },
    /// A command from the instance's [`SyncGroup`](super::sync_group::SyncGroup).
    Sync(SyncCommand),
    Shutdown,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert; [`Instance::advert`] builds it.
    SendAdvert { priority: u8 },
    /// Add the instance's virtual addresses.
    AddAddresses,
    /// Remove the instance's virtual addresses.
    RemoveAddresses,
    /// Send `count` gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for
    /// each virtual address.
    SendGratuitous { count: u32 },
    StateChanged {
        from: State,
        to: State,
        reason: TransitionReason,
    },
    /// Run the notify hooks for the state entered; `Initialize` is "stop".
    Notify(State),
}

/// One VRRP instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    params: InstanceParams,
    warnings: Vec<String>,
    state: State,
    effective_priority: u8,
    /// The interval the master-down timer is based on: ours, or (v3) the
    /// one the current master advertises.
    master_adver_int: AdvertInterval,
    /// The master we last accepted an advert from, and its priority.
    master: Option<(IpAddr, u8)>,
    master_down_at: Option<Instant>,
    advert_at: Option<Instant>,
    garp_delay_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    /// preempt_delay: lower-priority adverts are accepted until then.
    preempt_at: Option<Instant>,
    tracker_weights: BTreeMap<String, i32>,
    tracker_faults: BTreeSet<String>,
    /// Held in Fault by the sync group.
    sync_fault: bool,
    counters: Counters,
    /// Drop reasons already logged: like keepalived, log each once until an
    /// advert from a new master is accepted or the state changes.
    logged: BTreeSet<DropReason>,
}

impl Instance {
    /// Checks and normalizes `params` (see [`InstanceParams::normalize`];
    /// the caller reports [`Instance::warnings`] with its config errors).
    /// The instance starts in Initialize and waits for [`Event::Startup`].
    pub fn new(mut params: InstanceParams) -> Result<Instance, ParamError> {
        let warnings = params.normalize()?;
        Ok(Instance {
            effective_priority: params.priority,
            master_adver_int: params.advert_int,
            params,
            warnings,
            state: State::Initialize,
            master: None,
            master_down_at: None,
            advert_at: None,
            garp_delay_at: None,
            garp_refresh_at: None,
            preempt_at: None,
            tracker_weights: BTreeMap::new(),
            tracker_faults: BTreeSet::new(),
            sync_fault: false,
            counters: Counters::default(),
            logged: BTreeSet::new(),
        })
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Startup => self.startup(now, &mut out),
            Event::AdvertReceived { src, advert } => self.receive(src, &advert, now, &mut out),
            Event::TimerFired => self.timers(now, &mut out),
            Event::TrackerChanged { tracker, effect } => {
                self.tracker(tracker, effect, now, &mut out)
            }
            Event::Sync(command) => self.sync(command, now, &mut out),
            Event::Shutdown => self.shutdown(now, &mut out),
        }
        out
    }

    /// The earliest time [`Event::TimerFired`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.master_down_at,
            self.advert_at,
            self.garp_delay_at,
            self.garp_refresh_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Counts (and logs, once per reason) a packet for this instance that
    /// could not be decoded.
    pub fn note_decode_error(&mut self, src: IpAddr, error: &DecodeError) {
        self.drop_advert(src, error.reason(), error);
    }

    /// The advert to send for [`Action::SendAdvert`].
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.params.version,
            vrid: self.params.vrid,
            priority,
            max_advert_int: self.params.advert_int,
            addrs: self.params.addresses.clone(),
            auth: self.params.auth.clone(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn name(&self) -> &str {
        &self.params.name
    }

    /// Base priority adjusted by the weighted trackers, within 1..=254
    /// (an owner stays at 255).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    pub fn master_adver_int(&self) -> AdvertInterval {
        self.master_adver_int
    }

    /// The master we follow as backup: its address and priority.
    pub fn current_master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The normalized parameters in force.
    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    /// What normalizing the parameters changed, for the caller to report.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A tracker of this instance's own is down (the sync group aside).
    pub fn has_own_fault(&self) -> bool {
        !self.tracker_faults.is_empty()
    }

    /// What a [`SyncGroup`](super::sync_group::SyncGroup) needs to know.
    pub fn member_status(&self) -> MemberStatus {
        MemberStatus {
            name: self.params.name.clone(),
            state: self.state,
            own_fault: self.has_own_fault(),
            sync_fault: self.sync_fault,
        }
    }

    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.is_faulty() {
            if self.params.resume_master {
                // The previous lbd left its addresses: a faulty instance
                // must not hold them.
                out.push(Action::RemoveAddresses);
            }
            self.transition(State::Fault, TransitionReason::Startup, out);
        } else if self.params.resume_master {
            self.resume_master(now, out);
        } else if self.owner_wants_master() {
            self.become_master(now, TransitionReason::OwnerStartup, out);
        } else {
            // keepalived: even `state MASTER` below 255 starts as backup
            // and waits a full master-down interval for an existing master.
            self.enter_backup(now, TransitionReason::Startup, out);
        }
    }

    fn receive(&mut self, src: IpAddr, advert: &Advert, now: Instant, out: &mut Vec<Action>) {
        // keepalived looks at adverts only as backup or master.
        if !matches!(self.state, State::Backup | State::Master) {
            return;
        }
        if let Err(error) = validate(&self.params, advert) {
            self.drop_advert(src, error.reason(), &error);
            return;
        }
        self.counters.adverts_received += 1;
        if advert.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        if self.master.map(|(addr, _)| addr) != Some(src) {
            self.logged.clear();
        }
        match self.state {
            State::Backup => self.backup_receive(src, advert, now),
            State::Master => self.master_receive(src, advert, now, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 6.4.2, with keepalived's preempt_delay.
    fn backup_receive(&mut self, src: IpAddr, advert: &Advert, now: Instant) {
        if advert.priority == 0 {
            // The master is stepping down: take over after the skew time
            // only, so the highest-priority backup goes first.
            debug!(instance = %self.params.name, %src, "backup received priority 0 advert");
            self.master_down_at = Some(now + self.skew());
            return;
        }
        let ours = self.effective_priority;
        let delaying =
            !self.params.preempt_delay.is_zero() && self.preempt_at.is_none_or(|at| at > now);
        if !self.params.preempt || advert.priority >= ours || delaying {
            if self.params.version == Version::V3 {
                // RFC 5798: Master_Adver_Interval is the master's.
                self.master_adver_int = advert.max_advert_int;
            }
            self.master = Some((src, advert.priority));
            self.master_down_at = Some(now + self.down_interval());
            if !self.params.preempt_delay.is_zero() {
                if advert.priority >= ours {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(now + self.params.preempt_delay);
                }
            }
        } else {
            // A lower-priority master and we preempt: ignore it and let the
            // master-down timer run out.
            info!(
                instance = %self.params.name, %src, priority = advert.priority,
                "received lower priority advert - discarding"
            );
            self.master = Some((src, advert.priority));
        }
    }

    /// RFC 5798 6.4.3, as keepalived does it.
    fn master_receive(
        &mut self,
        src: IpAddr,
        advert: &Advert,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let ours = self.effective_priority;
        let addr_cmp = src.cmp(&self.params.primary_addr);
        if advert.priority == 0 {
            // Another master just stepped down: assert ourselves at once.
            self.send_advert(ours, out);
            self.advert_at = Some(now + self.params.advert_int.as_duration());
            return;
        }
        let higher =
            advert.priority > ours || (advert.priority == ours && addr_cmp == Ordering::Greater);
        if higher {
            if self.params.higher_prio_send_advert {
                self.send_advert(ours, out);
            }
            if self.params.version == Version::V3 {
                self.master_adver_int = advert.max_advert_int;
            }
            self.master = Some((src, advert.priority));
            let reason = if advert.priority > ours {
                TransitionReason::HigherPriority
            } else {
                TransitionReason::HigherAddress
            };
            self.leave_master(now, State::Backup, reason, false, out);
        } else if advert.priority < ours || addr_cmp == Ordering::Less {
            // RFC 5798 says discard; keepalived answers with an advert of
            // its own, which makes a lower-priority node that went master
            // (e.g. after a partition) step down at once.
            info!(
                instance = %self.params.name, %src, priority = advert.priority, ours,
                "received lower priority advert{}",
                if self.params.lower_prio_no_advert { "" } else { ", forcing new election" }
            );
            if !self.params.lower_prio_no_advert {
                self.send_advert(ours, out);
                self.advert_at = Some(now + self.params.advert_int.as_duration());
            }
        } else {
            warn!(
                instance = %self.params.name, %src,
                "equal priority advert received from our own address"
            );
        }
    }

    fn timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                if self.master_down_at.is_some_and(|at| at <= now) {
                    self.become_master(now, TransitionReason::MasterDown, out);
                }
            }
            State::Master => {
                if self.advert_at.is_some_and(|at| at <= now) {
                    self.send_advert(self.effective_priority, out);
                    self.advert_at = Some(now + self.params.advert_int.as_duration());
                }
                if self.garp_delay_at.is_some_and(|at| at <= now) {
                    self.garp_delay_at = None;
                    self.send_gratuitous(self.params.garp.master_repeat, out);
                }
                if self.garp_refresh_at.is_some_and(|at| at <= now) {
                    self.garp_refresh_at = Some(now + self.params.garp.master_refresh);
                    self.send_gratuitous(self.params.garp.master_refresh_repeat, out);
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn tracker(
        &mut self,
        tracker: String,
        effect: TrackerEffect,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match effect {
            TrackerEffect::Weight(0) => {
                self.tracker_weights.remove(&tracker);
                self.update_priority();
            }
            TrackerEffect::Weight(weight) => {
                self.tracker_weights.insert(tracker, weight);
                self.update_priority();
            }
            TrackerEffect::Fault(true) => {
                self.tracker_faults.insert(tracker);
                self.apply_fault(now, TransitionReason::Fault, out);
            }
            TrackerEffect::Fault(false) => {
                self.tracker_faults.remove(&tracker);
                self.apply_fault(now, TransitionReason::FaultCleared, out);
            }
        }
    }

    fn sync(&mut self, command: SyncCommand, now: Instant, out: &mut Vec<Action>) {
        let reason = TransitionReason::SyncGroup;
        match command {
            SyncCommand::GotoMaster => {
                if self.state == State::Backup {
                    self.become_master(now, reason, out);
                }
            }
            SyncCommand::GotoBackup => {
                if self.state == State::Master {
                    self.leave_master(now, State::Backup, reason, false, out);
                }
            }
            SyncCommand::GotoFault => {
                self.sync_fault = true;
                self.apply_fault(now, reason, out);
            }
            SyncCommand::LeaveFault => {
                self.sync_fault = false;
                self.apply_fault(now, reason, out);
            }
        }
    }

    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            // A stopping master sends priority 0 so a backup takes over
            // after its skew time instead of the whole master-down interval.
            State::Master => self.leave_master(
                now,
                State::Initialize,
                TransitionReason::Shutdown,
                true,
                out,
            ),
            State::Backup | State::Fault => {
                self.clear_timers();
                self.transition(State::Initialize, TransitionReason::Shutdown, out);
            }
            State::Initialize => {}
        }
    }

    /// Moves in or out of Fault to match the trackers and the sync group.
    fn apply_fault(&mut self, now: Instant, reason: TransitionReason, out: &mut Vec<Action>) {
        match (self.state, self.is_faulty()) {
            (State::Master, true) => self.leave_master(now, State::Fault, reason, true, out),
            (State::Backup, true) => {
                self.clear_timers();
                self.transition(State::Fault, reason, out);
            }
            (State::Fault, false) => {
                if self.owner_wants_master() {
                    self.become_master(now, reason, out);
                } else {
                    self.enter_backup(now, reason, out);
                }
            }
            _ => {}
        }
    }

    /// Backup from Initialize or Fault: nothing is known of any master.
    fn enter_backup(&mut self, now: Instant, reason: TransitionReason, out: &mut Vec<Action>) {
        self.clear_timers();
        self.master = None;
        self.master_adver_int = self.params.advert_int;
        self.master_down_at = Some(now + self.down_interval());
        self.transition(State::Backup, reason, out);
    }

    /// RFC 5798 6.4.2 "If the Master_Down_Timer fires": advert first (so the
    /// old master lets go), then addresses, then gratuitous ARPs.
    fn become_master(&mut self, now: Instant, reason: TransitionReason, out: &mut Vec<Action>) {
        self.start_mastering(now, true, out);
        self.counters.became_master += 1;
        self.transition(State::Master, reason, out);
    }

    /// What taking the master role does, whether new or resumed: advert
    /// first (so an old master lets go), the addresses when they are not
    /// already in place, gratuitous ARPs, and the advert and GARP timers.
    fn start_mastering(&mut self, now: Instant, add_addresses: bool, out: &mut Vec<Action>) {
        self.clear_timers();
        self.master = None;
        self.master_adver_int = self.params.advert_int;
        self.send_advert(self.effective_priority, out);
        if add_addresses {
            out.push(Action::AddAddresses);
        }
        self.send_gratuitous(self.params.garp.master_repeat, out);
        let garp = &self.params.garp;
        self.advert_at = Some(now + self.params.advert_int.as_duration());
        if !garp.master_delay.is_zero() {
            self.garp_delay_at = Some(now + garp.master_delay);
        }
        if !garp.master_refresh.is_zero() {
            self.garp_refresh_at = Some(now + garp.master_delay + garp.master_refresh);
        }
    }

    /// Master at once after a restart of lbd: the addresses are still in
    /// place (no remove, no add), so only the advert, at once so the backup's
    /// master-down timer is reset, and gratuitous ARPs (harmless). The
    /// notify hooks do not run: the exiting lbd ran none either, so to them
    /// the restart never happened.
    fn resume_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.start_mastering(now, false, out);
        info!(instance = %self.params.name, "resumed as master after a restart");
        self.set_state(State::Master, TransitionReason::Resumed, out);
    }

    fn leave_master(
        &mut self,
        now: Instant,
        to: State,
        reason: TransitionReason,
        send_priority_zero: bool,
        out: &mut Vec<Action>,
    ) {
        if send_priority_zero {
            self.send_advert(0, out);
        }
        out.push(Action::RemoveAddresses);
        self.clear_timers();
        if to == State::Backup {
            self.master_down_at = Some(now + self.down_interval());
        }
        self.counters.released_master += 1;
        self.transition(to, reason, out);
    }

    fn transition(&mut self, to: State, reason: TransitionReason, out: &mut Vec<Action>) {
        self.set_state(to, reason, out);
        out.push(Action::Notify(to));
    }

    /// A state change without the notify hooks.
    fn set_state(&mut self, to: State, reason: TransitionReason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.counters.transitions += 1;
        self.logged.clear();
        info!(instance = %self.params.name, %from, %to, ?reason, "VRRP state change");
        out.push(Action::StateChanged { from, to, reason });
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        out.push(Action::SendAdvert { priority });
    }

    fn send_gratuitous(&self, count: u32, out: &mut Vec<Action>) {
        if count > 0 {
            out.push(Action::SendGratuitous { count });
        }
    }

    fn drop_advert(&mut self, src: IpAddr, reason: DropReason, error: &dyn std::fmt::Display) {
        self.counters.count_drop(reason);
        if reason.is_silent() {
            return;
        }
        if self.logged.insert(reason) {
            warn!(instance = %self.params.name, %src, %reason, "dropping advert: {error}");
        } else {
            debug!(instance = %self.params.name, %src, %reason, "dropping advert: {error}");
        }
    }

    /// Recomputes the effective priority from the weighted trackers. As
    /// keepalived does, a backup's running master-down timer moves by the
    /// change in skew time.
    fn update_priority(&mut self) {
        if self.params.priority == PRIORITY_OWNER {
            return;
        }
        let total = i64::from(self.params.priority)
            + self
                .tracker_weights
                .values()
                .map(|w| i64::from(*w))
                .sum::<i64>();
        // Clamped to 1..=254, so the cast cannot truncate.
        let new = total.clamp(1, i64::from(PRIORITY_OWNER - 1)) as u8;
        if new == self.effective_priority {
            return;
        }
        info!(
            instance = %self.params.name, from = self.effective_priority, to = new,
            "changing effective priority"
        );
        let old_down = self.down_interval();
        self.effective_priority = new;
        let new_down = self.down_interval();
        if let Some(at) = self.master_down_at {
            self.master_down_at = Some(if new_down >= old_down {
                at + (new_down - old_down)
            } else {
                at.checked_sub(old_down - new_down).unwrap_or(at)
            });
        }
    }

    fn clear_timers(&mut self) {
        self.master_down_at = None;
        self.advert_at = None;
        self.garp_delay_at = None;
        self.garp_refresh_at = None;
        self.preempt_at = None;
    }

    fn is_faulty(&self) -> bool {
        self.has_own_fault() || self.sync_fault
    }

    /// keepalived goes straight to master only for an address owner whose
    /// initial state is MASTER.
    fn owner_wants_master(&self) -> bool {
        self.params.is_owner() && self.params.effective_initial_state() == InitialState::Master
    }

    fn skew(&self) -> Duration {
        timing::skew_time(
            self.params.version,
            self.effective_priority,
            self.master_adver_int,
        )
    }

    fn down_interval(&self) -> Duration {
        timing::master_down_interval(
            self.params.version,
            self.effective_priority,
            self.master_adver_int,
            self.params.down_timer_adverts,
        )
    }
}
