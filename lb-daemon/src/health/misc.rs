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

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command;
use tokio::time::timeout;

use super::core::Outcome;
use super::plan::ProbeSpec;
use crate::config::CheckerKind;

/// How long a group has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEnd {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
    Failed(String),
}

impl std::fmt::Display for ScriptEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptEnd::Exited(c) => write!(f, "exited with status {c}"),
            ScriptEnd::Signaled(s) => write!(f, "killed by signal {s}"),
            ScriptEnd::TimedOut(d) => write!(f, "timed out after {d:?} and was killed"),
            ScriptEnd::Failed(e) => write!(f, "could not run: {e}"),
        }
    }
}

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let CheckerKind::Misc(m) = &spec.kind else {
        return Outcome::down("not a MISC_CHECK");
    };
    let limit = m.misc_timeout.unwrap_or(spec.timing.delay_loop);
    let end = run_script(&m.misc_path, limit).await;
    judge(&end, m.misc_dynamic, &m.misc_path)
}

/// An exit status as a check result.
pub fn judge(end: &ScriptEnd, dynamic: bool, path: &str) -> Outcome {
    match end {
        ScriptEnd::Exited(0) => Outcome::up(),
        ScriptEnd::Exited(c) if dynamic && (2..=255).contains(c) => Outcome::Up {
            weight: Some(*c as u32 - 2),
        },
        other => Outcome::down(format!("{path} {other}")),
    }
}

/// Splits a command line into words (see `crate::script::split_words`).
pub fn split_command(line: &str) -> Vec<String> {
    crate::script::split_words(line)
}

/// Kills a whole process group.
fn kill_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory
        // is involved.
        unsafe { libc::kill(-pgid, signal) };
    }
}

/// Kills what is left of the group when the script's run ends in any way,
/// including the future being dropped.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0, libc::SIGKILL);
    }
}

/// Runs `command_line` with a time limit.
pub async fn run_script(command_line: &str, limit: Duration) -> ScriptEnd {
    let argv = split_command(command_line);
    let Some((program, args)) = argv.split_first() else {
        return ScriptEnd::Failed("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        // If this future is dropped, tokio kills and reaps the script.
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ScriptEnd::Failed(format!("{program}: {e}")),
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let _guard = GroupGuard(pgid);
    match timeout(limit, child.wait()).await {
        Ok(Ok(status)) => ended(status),
        Ok(Err(e)) => ScriptEnd::Failed(format!("waiting for {program}: {e}")),
        Err(_) => {
            kill_group(pgid, libc::SIGTERM);
            if timeout(TERM_GRACE, child.wait()).await.is_err() {
                kill_group(pgid, libc::SIGKILL);
                // SIGKILL cannot be ignored: this returns promptly, and the
                // script is reaped.
                let _ = child.wait().await;
            }
            ScriptEnd::TimedOut(limit)
        }
    }
}

fn ended(status: ExitStatus) -> ScriptEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ScriptEnd::Exited(c),
        (None, Some(s)) => ScriptEnd::Signaled(s),
        (None, None) => ScriptEnd::Failed(format!("ended with {status}")),
    }
}
