//! systemd notifications (Type=notify): READY=1 once services are applied,
//! RELOADING=1 / READY=1 around a reload, STOPPING=1, and WATCHDOG=1 from
//! the main loop at half of WatchdogSec. Without NOTIFY_SOCKET, nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("sd_notify: {e}");
    }
}

pub fn ready(why: &str) {
    debug!("sd_notify READY=1 ({why})");
    send(&[NotifyState::Ready, NotifyState::Status(why)]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// WATCHDOG=1 at half of WATCHDOG_USEC, when systemd asks for it.
pub struct Watchdog {
    interval: Option<tokio::time::Interval>,
}

impl Watchdog {
    /// From WATCHDOG_USEC (and WATCHDOG_PID); call inside the runtime.
    pub fn from_env() -> Self {
        let interval = sd_notify::watchdog_enabled().map(|usec| {
            let period = super::watchdog_interval(usec);
            debug!(?period, "systemd watchdog enabled");
            let mut i = tokio::time::interval(period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Self { interval }
    }

    pub fn period(&self) -> Option<Duration> {
        self.interval.as_ref().map(|i| i.period())
    }

    /// Resolves when the next ping is due (never without a watchdog).
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    pub fn ping(&self) {
        send(&[NotifyState::Watchdog]);
    }
}
