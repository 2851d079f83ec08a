//! Trackers: `track_interface` from the kernel's link state, and
//! `vrrp_script` run as child processes. Each runs as a task of its own and
//! reports up/down changes to its unit's driver, so nothing here can delay
//! an advert.
//!
//! A script succeeds when it exits 0 within its `timeout` (a script still
//! running then is killed, its whole process group, and counts as a
//! failure). It starts up, or down with `init_fail`; `fall` failures in a
//! row take it down and `rise` successes in a row bring it back up.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::VrrpScript;
use crate::net::Netlink;
use crate::script::run::{self as script_run, ScriptEnd};

/// How often link state is read even without a netlink event.
const LINK_POLL: Duration = Duration::from_secs(1);

/// A tracked object changed (or reports its first state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerMsg {
    Link { name: String, up: bool },
    Script { name: String, up: bool },
}

/// Watches the links in `names` and reports every change, and each link's
/// first state. A link that does not exist is down.
pub async fn watch_links(
    names: Vec<String>,
    tx: mpsc::Sender<TrackerMsg>,
    mut stop: watch::Receiver<bool>,
) {
    use rtnetlink::MulticastGroup;
    let mut events = match rtnetlink::new_multicast_connection(&[MulticastGroup::Link]) {
        Ok((conn, _handle, events)) => {
            tokio::spawn(conn);
            Some(events)
        }
        Err(e) => {
            warn!("link events unavailable ({e}): polling link state");
            None
        }
    };
    let net = match Netlink::new() {
        Ok(n) => n,
        Err(e) => {
            // `e` reads "netlink: ...".
            warn!("{e}: interfaces are not tracked");
            return;
        }
    };
    let mut known: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        match net.links().await {
            Ok(links) => {
                for name in &names {
                    let up = links.iter().any(|l| &l.name == name && l.up);
                    if known.insert(name.clone(), up) != Some(up) {
                        info!(interface = %name, up, "tracked interface state");
                        let msg = TrackerMsg::Link {
                            name: name.clone(),
                            up,
                        };
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(e) => warn!("reading link state: {e}"),
        }
        let event = async {
            match &mut events {
                Some(rx) => {
                    if rx.recv().await.is_err() {
                        return false;
                    }
                    // Let a burst of events settle into one read.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    while rx.try_recv().is_ok() {}
                    true
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            open = event => if !open {
                warn!("link events stopped: polling link state");
                events = None;
            },
            _ = tokio::time::sleep(LINK_POLL) => {}
        }
    }
}

/// The rise/fall state of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptState {
    pub up: bool,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl ScriptState {
    pub fn new(script: &VrrpScript) -> ScriptState {
        ScriptState {
            up: !script.init_fail,
            streak: 0,
            rise: script.rise.max(1),
            fall: script.fall.max(1),
        }
    }

    /// Records one result; returns whether the state flipped.
    pub fn record(&mut self, success: bool) -> bool {
        if success == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let need = if self.up { self.fall } else { self.rise };
        if self.streak >= need {
            self.up = success;
            self.streak = 0;
            true
        } else {
            false
        }
    }
}

/// Runs `script` every interval until stopped, reporting its first state
/// and every change.
pub async fn run_script(
    script: VrrpScript,
    tx: mpsc::Sender<TrackerMsg>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = ScriptState::new(&script);
    let report = |up: bool| TrackerMsg::Script {
        name: script.name.clone(),
        up,
    };
    if tx.send(report(state.up)).await.is_err() {
        return;
    }
    let interval = script.interval.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => {}
        }
        let success = tokio::select! {
            _ = stop.changed() => return,
            ok = run_once(&script) => ok,
        };
        if state.record(success) {
            info!(script = %script.name, up = state.up, "vrrp_script state change");
            if tx.send(report(state.up)).await.is_err() {
                return;
            }
        }
    }
}

/// One run: exit 0 within the timeout. The script runs in a process group
/// of its own, killed whole on timeout and when the script ends (its
/// background children too), or when this future is dropped.
async fn run_once(script: &VrrpScript) -> bool {
    let timeout = if script.timeout.is_zero() {
        script.interval
    } else {
        script.timeout
    };
    match script_run::run_script(&script.script, script.user.as_ref(), &[], timeout).await {
        ScriptEnd::Exited(0) => true,
        end => {
            debug!(script = %script.name, "vrrp_script {end}");
            if matches!(
                end,
                ScriptEnd::TimedOut(_) | ScriptEnd::Refused(_) | ScriptEnd::Failed(_)
            ) {
                warn!(script = %script.name, "vrrp_script `{}` {end}", script.script);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(rise: u32, fall: u32, init_fail: bool) -> VrrpScript {
        VrrpScript {
            name: "s".into(),
            script: "/bin/true".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight: 0,
            weight_reverse: false,
            rise,
            fall,
            user: None,
            init_fail,
            location: Default::default(),
        }
    }

    #[test]
    fn rise_and_fall_need_streaks() {
        let mut s = ScriptState::new(&script(2, 3, false));
        assert!(s.up);
        assert!(!s.record(false));
        assert!(!s.record(false));
        assert!(!s.record(true)); // streak broken
        assert!(!s.record(false));
        assert!(!s.record(false));
        assert!(s.record(false));
        assert!(!s.up);
        assert!(!s.record(true));
        assert!(s.record(true));
        assert!(s.up);
    }

    #[test]
    fn init_fail_starts_down() {
        let mut s = ScriptState::new(&script(1, 1, true));
        assert!(!s.up);
        assert!(s.record(true));
    }

    #[tokio::test]
    async fn a_hanging_script_is_killed_at_its_timeout() {
        let mut s = script(1, 1, false);
        s.script = "/bin/sleep 30".into();
        s.timeout = Duration::from_millis(100);
        let start = std::time::Instant::now();
        assert!(!run_once(&s).await);
        assert!(start.elapsed() < Duration::from_secs(5));
        s.script = "/bin/true".into();
        assert!(run_once(&s).await);
        s.script = "/bin/false".into();
        assert!(!run_once(&s).await);
    }
}
