//! Cross-checks between sections, run once everything is read: references
//! by name, and uniqueness that no single block can see.

use std::collections::HashMap;

use super::diag::Sink;
use super::model::{Config, VsTarget};

pub(crate) fn check(c: &Config, sink: &mut Sink) {
    unique_names(c, sink);
    vrids(c, sink);
    track_scripts(c, sink);
    sync_groups(c, sink);
    vs_groups(c, sink);
    lvs_sync_daemon(c, sink);
}

fn unique_names(c: &Config, sink: &mut Sink) {
    let mut seen = HashMap::new();
    for i in &c.vrrp_instances {
        if let Some(first) = seen.insert(i.name.as_str(), &i.location) {
            sink.error(
                &i.location,
                format!(
                    "duplicate vrrp_instance `{}` (first defined at {first})",
                    i.name
                ),
            );
        }
    }
    let mut seen = HashMap::new();
    for s in &c.vrrp_scripts {
        if let Some(first) = seen.insert(s.name.as_str(), &s.location) {
            sink.error(
                &s.location,
                format!(
                    "duplicate vrrp_script `{}` (first defined at {first})",
                    s.name
                ),
            );
        }
    }
    let mut seen = HashMap::new();
    for g in &c.virtual_server_groups {
        if let Some(first) = seen.insert(g.name.as_str(), &g.location) {
            sink.error(
                &g.location,
                format!(
                    "duplicate virtual_server_group `{}` (first defined at {first})",
                    g.name
                ),
            );
        }
    }
    let mut seen = HashMap::new();
    for vs in &c.virtual_servers {
        if let Some(first) = seen.insert((&vs.target, vs.protocol), &vs.location) {
            sink.error(
                &vs.location,
                format!(
                    "duplicate virtual_server `{}` ({}) (first defined at {first})",
                    super::lvs::target_name(&vs.target),
                    vs.protocol.name()
                ),
            );
        }
    }
}

/// Two instances with one VRID on one interface and address family would
/// fight over the same virtual MAC and adverts.
fn vrids(c: &Config, sink: &mut Sink) {
    let mut seen = HashMap::new();
    for i in &c.vrrp_instances {
        if i.virtual_router_id == 0 {
            continue; // already reported as missing
        }
        let ipv6 = i
            .virtual_ipaddress
            .first()
            .is_some_and(|a| a.addr.is_ipv6());
        let key = (i.interface.as_deref(), i.virtual_router_id, ipv6);
        if let Some((first_name, first_loc)) = seen.insert(key, (&i.name, &i.location)) {
            sink.error(
                &i.location,
                format!(
                    "vrrp_instance `{}` uses virtual_router_id {} on interface `{}`, already used by vrrp_instance `{first_name}` at {first_loc}",
                    i.name,
                    i.virtual_router_id,
                    i.interface.as_deref().unwrap_or("(none)")
                ),
            );
        }
    }
}

fn track_scripts(c: &Config, sink: &mut Sink) {
    for i in &c.vrrp_instances {
        for t in &i.track_script {
            if !c.vrrp_scripts.iter().any(|s| s.name == t.name) {
                sink.error(
                    &t.location,
                    format!(
                        "vrrp_instance `{}` tracks vrrp_script `{}`, which is not defined",
                        i.name, t.name
                    ),
                );
            }
        }
    }
}

fn sync_groups(c: &Config, sink: &mut Sink) {
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for g in &c.vrrp_sync_groups {
        for name in &g.group {
            if !c.vrrp_instances.iter().any(|i| &i.name == name) {
                sink.error(
                    &g.location,
                    format!(
                        "vrrp_sync_group `{}` names vrrp_instance `{name}`, which is not defined",
                        g.name
                    ),
                );
            } else if let Some(other) = member_of.insert(name, &g.name) {
                sink.error(
                    &g.location,
                    format!(
                        "vrrp_instance `{name}` is in vrrp_sync_group `{other}` and `{}`: an instance can be in one group only",
                        g.name
                    ),
                );
            }
        }
    }
}

fn vs_groups(c: &Config, sink: &mut Sink) {
    for vs in &c.virtual_servers {
        if let VsTarget::Group(name) = &vs.target {
            if !c.virtual_server_groups.iter().any(|g| &g.name == name) {
                sink.error(
                    &vs.location,
                    format!(
                        "virtual_server names virtual_server_group `{name}`, which is not defined"
                    ),
                );
            }
        }
    }
}

fn lvs_sync_daemon(c: &Config, sink: &mut Sink) {
    let Some(d) = &c.global_defs.lvs_sync_daemon else {
        return;
    };
    if let Some(name) = &d.vrrp_instance {
        if !c.vrrp_instances.iter().any(|i| &i.name == name) {
            sink.error(
                &d.location,
                format!("lvs_sync_daemon names vrrp_instance `{name}`, which is not defined"),
            );
        }
    }
}
