//! Two or three instances on one simulated segment: every advert goes
//! through the real codec (encode as a whole IPv4 packet, decode on the
//! other side) and arrives at once. Reproduces the keepalived lab timings.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::super::instance::{Action, Event, Instance, State};
use super::super::packet::{
    decode_ipv4, encode_ipv4, AdvertInterval, Auth, Version, MCAST_GROUP_V4,
};
use super::super::params::InstanceParams;

struct Node {
    addr: Ipv4Addr,
    inst: Instance,
    running: bool,
}

struct Segment {
    nodes: Vec<Node>,
    /// (time, node index, new state) of every transition.
    log: Vec<(Instant, usize, State)>,
    ip_id: u16,
}

impl Segment {
    fn new(version: Version, interval: AdvertInterval, nodes: &[(Ipv4Addr, u8)]) -> Self {
        let nodes = nodes
            .iter()
            .map(|(addr, priority)| {
                let mut p = InstanceParams::new(
                    format!("node-{addr}"),
                    version,
                    51,
                    IpAddr::V4(*addr),
                    vec![IpAddr::V4(Ipv4Addr::new(10, 98, 0, 100))],
                );
                p.priority = *priority;
                p.advert_int = interval;
                if version == Version::V2 {
                    p.auth = Auth::pass(b"1111");
                }
                Node {
                    addr: *addr,
                    inst: Instance::new(p).expect("valid"),
                    running: false,
                }
            })
            .collect();
        Segment {
            nodes,
            log: Vec::new(),
            ip_id: 0,
        }
    }

    /// Delivers `event` to node `index`, then every advert that causes,
    /// until the segment is quiet.
    fn deliver(&mut self, index: usize, event: Event, now: Instant) {
        self.deliver_all(vec![(index, event)], now);
    }

    /// Delivers the events in order before any advert they cause, so
    /// nodes whose timers expire together all act before hearing others.
    fn deliver_all(&mut self, events: Vec<(usize, Event)>, now: Instant) {
        let mut queue = VecDeque::from(events);
        while let Some((i, event)) = queue.pop_front() {
            match event {
                Event::Startup => self.nodes[i].running = true,
                Event::Shutdown => self.nodes[i].running = false,
                _ => {}
            }
            let actions = self.nodes[i].inst.handle(event, now);
            for action in actions {
                match action {
                    Action::SendAdvert { priority } => {
                        self.ip_id = self.ip_id.wrapping_add(1);
                        let advert = self.nodes[i].inst.advert(priority);
                        let packet =
                            encode_ipv4(&advert, self.nodes[i].addr, MCAST_GROUP_V4, self.ip_id)
                                .expect("encodes");
                        let received = decode_ipv4(&packet).expect("decodes");
                        for (j, node) in self.nodes.iter().enumerate() {
                            if j != i && node.running {
                                queue.push_back((
                                    j,
                                    Event::AdvertReceived {
                                        src: received.src.into(),
                                        advert: received.advert.clone(),
                                    },
                                ));
                            }
                        }
                    }
                    Action::StateChanged { to, .. } => self.log.push((now, i, to)),
                    _ => {}
                }
            }
        }
    }

    /// Runs the timers of running nodes up to `until`, earliest first;
    /// timers due at the same instant fire together.
    fn run_until(&mut self, until: Instant) {
        loop {
            let deadline = |n: &Node| n.inst.next_deadline().filter(|_| n.running);
            let next = self.nodes.iter().filter_map(deadline).min();
            let Some(at) = next.filter(|at| *at <= until) else {
                break;
            };
            let due = (0..self.nodes.len())
                .filter(|i| deadline(&self.nodes[*i]) == Some(at))
                .map(|i| (i, Event::TimerFired))
                .collect();
            self.deliver_all(due, at);
        }
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.inst.state()).collect()
    }

    fn masters_since(&self, since: Instant) -> Vec<(Duration, usize)> {
        self.log
            .iter()
            .filter(|(at, _, to)| *at >= since && *to == State::Master)
            .map(|(at, i, _)| (*at - since, *i))
            .collect()
    }
}

