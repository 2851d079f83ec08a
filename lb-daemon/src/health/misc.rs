//! MISC_CHECK: run `misc_path`; exit 0 is up, anything else down, and with
//! `misc_dynamic` an exit of 2 to 255 is up with weight exit − 2 (0 puts the
//! configured weight back).
//!
//! Scripts run in a process group of their own, without a shell (the
//! command line is split as keepalived does: blanks separate words, quotes
//! group them). At `misc_timeout` (the checker's `delay_loop` when unset)
//! the group gets SIGTERM, then SIGKILL half a second later; whatever is
//! left of the group is killed when the script ends in any way, and the
//! script is always reaped. A checker runs one script at a time, so scripts
//! never pile up. Notify scripts run the same way.

pub use crate::script::run::{run_script, ScriptEnd};

use super::core::Outcome;
use super::plan::ProbeSpec;
use crate::config::CheckerKind;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let CheckerKind::Misc(m) = &spec.kind else {
        return Outcome::down("not a MISC_CHECK");
    };
    let limit = m.misc_timeout.unwrap_or(spec.timing.delay_loop);
    let end = run_script(&m.misc_path, m.user.as_ref(), &[], limit).await;
    judge(&end, m.misc_dynamic, &m.misc_path)
}

/// An exit status as a check result.
pub fn judge(end: &ScriptEnd, dynamic: bool, path: &str) -> Outcome {
    match end {
        ScriptEnd::Exited(0) => Outcome::up(),
        ScriptEnd::Exited(c) if dynamic && (2..=255).contains(c) => Outcome::Up {
            weight: Some(*c as u32 - 2),
        },
        // Says nothing about the backend: it stays as it was.
        ScriptEnd::Failed(_) | ScriptEnd::Refused(_) => Outcome::LocalError {
            reason: format!("{path} {end}"),
        },
        other => Outcome::down(format!("{path} {other}")),
    }
}

/// Splits a command line into words (see `crate::script::split_words`).
pub fn split_command(line: &str) -> Vec<String> {
    crate::script::split_words(line)
}
