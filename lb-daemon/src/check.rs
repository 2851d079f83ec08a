//! `lbd -t` and `lbctl config check`: one implementation for both.

use std::{io::Write, path::Path};

/// Checks `path`; prints warnings and errors (`PATH:LINE:COL: ...`) to `out`
/// and returns the process exit code: 0 valid, 1 invalid.
pub fn check_config(path: &Path, out: &mut dyn Write) -> i32 {
    match crate::config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let _ = writeln!(out, "{w}");
            }
            for s in crate::services::plan(&loaded.config).skipped {
                let _ = writeln!(out, "{s}");
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
