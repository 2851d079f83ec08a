//! One instance as its unit's driver runs it ([`Member`]): its
//! configuration and tracing span, what exists once it is set up
//! ([`Running`]: the core, the socket, the announcement senders), and what
//! it shows on the [`StatusBoard`].
//!
//! Each member is fed by [`Member::feed`]: the core decides, then
//! `carry_out` (in `effects`) does what it decided, then the status is
//! published.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tracing::{info, info_span, Span};

use crate::net::{Link, Netlink};

use super::config_map::{weighted, InstanceSpec, UnitSpec};
use super::garp::GarpSender;
use super::instance::{Action, Event, Instance, State, TrackerEffect};
use super::network::{ErrorLog, VrrpSocket};
use super::packet::DecodeError;
use super::restart::KeptMaster;
use super::status::{InstanceStatus, StatusBoard, Transition};
use super::sync_group::MemberStatus;

/// What the members of one unit share: the unit's netlink connection and
/// where they publish their status.
pub struct Shared {
    pub net: Netlink,
    pub status: StatusBoard,
    /// The unit's `vrrp_sync_group`, shown in each member's status.
    pub group: Option<String>,
}

/// A member's place in its unit, which the reader tags its packets with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberId(usize);

/// The members of one unit, in configuration order.
pub struct Members(Vec<Member>);

impl Members {
    pub fn new(unit: &UnitSpec) -> Members {
        Members(unit.instances.iter().map(Member::new).collect())
    }

    /// Every member's id. The iterator does not borrow `self`, so a loop
    /// over the ids may feed members (which needs `&mut self`).
    pub fn ids(&self) -> impl Iterator<Item = MemberId> {
        (0..self.0.len()).map(MemberId)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.0.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        self.0.iter_mut()
    }

    /// The member named `name` (a sync group addresses members by name).
    pub fn by_name(&self, name: &str) -> Option<MemberId> {
        self.0.iter().position(|m| m.name() == name).map(MemberId)
    }
}

impl Index<MemberId> for Members {
    type Output = Member;
    fn index(&self, id: MemberId) -> &Member {
        &self.0[id.0]
    }
}

impl IndexMut<MemberId> for Members {
    fn index_mut(&mut self, id: MemberId) -> &mut Member {
        &mut self.0[id.0]
    }
}

/// One instance as the driver runs it.
pub struct Member {
    pub(super) spec: InstanceSpec,
    /// The `vrrp` span (`instance = name`) its logs go under.
    pub(super) span: Span,
    /// `None` until it is set up (see [`super::setup`]).
    pub(super) run: Option<Running>,
    pub(super) last_transition: Option<Transition>,
    /// Why it could not be set up, while it cannot.
    pub(super) error: Option<String>,
}

/// What exists once an instance is set up.
pub struct Running {
    pub(super) core: Instance,
    pub(super) socket: Arc<VrrpSocket>,
    pub(super) link: Link,
    /// By `dev` of the virtual addresses (`None`: the instance's interface).
    pub(super) garp: BTreeMap<Option<String>, GarpSender>,
    pub(super) reader: JoinHandle<()>,
    /// Rate-limits the log lines of failed sends.
    pub(super) send_errors: ErrorLog,
}

impl Member {
    fn new(spec: &InstanceSpec) -> Member {
        Member {
            span: info_span!("vrrp", instance = %spec.name()),
            spec: spec.clone(),
            run: None,
            last_transition: None,
            error: None,
        }
    }

    pub fn name(&self) -> &str {
        self.spec.name()
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Feeds `event` to the core, carries out its actions and publishes
    /// the new status. False (nothing done) when the member is not set up.
    pub async fn feed(&mut self, event: Event, shared: &Shared) -> bool {
        let Some(actions) = self.decide(event) else {
            return false;
        };
        self.carry_out(actions, &shared.net).await;
        self.publish(shared);
        true
    }

    /// The core's answer to `event`, logged under the member's span.
    fn decide(&mut self, event: Event) -> Option<Vec<Action>> {
        let run = self.run.as_mut()?;
        let _g = self.span.enter();
        Some(run.core.handle(event, Instant::now()))
    }

    /// The core's next deadline, if it is running and has one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.run.as_ref()?.core.next_deadline()
    }

