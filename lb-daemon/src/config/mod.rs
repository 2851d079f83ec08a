//! keepalived.conf(5) configuration: reading, diagnostics and typed model.
//!
//! Pipeline: [`lexer`] (tokens with exact positions) -> [`tree`] (statements
//! and blocks, includes expanded) -> section builders driven by keyword
//! tables ([`keywords`]), one module per part of the file ([`global`],
//! [`ip`] for address and route lines, [`vrrp`], [`lvs`], [`ssl`]), filling
//! the typed [`model`] -> cross-checks ([`validate`]). Every stage records
//! problems in one collector and carries on, so a single run lists every
//! error in the file set.

mod diag;
mod dump;
mod global;
mod ip;
mod keywords;
mod lexer;
mod lvs;
mod model;
mod ssl;
mod tree;
mod validate;
mod values;
mod vrrp;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use dump::dump_json;
pub use model::*;

use diag::Sink;
use keywords::{dispatch, kw, later, unsupported, Keyword};
use tree::Stmt;

/// A successfully read configuration and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Reads `path` and every file it includes. On failure, `Err` holds all
/// errors and the warnings found with them, in file order.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let mut sink = Sink::default();
    sink.note_file(path);
    match tree::read_to_string(path, &mut sink, None) {
        Some(text) => build(&text, path, sink),
        None => Err(Diagnostics(sink.finish())),
    }
}

/// Like [`load`] with the text of `path` given; includes are still read
/// from disk, relative to `path`'s directory.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, Diagnostics> {
    build(text, path, Sink::default())
}

fn build(text: &str, path: &Path, mut sink: Sink) -> Result<Loaded, Diagnostics> {
    let stmts = tree::parse_file_text(text, path, &mut sink);
    let config = build_config(&stmts, &mut sink);
    validate::check(&config, &mut sink);
    let diags = sink.finish();
    if diags.iter().any(Diagnostic::is_error) {
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
