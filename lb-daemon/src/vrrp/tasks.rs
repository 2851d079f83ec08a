//! The tasks of the VRRP runtime, and what feeds what.
//!
//! One driver task per unit (a `vrrp_sync_group` with its members, or a
//! lone instance) owns the sans-I/O cores of its members and carries out
//! what they ask. Around it, a reader per instance socket and the tracker
//! tasks feed one bounded channel:
//!
//! ```text
//!  VrrpRuntime ──stop (watch)─────────────────────────────┐
//!  (runtime.rs)                                            ▼
//!  reader, one per member ──Input::Packet(id, _)──►┌──────────────────┐
//!  (reader.rs)                                     │ driver, one per  │──► effects.rs: socket,
//!  link watcher ──┐                                │ unit (driver.rs) │    netlink, AF_PACKET,
//!  script runners ┴─TrackerMsg─► forwarder ─────►  │ timers inside    │    notify scripts
//!  (track.rs)                   Input::Tracker     └──────────────────┘──► StatusBoard
//! ```
//!
//! The driver checks stop, then timers, then messages (in that order, so
//! a flood of packets never starves the advert timer), feeds the core, and
//! carries out the returned actions in order. A sync group is updated
//! after every event, in the same task, so its members move together
//! without races. Nothing but the driver touches a core, so there are no
//! locks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info_span, Instrument, Span};

use crate::net::Netlink;

use super::config_map::UnitSpec;
use super::driver::{Driver, Input, CHANNEL};
use super::member::{MemberId, Members};
use super::network::VrrpSocket;
use super::reader::read_loop;
use super::restart::{KeptMaster, RestartState};
use super::status::StatusBoard;
use super::track::{self, TrackerMsg};

/// Starts the driver of `unit`; it runs until `stop` and returns the
/// masters it kept for a restart (when `keep_masters` is set by then).
pub fn spawn_driver(
    unit: UnitSpec,
    status: StatusBoard,
    resume: Option<Arc<RestartState>>,
    keep_masters: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<Vec<KeptMaster>> {
    tokio::spawn(async move {
        // A netlink connection per unit: a connection serves one dump
        // at a time (a second one gets EBUSY).
        match Netlink::new() {
            Ok(net) => {
                Driver::new(unit, net, status, resume, keep_masters)
                    .run(stop)
                    .await
            }
            Err(e) => {
                // `e` reads "netlink: ...".
                error!(unit = %unit.key(), "{e}");
                Vec::new()
            }
        }
    })
}

/// Starts the reader of member `id`'s socket, logging under `span`.
pub fn spawn_reader(
    id: MemberId,
    socket: Arc<VrrpSocket>,
    peers: Vec<IpAddr>,
    tx: mpsc::Sender<Input>,
    span: Span,
) -> JoinHandle<()> {
    tokio::spawn(read_loop(id, socket, peers, tx).instrument(span))
}

/// Starts the trackers of a unit: one link watcher for every interface
/// its members track, one runner per script (a script two members track
/// runs once), and the forwarder from their channel into the driver's.
pub fn spawn_trackers(
    members: &Members,
    tx: &mpsc::Sender<Input>,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    // Trackers talk TrackerMsg; forward into the driver's channel.
    let (ttx, mut trx) = mpsc::channel::<TrackerMsg>(CHANNEL);
    let fwd = tx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(m) = trx.recv().await {
            if fwd.send(Input::Tracker(m)).await.is_err() {
                return;
            }
        }
    }));
    let links: BTreeSet<String> = members
        .iter()
        .flat_map(|m| m.spec.interfaces.iter().map(|t| t.name.clone()))
        .collect();
    if !links.is_empty() {
        tasks.push(tokio::spawn(track::watch_links(
            links.into_iter().collect(),
            ttx.clone(),
            stop.clone(),
        )));
    }
    let mut scripts = BTreeMap::new();
    for m in members.iter() {
        for t in &m.spec.scripts {
            scripts.insert(t.script.name.clone(), t.script.clone());
        }
    }
    for (_, script) in scripts {
        let span = info_span!("vrrp_script", script = %script.name);
        tasks.push(tokio::spawn(
            track::run_script(script, ttx.clone(), stop.clone()).instrument(span),
        ));
    }
    tasks
}
