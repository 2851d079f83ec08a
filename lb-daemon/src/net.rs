//! The one rtnetlink connection of lbd ([`Netlink`]): interfaces,
//! neighbours and routes read from the kernel, and what VRRP changes in it.
//!
//! - here: interfaces for forwarding, neighbours, the route to a backend;
//! - `link`: every link with its state ([`Link`]);
//! - `address`: primary and virtual addresses;
//! - `routes`: the routes lbd installs (`virtual_routes`).

use std::{collections::HashMap, fmt, net::IpAddr, str::FromStr};

use futures::TryStreamExt;
use rtnetlink::{
    packet_route::{
        link::LinkAttribute,
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState},
        route::{RouteAddress, RouteAttribute},
    },
    Handle, RouteMessageBuilder,
};

mod address;
mod link;
mod routes;

pub use address::is_link_local;
pub use link::Link;
pub use routes::RouteSpecError;

// The errnos a change may answer with when it has nothing to do.
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts
                .next()
                .ok_or_else(|| format!("invalid MAC address `{s}`: expected 6 octets"))?;
            *byte = u8::from_str_radix(part, 16)
                .map_err(|_| format!("invalid MAC address `{s}`: bad octet `{part}`"))?;
        }
        if parts.next().is_some() {
            return Err(format!("invalid MAC address `{s}`: expected 6 octets"));
        }
        Ok(MacAddr(out))
    }
}

impl TryFrom<&[u8]> for MacAddr {
    type Error = ();
    fn try_from(b: &[u8]) -> Result<Self, ()> {
        <[u8; 6]>::try_from(b).map(MacAddr).map_err(|_| ())
    }
}

/// A network interface on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: MacAddr,
    pub mtu: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("interface `{0}` not found")]
    NoSuchInterface(String),
    #[error("interface `{0}` has no Ethernet address")]
    NoMac(String),
    /// The kernel refused to add or remove an address.
    #[error("{op} {addr}/{prefix_len}: {source}")]
    Address {
        op: Change,
        addr: IpAddr,
        prefix_len: u8,
        #[source]
        source: rtnetlink::Error,
    },
    /// The kernel refused to add or remove a route.
    #[error("{op} route {dest}/{prefix_len}: {source}")]
    Route {
        op: Change,
        dest: IpAddr,
        prefix_len: u8,
        #[source]
        source: rtnetlink::Error,
    },
    #[error(transparent)]
    RouteSpec(#[from] RouteSpecError),
}

/// What a change to the kernel's addresses or routes was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Add => "adding",
            Change::Remove => "removing",
        })
    }
}

/// The errno of a request the kernel answered with an error.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// Route to a backend as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    /// The backend is reached through this router, not on the link itself.
    pub gateway: Option<IpAddr>,
}

impl Route {
    pub fn via_gateway(&self) -> bool {
        self.gateway.is_some()
    }
}

/// A connection to the kernel's routing subsystem.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the socket; its I/O runs as a task on the current tokio runtime.
    pub fn new() -> Result<Self, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub async fn interface(&self, name: &str) -> Result<Interface, NetError> {
        let links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        Self::link_info(links, name.to_string()).await
    }

    pub async fn interface_by_index(&self, index: u32) -> Result<Interface, NetError> {
        let links = self.handle.link().get().match_index(index).execute();
        Self::link_info(links, format!("#{index}")).await
    }

    async fn link_info(
        links: impl futures::Stream<
            Item = Result<rtnetlink::packet_route::link::LinkMessage, rtnetlink::Error>,
        >,
        what: String,
    ) -> Result<Interface, NetError> {
        futures::pin_mut!(links);
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => {
                return Err(NetError::NoSuchInterface(what))
            }
            Err(e) => return Err(e.into()),
        };
        let mut mac = None;
        let mut mtu = 1500;
        let mut name = what.clone();
        for a in &link.attributes {
            match a {
                LinkAttribute::Address(b) => mac = MacAddr::try_from(b.as_slice()).ok(),
                LinkAttribute::Mtu(m) => mtu = *m,
                LinkAttribute::IfName(n) => name = n.clone(),
                _ => {}
            }
        }
        Ok(Interface {
            name,
            index: link.header.index,
            mac: mac.ok_or(NetError::NoMac(what))?,
            mtu,
        })
    }

    /// The first IPv4 and IPv6 (global) addresses of an interface.
    pub async fn addresses(
        &self,
        ifindex: u32,
    ) -> Result<(Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>), NetError> {
        use rtnetlink::packet_route::address::{AddressAttribute, AddressScope};
        let mut v4 = None;
        let mut v6 = None;
        let mut dump = self.address_dump(ifindex);
        while let Some(msg) = dump.try_next().await? {
            if msg.header.scope != AddressScope::Universe {
                continue;
            }
            for a in &msg.attributes {
                match a {
                    AddressAttribute::Address(IpAddr::V4(x)) if v4.is_none() => v4 = Some(*x),
                    AddressAttribute::Address(IpAddr::V6(x)) if v6.is_none() => v6 = Some(*x),
                    _ => {}
                }
            }
        }
        Ok((v4, v6))
    }

    /// Resolved neighbours: (ifindex, address) → MAC, for entries whose MAC
    /// can be used now (reachable, stale, delay, probe, permanent).
    pub async fn neighbours(&self) -> Result<HashMap<(u32, IpAddr), MacAddr>, NetError> {
        let mut out = HashMap::new();
        let mut dump = self.handle.neighbours().get().execute();
        while let Some(n) = dump.try_next().await? {
            let usable = matches!(
                n.header.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
            );
            if !usable {
                continue;
            }
            let mut ip = None;
            let mut mac = None;
            for a in &n.attributes {
                match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        ip = Some(IpAddr::V4(*v4))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        ip = Some(IpAddr::V6(*v6))
                    }
                    NeighbourAttribute::LinkLayerAddress(b) => {
                        mac = MacAddr::try_from(b.as_slice()).ok()
                    }
                    _ => {}
                }
            }
            if let (Some(ip), Some(mac)) = (ip, mac) {
                out.insert((n.header.ifindex, ip), mac);
            }
        }
        Ok(out)
    }

    /// The kernel's route to `ip`, if it has one.
    pub async fn route(&self, ip: IpAddr) -> Result<Option<Route>, NetError> {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(ip, prefix)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
            .build();
        let mut routes = self.handle.route().get(msg).execute();
        let route = match routes.try_next().await {
            Ok(Some(r)) => r,
            // ENETUNREACH and friends: no route.
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut oif = None;
        let mut gateway = None;
        for a in &route.attributes {
            match a {
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
                _ => {}
            }
        }
        Ok(oif.map(|oif| Route { oif, gateway }))
    }

    /// Asks the kernel to resolve `ip` on `ifindex` (like `ip neigh ... use`):
    /// the entry is created if missing and an ARP/ND probe is sent.
    pub async fn prompt_resolution(&self, ifindex: u32, ip: IpAddr) -> Result<(), NetError> {
        self.handle
            .neighbours()
            .add(ifindex, ip)
            .state(NeighbourState::None)
            .flags(NeighbourFlags::Use)
            .replace()
            .execute()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_and_prints() {
        let m: MacAddr = "02:00:0a:ff:00:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0x0a, 0xff, 0, 1]);
        assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
        assert!("02:00:0a:ff:00".parse::<MacAddr>().is_err());
        assert!("02:00:0a:ff:00:01:02".parse::<MacAddr>().is_err());
        assert!("02:00:0a:zz:00:01".parse::<MacAddr>().is_err());
    }
}
