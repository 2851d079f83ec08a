use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::super::instance::{Action, Event, Instance, State, TrackerEffect, TransitionReason};
use super::super::packet::Version;
use super::super::params::InstanceParams;
use super::super::sync_group::{MemberStatus, SyncCommand, SyncGroup};
use super::v4;

const SEC: Duration = Duration::from_secs(1);

/// VI_1 (VRID 51, priority 100) and VI_2 (VRID 52, priority 50).
fn members(t0: Instant) -> Vec<Instance> {
    [("VI_1", 51, 100), ("VI_2", 52, 50)]
        .into_iter()
        .map(|(name, vrid, priority)| {
            let mut p = InstanceParams::new(
                name,
                Version::V3,
                vrid,
                v4(10, 98, 0, 2),
                vec![v4(10, 98, vrid, 100)],
            );
            p.priority = priority;
            let mut inst = Instance::new(p).expect("valid");
            inst.handle(Event::Startup, t0);
            inst
        })
        .collect()
}

/// The caller's loop: update, apply the commands, repeat until quiet.
/// Returns the actions of each command, by member index.
fn settle(
    group: &mut SyncGroup,
    insts: &mut [Instance],
    now: Instant,
) -> Vec<(usize, Vec<Action>)> {
    let mut applied = Vec::new();
    for _round in 0..3 {
        let statuses: Vec<MemberStatus> = insts.iter().map(|i| i.member_status()).collect();
        let decision = group.update(&statuses);
        if decision.commands.is_empty() {
            return applied;
        }
        for (name, command) in decision.commands {
            let index = insts.iter().position(|i| i.name() == name).expect("member");
            applied.push((index, insts[index].handle(Event::Sync(command), now)));
        }
    }
    panic!("sync group did not settle");
}

fn higher_advert(inst: &Instance, src: IpAddr) -> Event {
    Event::AdvertReceived {
        src,
        advert: inst.advert(200),
    }
}

fn fault(down: bool) -> Event {
    Event::TrackerChanged {
        tracker: "eth1".into(),
        effect: TrackerEffect::Fault(down),
    }
}

fn states(insts: &[Instance]) -> Vec<State> {
    insts.iter().map(|i| i.state()).collect()
}

/// Both members master: VI_1's timer runs out first and pulls VI_2.
fn both_master(group: &mut SyncGroup, insts: &mut [Instance], t0: Instant) -> Instant {
    assert!(settle(group, insts, t0).is_empty());
    let at = insts[0].next_deadline().expect("timer");
    insts[0].handle(Event::TimerFired, at);
    let applied = settle(group, insts, at);
    assert_eq!(applied.len(), 1);
    let (index, actions) = &applied[0];
    assert_eq!(*index, 1);
    assert!(actions.contains(&Action::StateChanged {
        from: State::Backup,
        to: State::Master,
        reason: TransitionReason::SyncGroup
    }));
    assert!(actions.contains(&Action::AddAddresses));
    assert_eq!(states(insts), [State::Master, State::Master]);
    assert_eq!(group.state(), State::Master);
    at
}

#[test]
fn a_member_going_master_pulls_the_others_to_master() {
    let t0 = Instant::now();
    let mut insts = members(t0);
    let mut group = SyncGroup::new("G1");
    both_master(&mut group, &mut insts, t0);
}

#[test]
fn a_member_going_backup_pulls_the_others_to_backup() {
    let t0 = Instant::now();
    let mut insts = members(t0);
    let mut group = SyncGroup::new("G1");
    let at = both_master(&mut group, &mut insts, t0);
    let t = at + SEC;
    let event = higher_advert(&insts[1], v4(10, 98, 0, 9));
    insts[1].handle(event, t);
    assert_eq!(insts[1].state(), State::Backup);
    let applied = settle(&mut group, &mut insts, t);
    assert_eq!(applied.len(), 1);
    let (index, actions) = &applied[0];
    assert_eq!(*index, 0);
    // Pulled down without a priority-0 advert, as keepalived does.
    assert_eq!(actions[0], Action::RemoveAddresses);
    assert!(!actions.contains(&Action::SendAdvert { priority: 0 }));
    assert_eq!(states(&insts), [State::Backup, State::Backup]);
    assert_eq!(group.state(), State::Backup);
}

