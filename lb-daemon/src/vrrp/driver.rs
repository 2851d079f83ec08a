//! The driver of one unit: sets its members up, then feeds their cores
//! from one channel and their timers, one handler per input
//! ([`Driver::on_timer`], [`Driver::on_packet`], [`Driver::on_link`],
//! [`Driver::on_script`]), lets the sync group react after each
//! ([`Driver::sync`], [`Driver::on_group_command`]), and stops them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::net::Netlink;

use super::config_map::UnitSpec;
use super::instance::Event;
use super::member::{MemberId, Members, Shared};
use super::network::Received;
use super::notify;
use super::restart::{KeptMaster, RestartState};
use super::status::StatusBoard;
use super::sync_group::{SyncCommand, SyncGroup};
use super::tasks;
use super::track::TrackerMsg;

/// How long a unit that could not start waits before trying again.
const RETRY: Duration = Duration::from_secs(1);
/// The driver's channel (and the trackers'): a bound so that a flood of
/// packets waits in the socket rather than in memory.
pub const CHANNEL: usize = 256;

/// What the driver's channel carries.
pub enum Input {
    /// A packet from member `id`'s socket.
    Packet(MemberId, Received),
    Tracker(TrackerMsg),
}

pub struct Driver {
    unit: UnitSpec,
    members: Members,
    shared: Shared,
    group: Option<SyncGroup>,
    /// The previous lbd's masters, for setup.
    resume: Option<Arc<RestartState>>,
    /// Read on stop: masters keep their addresses (a restart).
    keep_masters: Arc<AtomicBool>,
}

impl Driver {
    pub fn new(
        unit: UnitSpec,
        net: Netlink,
        status: StatusBoard,
        resume: Option<Arc<RestartState>>,
        keep_masters: Arc<AtomicBool>,
    ) -> Driver {
        let members = Members::new(&unit);
        let group = unit.group.as_ref().map(|g| SyncGroup::new(g.name.clone()));
        let shared = Shared {
            net,
            status,
            group: unit.group.as_ref().map(|g| g.name.clone()),
        };
        Driver {
            unit,
            members,
            shared,
            group,
            resume,
            keep_masters,
        }
    }

    /// Runs until `stop`; returns the masters kept for a restart.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Vec<KeptMaster> {
        let (tx, mut rx) = mpsc::channel::<Input>(CHANNEL);
        if !self.set_up(&tx, &mut stop).await {
            return Vec::new();
        }
        let trackers = tasks::spawn_trackers(&self.members, &tx, &stop);
        drop(tx);
        self.start().await;
        loop {
            let deadline = self.members.iter().filter_map(|m| m.next_deadline()).min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = sleep => self.on_timer().await,
                input = rx.recv() => match input {
                    Some(Input::Packet(id, r)) => self.on_packet(id, r).await,
                    Some(Input::Tracker(TrackerMsg::Link { name, up })) => {
                        self.on_link(&name, up).await
                    }
                    Some(Input::Tracker(TrackerMsg::Script { name, up })) => {
                        self.on_script(&name, up).await
                    }
                    None => break,
                },
            }
        }
        let kept = self.stop().await;
        for t in trackers {
            t.abort();
        }
        self.stop_readers();
        kept
    }

    /// Sets every member up, retrying what the kernel does not have yet.
    /// False when stopped first.
    async fn set_up(&mut self, tx: &mpsc::Sender<Input>, stop: &mut watch::Receiver<bool>) -> bool {
        for m in self.members.iter() {
            m.publish(&self.shared);
        }
        loop {
            let mut missing = false;
            for id in self.members.ids() {
                let m = &mut self.members[id];
                if m.is_running() {
                    continue;
                }
                missing |= !m
                    .try_set_up(id, &self.shared.net, self.resume.as_deref(), tx)
                    .await;
                m.publish(&self.shared);
            }
            if !missing {
                return true;
            }
            tokio::select! {
                _ = stop.changed() => {
                    self.stop_readers();
                    return false;
                }
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Initial tracker states before Startup, so an instance whose
    /// interface is down starts in Fault as keepalived's does.
    async fn start(&mut self) {
        if let Ok(links) = self.shared.net.links().await {
            for id in self.members.ids() {
                for event in self.members[id].first_link_events(&links) {
                    self.feed(id, event).await;
                }
            }
        }
        for id in self.members.ids() {
            for event in self.members[id].first_script_events() {
                self.feed(id, event).await;
            }
        }
        for id in self.members.ids() {
            self.feed(id, Event::Startup).await;
        }
    }

    /// The earliest deadline has passed: every member due gets its timer.
    async fn on_timer(&mut self) {
        let now = Instant::now();
        for id in self.members.ids() {
            if self.members[id].is_due(now) {
                self.feed(id, Event::TimerFired).await;
            }
        }
    }

    /// A packet for member `id`: an advert for its core, or a packet that
    /// could not be read, only counted.
    async fn on_packet(&mut self, id: MemberId, r: Received) {
        match r.advert {
            Ok(advert) => {
                self.feed(id, Event::AdvertReceived { src: r.src, advert })
                    .await
            }
            Err((err, vrid)) => self.members[id].note_decode_error(r.src, &err, vrid, &self.shared),
        }
    }

    /// A tracked interface went up or down: every member tracking it hears.
    async fn on_link(&mut self, name: &str, up: bool) {
        for id in self.members.ids() {
            if let Some(event) = self.members[id].link_event(name, up) {
                self.feed(id, event).await;
            }
        }
    }

    /// A `vrrp_script` changed its result: every member tracking it hears.
    async fn on_script(&mut self, name: &str, up: bool) {
        for id in self.members.ids() {
            if let Some(event) = self.members[id].script_event(name, up) {
                self.feed(id, event).await;
            }
        }
    }

    /// Feeds `event` to member `id` (see [`super::member::Member::feed`]),
    /// then lets the sync group react.
    async fn feed(&mut self, id: MemberId, event: Event) {
        if self.members[id].feed(event, &self.shared).await {
            self.sync().await;
        }
    }

    /// The sync group's turn after a member moved: its notify hooks on a
    /// group transition, and its commands to the members. Two rounds
    /// settle any group (see [`SyncGroup`]); four is a bound.
    async fn sync(&mut self) {
        for _ in 0..4 {
            let Some(group) = self.group.as_mut() else {
                return;
            };
            let statuses: Vec<_> = self
                .members
                .iter()
                .filter_map(|m| m.sync_status())
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
                self.on_group_command(&name, command).await;
            }
        }
    }

    /// A command of the sync group to the member `name`. No sync round
    /// follows it: [`Driver::sync`] runs the next one.
    async fn on_group_command(&mut self, name: &str, command: SyncCommand) {
        if let Some(id) = self.members.by_name(name) {
            self.members[id]
                .feed(Event::Sync(command), &self.shared)
                .await;
        }
    }

    /// Stops every member; returns the masters kept for a restart.
    async fn stop(&mut self) -> Vec<KeptMaster> {
        let mut kept = Vec::new();
        if self.keep_masters.load(Ordering::SeqCst) {
            // A restart: masters are left as they are for the next lbd to
            // resume; the others stop. No sync group round: the group is
            // going away.
            for m in self.members.iter_mut() {
                kept.extend(m.stop_for_restart(&self.shared.net).await);
            }
        } else {
            // Shutdown: priority 0 from a master, addresses removed, notify_stop.
            for id in self.members.ids() {
                self.feed(id, Event::Shutdown).await;
            }
        }
        kept
    }

    fn stop_readers(&self) {
        for m in self.members.iter() {
            m.stop_reader();
        }
    }
}
