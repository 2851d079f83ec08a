//! Addresses: the one adverts go out from, whether an address is
//! configured, and the virtual addresses a VRRP master adds and a backup
//! removes (`virtual_ipaddress`, `virtual_ipaddress_excluded`).
//!
//! Adding what is already there and removing what is already gone are not
//! errors: both happen after a restart or when two paths race.

use std::net::{IpAddr, Ipv6Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use tracing::{debug, warn};

use crate::config::IpAddress;

use super::routes::route_scope;
use super::{errno, Change, NetError, Netlink, EADDRNOTAVAIL, EEXIST, ENOENT, ESRCH};

/// Whether `a` is an IPv6 link-local address (fe80::/10).
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

impl Netlink {
    /// Every address of interface `ifindex`, as the kernel dumps them.
    pub(super) fn address_dump(
        &self,
        ifindex: u32,
    ) -> impl futures::TryStream<Ok = AddressMessage, Error = rtnetlink::Error> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
    }

    /// The address adverts go out from: the interface's first (primary)
    /// IPv4 address, or its IPv6 link-local address.
    pub async fn primary_address(
        &self,
        ifindex: u32,
        ipv6: bool,
    ) -> Result<Option<IpAddr>, NetError> {
        let mut dump = self.address_dump(ifindex);
        let mut found = None;
        while let Some(msg) = dump.try_next().await? {
            if msg.header.flags.contains(AddressHeaderFlags::Secondary) {
                continue;
            }
            let addr = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                AddressAttribute::Address(ip) if ipv6 => Some(*ip),
                _ => None,
            });
            match addr {
                Some(IpAddr::V4(a)) if !ipv6 && found.is_none() => found = Some(IpAddr::V4(a)),
                Some(IpAddr::V6(a)) if ipv6 && is_link_local(&a) && found.is_none() => {
                    found = Some(IpAddr::V6(a))
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// Whether `addr` is configured on any interface.
    pub async fn has_address(&self, addr: IpAddr) -> Result<bool, NetError> {
        let mut dump = self.handle.address().get().execute();
        while let Some(msg) = dump.try_next().await? {
            let here = msg.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Local(ip) | AddressAttribute::Address(ip) if *ip == addr)
            });
            if here {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adds one address line. `default_index` is the instance's interface,
    /// used unless the line has `dev`.
    pub async fn add_address(&self, a: &IpAddress, default_index: u32) -> Result<(), NetError> {
        let index = self.index_for(a.dev.as_deref(), default_index).await?;
        let mut req = self.handle.address().add(index, a.addr, a.prefix_len);
        fill_address(req.message_mut(), a);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => {
                debug!(addr = %a.addr, "address already present");
                Ok(())
            }
            Err(source) => Err(address_error(Change::Add, a, source)),
        }
    }

    /// Removes one address line (see [`Netlink::add_address`]).
    pub async fn remove_address(&self, a: &IpAddress, default_index: u32) -> Result<(), NetError> {
        let index = self.index_for(a.dev.as_deref(), default_index).await?;
        let mut template = self.handle.address().add(index, a.addr, a.prefix_len);
        let msg = template.message_mut().clone();
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENOENT | ESRCH)) => Ok(()),
            Err(source) => Err(address_error(Change::Remove, a, source)),
        }
    }
}

fn address_error(op: Change, a: &IpAddress, source: rtnetlink::Error) -> NetError {
    NetError::Address {
        op,
        addr: a.addr,
        prefix_len: a.prefix_len,
        source,
    }
}

/// The optional parts of an address line, as `ip address add` sets them.
fn fill_address(msg: &mut AddressMessage, a: &IpAddress) {
    if let Some(IpAddr::V4(brd)) = a.broadcast {
        msg.attributes
            .retain(|x| !matches!(x, AddressAttribute::Broadcast(_)));
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if let Some(label) = &a.label {
        msg.attributes.push(AddressAttribute::Label(label.clone()));
    }
    if let Some(scope) = &a.scope {
        match route_scope(scope) {
            Ok(s) => msg.header.scope = AddressScope::from(u8::from(s)),
            Err(e) => warn!(addr = %a.addr, "{e}: using the default scope"),
        }
    }
    if let Some(peer) = a.peer {
        msg.attributes
            .retain(|x| !matches!(x, AddressAttribute::Address(_)));
        msg.attributes.push(AddressAttribute::Address(peer));
    }
    if a.addr.is_ipv6() {
        // Like keepalived: no duplicate address detection for a VIP, so it
        // is usable at once.
        msg.header.flags |= AddressHeaderFlags::Nodad;
    }
}
