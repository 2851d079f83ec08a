//! The sync task's loop: it owns the sans-I/O [`Core`] and the sockets,
//! names each wake-up ([`Wake`]) and hands it to one `on_*` method, then
//! carries out the core's actions. Writes into the connection table and
//! the reporting switch go to the main loop, which owns the data plane.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use super::core::{Action, Core, Entry, Report, Role};
use super::directory::Directory;
use super::settings::SyncSettings;
use super::socket::SyncSocket;
use super::status::{SyncBoard, SyncStatus};
use crate::vrrp::{State, StatusBoard};

/// What the sync task asks of the data plane (the main loop carries it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToDataplane {
    /// Synced entries to write into the connection table.
    Write(Vec<Entry>),
    /// Turn the program's reports on or off.
    Report(bool),
}

/// Where the data plane's reports come from (the program's ring buffer;
/// a fake in tests).
pub trait ReportSource: Send {
    /// Waits until reports may be waiting. Cancel-safe.
    fn readable(&mut self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>>;
    /// Hands each waiting report to `f` (`None`: one whose backend `dir`
    /// does not know); returns how many were read. A full batch means more
    /// may wait.
    fn drain(&mut self, dir: &Directory, f: &mut dyn FnMut(Option<Report>)) -> usize;
}

/// Where the role comes from.
pub enum RoleSource {
    /// No VRRP instance named: send and receive all the time.
    Both,
    /// The named instance: MASTER sends, any other state receives.
    Vrrp {
        instance: String,
        board: StatusBoard,
        changes: watch::Receiver<()>,
    },
}

impl RoleSource {
    pub fn vrrp(instance: String, board: StatusBoard) -> RoleSource {
        let changes = board.subscribe();
        RoleSource::Vrrp {
            instance,
            board,
            changes,
        }
    }

    /// The settings' instance on the VRRP runtime's board; without an
    /// instance, `Both`.
    pub fn for_settings(settings: &SyncSettings, vrrp: Option<StatusBoard>) -> RoleSource {
        match (&settings.vrrp_instance, vrrp) {
            (None, _) => RoleSource::Both,
            (Some(name), Some(b)) => RoleSource::vrrp(name.clone(), b),
            (Some(name), None) => {
                // Validation makes this unreachable; stay a backup.
                warn!(instance = %name, "lvs_sync_daemon: no VRRP runtime, receiving only");
                RoleSource::vrrp(name.clone(), StatusBoard::default())
            }
        }
    }

    pub(crate) fn current(&self) -> Role {
        match self {
            RoleSource::Both => Role::Both,
            RoleSource::Vrrp {
                instance, board, ..
            } => match board.get(instance) {
                Some(s) if s.state == State::Master => Role::Master,
                _ => Role::Backup,
            },
        }
    }

