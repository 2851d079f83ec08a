//! When a VIP is announced to the routers, decided with no I/O: events and
//! the time in, routes to add or remove out.
//!
//! A VIP is announced only while all hold: the data plane is attached with
//! its maps loaded; the virtual servers on that address meet their quorum;
//! the node is not draining; the warm-up after start has passed (so that
//! connection sync can fill the table first). A drain withdraws every VIP
//! at once, keeps forwarding for the drain time (longer than the routers
//! take to converge), then asks to stop.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use serde::Serialize;

/// `lb_announce_warmup` and `lb_announce_drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub warmup: Duration,
    pub drain: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The data plane was attached (true) or lost (false).
    Attached(bool),
    /// Every VIP of the configuration with whether all its virtual servers
    /// meet quorum. VIPs no longer listed are withdrawn and forgotten.
    Vips(BTreeMap<IpAddr, bool>),
    /// Withdraw everything, forward for the drain time, then stop.
    Drain,
    /// Only the time moved (a deadline from [`Core::next_deadline`]).
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Announce(IpAddr),
    Withdraw(IpAddr),
    /// The drain time is over: lbd stops.
    Stop,
}

/// Why a VIP is or is not announced, first reason first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    Announced,
    Draining,
    NotAttached,
    NoQuorum,
    WarmingUp,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::Announced => "announced",
            Why::Draining => "draining",
            Why::NotAttached => "data plane not attached",
            Why::NoQuorum => "no quorum",
            Why::WarmingUp => "warming up",
        })
    }
}

#[derive(Debug)]
pub struct Core {
    timing: Timing,
    warm_at: Instant,
    attached: bool,
    quorum: BTreeMap<IpAddr, bool>,
    /// No [`Event::Vips`] yet: nothing is decided (a resumed announcement
    /// is held until the VIPs' quorum is known).
    vips_known: bool,
    drain_until: Option<Instant>,
    stopped: bool,
    announced: BTreeSet<IpAddr>,
}

