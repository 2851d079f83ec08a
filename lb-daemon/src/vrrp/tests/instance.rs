//! State machine tests on a fake clock: `t0 + duration`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::super::instance::{Action, Event, Instance, State, TrackerEffect, TransitionReason};
use super::super::packet::{AdvertInterval, Auth, DecodeError, Version};
use super::super::params::{InitialState, InstanceParams, ParamError};
use super::super::reason::DropReason;
use super::v4;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn vip() -> IpAddr {
    v4(10, 98, 0, 100)
}

/// Our address; peers are .1 (lower) and .3 (higher).
fn me() -> IpAddr {
    v4(10, 98, 0, 2)
}
fn lower_peer() -> IpAddr {
    v4(10, 98, 0, 1)
}
fn higher_peer() -> IpAddr {
    v4(10, 98, 0, 3)
}

/// v2 with PASS "1111" and 1 s, or v3 with 1 s; priority as given.
fn params(version: Version, priority: u8) -> InstanceParams {
    let mut p = InstanceParams::new("VI_1", version, 51, me(), vec![vip()]);
    p.priority = priority;
    if version == Version::V2 {
        p.auth = Auth::pass(b"1111");
    }
    p
}

fn start(p: InstanceParams, t0: Instant) -> (Instance, Vec<Action>) {
    let mut inst = Instance::new(p).expect("valid params");
    let actions = inst.handle(Event::Startup, t0);
    (inst, actions)
}

/// A peer's advert with our configuration at `priority`.
fn advert_event(inst: &Instance, src: IpAddr, priority: u8) -> Event {
    Event::AdvertReceived {
        src,
        advert: inst.advert(priority),
    }
}

fn changed(from: State, to: State, reason: TransitionReason) -> Vec<Action> {
    vec![
        Action::StateChanged { from, to, reason },
        Action::Notify(to),
    ]
}

fn takeover(priority: u8, from: State, reason: TransitionReason) -> Vec<Action> {
    let mut actions = vec![
        Action::SendAdvert { priority },
        Action::AddAddresses,
        Action::SendGratuitous { count: 5 },
    ];
    actions.extend(changed(from, State::Master, reason));
    actions
}

/// Fires the timer just before and at the deadline: nothing, then the
/// takeover.
fn expect_takeover_at(inst: &mut Instance, at: Instant, priority: u8) {
    assert_eq!(inst.next_deadline(), Some(at));
    assert_eq!(
        inst.handle(Event::TimerFired, at - Duration::from_nanos(1)),
        vec![]
    );
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(
        inst.handle(Event::TimerFired, at),
        takeover(priority, State::Backup, TransitionReason::MasterDown)
    );
    assert_eq!(inst.state(), State::Master);
}

/// Makes a running instance master via its master-down timer.
fn master(p: InstanceParams, t0: Instant) -> (Instance, Instant) {
    let (mut inst, _) = start(p, t0);
    let at = inst.next_deadline().expect("backup timer");
    inst.handle(Event::TimerFired, at);
    assert_eq!(inst.state(), State::Master);
    (inst, at)
}

#[test]
fn startup_as_backup_then_master_after_master_down_interval() {
    let t0 = Instant::now();
    let (mut inst, actions) = start(params(Version::V2, 50), t0);
    assert_eq!(
        actions,
        changed(State::Initialize, State::Backup, TransitionReason::Startup)
    );
    // 3 * 1 s + (256 - 50) / 256 s: the 3.80 s seen on the wire.
    expect_takeover_at(&mut inst, t0 + Duration::from_nanos(3_804_687_500), 50);
    assert_eq!(
        inst.next_deadline(),
        Some(t0 + Duration::from_nanos(4_804_687_500))
    );
}

#[test]
fn v3_master_down_interval_in_centiseconds() {
    let t0 = Instant::now();
    let mut p = params(Version::V3, 50);
    p.advert_int = AdvertInterval::from_centis(10);
    let (mut inst, _) = start(p, t0);
    // 3 * 0.1 s + 206 * 0.1 / 256 s: the 0.38 s seen on the wire.
    expect_takeover_at(&mut inst, t0 + Duration::from_nanos(380_468_750), 50);
}

