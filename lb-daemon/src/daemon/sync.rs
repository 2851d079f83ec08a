//! Connection sync as the main loop drives it: started with the
//! configuration, restarted by a reload that changes `lvs_sync_daemon`,
//! handed the data plane's directory after each change of the services,
//! and carrying out what the sync task asks of the data plane (writes,
//! the reporting switch), since the main loop owns the data plane.

use tracing::{info, warn};

use super::{forwarding::Forwarding, Daemon};
use crate::{
    config,
    connsync::{driver::ToDataplane, settings::SyncSettings, SyncBoard, SyncRuntime},
    vrrp::VrrpRuntime,
};

/// Starts connection sync when the configuration asks for it and the data
/// plane is one lbd syncs (the BPF tiers).
pub(super) fn start_sync(
    config: &config::Config,
    forwarding: Option<&mut Forwarding>,
    vrrp: Option<&VrrpRuntime>,
    board: &SyncBoard,
) -> Option<SyncRuntime> {
    let settings = SyncSettings::from_config(config)?;
    let Some(f) = forwarding else {
        warn!("lvs_sync_daemon: there is no data plane here, so no connection to sync");
        return None;
    };
    let Some(directory) = f.dataplane.sync_directory() else {
        warn!(
            tier = f.dataplane.tier(),
            "lvs_sync_daemon is read and checked but this tier's connections are not synced yet"
        );
        return None;
    };
    let source = f.sync_source();
    info!(
        interface = %settings.interface,
        instance = settings.vrrp_instance.as_deref().unwrap_or("(none: send and receive)"),
        syncid = settings.syncid,
        "starting connection sync"
    );
    Some(SyncRuntime::start(
        settings,
        super::forwarding::timeouts(config),
        vrrp.map(|r| r.status()),
        source,
        directory,
        board.clone(),
    ))
}

impl Daemon {
    /// The sync task asks something of the data plane.
    pub(super) fn on_sync(&mut self, req: ToDataplane) {
        let (Some(f), Some(sync)) = (self.forwarding.as_mut(), self.sync.as_ref()) else {
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
        let Some(sync) = self.sync.take() else {
            return;
        };
        for req in sync.stop().await {
            if let Some(f) = self.forwarding.as_mut() {
                carry_out(f, None, req);
            }
        }
    }

    /// The services changed: sync maps records with the new directory.
    pub(super) fn publish_directory(&mut self) {
        let (Some(f), Some(sync)) = (self.forwarding.as_ref(), self.sync.as_ref()) else {
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
