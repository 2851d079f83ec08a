//! `notify_fifo` / `vrrp_notify_fifo`: every VRRP state change is written
//! to the FIFOs as one line, in keepalived's format:
//! `INSTANCE "VI_1" MASTER 100` (the effective priority) or
//! `GROUP "G1" BACKUP 0`. As keepalived does, a missing FIFO is created
//! (mode 0644), it is opened read-write so that opening never waits for a
//! reader, and a write that would block (nobody reading, pipe full) is
//! dropped rather than delaying VRRP.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::warn;

use crate::config::GlobalDefs;

/// The open FIFOs, with their paths (to keep them open across a reload
/// that names the same ones).
static FIFOS: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Opens the FIFOs `g` names (closing those it no longer names).
pub fn configure(g: &GlobalDefs) {
    let wanted: Vec<&Path> = [&g.notify_fifo, &g.vrrp_notify_fifo]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    let mut fifos = FIFOS.lock().unwrap_or_else(|p| p.into_inner());
    fifos.retain(|(p, _)| wanted.contains(&p.as_path()));
    for path in wanted {
        if fifos.iter().any(|(p, _)| p == path) {
            continue;
        }
        match open(path) {
            Ok(f) => fifos.push((path.to_path_buf(), f)),
            Err(e) => warn!(fifo = %path.display(), "notify FIFO not used: {e}"),
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if !path.exists() {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o644) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_fifo() {
        return Err(std::io::Error::other("not a FIFO"));
    }
    Ok(f)
}

/// keepalived's line for a state change.
pub fn line(group: bool, name: &str, state: &str, priority: u8) -> String {
    let kind = if group { "GROUP" } else { "INSTANCE" };
    format!("{kind} \"{name}\" {state} {priority}\n")
}

/// Writes `line` to every FIFO; a full or failing one loses the line.
pub fn write(line: &str) {
    let mut fifos = FIFOS.lock().unwrap_or_else(|p| p.into_inner());
    for (_, f) in fifos.iter_mut() {
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::config::Notify;
    use crate::vrrp::instance::State;
    use crate::vrrp::notify::{run, Subject};

    #[test]
    fn state_changes_are_written_as_keepalived_writes_them() {
        let dir = std::env::temp_dir().join(format!("lb-fifo-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.fifo");
        let g = GlobalDefs {
            vrrp_notify_fifo: Some(path.clone()),
            ..GlobalDefs::default()
        };
        // The FIFO does not exist: lbd creates it, as keepalived does.
        configure(&g);
        assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let none = Notify::default();
        run(
            &none,
            Subject::Instance {
                name: "VI_1",
                priority: 100,
            },
            State::Master,
        );
        run(&none, Subject::Group { name: "G1" }, State::Backup);
        run(
            &none,
            Subject::Instance {
                name: "VI_1",
                priority: 100,
            },
            State::Initialize,
        );
        let mut got = String::new();
        let _ = reader.read_to_string(&mut got);
        assert_eq!(
            got,
            "INSTANCE \"VI_1\" MASTER 100\nGROUP \"G1\" BACKUP 0\nINSTANCE \"VI_1\" STOP 100\n"
        );
        configure(&GlobalDefs::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