#[test]
fn owner_becomes_master_at_once() {
    let t0 = Instant::now();
    let (inst, actions) = start(params(Version::V2, 255), t0);
    assert_eq!(
        actions,
        takeover(255, State::Initialize, TransitionReason::OwnerStartup)
    );
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.next_deadline(), Some(t0 + SEC));
}

#[test]
fn owner_with_initial_state_backup_waits_like_keepalived() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 255);
    p.initial_state = Some(InitialState::Backup);
    let (mut inst, actions) = start(p, t0);
    assert_eq!(
        actions,
        changed(State::Initialize, State::Backup, TransitionReason::Startup)
    );
    expect_takeover_at(
        &mut inst,
        t0 + 3 * SEC + Duration::from_nanos(3_906_250),
        255,
    );
}

#[test]
fn initial_master_below_255_starts_as_backup_and_clears_nopreempt() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 100);
    p.initial_state = Some(InitialState::Master);
    p.preempt = false;
    p.preempt_delay = 10 * SEC;
    let (mut inst, actions) = start(p, t0);
    assert_eq!(inst.warnings().len(), 2, "{:?}", inst.warnings());
    assert!(inst.params().preempt);
    assert!(inst.params().preempt_delay.is_zero());
    assert_eq!(
        actions,
        changed(State::Initialize, State::Backup, TransitionReason::Startup)
    );
    // A full master-down interval, to find an existing master first.
    expect_takeover_at(&mut inst, t0 + Duration::from_nanos(3_609_375_000), 100);
}

#[test]
fn owner_with_nopreempt_gets_preempt_back() {
    let mut p = params(Version::V2, 255);
    p.preempt = false;
    let inst = Instance::new(p).expect("valid");
    assert!(inst.params().preempt);
    assert!(!inst.warnings().is_empty());
}

#[test]
fn adverts_from_a_master_keep_the_backup_waiting() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    for s in 1..=10 {
        let now = t0 + s * SEC;
        assert_eq!(
            inst.handle(advert_event(&inst, lower_peer(), 100), now),
            vec![]
        );
        assert_eq!(inst.handle(Event::TimerFired, now), vec![]);
        assert_eq!(
            inst.next_deadline(),
            Some(now + Duration::from_nanos(3_804_687_500))
        );
    }
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.current_master(), Some((lower_peer(), 100)));
    assert_eq!(inst.counters().adverts_received, 10);
}

#[test]
fn priority_zero_makes_backup_take_over_after_skew_time() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    inst.handle(advert_event(&inst, lower_peer(), 100), t0 + SEC);
    let t = t0 + 2 * SEC;
    assert_eq!(inst.handle(advert_event(&inst, lower_peer(), 0), t), vec![]);
    // (256 - 50) / 256 s: the 0.80 s seen on the wire.
    expect_takeover_at(&mut inst, t + Duration::from_nanos(804_687_500), 50);
    assert_eq!(inst.counters().priority_zero_received, 1);
}

#[test]
fn v3_priority_zero_skew_uses_the_master_interval() {
    let t0 = Instant::now();
    let mut p = params(Version::V3, 50);
    p.advert_int = AdvertInterval::from_centis(10);
    let (mut inst, _) = start(p, t0);
    inst.handle(advert_event(&inst, lower_peer(), 100), t0 + 100 * MS);
    let t = t0 + 200 * MS;
    inst.handle(advert_event(&inst, lower_peer(), 0), t);
    // 206 * 0.1 s / 256: the 0.08 s seen on the wire.
    expect_takeover_at(&mut inst, t + Duration::from_nanos(80_468_750), 50);
}

