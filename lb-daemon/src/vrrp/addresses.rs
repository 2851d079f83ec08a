//! Virtual addresses and routes in the kernel, over rtnetlink: what a
//! master adds and a backup removes (`virtual_ipaddress`,
//! `virtual_ipaddress_excluded`, `virtual_routes`), and the interface facts
//! the runtime needs (index, MAC, link state, primary address).
//!
//! Adding what is already there and removing what is already gone are not
//! errors: both happen after a restart or when two paths race.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::{
    packet_route::{
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope},
        link::{LinkAttribute, LinkFlags},
        route::{RouteProtocol, RouteScope, RouteType},
    },
    Handle, RouteMessageBuilder,
};
use tracing::{debug, warn};

use crate::config::{IpAddress, Route};
use crate::net::MacAddr;

use super::network::is_link_local;

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EADDRNOTAVAIL: i32 = 99;

/// A link as VRRP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Option<MacAddr>,
    /// Administratively up and running (carrier), as keepalived checks it.
    pub up: bool,
}

/// A netlink connection of the VRRP runtime's own.
#[derive(Clone)]
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens the socket; its I/O runs as a task on the current runtime.
    pub fn new() -> std::io::Result<Kernel> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Kernel { handle })
    }

    /// Every link, by name.
    pub async fn links(&self) -> Result<Vec<Link>, rtnetlink::Error> {
        let mut out = Vec::new();
        let mut dump = self.handle.link().get().execute();
        while let Some(msg) = dump.try_next().await? {
            let mut name = None;
            let mut mac = None;
            for a in &msg.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    LinkAttribute::Address(b) => mac = MacAddr::try_from(b.as_slice()).ok(),
                    _ => {}
                }
            }
            let flags = msg.header.flags;
            if let Some(name) = name {
                out.push(Link {
                    name,
                    index: msg.header.index,
                    mac,
                    up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
                });
            }
        }
        Ok(out)
    }

    pub async fn link(&self, name: &str) -> Result<Option<Link>, rtnetlink::Error> {
        Ok(self.links().await?.into_iter().find(|l| l.name == name))
    }

    /// The address adverts go out from: the interface's first (primary)
    /// IPv4 address, or its IPv6 link-local address.
    pub async fn primary_address(
        &self,
        ifindex: u32,
        ipv6: bool,
    ) -> Result<Option<IpAddr>, rtnetlink::Error> {
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
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

    /// Adds one address line. `default_index` is the instance's interface,
    /// used unless the line has `dev`.
    pub async fn add_address(&self, a: &IpAddress, default_index: u32) -> anyhow::Result<()> {
        let index = self.index_for(a.dev.as_deref(), default_index).await?;
        let mut req = self.handle.address().add(index, a.addr, a.prefix_len);
        fill_address(req.message_mut(), a);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => {
                debug!(addr = %a.addr, "address already present");
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("adding {}/{}: {e}", a.addr, a.prefix_len)),
        }
    }

    pub async fn remove_address(&self, a: &IpAddress, default_index: u32) -> anyhow::Result<()> {
        let index = self.index_for(a.dev.as_deref(), default_index).await?;
        let mut template = self.handle.address().add(index, a.addr, a.prefix_len);
        let msg = template.message_mut().clone();
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENOENT | ESRCH)) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("removing {}/{}: {e}", a.addr, a.prefix_len)),
        }
    }

    /// Whether `addr` is configured on any interface.
    pub async fn has_address(&self, addr: IpAddr) -> Result<bool, rtnetlink::Error> {
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

    pub async fn add_route(&self, r: &Route, default_index: u32) -> anyhow::Result<()> {
        let msg = self.route_message(r, default_index).await?;
        match self.handle.route().add(msg).replace().execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "adding route {}/{}: {e}",
                r.dest,
                r.prefix_len
            )),
        }
    }

    pub async fn remove_route(&self, r: &Route, default_index: u32) -> anyhow::Result<()> {
        let msg = self.route_message(r, default_index).await?;
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(ESRCH | ENOENT)) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "removing route {}/{}: {e}",
                r.dest,
                r.prefix_len
            )),
        }
    }

    async fn index_for(&self, dev: Option<&str>, default_index: u32) -> anyhow::Result<u32> {
        match dev {
            None => Ok(default_index),
            Some(name) => Ok(self
                .link(name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("interface `{name}` not found"))?
                .index),
        }
    }

    async fn route_message(
        &self,
        r: &Route,
        default_index: u32,
    ) -> anyhow::Result<rtnetlink::packet_route::route::RouteMessage> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dest, r.prefix_len)
            .map_err(|e| anyhow::anyhow!("route {}/{}: {e}", r.dest, r.prefix_len))?;
        let kind = r.route_type.as_deref().map(route_type).transpose()?;
        if kind.is_none() {
            let index = match (&r.dev, r.via) {
                (Some(dev), _) => Some(self.index_for(Some(dev), default_index).await?),
                (None, Some(_)) => None,
                (None, None) => Some(default_index),
            };
            if let Some(i) = index {
                b = b.output_interface(i);
            }
        }
        if let Some(via) = r.via {
            b = b
                .gateway(via)
                .map_err(|e| anyhow::anyhow!("route via {via}: {e}"))?;
        }
        if let Some(src) = r.src {
            b = b
                .pref_source(src)
                .map_err(|e| anyhow::anyhow!("route src {src}: {e}"))?;
        }
        if let Some(m) = r.metric {
            b = b.priority(m);
        }
        if let Some(t) = &r.table {
            b = b.table_id(table_id(t)?);
        }
        if let Some(s) = &r.scope {
            b = b.scope(route_scope(s)?);
        } else if kind.is_none() && r.via.is_none() {
            b = b.scope(RouteScope::Link);
        }
        b = b.protocol(match r.protocol.as_deref() {
            Some(p) => RouteProtocol::from(named_number(p, &[("boot", 3), ("static", 4)])?),
            None => RouteProtocol::Boot,
        });
        if let Some(k) = kind {
            b = b.kind(k);
        }
        Ok(b.build())
    }
}

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

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn named_number(s: &str, names: &[(&str, u8)]) -> anyhow::Result<u8> {
    names
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unknown value `{s}`"))
}

fn route_scope(s: &str) -> anyhow::Result<RouteScope> {
    let n = named_number(
        s,
        &[
            ("global", 0),
            ("universe", 0),
            ("site", 200),
            ("link", 253),
            ("host", 254),
            ("nowhere", 255),
        ],
    )?;
    Ok(RouteScope::from(n))
}

fn route_type(s: &str) -> anyhow::Result<RouteType> {
    Ok(match s {
        "unicast" => RouteType::Unicast,
        "local" => RouteType::Local,
        "blackhole" => RouteType::BlackHole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "throw" => RouteType::Throw,
        other => anyhow::bail!("route type `{other}` is not supported"),
    })
}

fn table_id(s: &str) -> anyhow::Result<u32> {
    match s {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        n => n
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown routing table `{n}`")),
    }
}
