//! The IPVS tier's connection sync: the kernel's own sync daemons, started
//! over generic netlink with the same settings and switched with the VRRP
//! instance as keepalived does (MASTER runs the master daemon, any other
//! state the backup daemon; without an instance, both). Stopped with lbd.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, info_span, Instrument};

use super::core::Role;
use super::driver::RoleSource;
use super::settings::SyncSettings;
use super::status::{SyncBoard, SyncStatus};
use crate::dataplane::ipvs::{
    genl::Genl,
    sync_daemon::{self, SyncDaemonParams},
};

pub struct KernelSync {
    settings: SyncSettings,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl KernelSync {
    pub fn start(settings: SyncSettings, role: RoleSource, board: SyncBoard) -> KernelSync {
        let (stop, stop_rx) = watch::channel(false);
        let span = info_span!("connsync", interface = %settings.interface, tier = "ipvs");
        let task = tokio::spawn(run(settings.clone(), role, board, stop_rx).instrument(span));
        KernelSync {
            settings,
            stop,
            task,
        }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Stops the kernel's daemons.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn params(s: &SyncSettings) -> SyncDaemonParams {
    SyncDaemonParams {
        interface: s.interface.clone(),
        syncid: s.syncid,
        maxlen: u16::try_from(s.send_maxlen).ok(),
        group: Some(s.group),
        port: Some(s.port),
        ttl: Some(s.ttl),
    }
}

fn kernel_role(r: Role) -> sync_daemon::Role {
    match r {
        Role::Master => sync_daemon::Role::Master,
        Role::Backup => sync_daemon::Role::Backup,
        Role::Both => sync_daemon::Role::Both,
    }
}

fn apply(genl: &Genl, role: sync_daemon::Role, p: &SyncDaemonParams) {
    match sync_daemon::set_role(genl, role, p) {
        Ok(ops) if !ops.is_empty() => info!(?role, ?ops, "kernel sync daemons"),
        Ok(_) => {}
        Err(e) => error!("{e}"),
    }
}

async fn run(
    settings: SyncSettings,
    mut role: RoleSource,
    board: SyncBoard,
    mut stop: watch::Receiver<bool>,
) {
    let genl = match Genl::open() {
        Ok(g) => g,
        Err(e) => {
            error!("IPVS generic netlink: {e}; the kernel's sync daemons are not started");
            return;
        }
    };
    let p = params(&settings);
    let mut last = None;
    loop {
        let now = role.current();
        if last != Some(now) {
            apply(&genl, kernel_role(now), &p);
            last = Some(now);
            board.update(|s| {
                *s = Some(SyncStatus {
                    role: now,
                    settings: settings.clone(),
                    counters: Default::default(),
                    write_errors: 0,
                    ring_drops: 0,
                    error: None,
                })
            });
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = role.changed() => {}
        }
    }
    apply(&genl, sync_daemon::Role::None, &p);
    board.update(|s| *s = None);
}