#[test]
fn master_sends_an_advert_every_interval() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 50), t0);
    for n in 1..=3 {
        let at = became + n * SEC;
        assert_eq!(inst.next_deadline(), Some(at));
        assert_eq!(inst.handle(Event::TimerFired, at - MS), vec![]);
        assert_eq!(
            inst.handle(Event::TimerFired, at),
            vec![Action::SendAdvert { priority: 50 }]
        );
    }
    assert_eq!(inst.counters().adverts_sent, 4);
}

#[test]
fn master_steps_down_on_higher_priority() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 50), t0);
    let t = became + 500 * MS;
    let mut expected = vec![Action::RemoveAddresses];
    expected.extend(changed(
        State::Master,
        State::Backup,
        TransitionReason::HigherPriority,
    ));
    assert_eq!(
        inst.handle(advert_event(&inst, lower_peer(), 100), t),
        expected
    );
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.current_master(), Some((lower_peer(), 100)));
    assert_eq!(
        inst.next_deadline(),
        Some(t + Duration::from_nanos(3_804_687_500))
    );
    assert_eq!(inst.counters().released_master, 1);
}

#[test]
fn equal_priority_is_decided_by_the_higher_address() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    // From a lower address: we stay master and assert ourselves.
    let t = became + 100 * MS;
    assert_eq!(
        inst.handle(advert_event(&inst, lower_peer(), 100), t),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(inst.state(), State::Master);
    // From a higher address: we yield.
    let mut expected = vec![Action::RemoveAddresses];
    expected.extend(changed(
        State::Master,
        State::Backup,
        TransitionReason::HigherAddress,
    ));
    assert_eq!(
        inst.handle(advert_event(&inst, higher_peer(), 100), t),
        expected
    );
}

#[test]
fn equal_priority_from_our_own_address_is_ignored() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    assert_eq!(
        inst.handle(advert_event(&inst, me(), 100), became + MS),
        vec![]
    );
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn master_answers_a_lower_priority_advert_at_once() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    let t = became + 300 * MS;
    assert_eq!(
        inst.handle(advert_event(&inst, higher_peer(), 50), t),
        vec![Action::SendAdvert { priority: 100 }]
    );
    // The periodic advert restarts from the one just sent.
    assert_eq!(inst.next_deadline(), Some(t + SEC));
}

#[test]
fn lower_prio_no_advert_keeps_the_master_quiet() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 100);
    p.lower_prio_no_advert = true;
    let (mut inst, became) = master(p, t0);
    assert_eq!(
        inst.handle(advert_event(&inst, higher_peer(), 50), became + MS),
        vec![]
    );
    assert_eq!(inst.next_deadline(), Some(became + SEC));
}

#[test]
fn higher_prio_send_advert_sends_one_before_yielding() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 50);
    p.higher_prio_send_advert = true;
    let (mut inst, became) = master(p, t0);
    let actions = inst.handle(advert_event(&inst, lower_peer(), 100), became + MS);
    assert_eq!(
        actions[..2],
        [Action::SendAdvert { priority: 50 }, Action::RemoveAddresses]
    );
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    assert_eq!(
        inst.handle(advert_event(&inst, lower_peer(), 0), became + MS),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn backup_preempts_a_lower_priority_master() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 100), t0);
    // The lower master's adverts are ignored, so the startup timer runs out.
    for s in 1..=3 {
        let now = t0 + s * SEC;
        assert_eq!(
            inst.handle(advert_event(&inst, lower_peer(), 50), now),
            vec![]
        );
    }
    expect_takeover_at(&mut inst, t0 + Duration::from_nanos(3_609_375_000), 100);
}

#[test]
fn nopreempt_backup_stays_behind_a_lower_priority_master() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 100);
    p.preempt = false;
    let (mut inst, _) = start(p, t0);
    for s in 1..=30 {
        let now = t0 + s * SEC;
        inst.handle(advert_event(&inst, lower_peer(), 50), now);
        assert_eq!(inst.handle(Event::TimerFired, now), vec![]);
    }
    assert_eq!(inst.state(), State::Backup);
    // It still takes over when that master goes away.
    let last = t0 + 30 * SEC;
    expect_takeover_at(&mut inst, last + Duration::from_nanos(3_609_375_000), 100);
}

