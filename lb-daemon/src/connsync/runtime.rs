//! Connection sync's lifecycle as the main loop sees it: start with the
//! settings, hand over directories, receive what to do to the data plane,
//! stop (a master sends what it holds first). The tasks are in
//! [`super::tasks`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use super::core::Params;
use super::directory::Directory;
use super::driver::{ReportSource, RoleSource, ToDataplane};
use super::settings::SyncSettings;
use super::status::SyncBoard;
use super::tasks::{spawn_sync, TaskInputs};
use crate::dataplane::Timeouts;
use crate::vrrp::StatusBoard;

/// How long a stopping sync task may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests to the main loop waiting at most: the task then waits (the
/// socket's receive buffer holds what arrives meanwhile).
const CHANNEL: usize = 256;

pub struct SyncRuntime {
    settings: SyncSettings,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    directory: watch::Sender<Arc<Directory>>,
    requests: mpsc::Receiver<ToDataplane>,
    board: SyncBoard,
}

impl SyncRuntime {
    /// Starts the sync task. `vrrp`: the VRRP runtime's board, for the
    /// instance the settings name (without one, the role is `Both`).
    pub fn start(
        settings: SyncSettings,
        timeouts: Timeouts,
        vrrp: Option<StatusBoard>,
        source: Option<Box<dyn ReportSource>>,
        directory: Directory,
        board: SyncBoard,
    ) -> SyncRuntime {
        let role = RoleSource::for_settings(&settings, vrrp);
        let params = Params {
            syncid: settings.syncid,
            send_maxlen: settings.send_maxlen,
            timeouts,
        };
        let (stop, stop_rx) = watch::channel(false);
        let (dir_tx, dir_rx) = watch::channel(Arc::new(directory));
        let (req_tx, requests) = mpsc::channel(CHANNEL);
        board.update(|s| *s = None);
        let task = spawn_sync(
            TaskInputs {
                settings: settings.clone(),
                params,
                source,
                role,
                directory: dir_rx,
                to_dataplane: req_tx,
                board: board.clone(),
            },
            stop_rx,
        );
        SyncRuntime {
            settings,
            stop,
            task,
            directory: dir_tx,
            requests,
            board,
        }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// The services changed: records map with this from now on.
    pub fn set_directory(&self, d: Directory) {
        self.directory.send_replace(Arc::new(d));
    }

    /// The next request for the data plane. Cancel-safe.
    pub async fn next_request(&mut self) -> Option<ToDataplane> {
        self.requests.recv().await
    }

    /// The data plane refused a write.
    pub fn write_failed(&self, entries: usize) {
        self.board.update(|s| {
            if let Some(s) = s {
                s.write_errors += entries as u64;
            }
        });
    }

    /// The program's count of reports lost to a full ring.
    pub fn set_ring_drops(&self, n: u64) {
        self.board.update(|s| {
            if let Some(s) = s {
                s.ring_drops = n;
            }
        });
    }

    /// Stops the task; returns what it asked of the data plane on its way
    /// out (a master's last reports off).
    pub async fn stop(mut self) -> Vec<ToDataplane> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        let mut task = self.task;
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        loop {
            tokio::select! {
                r = &mut task => { let _ = r; break; }
                Some(req) = self.requests.recv() => out.push(req),
                _ = tokio::time::sleep_until(deadline) => {
                    warn!("connection sync did not stop in time: aborted");
                    task.abort();
                    break;
                }
            }
        }
        while let Ok(req) = self.requests.try_recv() {
            out.push(req);
        }
        self.board.update(|s| *s = None);
        out
    }
}
