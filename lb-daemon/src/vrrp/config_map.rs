//! From the parsed keepalived.conf to what the runtime runs: one
//! [`InstanceSpec`] per `vrrp_instance`, grouped into [`UnitSpec`]s (a
//! `vrrp_sync_group` and its members, or a lone instance), and the
//! [`InstanceParams`] of the core once the interface's address is known.
//!
//! Everything that can be checked without the kernel is checked here, with
//! errors that name the instance and its location in the file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::config::{AuthType, Config, Location, Notify, VrrpInstance, VrrpScript, VrrpState};

use super::instance::Instance;
use super::packet::{AdvertInterval, Auth, Version};
use super::params::{GarpParams, InitialState, InstanceParams};

/// A configuration the VRRP runtime cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: vrrp_instance `{instance}`: {message}")]
pub struct MapError {
    pub location: Location,
    pub instance: String,
    pub message: String,
}

/// A `vrrp_script` as one instance tracks it: the script and the weight in
/// force (the instance's override, else the script's own).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedScript {
    pub script: VrrpScript,
    pub weight: i32,
    pub reverse: bool,
}

/// A tracked interface: its name and weight (`None`: down means Fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedInterface {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
}

/// One `vrrp_instance`, checked, with what it tracks resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub config: VrrpInstance,
    /// The interface adverts go out of and come in on.
    pub interface: String,
    pub version: Version,
    pub advert_int: AdvertInterval,
    pub scripts: Vec<TrackedScript>,
    pub interfaces: Vec<TrackedInterface>,
}

impl InstanceSpec {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_ipv6(&self) -> bool {
        self.config
            .virtual_ipaddress
            .first()
            .is_some_and(|a| a.addr.is_ipv6())
    }

    /// The address adverts are sent from when the configuration names one.
    pub fn configured_src(&self) -> Option<IpAddr> {
        self.config.unicast_src_ip.or(self.config.mcast_src_ip)
    }

    pub fn unicast_peers(&self) -> Vec<IpAddr> {
        self.config.unicast_peer.iter().map(|p| p.addr).collect()
    }

    /// The core's parameters, with `primary` as our advert source address.
    pub fn params(&self, primary: IpAddr) -> InstanceParams {
        let c = &self.config;
        let mut p = InstanceParams::new(
            c.name.clone(),
            self.version,
            c.virtual_router_id,
            primary,
            c.virtual_ipaddress.iter().map(|a| a.addr).collect(),
        );
        p.priority = c.priority;
        p.advert_int = self.advert_int;
        p.initial_state = Some(match c.state {
            VrrpState::Master => InitialState::Master,
            VrrpState::Backup => InitialState::Backup,
        });
        p.preempt = c.preempt;
        p.preempt_delay = c.preempt_delay;
        p.auth = match &c.authentication {
            Some(a) if self.version == Version::V2 => Auth::pass(a.auth_pass.as_bytes()),
            _ => Auth::None,
        };
        p.garp = GarpParams {
            master_repeat: c.garp_master_repeat,
            master_delay: c.garp_master_delay,
            master_refresh: c.garp_master_refresh,
            master_refresh_repeat: c.garp_master_refresh_repeat,
        };
        p
    }
}

/// What one driver task runs: a sync group with its members, or a single
/// instance (`group` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSpec {
    pub group: Option<GroupSpec>,
    pub instances: Vec<InstanceSpec>,
}

impl UnitSpec {
    /// The key a reload matches running units by.
    pub fn key(&self) -> String {
        match &self.group {
            Some(g) => format!("group:{}", g.name),
            None => format!("instance:{}", self.instances[0].name()),
        }
    }

    /// Whether two specs would run the same, locations in the file aside
    /// (so a reload that only moves lines keeps the state).
    pub fn same_as(&self, other: &UnitSpec) -> bool {
        fingerprint(self) == fingerprint(other)
    }
}

fn fingerprint(u: &UnitSpec) -> String {
    let mut s = String::new();
    if let Some(g) = &u.group {
        s.push_str(&format!("{:?}|{:?}|", g.name, g.notify));
    }
    for i in &u.instances {
        // Serialisation skips source locations.
        s.push_str(&serde_json::to_string(&i.config).unwrap_or_default());
        for t in &i.scripts {
            s.push_str(&serde_json::to_string(&t.script).unwrap_or_default());
            s.push_str(&format!("{}{}", t.weight, t.reverse));
        }
    }
    s
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub notify: Notify,
}

