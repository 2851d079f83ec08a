//! Typed configuration model. Values are normalised: keepalived's defaults
//! are filled in and inherited settings (virtual server -> real server ->
//! checker, global_defs -> vrrp_instance) are resolved, so consumers never
//! re-implement keepalived's defaulting rules.
//!
//! Serialisation (used for golden files) skips source locations so dumps do
//! not depend on where the files live; durations serialise as strings such as
//! `"60s"` or `"0.05s"`.
//!
//! One file per part of keepalived.conf: [`global`] (global_defs and the
//! SSL block), [`ip`] (address and route lines), [`vrrp`], [`lvs`]
//! (virtual servers and groups) and [`checker`] (the checkers of a real
//! server). Everything is re-exported here, so users name `config::Config`,
//! `config::VirtualServer`... without the file.

mod checker;
mod global;
mod ip;
mod lvs;
mod vrrp;

pub use checker::*;
pub use global::*;
pub use ip::*;
pub use lvs::*;
pub use vrrp::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};

/// Where a configuration item starts (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl Location {
    pub fn new(file: &Path, line: u32, col: u32) -> Self {
        Location {
            file: file.to_path_buf(),
            line,
            col,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Serialises a duration as seconds with only the decimals needed.
pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_duration(*d))
}

pub(crate) fn ser_opt_duration<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&fmt_duration(*d)),
        None => s.serialize_none(),
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", d.as_secs());
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Config {
    pub global_defs: GlobalDefs,
    pub static_ipaddress: Vec<IpAddress>,
    pub static_routes: Vec<Route>,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// The top-level `SSL { ... }` block (for SSL_GET).
    pub ssl: Option<SslDefs>,
}
