//! What an [`Instance`](super::instance::Instance) is configured with, and
//! the checks and keepalived-compatible adjustments made to it.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::packet::{AdvertInterval, Auth, Version};

/// The priority of the address owner.
pub const PRIORITY_OWNER: u8 = 255;
/// keepalived's default priority.
pub const PRIORITY_DEFAULT: u8 = 100;

/// keepalived's `state`: only where the instance starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InitialState {
    Master,
    Backup,
}

/// Gratuitous ARP / unsolicited NA settings on becoming master
/// (keepalived's garp_master_*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarpParams {
    /// garp_master_repeat: how many to send in each burst.
    pub master_repeat: u32,
    /// garp_master_delay: a second burst this long after becoming master;
    /// zero for none.
    pub master_delay: Duration,
    /// garp_master_refresh: repeat bursts this often while master; zero for
    /// none. The first comes `master_delay + master_refresh` after takeover.
    pub master_refresh: Duration,
    /// garp_master_refresh_repeat: how many in each refresh burst.
    pub master_refresh_repeat: u32,
}

impl Default for GarpParams {
    /// keepalived's defaults: 5 at once, 5 more 5 s later, no refresh.
    fn default() -> Self {
        GarpParams {
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        }
    }
}

/// Everything one VRRP instance needs. Build with [`InstanceParams::new`]
/// and change fields as the configuration says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceParams {
    /// Instance name, for logs.
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    /// Configured (base) priority, 1..=255; 255 means address owner.
    pub priority: u8,
    /// Our advert interval. v2: whole seconds 1..=255. v3: 1..=4095 cs.
    pub advert_int: AdvertInterval,
    /// `state`; `None` derives it from the priority like keepalived does
    /// (MASTER for an owner, else BACKUP).
    pub initial_state: Option<InitialState>,
    /// `true` by default; `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay`; zero for none.
    pub preempt_delay: Duration,
    /// The virtual addresses, in the order they go into adverts.
    pub addresses: Vec<IpAddr>,
    /// Our source address: the one adverts are sent from and the tie-break
    /// compares against.
    pub primary_addr: IpAddr,
    /// v2 authentication; must be [`Auth::None`] for v3.
    pub auth: Auth,
    pub garp: GarpParams,
    /// Missed adverts before the master is declared down (3 by default).
    pub down_timer_adverts: u32,
    /// keepalived's `lower_prio_no_advert`: as master, do not answer a
    /// lower-priority advert with one of ours.
    pub lower_prio_no_advert: bool,
    /// keepalived's `higher_prio_send_advert`: as master, send one more
    /// advert before yielding to a higher-priority one.
    pub higher_prio_send_advert: bool,
    /// Start directly as master, keeping the virtual addresses already in
    /// place: the previous lbd was master and exited for a restart
    /// (`--on-exit keep`) moments ago. Set by the daemon only; a tracker
    /// that is down at startup still wins (Fault, addresses removed).
    #[serde(default)]
    pub resume_master: bool,
}

impl InstanceParams {
    /// keepalived's defaults for the rest: priority 100, interval 1 s,
    /// state derived from the priority, preempt without delay, no auth,
    /// default GARP settings, 3 adverts to master down.
    pub fn new(
        name: impl Into<String>,
        version: Version,
        vrid: u8,
        primary_addr: IpAddr,
        addresses: Vec<IpAddr>,
    ) -> Self {
        InstanceParams {
            name: name.into(),
            vrid,
            version,
            priority: PRIORITY_DEFAULT,
            advert_int: AdvertInterval::from_secs(1),
            initial_state: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            addresses,
            primary_addr,
            auth: Auth::None,
            garp: GarpParams::default(),
            down_timer_adverts: 3,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            resume_master: false,
        }
    }

    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    /// The initial state in force: the configured one, or keepalived's
    /// default from the priority.
    pub fn effective_initial_state(&self) -> InitialState {
        self.initial_state.unwrap_or(if self.is_owner() {
            InitialState::Master
        } else {
            InitialState::Backup
        })
    }

    /// Rejects what cannot work, then applies keepalived's silent fixes,
    /// returning a warning for each (the caller logs them).
    pub fn normalize(&mut self) -> Result<Vec<String>, ParamError> {
        self.check()?;
        let mut warnings = Vec::new();
        if self.is_owner() && !self.preempt {
            warnings.push(format!(
                "({}) nopreempt is incompatible with priority 255 - clearing nopreempt",
                self.name
            ));
            self.preempt = true;
        }
        if self.effective_initial_state() == InitialState::Master {
            if !self.preempt {
                warnings.push(format!(
                    "({}) nopreempt does not work with initial state MASTER - clearing nopreempt",
                    self.name
                ));
                self.preempt = true;
            }
            if !self.preempt_delay.is_zero() {
                warnings.push(format!(
                    "({}) preempt_delay does not work with initial state MASTER - clearing it",
                    self.name
                ));
                self.preempt_delay = Duration::ZERO;
            }
        }
        if !self.preempt && !self.preempt_delay.is_zero() {
            warnings.push(format!(
                "({}) preempt_delay is incompatible with nopreempt - clearing it",
                self.name
            ));
            self.preempt_delay = Duration::ZERO;
        }
        Ok(warnings)
    }

    fn check(&self) -> Result<(), ParamError> {
        if self.vrid == 0 {
            return Err(ParamError::Vrid);
        }
        if self.priority == 0 {
            return Err(ParamError::Priority);
        }
        if self.addresses.is_empty() {
            return Err(ParamError::NoAddresses);
        }
        if self.addresses.len() > usize::from(u8::MAX) {
            return Err(ParamError::TooManyAddresses(self.addresses.len()));
        }
        let ipv6 = self.primary_addr.is_ipv6();
        if let Some(addr) = self.addresses.iter().find(|a| a.is_ipv6() != ipv6) {
            return Err(ParamError::FamilyMismatch {
                addr: *addr,
                primary: self.primary_addr,
            });
        }
        match self.version {
            Version::V2 => {
                if ipv6 {
                    return Err(ParamError::V2RequiresIpv4);
                }
                if !matches!(self.advert_int.whole_secs(), Some(1..)) {
                    return Err(ParamError::Interval {
                        version: self.version,
                        interval: self.advert_int,
                    });
                }
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(ParamError::AuthRequiresV2);
                }
                let centis = self.advert_int.centis();
                if centis == 0 || centis > AdvertInterval::V3_MAX_CENTIS {
                    return Err(ParamError::Interval {
                        version: self.version,
                        interval: self.advert_int,
                    });
                }
            }
        }
        if self.down_timer_adverts == 0 {
            return Err(ParamError::DownTimerAdverts);
        }
        Ok(())
    }
}

/// A configuration an instance cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("virtual_router_id must be 1..=255")]
    Vrid,
    #[error("priority must be 1..=255")]
    Priority,
    #[error("at least one virtual address is required")]
    NoAddresses,
    #[error("{0} virtual addresses do not fit in an advert (max 255)")]
    TooManyAddresses(usize),
    #[error("virtual address {addr} is not of the family of primary address {primary}")]
    FamilyMismatch { addr: IpAddr, primary: IpAddr },
    #[error("VRRPv2 is IPv4 only")]
    V2RequiresIpv4,
    #[error("advert interval {interval} is out of range for {version}")]
    Interval {
        version: Version,
        interval: AdvertInterval,
    },
    #[error("authentication needs VRRPv2")]
    AuthRequiresV2,
    #[error("down_timer_adverts must be at least 1")]
    DownTimerAdverts,
}