#[test]
fn preempt_delay_holds_the_backup_then_preempts() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 100);
    p.preempt_delay = 5 * SEC;
    let (mut inst, _) = start(p, t0);
    // Lower-priority adverts are accepted from t=1 s (delay starts) until
    // the delay runs out at t=6 s; from then on they are ignored.
    for s in 1..=8 {
        let now = t0 + s * SEC;
        inst.handle(advert_event(&inst, lower_peer(), 50), now);
        assert_eq!(inst.handle(Event::TimerFired, now), vec![], "at {s} s");
    }
    let last_accepted = t0 + 5 * SEC;
    expect_takeover_at(
        &mut inst,
        last_accepted + Duration::from_nanos(3_609_375_000),
        100,
    );
}

#[test]
fn preempt_delay_restarts_after_a_higher_priority_master() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 100);
    p.preempt_delay = 5 * SEC;
    let (mut inst, _) = start(p, t0);
    inst.handle(advert_event(&inst, lower_peer(), 50), t0 + SEC);
    // A higher-priority master cancels the running delay ...
    inst.handle(advert_event(&inst, lower_peer(), 150), t0 + 2 * SEC);
    // ... so the next lower-priority advert starts a fresh one (t=3..8 s).
    for s in 3..=8 {
        inst.handle(advert_event(&inst, lower_peer(), 50), t0 + s * SEC);
    }
    assert_eq!(
        inst.next_deadline(),
        Some(t0 + 7 * SEC + Duration::from_nanos(3_609_375_000))
    );
}

#[test]
fn backup_follows_an_equal_priority_master_whatever_its_address() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 100), t0);
    for s in 1..=10 {
        inst.handle(advert_event(&inst, lower_peer(), 100), t0 + s * SEC);
    }
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(
        inst.next_deadline(),
        Some(t0 + 10 * SEC + Duration::from_nanos(3_609_375_000))
    );
}

#[test]
fn v3_backup_adopts_the_master_interval() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V3, 50), t0);
    assert_eq!(inst.master_adver_int(), AdvertInterval::from_secs(1));
    let mut advert = inst.advert(100);
    advert.max_advert_int = AdvertInterval::from_centis(10);
    let t = t0 + 500 * MS;
    inst.handle(
        Event::AdvertReceived {
            src: lower_peer(),
            advert,
        },
        t,
    );
    assert_eq!(inst.master_adver_int(), AdvertInterval::from_centis(10));
    // 3 * 0.1 s + 206 * 0.1 s / 256, not 3.8 s.
    expect_takeover_at(&mut inst, t + Duration::from_nanos(380_468_750), 50);
    // As master it advertises its own interval again.
    assert_eq!(inst.master_adver_int(), AdvertInterval::from_secs(1));
    assert_eq!(inst.advert(50).max_advert_int, AdvertInterval::from_secs(1));
    assert_eq!(
        inst.next_deadline(),
        Some(t + Duration::from_nanos(380_468_750) + SEC)
    );
}

#[test]
fn v2_interval_mismatch_is_dropped_and_counted() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    let before = inst.next_deadline();
    let mut advert = inst.advert(100);
    advert.max_advert_int = AdvertInterval::from_secs(2);
    let actions = inst.handle(
        Event::AdvertReceived {
            src: lower_peer(),
            advert,
        },
        t0 + SEC,
    );
    assert_eq!(actions, vec![]);
    assert_eq!(inst.next_deadline(), before, "the timer keeps running");
    assert_eq!(inst.counters().dropped(DropReason::IntervalMismatch), 1);
    assert_eq!(inst.counters().adverts_received, 0);
}

