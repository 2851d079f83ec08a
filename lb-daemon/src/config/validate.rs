//! Cross-checks between sections, run once everything is read: references
//! by name, and uniqueness that no single block can see. Each error also
//! drops the bad part as keepalived does (the later duplicate, the
//! reference to nothing), so a start or reload runs what keepalived runs.

use std::collections::HashMap;

use super::diag::Sink;
use super::model::{Config, VsTarget};

/// Keeps the items for which `keep` is true, in order.
fn retain_by<T>(v: &mut Vec<T>, mut keep: impl FnMut(&T) -> bool) {
    let mut out = Vec::with_capacity(v.len());
    for item in v.drain(..) {
        if keep(&item) {
            out.push(item);
        }
    }
    *v = out;
}

pub(crate) fn check(c: &mut Config, sink: &mut Sink) {
    unique_names(c, sink);
    vrids(c, sink);
    track_scripts(c, sink);
    sync_groups(c, sink);
    vs_groups(c, sink);
    lvs_sync_daemon(c, sink);
}

/// keepalived keeps the first of two blocks with one name and ignores the
/// later one ("vrrp instance VI_1 already defined").
fn unique_names(c: &mut Config, sink: &mut Sink) {
    let mut seen = HashMap::new();
    retain_by(&mut c.vrrp_instances, |i| {
        match seen.insert(i.name.clone(), i.location.clone()) {
            Some(first) => {
                seen.insert(i.name.clone(), first.clone());
                sink.error(
                    &i.location,
                    format!(
                        "duplicate vrrp_instance `{}` (first defined at {first}): this one is ignored",
                        i.name
                    ),
                );
                false
            }
            None => true,
        }
    });
    let mut seen = HashMap::new();
    retain_by(&mut c.vrrp_scripts, |s| {
        match seen.insert(s.name.clone(), s.location.clone()) {
            Some(first) => {
                seen.insert(s.name.clone(), first.clone());
                sink.error(
                    &s.location,
                    format!(
                        "duplicate vrrp_script `{}` (first defined at {first}): this one is ignored",
                        s.name
                    ),
                );
                false
            }
            None => true,
        }
    });
    let mut seen = HashMap::new();
    retain_by(&mut c.virtual_server_groups, |g| {
        match seen.insert(g.name.clone(), g.location.clone()) {
            Some(first) => {
                seen.insert(g.name.clone(), first.clone());
                sink.error(
                    &g.location,
                    format!(
                        "duplicate virtual_server_group `{}` (first defined at {first}): this one is ignored",
                        g.name
                    ),
                );
                false
            }
            None => true,
        }
    });
    let mut seen = HashMap::new();
    retain_by(&mut c.virtual_servers, |vs| {
        match seen.insert((vs.target.clone(), vs.protocol), vs.location.clone()) {
            Some(first) => {
                seen.insert((vs.target.clone(), vs.protocol), first.clone());
                sink.error(
                    &vs.location,
                    format!(
                        "duplicate virtual_server `{}` ({}) (first defined at {first}): this one is ignored",
                        super::lvs::target_name(&vs.target),
                        vs.protocol.name()
                    ),
                );
                false
            }
            None => true,
        }
    });
}

/// Two instances with one VRID on one interface and address family would
/// fight over the same virtual MAC and adverts; keepalived does not start.
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
            sink.fatal(
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

/// keepalived ignores a tracked script that is not defined.
fn track_scripts(c: &mut Config, sink: &mut Sink) {
    let scripts = &c.vrrp_scripts;
    for i in &mut c.vrrp_instances {
        let name = i.name.clone();
        retain_by(&mut i.track_script, |t| {
            let found = scripts.iter().any(|s| s.name == t.name);
            if !found {
                sink.error(
                    &t.location,
                    format!(
                        "vrrp_instance `{name}` tracks vrrp_script `{}`, which is not defined: the line is ignored",
                        t.name
                    ),
                );
            }
            found
        });
    }
}

/// keepalived ignores a member that is not defined or already in another
/// group, and removes a group left with no member.
fn sync_groups(c: &mut Config, sink: &mut Sink) {
    let mut member_of: HashMap<String, String> = HashMap::new();
    let instances = &c.vrrp_instances;
    for g in &mut c.vrrp_sync_groups {
        let (gname, gloc) = (g.name.clone(), g.location.clone());
        retain_by(&mut g.group, |name| {
            if !instances.iter().any(|i| &i.name == name) {
                sink.error(
                    &gloc,
                    format!(
                        "vrrp_sync_group `{gname}` names vrrp_instance `{name}`, which is not defined: the name is ignored"
                    ),
                );
                return false;
            }
            if let Some(other) = member_of.get(name) {
                sink.error(
                    &gloc,
                    format!(
                        "vrrp_instance `{name}` is in vrrp_sync_group `{other}` and `{gname}`: an instance can be in one group only; `{gname}` loses it"
                    ),
                );
                return false;
            }
            member_of.insert(name.clone(), gname.clone());
            true
        });
    }
    c.vrrp_sync_groups.retain(|g| !g.group.is_empty());
}

/// keepalived installs nothing for a virtual_server whose group is not
/// defined.
fn vs_groups(c: &mut Config, sink: &mut Sink) {
    let groups = &c.virtual_server_groups;
    retain_by(&mut c.virtual_servers, |vs| match &vs.target {
        VsTarget::Group(name) if !groups.iter().any(|g| &g.name == name) => {
            sink.error(
                &vs.location,
                format!(
                    "virtual_server names virtual_server_group `{name}`, which is not defined: the virtual_server is ignored"
                ),
            );
            false
        }
        _ => true,
    });
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
