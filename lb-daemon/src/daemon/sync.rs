//! Connection sync as the main loop drives it: started with the
//! configuration, restarted by a reload that changes `lvs_sync_daemon`,
//! handed the data plane's directory after each change of the services,
//! and carrying out what the sync task asks of the data plane (writes,
//! the reporting switch), since the main loop owns the data plane.

use tracing::{info, warn};

use super::{forwarding::Forwarding, Daemon};
use crate::{
    config,
    connsync::{
        driver::{RoleSource, ToDataplane},
        kernel::KernelSync,
        settings::SyncSettings,
        SyncBoard, SyncRuntime,
    },
    vrrp::VrrpRuntime,
};

/// Connection sync as it runs: lbd's own (the BPF tiers) or the kernel's
/// sync daemons (the IPVS tier).
pub(super) enum Sync {
    Lbd(SyncRuntime),
    Kernel(KernelSync),
}

impl Sync {
    fn settings(&self) -> &SyncSettings {
        match self {
            Sync::Lbd(s) => s.settings(),
            Sync::Kernel(k) => k.settings(),
        }
    }
}

/// Starts connection sync when the configuration asks for it: lbd's own
/// for the BPF tiers, the kernel's daemons for the IPVS tier.
pub(super) fn start_sync(
    config: &config::Config,
    forwarding: Option<&mut Forwarding>,
    vrrp: Option<&VrrpRuntime>,
    board: &SyncBoard,
) -> Option<Sync> {
    let settings = SyncSettings::from_config(config)?;
    let Some(f) = forwarding else {
        warn!("lvs_sync_daemon: there is no data plane here, so no connection to sync");
        return None;
    };
    let Some(directory) = f.dataplane.sync_directory() else {
        info!(
            interface = %settings.interface,
            "starting the kernel's IPVS sync daemons"
        );
        let role = RoleSource::for_settings(&settings, vrrp.map(|r| r.status()));
        return Some(Sync::Kernel(KernelSync::start(
            settings,
            role,
            board.clone(),
        )));
    };
    let source = f.sync_source();
    info!(
        interface = %settings.interface,
        instance = settings.vrrp_instance.as_deref().unwrap_or("(none: send and receive)"),
        syncid = settings.syncid,
        "starting connection sync"
    );
    Some(Sync::Lbd(SyncRuntime::start(
        settings,
        super::forwarding::timeouts(config),
        vrrp.map(|r| r.status()),
        source,
        directory,
        board.clone(),
    )))
}

impl Daemon {
    /// The sync task asks something of the data plane.
    pub(super) fn on_sync(&mut self, req: ToDataplane) {
        let (Some(f), Some(Sync::Lbd(sync))) = (self.forwarding.as_mut(), self.sync.as_ref())
        else {
            return;
        };
        carry_out(f, Some(sync), req);
    }

    /// After a reload: a changed `lvs_sync_daemon` (or a VRRP runtime that
    /// just started) restarts sync with the new settings.
    pub(super) async fn reload_sync(&mut self, config: &config::Config, vrrp_started: bool) {
        let wanted = SyncSettings::from_config(config);
        let running = self.sync.as_ref().map(|s| s.settings().clone());
        if wanted == running && !(vrrp_started && running.is_some()) {
            return;
        }
        self.stop_sync().await;
        self.sync = start_sync(
            config,
            self.forwarding.as_mut(),
            self.vrrp.as_ref(),
            &self.sync_board,
        );
        self.sync_directory = None;
        self.publish_directory();
    }

    /// Stops sync; a master sends what it holds and turns reports off.
    pub(super) async fn stop_sync(&mut self) {
        let sync = match self.sync.take() {
            None => return,
            Some(Sync::Kernel(k)) => return k.stop().await,
            Some(Sync::Lbd(s)) => s,
        };
        for req in sync.stop().await {
            if let Some(f) = self.forwarding.as_mut() {
                carry_out(f, None, req);
            }
        }
    }

    /// The program's count of reports lost to a full ring, for `lbctl
    /// sync` (read with the periodic recount).
    pub(super) fn update_sync_drops(&self) {
        let (Some(f), Some(Sync::Lbd(sync))) = (self.forwarding.as_ref(), self.sync.as_ref())
        else {
            return;
        };
        if let Ok(stats) = f.dataplane.stats() {
            if let Some((_, n, _)) = stats
                .global
                .iter()
                .find(|(name, _, _)| name == "sync_drops")
            {
                sync.set_ring_drops(*n);
            }
        }
    }

    /// The services changed: sync maps records with the new directory.
    pub(super) fn publish_directory(&mut self) {
        let (Some(f), Some(Sync::Lbd(sync))) = (self.forwarding.as_ref(), self.sync.as_ref())
        else {
            return;
        };
        let Some(dir) = f.dataplane.sync_directory() else {
            return;
        };
        if self.sync_directory.as_ref() != Some(&dir) {
            sync.set_directory(dir.clone());
            self.sync_directory = Some(dir);
        }
    }
}

fn carry_out(f: &mut Forwarding, sync: Option<&SyncRuntime>, req: ToDataplane) {
    match req {
        ToDataplane::Write(entries) => {
            if let Err(e) = f.dataplane.write_synced(&entries) {
                warn!("writing synced connections: {e}");
                if let Some(s) = sync {
                    s.write_failed(entries.len());
                }
            }
        }
        ToDataplane::Report(on) => {
            if let Err(e) = f.set_sync_reporting(on) {
                warn!(
                    "turning sync reports {}: {e}",
                    if on { "on" } else { "off" }
                );
            }
        }
    }
}
