//! Every link of the host with its state: what VRRP tracks
//! (`track_interface`) and sends from. [`Interface`](super::Interface) is the
//! forwarding view of one link (it must have a MAC); a [`Link`] is any link,
//! MAC or not.

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};

use super::{MacAddr, NetError, Netlink};

/// A link as VRRP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Option<MacAddr>,
    /// Administratively up and running (carrier), as keepalived checks it.
    pub up: bool,
}

impl Netlink {
    /// Every link, by name.
    pub async fn links(&self) -> Result<Vec<Link>, NetError> {
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

    /// The link named `name`, if there is one.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetError> {
        Ok(self.links().await?.into_iter().find(|l| l.name == name))
    }

    /// The index of `dev`, or `default_index` when there is no `dev`: a
    /// configuration line's interface, the instance's unless it names one.
    pub(super) async fn index_for(
        &self,
        dev: Option<&str>,
        default_index: u32,
    ) -> Result<u32, NetError> {
        match dev {
            None => Ok(default_index),
            Some(name) => Ok(self
                .link(name)
                .await?
                .ok_or_else(|| NetError::NoSuchInterface(name.to_string()))?
                .index),
        }
    }
}
