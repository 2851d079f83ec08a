//! Address and route lines (`virtual_ipaddress`, `static_ipaddress`,
//! `virtual_routes`, `static_routes`).

use std::net::IpAddr;

use serde::Serialize;

use super::Location;

/// An address line of `virtual_ipaddress`, `virtual_ipaddress_excluded` or
/// `static_ipaddress`: `ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpAddress {
    pub addr: IpAddr,
    /// Defaults to the full length (32 or 128).
    pub prefix_len: u8,
    pub broadcast: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub peer: Option<IpAddr>,
    /// `no_track`: a missing address does not fault the instance.
    pub no_track: bool,
    #[serde(skip)]
    pub location: Location,
}

/// A route line of `virtual_routes` or `static_routes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// `blackhole`, `unreachable`, `prohibit`, `throw`... `None` for unicast.
    #[serde(rename = "type")]
    pub route_type: Option<String>,
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<String>,
    pub scope: Option<String>,
    pub protocol: Option<String>,
    pub no_track: bool,
    #[serde(skip)]
    pub location: Location,
}
