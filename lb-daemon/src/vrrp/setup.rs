//! Setting a member up: what the kernel must have before an instance runs
//! (its interface, an address to send from, the VRRP socket, a sender of
//! announcements per interface of its addresses), the addresses an earlier
//! run left behind, and whether it resumes as master after a restart.
//!
//! A member that cannot be set up yet (its interface missing, say) is
//! retried by the driver; [`Member::try_set_up`] logs each new reason once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{error, info, warn, Instrument};

use crate::net::{NetError, Netlink};

use super::addresses;
use super::config_map::InstanceSpec;
use super::driver::Input;
use super::garp::GarpSender;
use super::instance::Instance;
use super::member::{Member, MemberId, Running};
use super::network::{ErrorLog, VrrpSocket};
use super::params::{InstanceParams, ParamError};
use super::restart::RestartState;
use super::tasks;
use super::timing;

/// Why an instance cannot start (yet).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Netlink(#[from] NetError),
    #[error("interface `{0}` not found")]
    NoInterface(String),
    #[error("interface `{interface}` has no {family} address to send adverts from")]
    NoSource {
        interface: String,
        family: &'static str,
    },
    #[error("vrrp_instance `{instance}`: {source}")]
    Params {
        instance: String,
        #[source]
        source: ParamError,
    },
    #[error("VRRP socket on `{interface}`: {source}")]
    Socket {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interface `{0}` (dev of a virtual address) not found")]
    NoAddressDev(String),
    /// Opening the AF_PACKET socket announcements go out on.
    #[error(transparent)]
    Announcer(std::io::Error),
}

impl Member {
    /// Sets the member up unless it is already; true when it runs. A
    /// failure is kept as the member's error (shown by `lbctl`) and logged
    /// when it differs from the last one.
    pub async fn try_set_up(
        &mut self,
        id: MemberId,
        net: &Netlink,
        resume: Option<&RestartState>,
        tx: &mpsc::Sender<Input>,
    ) -> bool {
        if self.run.is_some() {
            return true;
        }
        let span = self.span.clone();
        match self.set_up(id, net, resume, tx).instrument(span).await {
            Ok(run) => {
                self.run = Some(run);
                self.error = None;
                true
            }
            Err(e) => {
                let msg = e.to_string();
                if self.error.as_ref() != Some(&msg) {
                    let _g = self.span.enter();
                    error!("cannot start: {msg} (retrying)");
                }
                self.error = Some(msg);
                false
            }
        }
    }

    async fn set_up(
        &self,
        id: MemberId,
        net: &Netlink,
        resume: Option<&RestartState>,
        tx: &mpsc::Sender<Input>,
    ) -> Result<Running, SetupError> {
        let spec = &self.spec;
        let link = net
            .link(&spec.interface)
            .await?
            .ok_or_else(|| SetupError::NoInterface(spec.interface.clone()))?;
        let src = match spec.configured_src() {
            Some(a) => a,
            None => net
                .primary_address(link.index, spec.is_ipv6())
                .await?
                .ok_or_else(|| SetupError::NoSource {
                    interface: spec.interface.clone(),
                    family: if spec.is_ipv6() {
                        "IPv6 link-local"
                    } else {
                        "IPv4"
                    },
                })?,
        };
        let mut params = spec.params(src);
        params.resume_master = resumes(net, spec, &params, resume).await;
        let resume_master = params.resume_master;
        let core = Instance::new(params).map_err(|source| SetupError::Params {
            instance: spec.name().to_string(),
            source,
        })?;
        for w in core.warnings() {
            warn!("{w}");
        }
        let socket = Arc::new(
            VrrpSocket::open(&spec.interface, link.index, src, &spec.unicast_peers()).map_err(
                |source| SetupError::Socket {
                    interface: spec.interface.clone(),
                    source,
                },
            )?,
        );
        // Announcements go out of each virtual address's interface.
        let mut garp = BTreeMap::new();
        let devs: BTreeSet<Option<String>> = addresses::lines(&spec.config)
            .map(|a| a.dev.clone())
            .collect();
        for dev in devs {
            let l = match &dev {
                None => link.clone(),
                Some(name) => net
                    .link(name)
                    .await?
                    .ok_or_else(|| SetupError::NoAddressDev(name.clone()))?,
            };
            if let Some(mac) = l.mac {
                let sender = GarpSender::open(l.index, mac).map_err(SetupError::Announcer)?;
                garp.insert(dev, sender);
            }
        }
        // Addresses a previous run left behind (kill -9) must go: a backup
        // never holds them.
        // Unless this instance resumes as master after a restart.
        let mut stale = false;
        for a in &spec.config.virtual_ipaddress {
            stale |= net.has_address(a.addr).await.unwrap_or(false);
        }
        if stale && !resume_master {
            info!("removing virtual addresses left from an earlier run");
            addresses::remove(net, &spec.config, link.index).await;
        }
        let reader = tasks::spawn_reader(
            id,
            socket.clone(),
            spec.unicast_peers(),
            tx.clone(),
            self.span.clone(),
        );
        info!(interface = %spec.interface, %src, vrid = spec.config.virtual_router_id, "VRRP instance ready");
        Ok(Running {
            core,
            socket,
            link,
            garp,
            reader,
            send_errors: ErrorLog::default(),
        })
    }
}

/// Whether the previous lbd left this instance as master moments ago
/// (within its master-down interval, so no backup has taken over) with
/// every virtual address still in place.
async fn resumes(
    net: &Netlink,
    spec: &InstanceSpec,
    params: &InstanceParams,
    resume: Option<&RestartState>,
) -> bool {
    let Some(state) = resume else {
        return false;
    };
    let vrid = spec.config.virtual_router_id;
    if state.find(spec.name(), vrid, &spec.interface).is_none() {
        return false;
    }
    let age = state.age(std::time::SystemTime::now());
    let window = timing::master_down_interval(
        params.version,
        params.priority,
        params.advert_int,
        params.down_timer_adverts,
    );
    if age >= window {
        info!(
            age_ms = age.as_millis() as u64,
            window_ms = window.as_millis() as u64,
            "was master before the restart, too long ago: starting as usual"
        );
        return false;
    }
    for a in &spec.config.virtual_ipaddress {
        if !net.has_address(a.addr).await.unwrap_or(false) {
            info!(addr = %a.addr, "was master before the restart, but a virtual address is gone: starting as usual");
            return false;
        }
    }
    true
}