    pub(crate) async fn changed(&mut self) {
        match self {
            RoleSource::Both => std::future::pending().await,
            RoleSource::Vrrp { changes, .. } => {
                if changes.changed().await.is_err() {
                    // The VRRP runtime is gone: the role stays.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// The largest datagram read (a UDP datagram's largest payload).
const RECV_BUF: usize = 65_536;

/// One wake-up of the sync task.
enum Wake {
    Stop,
    Tick,
    Datagram(io::Result<usize>),
    Reports(io::Result<()>),
    Role,
}

pub struct Driver {
    core: Core,
    settings: SyncSettings,
    socket: SyncSocket,
    source: Option<Box<dyn ReportSource>>,
    role: RoleSource,
    directory: watch::Receiver<Arc<Directory>>,
    to_dataplane: mpsc::Sender<ToDataplane>,
    board: SyncBoard,
    buf: Vec<u8>,
}

impl Driver {
    /// The task's inputs around `core`, with the sockets opened.
    pub fn new(core: Core, socket: SyncSocket, inputs: super::tasks::TaskInputs) -> Driver {
        Driver {
            core,
            settings: inputs.settings,
            socket,
            source: inputs.source,
            role: inputs.role,
            directory: inputs.directory,
            to_dataplane: inputs.to_dataplane,
            board: inputs.board,
            buf: vec![0; RECV_BUF],
        }
    }

    /// Runs until `stop`; a master sends what it holds before it ends.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let start = self.core.start();
        self.carry_out(start).await;
        self.on_role().await;
        // What the ring held before this reader raises no wake-up.
        if self.source.is_some() {
            self.on_reports(Ok(())).await;
        }
        info!(role = ?self.core.role(), group = %self.socket.group(), "connection sync running");
        self.publish();
        loop {
            match self.next_wake(&mut stop).await {
                Wake::Stop => break,
                Wake::Tick => self.on_tick().await,
                Wake::Datagram(r) => self.on_datagram(r).await,
                Wake::Reports(r) => self.on_reports(r).await,
                Wake::Role => self.on_role().await,
            }
            self.publish();
        }
        // Stepping down flushes what is pending and turns reports off.
        let last = self.core.set_role(Role::Backup);
        self.carry_out(last).await;
        self.publish();
    }

    async fn next_wake(&mut self, stop: &mut watch::Receiver<bool>) -> Wake {
        let deadline = self.core.deadline();
        let has_source = self.source.is_some();
        let source = self.source.as_mut();
        tokio::select! {
            biased;
            _ = stop.changed() => Wake::Stop,
            _ = async { tokio::time::sleep_until(deadline.expect("checked").into()).await }, if deadline.is_some() => Wake::Tick,
            _ = self.role.changed() => Wake::Role,
            r = self.socket.recv(&mut self.buf) => Wake::Datagram(r.map(|(n, _)| n)),
            r = async { source.expect("checked").readable().await }, if has_source => Wake::Reports(r),
        }
    }

    /// The VRRP instance may have changed state.
    async fn on_role(&mut self) {
        let role = self.role.current();
        if role != self.core.role() {
            info!(from = ?self.core.role(), to = ?role, "connection sync role");
            let actions = self.core.set_role(role);
            self.carry_out(actions).await;
        }
    }

    /// A message waited long enough: it leaves.
    async fn on_tick(&mut self) {
        let actions = self.core.tick(Instant::now());
        self.carry_out(actions).await;
    }

    /// A datagram from the group.
    async fn on_datagram(&mut self, r: io::Result<usize>) {
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                warn!("sync socket: {e}");
                return;
            }
        };
        let dir = self.directory.borrow().clone();
        let actions = self.core.receive(&self.buf[..n], &dir);
        self.carry_out(actions).await;
    }

    /// The data plane reported connections.
    async fn on_reports(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            error!("sync reports: {e}; no longer read");
            self.source = None;
            return;
        }
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let dir = self.directory.borrow().clone();
        let now = Instant::now();
        let mut actions = Vec::new();
        let core = &mut self.core;
        // Bounded: a few batches, then the other inputs get their turn
        // (the ring stays readable and wakes us again).
        for _ in 0..4 {
            let n = source.drain(&dir, &mut |r| match r {
                Some(r) => actions.extend(core.report(&r, &dir, now)),
                None => core.unknown_backend_report(),
            });
            if n == 0 {
                break;
            }
        }
        self.carry_out(actions).await;
    }

    async fn carry_out(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(msg) => {
                    if let Err(e) = self.socket.send(&msg) {
                        self.core.send_failed();
                        debug!("sending a sync message: {e}");
                    }
                }
                Action::Write(entries) => self.ask(ToDataplane::Write(entries)).await,
                Action::Report(on) => self.ask(ToDataplane::Report(on)).await,
            }
        }
    }

    /// The main loop is gone only when lbd stops.
    async fn ask(&mut self, what: ToDataplane) {
        let _ = self.to_dataplane.send(what).await;
    }

    fn publish(&self) {
        let role = self.core.role();
        let counters = self.core.counters().clone();
        let settings = &self.settings;
        self.board.update(|s| match s {
            Some(s) => {
                s.role = role;
                s.counters = counters;
                s.error = None;
            }
            None => {
                *s = Some(SyncStatus {
                    role,
                    settings: settings.clone(),
                    counters,
                    write_errors: 0,
                    ring_drops: 0,
                    error: None,
                })
            }
        });
    }
}
