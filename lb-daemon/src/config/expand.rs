//! `virtual_server group NAME`: one virtual server per address, range
//! address and fwmark of the group, as keepalived programs IPVS (one service
//! each, all with the same real servers and settings). The data plane and
//! the health checkers both read this expansion, so a group's services are
//! health-checked like any other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::model::{Config, VirtualServer, VsTarget, VsgEntry};

impl Config {
    /// Every virtual server with its groups expanded, in file order. A
    /// group that does not exist was reported and dropped by validation.
    pub fn expanded_virtual_servers(&self) -> Vec<VirtualServer> {
        let mut out = Vec::with_capacity(self.virtual_servers.len());
        for vs in &self.virtual_servers {
            let VsTarget::Group(name) = &vs.target else {
                out.push(vs.clone());
                continue;
            };
            let Some(group) = self.virtual_server_groups.iter().find(|g| &g.name == name) else {
                continue;
            };
            for target in group.entries.iter().flat_map(entry_targets) {
                let mut one = vs.clone();
                one.target = target;
                out.push(one);
            }
        }
        out
    }
}

/// The targets of one group entry; a range's addresses one by one.
fn entry_targets(e: &VsgEntry) -> Vec<VsTarget> {
    match *e {
        VsgEntry::Addr(a) => vec![VsTarget::Addr(a)],
        VsgEntry::Fwmark(m) => vec![VsTarget::Fwmark(m)],
        VsgEntry::Range { first, last, port } => range(first, last)
            .into_iter()
            .map(|ip| VsTarget::Addr(SocketAddr::new(ip, port)))
            .collect(),
    }
}

/// `first..=last`, which differ only in the last IPv4 byte or IPv6 group
/// (the parser only builds such ranges).
fn range(first: IpAddr, last: IpAddr) -> Vec<IpAddr> {
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) => (u32::from(f)..=u32::from(l))
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .collect(),
        (IpAddr::V6(f), IpAddr::V6(l)) => (u128::from(f)..=u128::from(l))
            .map(|n| IpAddr::V6(Ipv6Addr::from(n)))
            .collect(),
        _ => Vec::new(),
    }
}
