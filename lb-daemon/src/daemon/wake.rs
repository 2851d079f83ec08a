//! Why the main loop woke up: one small `select!` names the event, and
//! [`Daemon`]'s `on_*` methods handle it, so no handler hides in a
//! `select!` arm.

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::Daemon;

/// One wake-up of the main loop.
#[derive(Debug)]
pub(super) enum Wake {
    /// SIGINT or SIGTERM (the signal's name, for the log).
    Stop { signal: &'static str },
    /// SIGUSR1: a restart in place.
    Restart,
    /// SIGHUP.
    Reload,
    /// Time to tell systemd lbd is alive.
    Watchdog,
    /// lbctl changed an override.
    Override,
    /// Time to recount connections (lc/wlc); only with a data plane.
    Recount,
    /// The health checkers changed a verdict; only with a data plane.
    Health,
    /// The reconcile deadline passed; only with a data plane.
    Reconcile,
    /// A deadline of announcing (warm-up or drain over).
    Announce,
    /// Connection sync asks something of the data plane.
    Sync(crate::connsync::driver::ToDataplane),
}

/// The signals lbd acts on.
pub(super) struct Signals {
    int: Signal,
    term: Signal,
    usr1: Signal,
    hup: Signal,
}

impl Signals {
    pub(super) fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            usr1: signal(SignalKind::user_defined1())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

impl Daemon {
    /// Waits for the next event. Every branch is cancel-safe: the ones not
    /// taken lose nothing and are polled again on the next call.
    pub(super) async fn next_wake(&mut self) -> Wake {
        let has_dataplane = self.forwarding.is_some();
        let deadline = self.last + self.next;
        let s = &mut self.signals;
        let health = self.forwarding.as_mut().map(|f| &mut f.health);
        let announce_at = self.announce.as_ref().and_then(|a| a.next_deadline());
        let sync = match self.sync.as_mut() {
            Some(super::sync::Sync::Lbd(s)) => Some(s),
            _ => None,
        };
        tokio::select! {
            _ = s.int.recv() => Wake::Stop { signal: "SIGINT" },
            _ = s.term.recv() => Wake::Stop { signal: "SIGTERM" },
            _ = s.usr1.recv() => Wake::Restart,
            _ = s.hup.recv() => Wake::Reload,
            _ = self.ops.watchdog.tick() => Wake::Watchdog,
            Ok(()) = self.ops.changes.changed() => Wake::Override,
            _ = self.recount.tick(), if has_dataplane => Wake::Recount,
            Some(()) = async { health?.changed().await.ok() } => Wake::Health,
            _ = tokio::time::sleep_until(deadline), if has_dataplane => Wake::Reconcile,
            Some(req) = async { sync?.next_request().await } => Wake::Sync(req),
            _ = async { tokio::time::sleep_until(announce_at.expect("checked").into()).await }, if announce_at.is_some() => Wake::Announce,
        }
    }
}
