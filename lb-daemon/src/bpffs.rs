//! The BPF filesystem where maps and links are pinned.

use std::{io, path::Path};

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Whether `dir` is on a bpffs.
pub fn is_bpffs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a valid path and a statfs to fill.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

/// Makes `dir` usable for pins: created if missing, with a bpffs mounted
/// where there is none (no bpffs is mounted on some hosts, and `ip netns
/// exec` remounts /sys, leaving /sys/fs/bpf a bare sysfs directory).
pub fn ensure(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return if is_bpffs(dir) { Ok(()) } else { mount(dir) };
    }
    if std::fs::create_dir_all(dir).is_ok() {
        return if is_bpffs(dir) { Ok(()) } else { mount(dir) };
    }
    // Cannot create it (sysfs refuses mkdir): mount a bpffs on the nearest
    // existing ancestor (/sys/fs/bpf) and create the rest inside it.
    let ancestor = dir
        .ancestors()
        .find(|a| a.is_dir())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no existing ancestor"))?;
    if !is_bpffs(ancestor) {
        mount(ancestor)?;
    }
    std::fs::create_dir_all(dir)
}

fn mount(dir: &Path) -> io::Result<()> {
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: valid C strings; mounting is what we mean to do.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mounting bpffs on {}: {e}", dir.display()),
        ));
    }
    tracing::info!(dir = %dir.display(), "mounted a bpffs for pins");
    Ok(())
}
