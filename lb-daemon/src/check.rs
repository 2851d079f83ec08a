//! `lbd -t` and `lbctl config check`: one implementation for both.

use std::{io::Write, path::Path};

use crate::{
    config::{Config, DataplaneTier},
    dataplane::{capacity::Limits, select::Tier},
};

/// Whether the data plane that will carry `config` is a BPF one (whose maps
/// have fixed sizes): anything but IPVS, asked for by `tier` or else by
/// `lb_dataplane` (`auto` starts with XDP).
pub fn bpf_limits_apply(tier: Option<Tier>, config: &Config) -> bool {
    match tier {
        Some(t) => t != Tier::Ipvs,
        None => config.global_defs.lb_dataplane != Some(DataplaneTier::Ipvs),
    }
}

/// Checks `path`; prints warnings and errors (`PATH:LINE:COL: ...`) to `out`
/// and returns the process exit code: 0 valid, 1 invalid.
pub fn check_config(path: &Path, out: &mut dyn Write) -> i32 {
    check_config_for(path, None, out)
}

/// As [`check_config`], for the data plane `tier` (`lbd --dataplane`;
/// `None`: the configuration's `lb_dataplane`): a configuration that does
/// not fit the BPF tier's maps is invalid unless the tier is IPVS.
pub fn check_config_for(path: &Path, tier: Option<Tier>, out: &mut dyn Write) -> i32 {
    match crate::config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let _ = writeln!(out, "{w}");
            }
            for s in crate::services::plan(&loaded.config).skipped {
                let _ = writeln!(out, "{s}");
            }
            let scripts = crate::script::ScriptPolicy::from_globals(&loaded.config.global_defs);
            for d in scripts.report(&loaded.config) {
                let _ = writeln!(out, "{d}");
            }
            if bpf_limits_apply(tier, &loaded.config) {
                if let Err(d) = crate::services::check_capacity(&loaded.config, Limits::BPF) {
                    let _ = writeln!(out, "{d}");
                    let _ = writeln!(out, "{}: 1 error", path.display());
                    return 1;
                }
            }
            let _ = writeln!(out, "{}: configuration is valid", path.display());
            0
        }
        Err(diags) => {
            for d in &diags.0 {
                let _ = writeln!(out, "{d}");
            }
            let errors = diags
                .0
                .iter()
                .filter(|d| d.severity == crate::config::Severity::Error)
                .count();
            let _ = writeln!(
                out,
                "{}: {errors} error{}",
                path.display(),
                if errors == 1 { "" } else { "s" }
            );
            1
        }
    }
}
