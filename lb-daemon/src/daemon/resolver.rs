//! The kernel's answers the BPF tiers need and cannot ask for themselves:
//! backend MACs from the neighbour table (DR), next hops and their egress
//! interface from the routing table (NAT, TUN), over netlink
//! ([`crate::net`]).

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use tracing::warn;

use crate::{
    dataplane::{Dataplane, Mode, ServiceSpec},
    net::{Interface, MacAddr, NetError, Netlink, Route},
};

/// The kernel's neighbour table: (interface index, address) → MAC.
type Neighbours = HashMap<(u32, IpAddr), MacAddr>;

/// Netlink lookups for the data plane, with what they must remember between
/// reconciles.
pub struct Resolver {
    netlink: Netlink,
    /// The interfaces lbd is attached to (`--interface`).
    interfaces: Vec<Interface>,
    /// Interfaces recorded as next-hop egress in the data plane.
    egress: HashSet<u32>,
    /// Backends already warned about, so a bad route is logged once.
    warned: HashSet<IpAddr>,
}

impl Resolver {
    /// Opens netlink and looks up the interfaces named (all must exist).
    pub async fn open(names: &[String]) -> Result<Resolver, NetError> {
        let netlink = Netlink::new()?;
        let mut interfaces = Vec::new();
        for name in names {
            interfaces.push(netlink.interface(name).await?);
        }
        // The attached interfaces are egress interfaces already.
        let egress = interfaces.iter().map(|i| i.index).collect();
        Ok(Resolver {
            netlink,
            interfaces,
            egress,
            warned: HashSet::new(),
        })
    }

    /// The interfaces lbd is attached to, in the order given.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// An interface's first IPv4 and IPv6 addresses.
    pub async fn addresses(
        &self,
        ifindex: u32,
    ) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), NetError> {
        self.netlink.addresses(ifindex).await
    }

    /// Fills in every backend's MAC (DR) or next hop (NAT, TUN); an
    /// unresolved one is left without and the kernel is asked to resolve
    /// it. Next-hop interfaces not seen before are recorded in `dataplane`.
    /// Returns whether every backend was resolved.
    pub async fn resolve(
        &mut self,
        specs: &mut [ServiceSpec],
        dataplane: &mut dyn Dataplane,
    ) -> Result<bool, NetError> {
        let neighbours = self.netlink.neighbours().await?;
        let mut complete = true;
        for spec in specs {
            if spec.mode != Mode::Dr {
                // NAT and TUN take their next hop from the kernel's FIB,
                // which has no answer (and XDP cannot ask for one) until the
                // neighbour is resolved: keep it resolved.
                for b in spec.all_backends_mut() {
                    match self.next_hop(b.addr.ip(), &neighbours, dataplane).await {
                        Some((mac, oif)) => {
                            b.mac = Some(mac);
                            b.via = Some(oif);
                        }
                        None => complete = false,
                    }
                }
                continue;
            }
            for b in spec.all_backends_mut() {
                b.mac = self.backend_mac(b.addr.ip(), &neighbours).await;
                complete &= b.mac.is_some();
            }
        }
        Ok(complete)
    }

    /// The MAC of the next hop towards a NAT/TUN backend and the interface
    /// it is on (recorded in the data plane, so the program can send there
    /// directly); when unresolved, asks the kernel to resolve it.
    async fn next_hop(
        &mut self,
        ip: IpAddr,
        neighbours: &Neighbours,
        dataplane: &mut dyn Dataplane,
    ) -> Option<(MacAddr, u32)> {
        let route = self
            .route_to_backend(ip, "its packets go to the kernel")
            .await?;
        let hop = route.gateway.unwrap_or(ip);
        if let Some(mac) = neighbours.get(&(route.oif, hop)) {
            if !self.egress.contains(&route.oif) {
                match self.netlink.interface_by_index(route.oif).await {
                    Ok(iface) => match dataplane.record_interface(&iface) {
                        Ok(()) => {
                            self.egress.insert(route.oif);
                        }
                        Err(e) => warn!(iface = %iface.name, "recording interface: {e}"),
                    },
                    Err(e) => warn!(ifindex = route.oif, "reading interface: {e}"),
                }
            }
            return Some((*mac, route.oif));
        }
        if let Err(e) = self.netlink.prompt_resolution(route.oif, hop).await {
            warn!(backend = %ip, next_hop = %hop, "could not ask the kernel to resolve the next hop: {e}");
        }
        None
    }

    /// The kernel's route to a backend; a missing route is warned about
    /// once per backend, with `without` saying what that means for it.
    async fn route_to_backend(&mut self, ip: IpAddr, without: &str) -> Option<Route> {
        match self.netlink.route(ip).await {
            Ok(Some(r)) => Some(r),
            Ok(None) => {
                if self.warned.insert(ip) {
                    warn!(backend = %ip, "no route to backend: {without}");
                }
                None
            }
            Err(e) => {
                warn!(backend = %ip, "route lookup failed: {e}");
                None
            }
        }
    }

    /// A DR backend's MAC; when unresolved, asks the kernel to resolve it.
    async fn backend_mac(&mut self, ip: IpAddr, neighbours: &Neighbours) -> Option<MacAddr> {
        let route = self.route_to_backend(ip, "it gets no traffic").await?;
        // DR sends the frame back out of the interface it came in on, so the
        // backend must be on the link of an attached interface.
        let on_link = !route.via_gateway() && self.interfaces.iter().any(|i| i.index == route.oif);
        if !on_link {
            if self.warned.insert(ip) {
                warn!(backend = %ip, "backend is not on the link of an attached interface (DR needs it there): it gets no traffic");
            }
            return None;
        }
        if let Some(mac) = neighbours.get(&(route.oif, ip)) {
            return Some(*mac);
        }
        if let Err(e) = self.netlink.prompt_resolution(route.oif, ip).await {
            warn!(backend = %ip, "could not ask the kernel to resolve the backend's MAC: {e}");
        }
        None
    }
}
