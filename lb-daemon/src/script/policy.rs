//! Who runs each script, and whether it may run, as keepalived decides:
//!
//! - a script runs as its own `user USER [GROUP]` (vrrp_script, MISC_CHECK),
//!   else as `script_user`, else as `keepalived_script` if that user
//!   exists, else as lbd's own user (root). With `enable_script_security`
//!   and neither `script_user` nor a `keepalived_script` user, scripts
//!   without a user of their own are refused;
//! - a script that would run with root's rights and that a non-root user
//!   could change (the file or any directory on its path) is refused with
//!   `enable_script_security`, and warned about without it;
//! - a script its user may not execute is refused.
//!
//! The policy follows the running configuration (set at start and at every
//! reload); each run checks the script again, so a file made unsafe after
//! the configuration was read is refused from its next run.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tracing::warn;

use super::identity::Identity;
use super::security;
use crate::config::{Config, Diagnostic, GlobalDefs, Location, ScriptUser, Severity};

/// keepalived's default script user.
pub const DEFAULT_USER: &str = "keepalived_script";

/// The configuration's script settings, with the users looked up.
#[derive(Debug, Clone)]
pub struct ScriptPolicy {
    /// `enable_script_security`.
    pub security: bool,
    /// Who a script without a user of its own runs as, or why none.
    default_user: Result<Identity, String>,
}

/// A script that may run: what to execute and as whom.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub identity: Identity,
    /// Unsafe permissions, tolerated because `enable_script_security` is off.
    pub warning: Option<String>,
}

impl Admitted {
    /// The command that runs the script as its user, in a process group of
    /// its own, with no standard streams; `extra` arguments appended.
    pub fn command(&self, extra: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        let own = Identity::own();
        // Changing user drops supplementary groups too (the standard
        // library calls setgroups(0) before setuid when root).
        if self.identity.gid != own.gid {
            cmd.gid(self.identity.gid);
        }
        if self.identity.uid != own.uid {
            cmd.uid(self.identity.uid);
        }
        cmd
    }
}

impl ScriptPolicy {
    pub fn from_globals(g: &GlobalDefs) -> ScriptPolicy {
        let default_user = match &g.script_user {
            Some(u) => Identity::lookup(&u.user, u.group.as_deref())
                .map_err(|e| format!("script_user: {e}")),
            None => match Identity::lookup(DEFAULT_USER, None) {
                Ok(id) => Ok(id),
                Err(_) if g.enable_script_security => Err(format!(
                    "enable_script_security: the default script user {DEFAULT_USER} does not exist and no script_user is set"
                )),
                Err(_) => Ok(Identity::own()),
            },
        };
        ScriptPolicy {
            security: g.enable_script_security,
            default_user,
        }
    }

    /// Whether `line` may run (as `user`, else the default user), and how.
    pub fn admit(&self, line: &str, user: Option<&ScriptUser>) -> Result<Admitted, String> {
        let words = super::split_words(line);
        let Some((program, args)) = words.split_first() else {
            return Err("empty script".into());
        };
        let identity = match user {
            Some(u) => Identity::lookup(&u.user, u.group.as_deref())?,
            None => self.default_user.clone()?,
        };
        let path = security::resolve(program, &identity)?;
        let real = std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
        if !meta.is_file() || !security::executable_by(&meta, &identity) {
            return Err(format!(
                "{} is not executable by {} (uid {}, gid {})",
                path.display(),
                identity.name,
                identity.uid,
                identity.gid
            ));
        }
        let mut warning = None;
        if security::runs_privileged(&meta, &identity) {
            // The path as written and where it leads (a link elsewhere).
            for p in [&path, &real] {
                if let Some((part, why)) = security::unsafe_part(p)? {
                    let finding = format!(
                        "unsafe permissions for script {}: {} is {why}, and the script runs with root's rights",
                        path.display(),
                        part.display()
                    );
                    if self.security {
                        return Err(format!("{finding} (enable_script_security)"));
                    }
                    warning = Some(format!(
                        "{finding}; SECURITY VIOLATION - scripts are being executed but script_security not enabled"
                    ));
                    break;
                }
            }
        }
        Ok(Admitted {
            program: path,
            args: args.to_vec(),
            identity,
            warning,
        })
    }

