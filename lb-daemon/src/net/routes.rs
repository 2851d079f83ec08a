//! Routes lbd installs: a VRRP master's `virtual_routes`, in the words of
//! keepalived.conf (which are iproute2's: `table main`, `scope link`,
//! `proto static`, `blackhole`...).
//!
//! Adding what is already there and removing what is already gone are not
//! errors: both happen after a restart or when two paths race.

use std::net::IpAddr;
use std::num::ParseIntError;

use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::RouteMessageBuilder;

use crate::config::Route;

use super::{errno, Change, NetError, Netlink, EEXIST, ENOENT, ESRCH};

/// The route builder's error: rtnetlink does not export its type.
type BuilderError = Box<dyn std::error::Error + Send + Sync>;

/// A configured route (or address scope) netlink cannot express.
#[derive(Debug, thiserror::Error)]
pub enum RouteSpecError {
    #[error("route {dest}/{prefix_len}: {source}")]
    Destination {
        dest: IpAddr,
        prefix_len: u8,
        #[source]
        source: BuilderError,
    },
    #[error("route via {via}: {source}")]
    Gateway {
        via: IpAddr,
        #[source]
        source: BuilderError,
    },
    #[error("route src {src}: {source}")]
    PrefSource {
        src: IpAddr,
        #[source]
        source: BuilderError,
    },
    /// Neither one of the names the field takes nor a number.
    #[error("unknown value `{0}`")]
    UnknownValue(String),
    #[error("route type `{0}` is not supported")]
    UnsupportedType(String),
    #[error("unknown routing table `{name}`")]
    UnknownTable {
        name: String,
        #[source]
        source: ParseIntError,
    },
}

impl Netlink {
    /// Adds (or replaces) one route line. `default_index` is the
    /// instance's interface, used unless the line has `dev` or `via`.
    pub async fn add_route(&self, r: &Route, default_index: u32) -> Result<(), NetError> {
        let msg = self.route_message(r, default_index).await?;
        match self.handle.route().add(msg).replace().execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(source) => Err(route_error(Change::Add, r, source)),
        }
    }

    /// Removes one route line (see [`Netlink::add_route`]).
    pub async fn remove_route(&self, r: &Route, default_index: u32) -> Result<(), NetError> {
        let msg = self.route_message(r, default_index).await?;
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(ESRCH | ENOENT)) => Ok(()),
            Err(source) => Err(route_error(Change::Remove, r, source)),
        }
    }

    async fn route_message(&self, r: &Route, default_index: u32) -> Result<RouteMessage, NetError> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dest, r.prefix_len)
            .map_err(|e| RouteSpecError::Destination {
                dest: r.dest,
                prefix_len: r.prefix_len,
                source: e.into(),
            })?;
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
            b = b.gateway(via).map_err(|e| RouteSpecError::Gateway {
                via,
                source: e.into(),
            })?;
        }
        if let Some(src) = r.src {
            b = b.pref_source(src).map_err(|e| RouteSpecError::PrefSource {
                src,
                source: e.into(),
            })?;
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

fn route_error(op: Change, r: &Route, source: rtnetlink::Error) -> NetError {
    NetError::Route {
        op,
        dest: r.dest,
        prefix_len: r.prefix_len,
        source,
    }
}

fn named_number(s: &str, names: &[(&str, u8)]) -> Result<u8, RouteSpecError> {
    names
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| s.parse().ok())
        .ok_or_else(|| RouteSpecError::UnknownValue(s.to_string()))
}

/// A scope by its iproute2 name or number (routes and addresses share them).
pub(super) fn route_scope(s: &str) -> Result<RouteScope, RouteSpecError> {
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

fn route_type(s: &str) -> Result<RouteType, RouteSpecError> {
    Ok(match s {
        "unicast" => RouteType::Unicast,
        "local" => RouteType::Local,
        "blackhole" => RouteType::BlackHole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "throw" => RouteType::Throw,
        other => return Err(RouteSpecError::UnsupportedType(other.to_string())),
    })
}

fn table_id(s: &str) -> Result<u32, RouteSpecError> {
    match s {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        n => n.parse().map_err(|source| RouteSpecError::UnknownTable {
            name: n.to_string(),
            source,
        }),
    }
}
