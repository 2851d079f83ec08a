//! Running a script to its end: in a process group of its own, as the
//! script policy says, with a time limit. At the limit the group gets
//! SIGTERM, then SIGKILL half a second later; whatever is left of the group
//! (background children included) is killed when the script ends in any
//! way, and the script is always reaped.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::time::timeout;

use crate::config::ScriptUser;

/// How long a group has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEnd {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
    /// Could not be started (a local error, not the backend's).
    Failed(String),
    /// Refused by the script policy (user, permissions).
    Refused(String),
}

impl std::fmt::Display for ScriptEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptEnd::Exited(c) => write!(f, "exited with status {c}"),
            ScriptEnd::Signaled(s) => write!(f, "killed by signal {s}"),
            ScriptEnd::TimedOut(d) => write!(f, "timed out after {d:?} and was killed"),
            ScriptEnd::Failed(e) => write!(f, "could not run: {e}"),
            ScriptEnd::Refused(e) => write!(f, "refused: {e}"),
        }
    }
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

/// Runs `command_line` with `extra` arguments as `user` (else the script
/// policy's default user), within `limit`.
pub async fn run_script(
    command_line: &str,
    user: Option<&ScriptUser>,
    extra: &[String],
    limit: Duration,
) -> ScriptEnd {
    let mut cmd = match super::policy::prepare(command_line, user, extra) {
        Ok(cmd) => cmd,
        Err(e) => return ScriptEnd::Refused(e),
    };
    // If this future is dropped, tokio kills and reaps the script.
    cmd.kill_on_drop(true);
    let program = super::split_words(command_line)
        .into_iter()
        .next()
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &std::path::Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with(['X', 'Z'])),
        }
    }

    /// A root-owned directory for a test's scripts, with a sticky
    /// world-writable `out` directory the scripts write to.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lb-run-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("out")).unwrap();
        chmod(&dir, 0o755);
        chmod(&dir.join("out"), 0o1777);
        dir
    }

    #[tokio::test]
    async fn a_script_runs_as_its_user() {
        if crate::script::identity::Identity::own().uid != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = scratch("user");
        let script = dir.join("whoami.sh");
        std::fs::write(&script, "#!/bin/sh\nid -u > \"$1\"\nid -g >> \"$1\"\n").unwrap();
        chmod(&script, 0o755);
        let out = dir.join("out/id");
        let nobody = ScriptUser {
            user: "nobody".into(),
            group: None,
        };
        let end = run_script(
            &script.display().to_string(),
            Some(&nobody),
            &[out.display().to_string()],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(end, ScriptEnd::Exited(0));
        let ids = std::fs::read_to_string(&out).unwrap();
        let nobody = crate::script::identity::Identity::lookup("nobody", None).unwrap();
        assert_eq!(ids, format!("{}\n{}\n", nobody.uid, nobody.gid));

        // A script nobody may not execute is refused, not run.
        chmod(&script, 0o700);
        let end = run_script(
            &script.display().to_string(),
            Some(&ScriptUser {
                user: "nobody".into(),
                group: None,
            }),
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(
            matches!(&end, ScriptEnd::Refused(e) if e.contains("not executable by nobody")),
            "{end:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn background_children_die_with_the_script() {
        let dir = scratch("bg");
        let pid_file = dir.join("out/pid");
        let line = format!(
            "/bin/sh -c 'sleep 30 & echo $! > {}; exit 0'",
            pid_file.display()
        );
        let end = run_script(&line, None, &[], Duration::from_secs(10)).await;
        assert_eq!(end, ScriptEnd::Exited(0));
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !gone(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone(pid), "background child {pid} left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
