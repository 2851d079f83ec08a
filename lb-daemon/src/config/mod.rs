//! keepalived.conf(5) configuration: reading, diagnostics and typed model.
//!
//! Pipeline: [`preprocess`] (keepalived's `@ID` conditional lines, `$NAME`
//! definitions and `~SEQ`) -> [`lexer`] (tokens with exact positions) ->
//! [`tree`] (statements
//! and blocks, includes expanded) -> section builders driven by keyword
//! tables ([`keywords`]), one module per part of the file ([`global`],
//! [`ip`] for address and route lines, [`vrrp`], [`lvs`], [`ssl`]), filling
//! the typed [`model`] -> cross-checks ([`validate`]). Every stage records
//! problems in one collector and carries on, so a single run lists every
//! error in the file set.

mod diag;
mod dump;
mod expand;
mod global;
mod ip;
mod keywords;
mod lexer;
mod lvs;
mod model;
mod preprocess;
mod ssl;
mod tree;
mod validate;
mod values;
mod vrrp;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::OnceLock;

pub use diag::{Diagnostic, Diagnostics, ErrorKind, Severity};
pub use dump::dump_json;
pub use model::*;

use diag::Sink;
use keywords::{dispatch, kw, later, unsupported, Keyword};
use tree::Stmt;

/// A successfully read configuration and the findings on the way: in
/// [`Mode::Check`] warnings only; in [`Mode::Start`] and [`Mode::Reload`]
/// also the errors whose bad part was skipped (to be logged as errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// How much a file may be wrong and still be used. Every error is reported
/// the same way in every mode; the modes differ in which errors stop the
/// load. keepalived is the contract: it runs a file with mistakes in it,
/// skipping the bad part or falling back to a default, and a refused start
/// is an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `lbd -t`, `lbctl config check`: any error fails.
    Check,
    /// Starting: runs whatever keepalived runs; only [`ErrorKind::Fatal`]
    /// errors (those keepalived does not start with) fail.
    Start,
    /// Reloading: as a start, and a structurally broken file (unbalanced
    /// braces, unreadable file or include, binary data: most likely
    /// half-written) is refused, so the running configuration is kept.
    Reload,
}

impl Mode {
    fn refuses(self, d: &Diagnostic) -> bool {
        d.is_error()
            && match self {
                Mode::Check => true,
                Mode::Start => d.kind == ErrorKind::Fatal,
                Mode::Reload => d.kind != ErrorKind::Value,
            }
    }
}

/// The configuration id set by `lbd -i` / `--config-id`.
static CONFIG_ID: OnceLock<String> = OnceLock::new();

/// Sets the configuration id `@ID` lines and `$_INSTANCE` are read against
/// (keepalived's `-i`), for every later load in this process. Without it,
/// the id is the host name up to its first `.`, as keepalived's. Only the
/// first call counts.
pub fn set_config_id(id: &str) {
    let _ = CONFIG_ID.set(id.to_string());
}

/// The configuration id loads use (see [`set_config_id`]).
pub fn config_id() -> Option<String> {
    CONFIG_ID
        .get()
        .cloned()
        .or_else(preprocess::default_config_id)
}

/// Reads `path` and every file it includes ([`Mode::Check`]). On failure,
/// `Err` holds all errors and the warnings found with them, in file order.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    load_for(path, Mode::Check)
}

/// Reads `path` and every file it includes, failing as `mode` says.
pub fn load_for(path: &Path, mode: Mode) -> Result<Loaded, Diagnostics> {
    let mut sink = Sink::default();
    sink.note_file(path);
    match tree::read_to_string(path, &mut sink, None) {
        Some(text) => build(&text, path, sink, mode, config_id()),
        None => {
            // keepalived does not start without its main file either.
            let mut diags = sink.finish();
            for d in &mut diags {
                d.kind = ErrorKind::Fatal;
            }
            Err(Diagnostics(diags))
        }
    }
}

/// Like [`load`] with the text of `path` given; includes are still read
/// from disk, relative to `path`'s directory.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, Diagnostics> {
    parse_str_for(text, path, Mode::Check)
}

/// Like [`load_for`] with the text of `path` given.
pub fn parse_str_for(text: &str, path: &Path, mode: Mode) -> Result<Loaded, Diagnostics> {
    build(text, path, Sink::default(), mode, config_id())
}

/// Like [`parse_str_for`] with the configuration id given.
pub fn parse_str_with_id(
    text: &str,
    path: &Path,
    mode: Mode,
    config_id: Option<&str>,
) -> Result<Loaded, Diagnostics> {
    build(
        text,
        path,
        Sink::default(),
        mode,
        config_id.map(String::from),
    )
}

fn build(
    text: &str,
    path: &Path,
    mut sink: Sink,
    mode: Mode,
    config_id: Option<String>,
) -> Result<Loaded, Diagnostics> {
    let mut pp = preprocess::Preprocessor::new(config_id);
    let stmts = tree::parse_file_text(text, path, &mut pp, &mut sink);
    let mut config = build_config(&stmts, &mut sink);
    validate::check(&mut config, &mut sink);
    let diags = sink.finish();
    if diags.iter().any(|d| mode.refuses(d)) {
        Err(Diagnostics(diags))
    } else {
        Ok(Loaded {
            config,
            warnings: diags,
        })
    }
}

static TOP_KEYWORDS: &[Keyword<Config>] = &[
    later("global_defs"),
    kw("static_ipaddress", |s, st, c| {
        c.static_ipaddress.extend(ip::address_block(s, st))
    }),
    kw("static_routes", |s, st, c| {
        c.static_routes.extend(ip::route_block(s, st))
    }),
    kw("vrrp_script", |s, st, c| {
        c.vrrp_scripts.extend(vrrp::build_script(s, st))
    }),
    kw("vrrp_sync_group", |s, st, c| {
        c.vrrp_sync_groups.extend(vrrp::build_sync_group(s, st))
    }),
    kw("vrrp_instance", |s, st, c| {
        let inst = vrrp::build_instance(s, st, &c.global_defs);
        c.vrrp_instances.extend(inst);
    }),
    kw("virtual_server_group", |s, st, c| {
        c.virtual_server_groups.extend(lvs::build_vsg(s, st))
    }),
    kw("virtual_server", |s, st, c| {
        c.virtual_servers.extend(lvs::build_vs(s, st))
    }),
    unsupported("static_rules"),
    unsupported("static_track_group"),
    unsupported("track_group"),
    unsupported("garp_group"),
    unsupported("linkbeat_interfaces"),
    unsupported("vrrp_track_process"),
    unsupported("vrrp_track_file"),
    unsupported("track_file"),
    unsupported("bfd_instance"),
    kw("SSL", |s, st, c| c.ssl = ssl::build(s, st)),
    unsupported("net_namespace"),
    unsupported("net_namespace_ipvs"),
    unsupported("use_pid_dir"),
    unsupported("instance"),
    unsupported("child_wait_time"),
    unsupported("linkbeat_use_polling"),
    unsupported("interface_up_down_delays"),
];

fn build_config(stmts: &[Stmt], sink: &mut Sink) -> Config {
    let mut config = Config::default();
    // global_defs first wherever it is written: vrrp_instance takes its
    // defaults (vrrp_version, garp timings) from it, as keepalived resolves
    // them after reading the whole file.
    for st in stmts.iter().filter(|s| s.keyword() == "global_defs") {
        global::build(sink, st, &mut config.global_defs);
    }
    dispatch(sink, stmts, TOP_KEYWORDS, &mut config, "");
    config
}