#[test]
fn a_member_fault_pulls_the_group_to_fault_and_back() {
    let t0 = Instant::now();
    let mut insts = members(t0);
    let mut group = SyncGroup::new("G1");
    let at = both_master(&mut group, &mut insts, t0);
    let t = at + SEC;
    insts[1].handle(fault(true), t);
    let applied = settle(&mut group, &mut insts, t);
    assert_eq!(group.state(), State::Fault);
    assert_eq!(states(&insts), [State::Fault, State::Fault]);
    // VI_1 was master: it lets go with a priority-0 advert.
    let (index, actions) = &applied[0];
    assert_eq!(*index, 0);
    assert_eq!(
        actions[..2],
        [Action::SendAdvert { priority: 0 }, Action::RemoveAddresses]
    );
    assert!(insts[0].member_status().sync_fault);
    assert!(!insts[0].has_own_fault());

    let t = t + SEC;
    insts[1].handle(fault(false), t);
    // VI_2 stays in Fault until the group lets it go.
    assert_eq!(insts[1].state(), State::Fault);
    settle(&mut group, &mut insts, t);
    assert_eq!(group.state(), State::Backup);
    assert_eq!(states(&insts), [State::Backup, State::Backup]);
}

#[test]
fn the_group_stays_in_fault_while_any_member_has_a_fault() {
    let t0 = Instant::now();
    let mut insts = members(t0);
    let mut group = SyncGroup::new("G1");
    insts[0].handle(fault(true), t0);
    insts[1].handle(fault(true), t0);
    settle(&mut group, &mut insts, t0);
    assert_eq!(group.state(), State::Fault);
    insts[0].handle(fault(false), t0 + SEC);
    settle(&mut group, &mut insts, t0 + SEC);
    assert_eq!(states(&insts), [State::Fault, State::Fault]);
    insts[1].handle(fault(false), t0 + 2 * SEC);
    settle(&mut group, &mut insts, t0 + 2 * SEC);
    assert_eq!(states(&insts), [State::Backup, State::Backup]);
}

#[test]
fn a_member_starting_late_joins_a_master_group() {
    let t0 = Instant::now();
    let mut insts = members(t0);
    let mut group = SyncGroup::new("G1");
    both_master(&mut group, &mut insts, t0);
    let t = t0 + 10 * SEC;
    insts[1].handle(Event::Shutdown, t);
    settle(&mut group, &mut insts, t);
    assert_eq!(states(&insts), [State::Master, State::Initialize]);
    insts[1].handle(Event::Startup, t + SEC);
    settle(&mut group, &mut insts, t + SEC);
    assert_eq!(states(&insts), [State::Master, State::Master]);
    assert_eq!(group.state(), State::Master);
}

fn status(name: &str, state: State) -> MemberStatus {
    MemberStatus {
        name: name.into(),
        state,
        own_fault: false,
        sync_fault: false,
    }
}

#[test]
fn group_decisions_from_statuses_alone() {
    let mut group = SyncGroup::new("G1");
    let d = group.update(&[status("a", State::Backup), status("b", State::Backup)]);
    assert_eq!(d.transition, None);
    assert!(d.commands.is_empty());

    let d = group.update(&[status("a", State::Master), status("b", State::Backup)]);
    assert_eq!(d.transition, Some((State::Backup, State::Master)));
    assert_eq!(d.commands, vec![("b".to_string(), SyncCommand::GotoMaster)]);

    let d = group.update(&[status("a", State::Master), status("b", State::Master)]);
    assert_eq!(d.transition, None);
    assert!(d.commands.is_empty());

    let faulty = MemberStatus {
        own_fault: true,
        ..status("b", State::Fault)
    };
    let d = group.update(&[status("a", State::Master), faulty]);
    assert_eq!(d.transition, Some((State::Master, State::Fault)));
    assert_eq!(
        d.commands,
        vec![
            ("a".to_string(), SyncCommand::GotoFault),
            ("b".to_string(), SyncCommand::GotoFault)
        ]
    );

    let held = |name: &str| MemberStatus {
        sync_fault: true,
        ..status(name, State::Fault)
    };
    let d = group.update(&[held("a"), held("b")]);
    assert_eq!(d.transition, Some((State::Fault, State::Backup)));
    assert_eq!(
        d.commands,
        vec![
            ("a".to_string(), SyncCommand::LeaveFault),
            ("b".to_string(), SyncCommand::LeaveFault)
        ]
    );
    assert_eq!(group.name(), "G1");
}