#[test]
fn bad_adverts_are_counted_by_reason_and_change_nothing() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    let good = inst.advert(200);
    let bad = [
        (
            DropReason::WrongVrid,
            super::super::packet::Advert {
                vrid: 52,
                ..good.clone()
            },
        ),
        (
            DropReason::AuthFailure,
            super::super::packet::Advert {
                auth: Auth::pass(b"2222"),
                ..good.clone()
            },
        ),
        (
            DropReason::AuthTypeMismatch,
            super::super::packet::Advert {
                auth: Auth::None,
                ..good.clone()
            },
        ),
        (
            DropReason::AddressCountMismatch,
            super::super::packet::Advert {
                addrs: vec![],
                ..good.clone()
            },
        ),
    ];
    for (reason, advert) in bad {
        for _ in 0..2 {
            let actions = inst.handle(
                Event::AdvertReceived {
                    src: higher_peer(),
                    advert: advert.clone(),
                },
                became + MS,
            );
            assert_eq!(actions, vec![]);
        }
        assert_eq!(inst.counters().dropped(reason), 2, "{reason}");
    }
    inst.note_decode_error(higher_peer(), &DecodeError::BadTtl(64));
    assert_eq!(inst.counters().dropped(DropReason::BadTtl), 1);
    assert_eq!(inst.counters().total_dropped(), 9);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn adverts_are_ignored_before_startup_and_in_fault() {
    let t0 = Instant::now();
    let mut inst = Instance::new(params(Version::V2, 50)).expect("valid");
    assert_eq!(
        inst.handle(advert_event(&inst, lower_peer(), 0), t0),
        vec![]
    );
    assert_eq!(inst.handle(Event::TimerFired, t0), vec![]);
    assert_eq!(inst.next_deadline(), None);
    inst.handle(Event::Startup, t0);
    inst.handle(fault("link", true), t0);
    assert_eq!(
        inst.handle(advert_event(&inst, lower_peer(), 0), t0 + SEC),
        vec![]
    );
    assert_eq!(inst.counters().adverts_received, 0);
}

fn fault(name: &str, down: bool) -> Event {
    Event::TrackerChanged {
        tracker: name.into(),
        effect: TrackerEffect::Fault(down),
    }
}

fn weight(name: &str, w: i32) -> Event {
    Event::TrackerChanged {
        tracker: name.into(),
        effect: TrackerEffect::Weight(w),
    }
}

#[test]
fn tracker_fault_moves_backup_to_fault_and_back() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    assert_eq!(
        inst.handle(fault("eth0", true), t0 + SEC),
        changed(State::Backup, State::Fault, TransitionReason::Fault)
    );
    assert_eq!(inst.next_deadline(), None);
    assert_eq!(inst.handle(Event::TimerFired, t0 + 10 * SEC), vec![]);
    let t = t0 + 20 * SEC;
    assert_eq!(
        inst.handle(fault("eth0", false), t),
        changed(State::Fault, State::Backup, TransitionReason::FaultCleared)
    );
    expect_takeover_at(&mut inst, t + Duration::from_nanos(3_804_687_500), 50);
}

#[test]
fn tracker_fault_makes_the_master_let_go() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    let mut expected = vec![Action::SendAdvert { priority: 0 }, Action::RemoveAddresses];
    expected.extend(changed(
        State::Master,
        State::Fault,
        TransitionReason::Fault,
    ));
    assert_eq!(
        inst.handle(fault("chk_haproxy", true), became + MS),
        expected
    );
    assert_eq!(inst.next_deadline(), None, "no adverts or GARPs in Fault");
    assert_eq!(inst.counters().priority_zero_sent, 1);
}

#[test]
fn every_fault_must_clear() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    inst.handle(fault("eth0", true), t0);
    assert_eq!(inst.handle(fault("script", true), t0), vec![]);
    assert_eq!(inst.handle(fault("eth0", false), t0), vec![]);
    assert_eq!(inst.state(), State::Fault);
    // Repeating a report changes nothing.
    assert_eq!(inst.handle(fault("eth0", false), t0), vec![]);
    assert_eq!(
        inst.handle(fault("script", false), t0),
        changed(State::Fault, State::Backup, TransitionReason::FaultCleared)
    );
}