impl Core {
    /// A core started at `now`. `resumed`: a restart in place whose VIPs
    /// were announced when the previous lbd handed over (no warm-up: the
    /// table it left is still there); those start announced so that no
    /// route flaps.
    pub fn new(timing: Timing, now: Instant, resumed: &BTreeSet<IpAddr>) -> Core {
        Core {
            timing,
            warm_at: if resumed.is_empty() {
                now + timing.warmup
            } else {
                now
            },
            attached: false,
            quorum: BTreeMap::new(),
            vips_known: false,
            drain_until: None,
            stopped: false,
            announced: resumed.clone(),
        }
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::Attached(a) => self.attached = a,
            Event::Vips(q) => {
                self.quorum = q;
                self.vips_known = true;
            }
            Event::Drain => {
                if self.drain_until.is_none() {
                    self.drain_until = Some(now + self.timing.drain);
                }
            }
            Event::Tick => {}
        }
        let mut actions = Vec::new();
        if !self.vips_known && self.drain_until.is_none() {
            return actions;
        }
        let want: BTreeSet<IpAddr> = self
            .quorum
            .keys()
            .copied()
            .filter(|vip| self.why(vip, now) == Why::Announced)
            .collect();
        // Withdrawals first: a route that must go never waits on others.
        for vip in self.announced.difference(&want) {
            actions.push(Action::Withdraw(*vip));
        }
        for vip in want.difference(&self.announced) {
            actions.push(Action::Announce(*vip));
        }
        self.announced = want;
        if let Some(until) = self.drain_until {
            if now >= until && !self.stopped {
                self.stopped = true;
                actions.push(Action::Stop);
            }
        }
        actions
    }

    /// Whether `vip` should be announced at `now`, or the first reason not.
    fn why(&self, vip: &IpAddr, now: Instant) -> Why {
        if self.drain_until.is_some() {
            Why::Draining
        } else if !self.attached {
            Why::NotAttached
        } else if !self.quorum.get(vip).copied().unwrap_or(false) {
            Why::NoQuorum
        } else if now < self.warm_at {
            Why::WarmingUp
        } else {
            Why::Announced
        }
    }

    /// Every VIP and why it is (or is not) announced.
    pub fn status(&self, now: Instant) -> Vec<(IpAddr, Why)> {
        self.quorum
            .keys()
            .map(|vip| {
                let why = if self.announced.contains(vip) {
                    Why::Announced
                } else {
                    match self.why(vip, now) {
                        // Not yet handled at this instant: still waiting.
                        Why::Announced => Why::WarmingUp,
                        w => w,
                    }
                };
                (*vip, why)
            })
            .collect()
    }

    pub fn announced(&self) -> &BTreeSet<IpAddr> {
        &self.announced
    }

    pub fn draining(&self) -> bool {
        self.drain_until.is_some()
    }

    /// When to send [`Event::Tick`]: the end of the warm-up (while some
    /// VIP waits on it) or of the drain.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(until) = self.drain_until {
            return (!self.stopped).then_some(until);
        }
        let waiting = self.attached && self.quorum.values().any(|q| *q);
        (waiting && self.announced.len() < self.quorum.values().filter(|q| **q).count())
            .then_some(self.warm_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARM: Duration = Duration::from_secs(10);
    const DRAIN: Duration = Duration::from_secs(5);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn vips(list: &[(&str, bool)]) -> Event {
        Event::Vips(list.iter().map(|(v, q)| (ip(v), *q)).collect())
    }

    fn core(t0: Instant) -> Core {
        Core::new(
            Timing {
                warmup: WARM,
                drain: DRAIN,
            },
            t0,
            &BTreeSet::new(),
        )
    }

    #[test]
    fn announced_only_once_attached_with_quorum_after_the_warm_up() {
        let t0 = Instant::now();
        let mut c = core(t0);
        assert!(c
            .handle(vips(&[("10.0.0.1", true), ("10.0.0.2", false)]), t0)
            .is_empty());
        assert_eq!(c.status(t0)[0].1, Why::NotAttached);
        assert!(c.handle(Event::Attached(true), t0).is_empty());
        assert_eq!(c.status(t0)[0].1, Why::WarmingUp);
        assert_eq!(c.status(t0)[1].1, Why::NoQuorum);
        assert_eq!(c.next_deadline(), Some(t0 + WARM));
        assert!(c
            .handle(Event::Tick, t0 + WARM - Duration::from_millis(1))
            .is_empty());
        assert_eq!(
            c.handle(Event::Tick, t0 + WARM),
            vec![Action::Announce(ip("10.0.0.1"))]
        );
        assert_eq!(c.status(t0 + WARM)[0].1, Why::Announced);
        assert_eq!(c.next_deadline(), None);
        // The second VIP's quorum comes: announced at once (warm already).
        assert_eq!(
            c.handle(vips(&[("10.0.0.1", true), ("10.0.0.2", true)]), t0 + WARM),
            vec![Action::Announce(ip("10.0.0.2"))]
        );
    }

    #[test]
    fn losing_quorum_or_the_data_plane_withdraws_at_once() {
        let t0 = Instant::now();
        let mut c = core(t0);
        c.handle(vips(&[("10.0.0.1", true), ("10.0.0.2", true)]), t0);
        c.handle(Event::Attached(true), t0);
        assert_eq!(c.handle(Event::Tick, t0 + WARM).len(), 2);
        let t = t0 + WARM * 2;
        assert_eq!(
            c.handle(vips(&[("10.0.0.1", false), ("10.0.0.2", true)]), t),
            vec![Action::Withdraw(ip("10.0.0.1"))]
        );
        assert_eq!(c.status(t)[0].1, Why::NoQuorum);
        assert_eq!(
            c.handle(vips(&[("10.0.0.1", true), ("10.0.0.2", true)]), t),
            vec![Action::Announce(ip("10.0.0.1"))]
        );
        let mut out = c.handle(Event::Attached(false), t);
        out.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            out,
            vec![
                Action::Withdraw(ip("10.0.0.1")),
                Action::Withdraw(ip("10.0.0.2"))
            ]
        );
        assert_eq!(c.status(t)[1].1, Why::NotAttached);
        // A VIP leaving the configuration is withdrawn.
        c.handle(Event::Attached(true), t);
        assert_eq!(
            c.handle(vips(&[("10.0.0.2", true)]), t),
            vec![Action::Withdraw(ip("10.0.0.1"))]
        );
    }

    #[test]
    fn drain_withdraws_then_stops_after_the_drain_time() {
        let t0 = Instant::now();
        let mut c = core(t0);
        c.handle(vips(&[("10.0.0.1", true)]), t0);
        c.handle(Event::Attached(true), t0);
        c.handle(Event::Tick, t0 + WARM);
        let t = t0 + WARM + Duration::from_secs(1);
        assert_eq!(
            c.handle(Event::Drain, t),
            vec![Action::Withdraw(ip("10.0.0.1"))]
        );
        assert!(c.draining());
        assert_eq!(c.status(t)[0].1, Why::Draining);
        assert_eq!(c.next_deadline(), Some(t + DRAIN));
        // Quorum coming and going while draining announces nothing, and a
        // second drain does not push the stop back.
        assert!(c
            .handle(vips(&[("10.0.0.1", true)]), t + DRAIN / 2)
            .is_empty());
        assert!(c.handle(Event::Drain, t + DRAIN / 2).is_empty());
        assert!(c
            .handle(Event::Tick, t + DRAIN - Duration::from_millis(1))
            .is_empty());
        assert_eq!(c.handle(Event::Tick, t + DRAIN), vec![Action::Stop]);
        assert!(c.handle(Event::Tick, t + DRAIN * 2).is_empty());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn a_restart_in_place_keeps_its_announcements_without_warm_up() {
        let t0 = Instant::now();
        let resumed: BTreeSet<IpAddr> = [ip("10.0.0.1")].into();
        let mut c = Core::new(
            Timing {
                warmup: WARM,
                drain: DRAIN,
            },
            t0,
            &resumed,
        );
        assert!(c.announced().contains(&ip("10.0.0.1")));
        c.handle(Event::Attached(true), t0);
        // The VIP stays: no withdraw, no announce (the route is kept).
        assert!(c.handle(vips(&[("10.0.0.1", true)]), t0).is_empty());
        assert_eq!(c.status(t0)[0].1, Why::Announced);
    }
}
