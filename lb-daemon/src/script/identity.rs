//! The user and group a script runs as, looked up in the system's user
//! database (`getpwnam_r`, `getgrnam_r`, so NSS sources count too).

use std::ffi::{CStr, CString};

/// Who a script runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// For messages.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Identity {
    /// lbd's own effective user and group.
    pub fn own() -> Identity {
        // SAFETY: geteuid/getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Identity {
            name: format!("uid {uid}"),
            uid,
            gid,
        }
    }

    /// `user` with `group` (default: the user's own group).
    pub fn lookup(user: &str, group: Option<&str>) -> Result<Identity, String> {
        let (uid, user_gid) = user_ids(user)?;
        let gid = match group {
            Some(g) => group_id(g)?,
            None => user_gid,
        };
        Ok(Identity {
            name: match group {
                Some(g) => format!("{user}:{g}"),
                None => user.to_string(),
            },
            uid,
            gid,
        })
    }
}

/// A buffer big enough for most entries; grown on ERANGE.
const START_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let name = CString::new(user).map_err(|_| format!("user `{user}`: invalid name"))?;
    let mut buf = vec![0u8; START_BUF];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, buf for its length.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Err(format!("user `{user}` does not exist")),
            0 => return Ok((pwd.pw_uid, pwd.pw_gid)),
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            e => {
                return Err(format!(
                    "looking up user `{user}`: {}",
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
}

fn group_id(group: &str) -> Result<u32, String> {
    let name = CString::new(group).map_err(|_| format!("group `{group}`: invalid name"))?;
    let mut buf = vec![0u8; START_BUF];
    loop {
        // SAFETY: all-zero is a valid group (null pointers, zero id).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, buf for its length.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Err(format!("group `{group}` does not exist")),
            0 => return Ok(grp.gr_gid),
            libc::ERANGE if buf.len() < MAX_BUF => buf.resize(buf.len() * 2, 0),
            e => {
                return Err(format!(
                    "looking up group `{group}`: {}",
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
}

/// For tests and messages: the name of `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in user_ids.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, buf for its length.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
    Some(
        unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_missing_users() {
        let root = Identity::lookup("root", None).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        let err = Identity::lookup("lb-no-such-user-x", None).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = Identity::lookup("root", Some("lb-no-such-group-x")).unwrap_err();
        assert!(err.contains("group"), "{err}");
    }
}
