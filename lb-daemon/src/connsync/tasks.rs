//! The tasks of connection sync, and what feeds what.
//!
//! One task owns the sans-I/O core and the group's sockets; the main loop
//! owns the data plane, so writes and the reporting switch go to it over a
//! channel, and it hands the task a new [`Directory`] after each change of
//! the services:
//!
//! ```text
//!  SyncRuntime ──stop (watch)──────────────────────┐
//!  (runtime.rs)                                     ▼
//!  group socket ──datagram──────────────►┌─────────────────┐──send──► group socket
//!  ring buffer (ReportSource) ──reports─►│ sync task       │
//!  VRRP StatusBoard ──changed──► role ──►│ (driver.rs)     │──ToDataplane──► main loop:
//!  main loop ──Directory (watch)───────► │ flush deadline  │   write entries, reporting
//!                                        └─────────────────┘──► SyncBoard (lbctl, metrics)
//! ```
//!
//! The task checks stop, then the flush deadline, then the role, then the
//! socket and the reports (in that order, so neither a flood of datagrams
//! nor a busy ring starves the deadline or a role change).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info_span, Instrument};

use super::core::{Core, Params};
use super::directory::Directory;
use super::driver::{Driver, ReportSource, RoleSource, ToDataplane};
use super::settings::SyncSettings;
use super::socket::SyncSocket;
use super::status::{SyncBoard, SyncStatus};

/// How long to wait before opening the sockets again (the interface may
/// not exist yet).
const REOPEN: Duration = Duration::from_secs(1);

/// What the sync task starts with.
pub struct TaskInputs {
    pub settings: SyncSettings,
    pub params: Params,
    pub source: Option<Box<dyn ReportSource>>,
    pub role: RoleSource,
    pub directory: watch::Receiver<Arc<Directory>>,
    pub to_dataplane: mpsc::Sender<ToDataplane>,
    pub board: SyncBoard,
}

/// Starts the sync task: it opens the sockets (again every second while
/// that fails) and runs the driver until `stop`.
pub fn spawn_sync(inputs: TaskInputs, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let span = info_span!("connsync", interface = %inputs.settings.interface);
    tokio::spawn(
        async move {
            let socket = loop {
                match SyncSocket::open(&inputs.settings) {
                    Ok(s) => break s,
                    Err(e) => {
                        let text = e.to_string();
                        if show_error(&inputs, &text) {
                            error!("{text}; trying again every second");
                        }
                    }
                }
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(REOPEN) => {}
                }
            };
            let core = Core::new(inputs.params, crate::connsync::core::Role::Backup);
            Driver::new(core, socket, inputs).run(stop).await
        }
        .instrument(span),
    )
}

/// Puts a socket error on the board; true when it is new (to log once).
fn show_error(inputs: &TaskInputs, text: &str) -> bool {
    let mut new = false;
    inputs.board.update(|s| {
        let status = s.get_or_insert_with(|| SyncStatus {
            role: crate::connsync::core::Role::Backup,
            settings: inputs.settings.clone(),
            counters: Default::default(),
            write_errors: 0,
            ring_drops: 0,
            error: None,
        });
        new = status.error.as_deref() != Some(text);
        status.error = Some(text.to_string());
    });
    new
}