    /// Every script of `config` checked: one warning per script refused or
    /// unsafe (as lbd logs them at start and reload, and `lbd -t` prints).
    pub fn report(&self, config: &Config) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if let (Err(e), Some((_, _, _, first))) = (&self.default_user, scripts(config).next()) {
            // At the first script: global_defs has no location of its own.
            out.push(Diagnostic::at(
                Severity::Warning,
                first,
                format!("{e}: scripts without a user of their own are refused"),
            ));
        }
        for (what, line, user, loc) in scripts(config) {
            match self.admit(line, user) {
                Ok(a) => {
                    if let Some(w) = a.warning {
                        out.push(Diagnostic::at(
                            Severity::Warning,
                            loc,
                            format!("{what}: {w}"),
                        ));
                    }
                }
                Err(e) => out.push(Diagnostic::at(
                    Severity::Warning,
                    loc,
                    format!("{what} `{line}` will not run: {e}"),
                )),
            }
        }
        out
    }
}

/// The notify scripts of a VRRP instance or sync group.
fn notify(n: &crate::config::Notify) -> [(&'static str, Option<&str>); 5] {
    [
        ("notify_master", n.master.as_deref()),
        ("notify_backup", n.backup.as_deref()),
        ("notify_fault", n.fault.as_deref()),
        ("notify_stop", n.stop.as_deref()),
        ("notify", n.notify.as_deref()),
    ]
}

/// Every script of a configuration: what it is, its line, its own user and
/// where it is (the nearest block with a location).
fn scripts(
    config: &Config,
) -> impl Iterator<Item = (&'static str, &str, Option<&ScriptUser>, &Location)> {
    let mut out: Vec<(&'static str, &str, Option<&ScriptUser>, &Location)> = Vec::new();
    for s in &config.vrrp_scripts {
        out.push(("vrrp_script", &s.script, s.user.as_ref(), &s.location));
    }
    for i in &config.vrrp_instances {
        for (what, line) in notify(&i.notify) {
            if let Some(line) = line {
                out.push((what, line, None, &i.location));
            }
        }
    }
    for g in &config.vrrp_sync_groups {
        for (what, line) in notify(&g.notify) {
            if let Some(line) = line {
                out.push((what, line, None, &g.location));
            }
        }
    }
    for vs in &config.virtual_servers {
        for (what, line) in [
            ("quorum_up", &vs.quorum_up),
            ("quorum_down", &vs.quorum_down),
        ] {
            if let Some(line) = line {
                out.push((what, line, None, &vs.location));
            }
        }
        for rs in &vs.real_servers {
            for (what, line) in [
                ("notify_up", &rs.notify_up),
                ("notify_down", &rs.notify_down),
            ] {
                if let Some(line) = line {
                    out.push((what, line, None, &rs.location));
                }
            }
            for c in &rs.checkers {
                if let crate::config::CheckerKind::Misc(m) = &c.kind {
                    out.push(("MISC_CHECK", &m.misc_path, m.user.as_ref(), &rs.location));
                }
            }
        }
    }
    out.into_iter()
}

static CURRENT: RwLock<Option<Arc<ScriptPolicy>>> = RwLock::new(None);

/// Makes `config`'s policy the one scripts run under, logging what it
/// refuses or warns about.
pub fn install(config: &Config) {
    let policy = ScriptPolicy::from_globals(&config.global_defs);
    let findings = policy.report(config);
    set(policy, &findings);
}

/// Makes `policy` the one scripts run under, logging its `findings` (its
/// [`ScriptPolicy::report`], made where blocking is fine).
pub fn set(policy: ScriptPolicy, findings: &[Diagnostic]) {
    for d in findings {
        warn!("{d}");
    }
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(policy));
}

/// The policy in force (keepalived's defaults until a configuration is
/// installed).
pub fn current() -> Arc<ScriptPolicy> {
    if let Some(p) = CURRENT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    Arc::new(ScriptPolicy::from_globals(&GlobalDefs::default()))
}

/// The command for `line` under the policy in force, or why it may not run.
pub fn prepare(
    line: &str,
    user: Option<&ScriptUser>,
    extra: &[String],
) -> Result<tokio::process::Command, String> {
    current().admit(line, user).map(|a| a.command(extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(security: bool, user: Option<&str>) -> ScriptPolicy {
        let g = GlobalDefs {
            enable_script_security: security,
            script_user: user.map(|u| ScriptUser {
                user: u.into(),
                group: None,
            }),
            ..GlobalDefs::default()
        };
        ScriptPolicy::from_globals(&g)
    }

    #[test]
    fn the_default_user_follows_keepalived() {
        let keepalived_script = Identity::lookup(DEFAULT_USER, None).ok();
        let p = policy(false, None);
        assert_eq!(
            p.default_user.as_ref().unwrap(),
            keepalived_script.as_ref().unwrap_or(&Identity::own())
        );
        let p = policy(true, None);
        match keepalived_script {
            Some(k) => assert_eq!(p.default_user.unwrap(), k),
            None => assert!(p.default_user.unwrap_err().contains(DEFAULT_USER)),
        }
        let p = policy(true, Some("nobody"));
        assert_eq!(p.default_user.unwrap().uid, 65534);
        assert!(policy(false, Some("lb-no-such-user-x"))
            .default_user
            .is_err());
    }

    #[test]
    fn missing_and_empty_scripts_are_refused() {
        let p = policy(false, Some("root"));
        assert!(p.admit("", None).is_err());
        assert!(p.admit("/lb/no/such/script", None).is_err());
        let a = p.admit("sh -c true", None).unwrap();
        assert!(a.program.is_absolute());
        assert_eq!(a.args, vec!["-c", "true"]);
    }
}

#[cfg(test)]
mod security_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &std::path::Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn policy(security: bool) -> ScriptPolicy {
        ScriptPolicy::from_globals(&GlobalDefs {
            enable_script_security: security,
            script_user: Some(ScriptUser {
                user: "root".into(),
                group: None,
            }),
            ..GlobalDefs::default()
        })
    }

    /// A world-writable script in a world-writable directory: refused as
    /// root with enable_script_security, warned about without it, and
    /// fine as nobody (it has no rights to gain).
    #[test]
    fn unsafe_scripts_are_refused_only_with_script_security_and_only_as_root() {
        if Identity::own().uid != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lb-policy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("open")).unwrap();
        chmod(&dir, 0o755);
        chmod(&dir.join("open"), 0o777);
        let script = dir.join("open/check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        chmod(&script, 0o777);
        let line = format!("{} arg", script.display());

        let err = policy(true).admit(&line, None).unwrap_err();
        assert!(err.contains("unsafe permissions"), "{err}");
        assert!(err.contains("enable_script_security"), "{err}");
        let ok = policy(false).admit(&line, None).unwrap();
        assert!(ok.warning.unwrap().contains("SECURITY VIOLATION"));
        let nobody = ScriptUser {
            user: "nobody".into(),
            group: None,
        };
        let ok = policy(true).admit(&line, Some(&nobody)).unwrap();
        assert_eq!((ok.identity.uid, ok.warning), (65534, None));

        // Made safe, it runs as root.
        chmod(&dir.join("open"), 0o755);
        chmod(&script, 0o755);
        let ok = policy(true).admit(&line, None).unwrap();
        assert_eq!((ok.identity.uid, ok.warning), (0, None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_script_of_a_configuration_is_reported_where_it_is() {
        if Identity::own().uid != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lb-policy-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o777);
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        chmod(&script, 0o755);
        let s = script.display();
        let text = format!(
            "global_defs {{\n enable_script_security\n script_user root\n}}\n\
             vrrp_script chk {{\n script \"{s}\"\n}}\n\
             vrrp_instance VI {{\n interface lo\n virtual_router_id 1\n priority 100\n notify_master \"{s} m\"\n}}\n\
             virtual_server 10.0.0.1 80 {{\n quorum_up \"{s} q\"\n real_server 10.0.0.2 80 {{\n notify_up \"{s} u\"\n MISC_CHECK {{\n misc_path \"{s} c\"\n user nobody\n }}\n }}\n}}\n"
        );
        let loaded = crate::config::parse_str(&text, std::path::Path::new("t.conf")).unwrap();
        let policy = ScriptPolicy::from_globals(&loaded.config.global_defs);
        let found: Vec<String> = policy
            .report(&loaded.config)
            .iter()
            .map(|d| d.to_string())
            .collect();
        // Four run as root from a world-writable directory; the MISC_CHECK
        // runs as nobody and is fine.
        assert_eq!(found.len(), 4, "{found:#?}");
        for (needle, line) in [
            ("vrrp_script", 5),
            ("notify_master", 8),
            ("quorum_up", 14),
            ("notify_up", 16),
        ] {
            assert!(
                found
                    .iter()
                    .any(|f| f.starts_with(&format!("t.conf:{line}:")) && f.contains(needle)),
                "{needle}: {found:#?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
