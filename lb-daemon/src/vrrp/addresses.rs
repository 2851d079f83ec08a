//! An instance's virtual addresses and routes: what a master adds and a
//! backup removes (`virtual_ipaddress`, `virtual_ipaddress_excluded`,
//! `virtual_routes`), through [`crate::net`].
//!
//! A line that fails is logged and the others still go: a master with one
//! address missing serves the rest.

use tracing::{debug, error, warn};

use crate::config::{IpAddress, VrrpInstance};
use crate::net::Netlink;

/// Every address line of the instance, the excluded ones included (they
/// are only left out of the adverts).
pub fn lines(c: &VrrpInstance) -> impl Iterator<Item = &IpAddress> {
    c.virtual_ipaddress
        .iter()
        .chain(&c.virtual_ipaddress_excluded)
}

/// Adds the addresses, then the routes (which may need them as source or
/// gateway). `index`: the instance's interface.
pub async fn add(net: &Netlink, c: &VrrpInstance, index: u32) {
    for a in lines(c) {
        match net.add_address(a, index).await {
            Ok(()) => debug!(addr = %a.addr, "virtual address added"),
            Err(e) => error!("{e}"),
        }
    }
    for r in &c.virtual_routes {
        if let Err(e) = net.add_route(r, index).await {
            error!("{e}");
        }
    }
}

/// Removes the routes, then the addresses: the reverse of [`add`].
pub async fn remove(net: &Netlink, c: &VrrpInstance, index: u32) {
    for r in &c.virtual_routes {
        if let Err(e) = net.remove_route(r, index).await {
            warn!("{e}");
        }
    }
    for a in lines(c) {
        match net.remove_address(a, index).await {
            Ok(()) => debug!(addr = %a.addr, "virtual address removed"),
            Err(e) => warn!("{e}"),
        }
    }
}
