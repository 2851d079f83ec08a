//! vrrp_sync_group: instances that must change state together.
//!
//! The group decides; the caller applies. After any event that may change a
//! member, the caller passes every member's [`MemberStatus`] to
//! [`SyncGroup::update`], feeds the returned commands to the members as
//! [`Event::Sync`](super::instance::Event::Sync), and calls `update` again
//! until no commands come back (two rounds at most).
//!
//! The rules, as keepalived has them: one member in Fault pulls the group
//! to Fault; the group leaves Fault (to Backup) once no member has a fault
//! of its own; a member going Master pulls the others to Master; a member
//! leaving Master for Backup pulls the others to Backup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::instance::State;

/// A group's order to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncCommand {
    /// Become master now (if backup).
    GotoMaster,
    /// Step down to backup now (if master), without a priority-0 advert.
    GotoBackup,
    /// Enter (or stay in) Fault until [`SyncCommand::LeaveFault`].
    GotoFault,
    /// The group's fault is over; leave Fault unless a fault of its own
    /// remains.
    LeaveFault,
}

/// One member as the group sees it
/// ([`Instance::member_status`](super::instance::Instance::member_status)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub state: State,
    /// A tracker of the member's own is down.
    pub own_fault: bool,
    /// The member is held in Fault by the group.
    pub sync_fault: bool,
}

/// What [`SyncGroup::update`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDecision {
    /// The group's own state change, for group notify hooks.
    pub transition: Option<(State, State)>,
    /// Commands for members, by name.
    pub commands: Vec<(String, SyncCommand)>,
}

/// A sync group's state and its view of the members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    name: String,
    state: State,
    /// Member states at the previous update, to tell which member moved.
    last_seen: BTreeMap<String, State>,
}

impl SyncGroup {
    /// A group starts in Backup, as its members do.
    pub fn new(name: impl Into<String>) -> Self {
        SyncGroup {
            name: name.into(),
            state: State::Backup,
            last_seen: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Backup, Master or Fault.
    pub fn state(&self) -> State {
        self.state
    }

    /// Decides the group state from its members' and what to tell them.
    pub fn update(&mut self, members: &[MemberStatus]) -> SyncDecision {
        let before = self.state;
        let mut commands = Vec::new();
        let command_all = |commands: &mut Vec<(String, SyncCommand)>,
                           command: SyncCommand,
                           pick: &dyn Fn(&MemberStatus) -> bool| {
            commands.extend(
                members
                    .iter()
                    .filter(|m| pick(m))
                    .map(|m| (m.name.clone(), command)),
            );
        };

        if members.iter().any(|m| m.own_fault) {
            self.state = State::Fault;
            // Every member is held, the faulty ones too, so that one
            // recovering alone stays in Fault with the group.
            command_all(&mut commands, SyncCommand::GotoFault, &|m| !m.sync_fault);
        } else if self.state == State::Fault {
            self.state = State::Backup;
            command_all(&mut commands, SyncCommand::LeaveFault, &|m| m.sync_fault);
        } else {
            // A member not seen before counts as coming from Initialize.
            let moved_to = |to: State, from: &dyn Fn(State) -> bool| {
                members.iter().any(|m| {
                    let previous = self.last_seen.get(&m.name).copied();
                    m.state == to && from(previous.unwrap_or(State::Initialize))
                })
            };
            if self.state != State::Master && moved_to(State::Master, &|s| s != State::Master) {
                self.state = State::Master;
                command_all(&mut commands, SyncCommand::GotoMaster, &|m| {
                    m.state == State::Backup
                });
            } else if self.state == State::Master
                && moved_to(State::Backup, &|s| s == State::Master)
            {
                self.state = State::Backup;
                command_all(&mut commands, SyncCommand::GotoBackup, &|m| {
                    m.state == State::Master
                });
            } else if self.state == State::Master {
                // A member arriving in Backup from elsewhere (startup, or
                // leaving Fault) joins the master group rather than
                // pulling it down.
                command_all(&mut commands, SyncCommand::GotoMaster, &|m| {
                    m.state == State::Backup
                });
            }
        }

        self.last_seen = members.iter().map(|m| (m.name.clone(), m.state)).collect();
        let transition = (before != self.state).then_some((before, self.state));
        if let Some((from, to)) = transition {
            info!(group = %self.name, %from, %to, "VRRP sync group state change");
        }
        SyncDecision {
            transition,
            commands,
        }
    }
}