const LB1: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const LB2: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);
const LB3: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 3);

/// The keepalived lab: lb1 at 100 and lb2 at 50. lb1 wins the election, a
/// graceful stop hands over after the skew time, and lb1 preempts again
/// after its restart.
fn lab(version: Version, interval: AdvertInterval, skew_50: Duration, down_100: Duration) {
    let t0 = Instant::now();
    let mut seg = Segment::new(version, interval, &[(LB1, 100), (LB2, 50)]);
    seg.deliver(0, Event::Startup, t0);
    seg.deliver(1, Event::Startup, t0);
    let step = interval.as_duration();

    seg.run_until(t0 + 40 * step);
    assert_eq!(seg.states(), [State::Master, State::Backup]);
    assert_eq!(seg.masters_since(t0), vec![(down_100, 0)]);

    let stop = t0 + 40 * step + step / 2;
    seg.deliver(0, Event::Shutdown, stop);
    seg.run_until(stop + 40 * step);
    assert_eq!(seg.states(), [State::Initialize, State::Master]);
    assert_eq!(seg.masters_since(stop), vec![(skew_50, 1)]);

    let restart = stop + 40 * step;
    seg.deliver(0, Event::Startup, restart);
    seg.run_until(restart + 40 * step);
    assert_eq!(seg.states(), [State::Master, State::Backup]);
    // lb1 ignores lb2's lower-priority adverts and preempts once its
    // master-down timer runs out; lb2 yields to its first advert.
    assert_eq!(seg.masters_since(restart), vec![(down_100, 0)]);
}

#[test]
fn keepalived_lab_v2_timings() {
    lab(
        Version::V2,
        AdvertInterval::from_secs(1),
        Duration::from_nanos(804_687_500),
        Duration::from_nanos(3_609_375_000),
    );
}

#[test]
fn keepalived_lab_v3_timings() {
    lab(
        Version::V3,
        AdvertInterval::from_centis(10),
        Duration::from_nanos(80_468_750),
        Duration::from_nanos(360_937_500),
    );
}

#[test]
fn equal_priorities_elect_the_highest_address() {
    let t0 = Instant::now();
    let mut seg = Segment::new(
        Version::V3,
        AdvertInterval::from_centis(100),
        &[(LB1, 100), (LB3, 100), (LB2, 100)],
    );
    for i in 0..3 {
        seg.deliver(i, Event::Startup, t0);
    }
    seg.run_until(t0 + Duration::from_secs(30));
    // All time out together and go master; the adverts settle it.
    assert_eq!(seg.states(), [State::Backup, State::Master, State::Backup]);
}

#[test]
fn a_silent_master_is_replaced_after_the_master_down_interval() {
    let t0 = Instant::now();
    let mut seg = Segment::new(
        Version::V2,
        AdvertInterval::from_secs(1),
        &[(LB1, 100), (LB2, 50)],
    );
    seg.deliver(0, Event::Startup, t0);
    seg.deliver(1, Event::Startup, t0);
    let crash = t0 + Duration::from_secs(10);
    seg.run_until(crash);
    // lb1 vanishes without a priority-0 advert (crash, cable).
    seg.nodes[0].running = false;
    seg.run_until(t0 + Duration::from_secs(20));
    assert_eq!(seg.nodes[1].inst.state(), State::Master);
    // Master at 3.609375 s, adverts every second: the last at 9.609375 s.
    // lb2 takes over 3.80 s after it, as on the wire.
    let last_advert = t0 + Duration::from_nanos(9_609_375_000);
    let takeover = last_advert + Duration::from_nanos(3_804_687_500);
    assert_eq!(seg.masters_since(crash), vec![(takeover - crash, 1)]);
}
