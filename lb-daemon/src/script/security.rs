//! What `enable_script_security` checks, as keepalived does: a script that
//! runs with root's rights must not be changeable by anyone else, neither
//! the file nor any directory on its path (a non-root user who can write a
//! directory can swap the file).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::identity::Identity;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Finds `program` as execve would for `who`: a name with a slash as it is,
/// a bare name along `PATH` (the first regular file `who` may execute).
pub fn resolve(program: &str, who: &Identity) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && executable_by(&meta, who) {
                return Ok(candidate);
            }
        }
    }
    Err(format!("`{program}` not found in PATH"))
}

/// Whether `who` may execute a file with `meta` (root: any x bit).
pub fn executable_by(meta: &std::fs::Metadata, who: &Identity) -> bool {
    let mode = meta.permissions().mode();
    if who.uid == 0 {
        return mode & 0o111 != 0;
    }
    if who.uid == meta.uid() {
        return mode & 0o100 != 0;
    }
    if who.gid == meta.gid() {
        return mode & 0o010 != 0;
    }
    mode & 0o001 != 0
}

/// Whether running the file with `meta` as `who` has root's rights: run by
/// root (user or group), or set-user/group-id root.
pub fn runs_privileged(meta: &std::fs::Metadata, who: &Identity) -> bool {
    let mode = meta.permissions().mode();
    who.uid == 0
        || who.gid == 0
        || (meta.uid() == 0 && mode & S_ISUID != 0 && mode & 0o100 != 0)
        || (meta.gid() == 0 && mode & S_ISGID != 0 && mode & 0o010 != 0)
}

/// The first part of `path` (the root, each directory, then the file; not
/// following links) that a user other than root could change, and why.
/// `Err`: a part is missing or of the wrong type.
pub fn unsafe_part(path: &Path) -> Result<Option<(PathBuf, String)>, String> {
    let mut prefixes: Vec<PathBuf> = path.ancestors().map(Path::to_path_buf).collect();
    prefixes.reverse();
    let last = prefixes.len() - 1;
    for (i, part) in prefixes.iter().enumerate() {
        if part.as_os_str().is_empty() {
            continue;
        }
        let meta =
            std::fs::symlink_metadata(part).map_err(|e| format!("{}: {e}", part.display()))?;
        let ft = meta.file_type();
        let dir = ft.is_dir();
        // A link on the way (`/bin` → `usr/bin`) counts by its owner; where
        // it leads is checked as the resolved path.
        if (i < last && !dir && !ft.is_symlink())
            || (i == last && !ft.is_file() && !ft.is_symlink())
        {
            return Err(format!(
                "{}: wrong file type in the script's path",
                part.display()
            ));
        }
        let mode = meta.permissions().mode();
        if meta.uid() != 0 {
            return Ok(Some((part.clone(), format!("owned by uid {}", meta.uid()))));
        }
        // A sticky directory lets no one replace another's file.
        let checked = (dir && mode & S_ISVTX == 0) || ft.is_file();
        if checked && meta.gid() != 0 && mode & 0o020 != 0 {
            return Ok(Some((
                part.clone(),
                format!("writable by group {}", meta.gid()),
            )));
        }
        if checked && mode & 0o002 != 0 {
            return Ok(Some((part.clone(), "writable by everyone".into())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A root-owned directory under /tmp (sticky, so it is safe) holding a
    /// script; only meaningful as root, as lbd runs.
    #[test]
    fn writable_files_and_directories_are_unsafe() {
        if Identity::own().uid != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lb-script-sec-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        chmod(&dir, 0o755);
        chmod(&dir.join("sub"), 0o755);
        let script = dir.join("sub/check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        chmod(&script, 0o755);
        assert_eq!(unsafe_part(&script), Ok(None));

        chmod(&script, 0o757);
        let (part, why) = unsafe_part(&script).unwrap().unwrap();
        assert_eq!(
            (part.as_path(), why.as_str()),
            (script.as_path(), "writable by everyone")
        );
        chmod(&script, 0o755);

        // A world-writable directory without the sticky bit: unsafe; with
        // it, safe.
        chmod(&dir.join("sub"), 0o777);
        assert_eq!(unsafe_part(&script).unwrap().unwrap().0, dir.join("sub"));
        chmod(&dir.join("sub"), 0o1777);
        assert_eq!(unsafe_part(&script), Ok(None));
        chmod(&dir.join("sub"), 0o755);

        // Owned by someone else.
        std::os::unix::fs::chown(&script, Some(65534), None).unwrap();
        let (_, why) = unsafe_part(&script).unwrap().unwrap();
        assert!(why.contains("owned by uid 65534"), "{why}");

        assert!(unsafe_part(&dir.join("sub/missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bare_names_are_found_along_path() {
        let me = Identity::own();
        let sh = resolve("sh", &me).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(resolve("/x/y", &me).unwrap(), PathBuf::from("/x/y"));
        assert!(resolve("lb-no-such-program-x", &me).is_err());
    }
}
