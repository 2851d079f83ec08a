//! The part of a reload that reads and checks the file, run on the blocking
//! pool: a big file takes seconds to parse, and the runtime's threads carry
//! VRRP's adverts meanwhile.

use std::path::Path;

use tracing::warn;

use crate::{
    config,
    dataplane::{capacity::Limits, Capabilities, ServiceSpec},
    script::ScriptPolicy,
    services,
};

/// A configuration read and checked for a reload.
pub(super) struct Prepared {
    pub config: config::Config,
    /// With a data plane of capabilities `caps`: the services it would
    /// carry, or why they do not fit it.
    pub planned: Option<Result<Vec<ServiceSpec>, String>>,
    pub scripts: ScriptPolicy,
    pub script_findings: Vec<config::Diagnostic>,
}

/// Reads `path` for a reload (`caps`: the running data plane's, if any).
pub(super) fn prepare(
    path: &Path,
    caps: Option<Capabilities>,
) -> Result<Prepared, config::Diagnostics> {
    let config = super::load_config(path, config::Mode::Reload)?;
    let planned = caps.map(|caps| {
        // The BPF tiers' maps have fixed sizes; IPVS grows as needed.
        if caps.backend_macs {
            services::check_capacity(&config, Limits::BPF).map_err(|d| d.to_string())?;
        }
        let plan = services::plan_for(&config, caps);
        for s in &plan.skipped {
            warn!("{s}");
        }
        Ok(plan.services)
    });
    let scripts = ScriptPolicy::from_globals(&config.global_defs);
    let script_findings = scripts.report(&config);
    Ok(Prepared {
        config,
        planned,
        scripts,
        script_findings,
    })
}