#[test]
fn fault_at_startup() {
    let t0 = Instant::now();
    let mut inst = Instance::new(params(Version::V2, 255)).expect("valid");
    assert_eq!(inst.handle(fault("eth0", true), t0), vec![]);
    assert_eq!(
        inst.handle(Event::Startup, t0),
        changed(State::Initialize, State::Fault, TransitionReason::Startup)
    );
    // An owner with state MASTER goes straight back to master.
    assert_eq!(
        inst.handle(fault("eth0", false), t0 + SEC),
        takeover(255, State::Fault, TransitionReason::FaultCleared)
    );
}

#[test]
fn weighted_trackers_set_the_effective_priority() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    assert_eq!(inst.handle(weight("chk", 20), became), vec![]);
    assert_eq!(inst.effective_priority(), 120);
    inst.handle(weight("other", -5), became);
    assert_eq!(inst.effective_priority(), 115);
    // A new value for a tracker replaces its old one.
    inst.handle(weight("chk", 10), became);
    assert_eq!(inst.effective_priority(), 105);
    assert_eq!(
        inst.handle(Event::TimerFired, became + SEC),
        vec![Action::SendAdvert { priority: 105 }]
    );
    inst.handle(weight("chk", 500), became);
    assert_eq!(inst.effective_priority(), 254, "never owner by weight");
    inst.handle(weight("chk", -500), became);
    assert_eq!(inst.effective_priority(), 1, "never 0 by weight");
    inst.handle(weight("chk", 0), became);
    assert_eq!(inst.effective_priority(), 95);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn the_owner_priority_ignores_weights() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 255), t0);
    inst.handle(weight("chk", -50), t0);
    assert_eq!(inst.effective_priority(), 255);
}

#[test]
fn a_priority_change_moves_the_backup_timer_by_the_skew_difference() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    inst.handle(weight("chk", 50), t0 + SEC);
    // Skew falls from 206/256 s to 156/256 s.
    assert_eq!(
        inst.next_deadline(),
        Some(t0 + Duration::from_nanos(3_609_375_000))
    );
}

#[test]
fn lowered_master_is_preempted_by_the_backup() {
    // Two priorities meet: the master drops below the backup through a
    // weight, the backup ignores its adverts and takes over.
    let t0 = Instant::now();
    let (mut backup, _) = start(params(Version::V2, 100), t0);
    backup.handle(advert_event(&backup, lower_peer(), 150), t0 + SEC);
    backup.handle(advert_event(&backup, lower_peer(), 90), t0 + 2 * SEC);
    expect_takeover_at(
        &mut backup,
        t0 + SEC + Duration::from_nanos(3_609_375_000),
        100,
    );
}

#[test]
fn shutdown_of_a_master_sends_priority_zero() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 100), t0);
    let mut expected = vec![Action::SendAdvert { priority: 0 }, Action::RemoveAddresses];
    expected.extend(changed(
        State::Master,
        State::Initialize,
        TransitionReason::Shutdown,
    ));
    assert_eq!(inst.handle(Event::Shutdown, became + SEC / 2), expected);
    assert_eq!(inst.next_deadline(), None);
    assert_eq!(inst.counters().priority_zero_sent, 1);
    assert_eq!(inst.handle(Event::Shutdown, became + SEC), vec![]);
}

#[test]
fn shutdown_of_a_backup_and_restart() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    assert_eq!(
        inst.handle(Event::Shutdown, t0 + SEC),
        changed(State::Backup, State::Initialize, TransitionReason::Shutdown)
    );
    assert_eq!(inst.next_deadline(), None);
    let t = t0 + 10 * SEC;
    inst.handle(Event::Startup, t);
    assert_eq!(inst.state(), State::Backup);
    expect_takeover_at(&mut inst, t + Duration::from_nanos(3_804_687_500), 50);
    assert_eq!(inst.counters().transitions, 4);
}

#[test]
fn startup_twice_is_a_no_op() {
    let t0 = Instant::now();
    let (mut inst, _) = start(params(Version::V2, 50), t0);
    assert_eq!(inst.handle(Event::Startup, t0 + SEC), vec![]);
}