    /// Whether a deadline of the core has passed at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|d| d <= now)
    }

    /// Counts a packet that could not be read. Counted against us when it
    /// claims our VRID (or is too short to claim any); the core logs once
    /// per reason.
    pub fn note_decode_error(
        &mut self,
        src: IpAddr,
        err: &DecodeError,
        vrid: Option<u8>,
        shared: &Shared,
    ) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if vrid.is_none() || vrid == Some(run.core.params().vrid) {
            let _g = self.span.enter();
            run.core.note_decode_error(src, err);
        }
        self.publish(shared);
    }

    /// The event a link's state is for this member, if it tracks the link.
    pub fn link_event(&self, name: &str, up: bool) -> Option<Event> {
        let t = self.spec.interfaces.iter().find(|t| t.name == name)?;
        let effect = match t.weight {
            None => TrackerEffect::Fault(!up),
            Some(w) => TrackerEffect::Weight(weighted(up, w, t.reverse)),
        };
        Some(Event::TrackerChanged {
            tracker: format!("interface:{name}"),
            effect,
        })
    }

    /// The event a script's result is for this member, if it tracks the
    /// script.
    pub fn script_event(&self, name: &str, up: bool) -> Option<Event> {
        let t = self.spec.scripts.iter().find(|t| t.script.name == name)?;
        let effect = if t.weight == 0 {
            TrackerEffect::Fault(!up)
        } else {
            TrackerEffect::Weight(weighted(up, t.weight, t.reverse))
        };
        Some(Event::TrackerChanged {
            tracker: format!("script:{name}"),
            effect,
        })
    }

    /// The first state of every interface the member tracks, from `links`
    /// (a link that does not exist is down).
    pub fn first_link_events(&self, links: &[Link]) -> Vec<Event> {
        self.spec
            .interfaces
            .iter()
            .filter_map(|t| {
                let up = links.iter().any(|l| l.name == t.name && l.up);
                self.link_event(&t.name, up)
            })
            .collect()
    }

    /// The first state of every script the member tracks: up, or down
    /// with `init_fail`.
    pub fn first_script_events(&self) -> Vec<Event> {
        self.spec
            .scripts
            .iter()
            .filter_map(|t| self.script_event(&t.script.name, !t.script.init_fail))
            .collect()
    }

    /// What the sync group needs of it, once it runs.
    pub fn sync_status(&self) -> Option<MemberStatus> {
        self.run.as_ref().map(|r| r.core.member_status())
    }

    /// Stops for a restart: a master is left as it is (addresses in
    /// place, no priority 0, no notify) and returned for the next lbd to
    /// resume; any other state stops as on shutdown. No status is
    /// published and no sync group round follows: the unit is going away.
    pub async fn stop_for_restart(&mut self, net: &Netlink) -> Option<KeptMaster> {
        let run = self.run.as_ref()?;
        if run.core.state() == State::Master {
            let _g = self.span.enter();
            info!("master: addresses kept for the next lbd (restart)");
            return Some(KeptMaster {
                instance: self.spec.name().to_string(),
                vrid: self.spec.config.virtual_router_id,
                interface: self.spec.interface.clone(),
            });
        }
        if let Some(actions) = self.decide(Event::Shutdown) {
            self.carry_out(actions, net).await;
        }
        None
    }

    /// Ends its socket reader, if it has one.
    pub fn stop_reader(&self) {
        if let Some(run) = &self.run {
            run.reader.abort();
        }
    }

    /// Puts its current status on the board.
    pub fn publish(&self, shared: &Shared) {
        shared.status.put(self.status(shared.group.clone()));
    }

    fn status(&self, group: Option<String>) -> InstanceStatus {
        let c = &self.spec.config;
        let (state, effective, address, master, counters) = match &self.run {
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
        InstanceStatus {
            name: c.name.clone(),
            group,
            interface: self.spec.interface.clone(),
            vrid: c.virtual_router_id,
            state,
            priority: c.priority,
            effective_priority: effective,
            address,
            master,
            last_transition: self.last_transition.clone(),
            counters,
            error: self.error.clone(),
        }
    }
}