/// Maps every `vrrp_instance` of `config`, collecting every error.
pub fn plan(config: &Config) -> Result<Vec<UnitSpec>, Vec<MapError>> {
    let scripts: BTreeMap<&str, &VrrpScript> = config
        .vrrp_scripts
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let mut errors = Vec::new();
    let mut specs: BTreeMap<String, InstanceSpec> = BTreeMap::new();
    let mut order = Vec::new();
    for inst in &config.vrrp_instances {
        match instance_spec(inst, &scripts) {
            Ok(spec) => {
                order.push(spec.name().to_string());
                specs.insert(spec.name().to_string(), spec);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut units = Vec::new();
    let mut grouped = BTreeSet::new();
    for g in &config.vrrp_sync_groups {
        let mut members = Vec::new();
        for name in &g.group {
            if !grouped.insert(name.clone()) {
                errors.push(MapError {
                    location: g.location.clone(),
                    instance: name.clone(),
                    message: format!(
                        "is in more than one vrrp_sync_group (again in `{}`)",
                        g.name
                    ),
                });
                continue;
            }
            match specs.get(name) {
                Some(spec) => members.push(spec.clone()),
                None if errors.iter().any(|e| &e.instance == name) => {}
                None => errors.push(MapError {
                    location: g.location.clone(),
                    instance: name.clone(),
                    message: format!("named in vrrp_sync_group `{}` but not defined", g.name),
                }),
            }
        }
        if !members.is_empty() {
            units.push(UnitSpec {
                group: Some(GroupSpec {
                    name: g.name.clone(),
                    notify: g.notify.clone(),
                }),
                instances: members,
            });
        }
    }
    for name in order {
        if !grouped.contains(&name) {
            units.push(UnitSpec {
                group: None,
                instances: vec![specs[&name].clone()],
            });
        }
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(errors)
    }
}

fn instance_spec(
    inst: &VrrpInstance,
    scripts: &BTreeMap<&str, &VrrpScript>,
) -> Result<InstanceSpec, MapError> {
    let err = |message: String| MapError {
        location: inst.location.clone(),
        instance: inst.name.clone(),
        message,
    };
    let interface = inst.interface.clone().ok_or_else(|| {
        err("no `interface` (and no global_defs `default_interface`)".to_string())
    })?;
    if inst.virtual_ipaddress.is_empty() {
        return Err(err("`virtual_ipaddress` is empty".to_string()));
    }
    let version = match inst.version {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(err(format!("VRRP version {v} is not supported"))),
    };
    let advert_int = advert_interval(version, inst.advert_int).map_err(err)?;
    if let Some(a) = &inst.authentication {
        if a.auth_type == AuthType::Ah {
            return Err(err(
                "auth_type AH (IPsec) is not supported: use PASS or none".to_string(),
            ));
        }
    }
    let ipv6 = inst
        .virtual_ipaddress
        .first()
        .is_some_and(|a| a.addr.is_ipv6());
    let family_ok = |a: &IpAddr| a.is_ipv6() == ipv6;
    for src in [inst.unicast_src_ip, inst.mcast_src_ip]
        .into_iter()
        .flatten()
    {
        if !family_ok(&src) {
            return Err(err(format!(
                "source address {src} is not of the virtual addresses' family"
            )));
        }
    }
    for peer in &inst.unicast_peer {
        if !family_ok(&peer.addr) {
            return Err(err(format!(
                "unicast_peer {} is not of the virtual addresses' family",
                peer.addr
            )));
        }
    }
    let mut tracked_scripts = Vec::new();
    for t in &inst.track_script {
        let script = scripts.get(t.name.as_str()).ok_or_else(|| MapError {
            location: t.location.clone(),
            instance: inst.name.clone(),
            message: format!("track_script `{}` has no vrrp_script", t.name),
        })?;
        tracked_scripts.push(TrackedScript {
            script: (*script).clone(),
            weight: t.weight.unwrap_or(script.weight),
            reverse: if t.weight.is_some() {
                t.reverse
            } else {
                script.weight_reverse
            },
        });
    }
    let mut interfaces: Vec<TrackedInterface> = inst
        .track_interface
        .iter()
        .map(|t| TrackedInterface {
            name: t.name.clone(),
            weight: t.weight.filter(|w| *w != 0),
            reverse: t.reverse,
        })
        .collect();
    // keepalived tracks the instance's own interface unless told not to.
    if !inst.dont_track_primary && !interfaces.iter().any(|t| t.name == interface) {
        interfaces.push(TrackedInterface {
            name: interface.clone(),
            weight: None,
            reverse: false,
        });
    }
    let spec = InstanceSpec {
        config: inst.clone(),
        interface,
        version,
        advert_int,
        scripts: tracked_scripts,
        interfaces,
    };
    // The core's own checks, with a stand-in for the source address that
    // is known only at run time.
    let stand_in = if ipv6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    };
    Instance::new(spec.params(stand_in)).map_err(|e| err(e.to_string()))?;
    Ok(spec)
}

fn advert_interval(version: Version, d: Duration) -> Result<AdvertInterval, String> {
    match version {
        Version::V2 => {
            let secs = d.as_secs();
            if d.subsec_nanos() != 0 || !(1..=255).contains(&secs) {
                return Err(format!(
                    "advert_int {d:?} is not possible with VRRPv2 (1 to 255 whole seconds)"
                ));
            }
            Ok(AdvertInterval::from_secs(secs as u8))
        }
        Version::V3 => {
            let centis = (d.as_millis() + 5) / 10;
            if centis == 0 || centis > u128::from(AdvertInterval::V3_MAX_CENTIS) {
                return Err(format!(
                    "advert_int {d:?} is not possible with VRRPv3 (0.01 to 40.95 s)"
                ));
            }
            Ok(AdvertInterval::from_centis(centis as u16))
        }
    }
}

/// The contribution of a weighted tracker to the priority, as keepalived
/// computes it: a positive weight counts while the tracked thing is up, a
/// negative one while it is down; `reverse` flips the sign.
pub fn weighted(up: bool, weight: i32, reverse: bool) -> i32 {
    let w = if reverse { -weight } else { weight };
    match (up, weight > 0) {
        (true, true) | (false, false) => w,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        crate::config::parse_str(text, std::path::Path::new("test.conf"))
            .map(|l| l.config)
            .unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn maps_an_instance_with_keepalived_defaults() {
        let c = load(
            "vrrp_script chk {\n script \"/bin/true\"\n interval 2\n weight -20\n}\n\
             vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 150\n\
             advert_int 1\n authentication {\n auth_type PASS\n auth_pass secret123\n }\n\
             virtual_ipaddress {\n 10.0.0.100/24\n }\n track_script {\n chk\n }\n}\n",
        );
        let units = plan(&c).unwrap();
        assert_eq!(units.len(), 1);
        let spec = &units[0].instances[0];
        assert_eq!(spec.interface, "eth0");
        assert_eq!(spec.scripts[0].weight, -20);
        assert_eq!(spec.interfaces[0].name, "eth0");
        let p = spec.params("10.0.0.1".parse().unwrap());
        assert_eq!(p.vrid, 51);
        assert_eq!(p.priority, 150);
        assert_eq!(p.version, Version::V2);
        assert_eq!(p.auth, Auth::pass(b"secret12"));
        assert_eq!(p.addresses, vec!["10.0.0.100".parse::<IpAddr>().unwrap()]);
        assert_eq!(p.initial_state, Some(InitialState::Backup));
    }

    #[test]
    fn v3_interval_in_centiseconds_and_sync_groups() {
        let c = load(
            "global_defs {\n vrrp_version 3\n}\n\
             vrrp_sync_group G {\n group {\n A\n B\n }\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n advert_int 0.15\n\
               virtual_ipaddress {\n 10.0.0.1\n }\n}\n\
             vrrp_instance B {\n interface eth1\n virtual_router_id 2\n\
               virtual_ipaddress {\n 10.0.1.1\n }\n}\n\
             vrrp_instance C {\n interface eth1\n virtual_router_id 3\n\
               virtual_ipaddress {\n 10.0.2.1\n }\n}\n",
        );
        let units = plan(&c).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].key(), "group:G");
        assert_eq!(units[0].instances.len(), 2);
        assert_eq!(units[0].instances[0].advert_int.centis(), 15);
        assert_eq!(units[1].key(), "instance:C");
    }

    #[test]
    fn missing_interface_and_ah_auth_are_errors() {
        // The config reader refuses an instance without an interface (as
        // keepalived does); the plan checks it again on its own.
        let mut c = load(
            "vrrp_instance A {\n interface eth1\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n\
               authentication {\n auth_type AH\n auth_pass x\n }\n\
               virtual_ipaddress {\n 10.0.0.2\n }\n}\n",
        );
        c.vrrp_instances[0].interface = None;
        let errors = plan(&c).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].to_string().contains("no `interface`"));
        assert!(errors[1].to_string().contains("AH"));
    }

    #[test]
    fn tracker_weights_follow_keepalived() {
        assert_eq!(weighted(true, 10, false), 10);
        assert_eq!(weighted(false, 10, false), 0);
        assert_eq!(weighted(false, -10, false), -10);
        assert_eq!(weighted(true, -10, false), 0);
        assert_eq!(weighted(true, 10, true), -10);
        assert_eq!(weighted(false, -10, true), 10);
    }
}