#[test]
fn garp_bursts_at_takeover_and_after_garp_master_delay() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 50), t0);
    // Adverts every second, and 5 more GARPs 5 s after takeover.
    for s in 1..=6 {
        let at = became + s * SEC;
        let actions = inst.handle(Event::TimerFired, at);
        if s == 5 {
            assert_eq!(
                actions,
                vec![
                    Action::SendAdvert { priority: 50 },
                    Action::SendGratuitous { count: 5 }
                ]
            );
        } else {
            assert_eq!(
                actions,
                vec![Action::SendAdvert { priority: 50 }],
                "at {s} s"
            );
        }
    }
}

#[test]
fn garp_refresh_repeats_while_master() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 50);
    p.advert_int = AdvertInterval::from_secs(100);
    p.garp.master_delay = 5 * SEC;
    p.garp.master_refresh = 60 * SEC;
    p.garp.master_refresh_repeat = 2;
    let (mut inst, became) = master(p, t0);
    let mut seen = Vec::new();
    while let Some(at) = inst.next_deadline() {
        if at > became + 190 * SEC {
            break;
        }
        for action in inst.handle(Event::TimerFired, at) {
            if let Action::SendGratuitous { count } = action {
                seen.push((at - became, count));
            }
        }
    }
    assert_eq!(
        seen,
        vec![(5 * SEC, 5), (65 * SEC, 2), (125 * SEC, 2), (185 * SEC, 2)]
    );
}

#[test]
fn garp_without_delay_refreshes_from_takeover() {
    let t0 = Instant::now();
    let mut p = params(Version::V2, 50);
    p.garp.master_delay = Duration::ZERO;
    p.garp.master_repeat = 3;
    p.garp.master_refresh = 10 * SEC;
    let (mut inst, actions) = {
        let (mut inst, _) = start(p, t0);
        let at = inst.next_deadline().expect("timer");
        let actions = inst.handle(Event::TimerFired, at);
        (inst, actions)
    };
    assert!(actions.contains(&Action::SendGratuitous { count: 3 }));
    let became = t0 + Duration::from_nanos(3_804_687_500);
    for s in 1..=10 {
        let actions = inst.handle(Event::TimerFired, became + s * SEC);
        let garps: Vec<_> = actions
            .iter()
            .filter(|a| matches!(a, Action::SendGratuitous { .. }))
            .collect();
        if s == 10 {
            assert_eq!(garps, vec![&Action::SendGratuitous { count: 1 }]);
        } else {
            assert!(garps.is_empty(), "at {s} s");
        }
    }
}

#[test]
fn leaving_master_cancels_pending_garps() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 50), t0);
    inst.handle(advert_event(&inst, lower_peer(), 100), became + SEC / 2);
    // Only the backup timer is left, which the master's adverts keep pushing.
    for s in 1..=10 {
        let now = became + s * SEC;
        inst.handle(advert_event(&inst, lower_peer(), 100), now);
        assert_eq!(inst.handle(Event::TimerFired, now), vec![]);
    }
}

#[test]
fn counters_follow_a_takeover_and_release() {
    let t0 = Instant::now();
    let (mut inst, became) = master(params(Version::V2, 50), t0);
    inst.handle(Event::TimerFired, became + SEC);
    inst.handle(advert_event(&inst, lower_peer(), 100), became + 2 * SEC);
    let c = inst.counters();
    assert_eq!(c.adverts_sent, 2);
    assert_eq!(c.adverts_received, 1);
    assert_eq!(c.became_master, 1);
    assert_eq!(c.released_master, 1);
    assert_eq!(c.transitions, 3);
}

