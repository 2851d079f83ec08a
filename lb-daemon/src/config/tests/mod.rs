//! Tests of the whole pipeline: exact diagnostics (message and position)
//! and model values, one file per part of keepalived.conf, plus the golden
//! corpus (`tests/configs`) and robustness against garbled input.

mod checkers;
mod corpus;
mod global;
mod include;
mod ip;
mod lvs;
mod parsing;
mod permissive;
mod preprocess;
mod robustness;
mod vrrp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// All diagnostics of `text` read as `t.conf`, as displayed.
fn diags(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("t.conf")) {
        Ok(l) => l.warnings.iter().map(|d| d.to_string()).collect(),
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

/// The config of `text`, which must load (warnings allowed).
fn ok(text: &str) -> Loaded {
    match parse_str(text, Path::new("t.conf")) {
        Ok(l) => l,
        Err(d) => panic!("unexpected errors:\n{d}"),
    }
}

/// The config of `text`, which must load without any diagnostic.
fn clean(text: &str) -> Config {
    let l = ok(text);
    assert!(
        l.warnings.is_empty(),
        "unexpected warnings: {:?}",
        l.warnings
    );
    l.config
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A scratch directory for include tests.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lb-config-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