#[test]
fn invalid_params_are_rejected() {
    let base = params(Version::V2, 100);
    let cases: Vec<(InstanceParams, ParamError)> = vec![
        (
            InstanceParams {
                vrid: 0,
                ..base.clone()
            },
            ParamError::Vrid,
        ),
        (
            InstanceParams {
                priority: 0,
                ..base.clone()
            },
            ParamError::Priority,
        ),
        (
            InstanceParams {
                addresses: vec![],
                ..base.clone()
            },
            ParamError::NoAddresses,
        ),
        (
            InstanceParams {
                addresses: vec!["2001:db8::1".parse().expect("address")],
                ..base.clone()
            },
            ParamError::FamilyMismatch {
                addr: "2001:db8::1".parse().expect("address"),
                primary: me(),
            },
        ),
        (
            InstanceParams {
                primary_addr: "fe80::1".parse().expect("address"),
                addresses: vec!["2001:db8::1".parse().expect("address")],
                ..base.clone()
            },
            ParamError::V2RequiresIpv4,
        ),
        (
            InstanceParams {
                advert_int: AdvertInterval::from_centis(150),
                ..base.clone()
            },
            ParamError::Interval {
                version: Version::V2,
                interval: AdvertInterval::from_centis(150),
            },
        ),
        (
            InstanceParams {
                version: Version::V3,
                ..base.clone()
            },
            ParamError::AuthRequiresV2,
        ),
        (
            InstanceParams {
                version: Version::V3,
                auth: Auth::None,
                advert_int: AdvertInterval::from_centis(0),
                ..base.clone()
            },
            ParamError::Interval {
                version: Version::V3,
                interval: AdvertInterval::from_centis(0),
            },
        ),
        (
            InstanceParams {
                down_timer_adverts: 0,
                ..base.clone()
            },
            ParamError::DownTimerAdverts,
        ),
    ];
    for (p, err) in cases {
        assert_eq!(Instance::new(p).err(), Some(err));
    }
}

#[test]
fn ipv6_v3_instance_runs() {
    let t0 = Instant::now();
    let p = InstanceParams::new(
        "VI_6",
        Version::V3,
        7,
        "fe80::2".parse().expect("address"),
        vec!["2001:db8::100".parse().expect("address")],
    );
    let (mut inst, _) = start(p, t0);
    let advert = inst.advert(150);
    inst.handle(
        Event::AdvertReceived {
            src: "fe80::1".parse().expect("address"),
            advert,
        },
        t0 + SEC,
    );
    assert_eq!(inst.counters().adverts_received, 1);
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn resume_master_keeps_addresses_and_adverts_at_once() {
    let t0 = Instant::now();
    let mut p = params(Version::V3, 100);
    p.advert_int = AdvertInterval::from_centis(20);
    p.resume_master = true;
    let (mut inst, actions) = start(p, t0);
    // No AddAddresses, no RemoveAddresses, no notify hooks: to the network
    // and to the scripts the restart never happened.
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::SendGratuitous { count: 5 },
            Action::StateChanged {
                from: State::Initialize,
                to: State::Master,
                reason: TransitionReason::Resumed,
            },
        ]
    );
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.counters().became_master, 0);
    // Adverts go on at the configured interval.
    assert_eq!(inst.next_deadline(), Some(t0 + 200 * MS));
    assert_eq!(
        inst.handle(Event::TimerFired, t0 + 200 * MS),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(inst.next_deadline(), Some(t0 + 400 * MS));
    // And it is an ordinary master: a higher priority takes over.
    let actions = inst.handle(advert_event(&inst, lower_peer(), 200), t0 + 300 * MS);
    assert!(actions.contains(&Action::RemoveAddresses), "{actions:?}");
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn resume_master_with_a_fault_at_startup_removes_the_addresses() {
    let t0 = Instant::now();
    let mut p = params(Version::V3, 100);
    p.resume_master = true;
    let mut inst = Instance::new(p).unwrap();
    inst.handle(
        Event::TrackerChanged {
            tracker: "interface:eth0".into(),
            effect: TrackerEffect::Fault(true),
        },
        t0,
    );
    let actions = inst.handle(Event::Startup, t0);
    let mut want = vec![Action::RemoveAddresses];
    want.extend(changed(
        State::Initialize,
        State::Fault,
        TransitionReason::Startup,
    ));
    assert_eq!(actions, want);
    assert_eq!(inst.next_deadline(), None);
}
