//! The control socket: a Unix stream socket owned by root and the control
//! group, mode 0660, and a peer-credential check on every connection (root,
//! lbd's own user, or a member of the control group).

use std::{
    ffi::CString,
    io,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tracing::{debug, error, info, warn};

use super::hub::Hub;
use super::limits::{CONTROL_IDLE, CONTROL_MAX_CONNS, WRITE_TIMEOUT};
use super::protocol::{
    self, service_name, ActionResult, BackendsResult, Command, ConnsResult, ErrorCode,
    InterfaceInfo, OverrideInfo, ReloadInfo, ReloadResult, Response, ServiceRef, ServicesResult,
    Source, StatsResult, StatusResult, VrrpResult, MAX_LINE,
};
use super::views;
use crate::dataplane::DataplaneError;

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("group name: {0}")]
    GroupName(#[source] std::ffi::NulError),
    #[error("--control-group: no group `{0}`")]
    NoGroup(String),
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: another lbd is serving this control socket", path.display())]
    InUse { path: PathBuf },
    #[error("removing stale {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("binding {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Its mode, owner, or the rename to its final name.
    #[error("setting up {}: {source}", path.display())]
    Setup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Handing the bound socket to tokio.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The socket file; removed on drop if it is still ours.
pub struct SocketGuard {
    path: PathBuf,
    ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A group by name or number.
pub fn group_id(group: &str) -> Result<u32, SocketError> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let name = CString::new(group).map_err(SocketError::GroupName)?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: plain getgrnam_r with buffers we own.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        );
        if rc != 0 || out.is_null() {
            return Err(SocketError::NoGroup(group.to_string()));
        }
        Ok(grp.gr_gid)
    }
}

/// Binds the control socket at `path`: root and `gid` may use it (0660).
/// A socket another lbd still answers on is left alone (an error); a stale
/// one is replaced.
pub fn bind(path: &Path, gid: u32) -> Result<(UnixListener, SocketGuard), SocketError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|source| SocketError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(|source| SocketError::RemoveStale {
            path: path.to_path_buf(),
            source,
        })?;
    }
    // Bound under a temporary name and renamed once its owner and mode are
    // right, so nobody else ever reaches it.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener =
        std::os::unix::net::UnixListener::bind(&tmp).map_err(|source| SocketError::Bind {
            path: tmp.clone(),
            source,
        })?;
    let prepare = || -> io::Result<()> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))?;
        // SAFETY: geteuid cannot fail.
        let owner = (unsafe { libc::geteuid() } == 0).then_some(0);
        std::os::unix::fs::chown(&tmp, owner, Some(gid))?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = prepare() {
        let _ = std::fs::remove_file(&tmp);
        return Err(SocketError::Setup {
            path: path.to_path_buf(),
            source: e,
        });
    }
    let ino = std::fs::symlink_metadata(path)?.ino();
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    Ok((
        listener,
        SocketGuard {
            path: path.to_path_buf(),
            ino,
        },
    ))
}

/// Who is on the other end.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Root, lbd's own user, or a member of the control group.
fn allowed(peer: &Peer, gid: u32) -> bool {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if peer.uid == 0 || peer.uid == me || peer.gid == gid {
        return true;
    }
    // Supplementary groups, from the peer's /proc entry.
    let Some(pid) = peer.pid else { return false };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|g| g.split_whitespace().any(|x| x.parse() == Ok(gid)))
}

pub async fn serve(listener: UnixListener, hub: Arc<Hub>, gid: u32) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Past the cap: told so (if its buffer takes the line) and
                // closed at once, so the descriptor is free again.
                let Some(slot) = hub.listeners.control.admit() else {
                    let _ = stream.try_write(&refusal_line());
                    continue;
                };
                let hub = hub.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, hub, gid).await {
                        debug!("control connection: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn refusal_line() -> Vec<u8> {
    let r = Response::error(
        ErrorCode::Unavailable,
        format!("too many control connections (at most {CONTROL_MAX_CONNS}); try again"),
    );
    let mut line = serde_json::to_vec(&r).unwrap_or_default();
    line.push(b'\n');
    line
}

/// One request line of at most [`MAX_LINE`] bytes, read within
/// [`CONTROL_IDLE`]; never buffers more than that.
enum Line {
    Request(Vec<u8>),
    TooLong,
    Closed,
}

async fn read_request(rd: &mut (impl AsyncBufReadExt + Unpin)) -> io::Result<Line> {
    let mut buf = Vec::new();
    let mut limited = (&mut *rd).take(MAX_LINE as u64 + 1);
    let read = limited.read_until(b'\n', &mut buf);
    match tokio::time::timeout(CONTROL_IDLE, read).await {
        Err(_) => Ok(Line::Closed),
        Ok(Err(e)) => Err(e),
        Ok(Ok(0)) => Ok(Line::Closed),
        Ok(Ok(_)) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
                Ok(Line::Request(buf))
            } else if buf.len() > MAX_LINE {
                Ok(Line::TooLong)
            } else {
                // The end of the stream without a newline: one last request.
                Ok(Line::Request(buf))
            }
        }
    }
}

async fn connection(stream: UnixStream, hub: Arc<Hub>, gid: u32) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    let (rd, mut wr) = stream.into_split();
    if !allowed(&peer, gid) {
        warn!(
            peer_uid = peer.uid,
            peer_pid = peer.pid,
            "control: connection refused (not root, lbd's user or the control group)"
        );
        let r = Response::error(
            ErrorCode::PermissionDenied,
            "permission denied: only root and the control group may use lbd's control socket",
        );
        return write_line(&mut wr, &r).await;
    }
    let mut rd = BufReader::new(rd);
    loop {
        let line = match read_request(&mut rd).await? {
            Line::Request(l) => l,
            Line::Closed => return Ok(()),
            Line::TooLong => {
                // The rest of the line is not read: the connection closes.
                let r = Response::error(
                    ErrorCode::BadRequest,
                    format!("request line too long (at most {MAX_LINE} bytes)"),
                );
                return write_line(&mut wr, &r).await;
            }
        };
        let response = match protocol::parse_request(&line) {
            Err(refusal) => refusal,
            Ok(req) => handle(&hub, req.command, &peer).await,
        };
        write_line(&mut wr, &response).await?;
    }
}

async fn write_line(wr: &mut (impl AsyncWriteExt + Unpin), r: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
    line.push(b'\n');
    let write = async {
        wr.write_all(&line).await?;
        wr.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timeout"))?
}

fn failure((code, message): (ErrorCode, String)) -> Response {
    Response::error(code, message)
}

/// Answers one request.
pub async fn handle(hub: &Hub, command: Command, peer: &Peer) -> Response {
    if command.is_action() {
        info!(peer_uid = peer.uid, peer_pid = peer.pid, request = ?command, "control: action requested");
    }
    match command {
        Command::Status => Response::ok(status(hub)),
        Command::Services => match stats(hub) {
            Ok(s) => Response::ok(ServicesResult {
                source: Source::Daemon,
                services: views::services(&s),
            }),
            Err(e) => failure(e),
        },
        Command::Backends { service } => {
            let s = match stats(hub) {
                Ok(s) => s,
                Err(e) => return failure(e),
            };
            let only = match service {
                Some(r) => match views::resolve(s.services.iter().map(|x| (x.vip, x.proto)), &r) {
                    Ok(k) => Some(k),
                    Err(e) => return failure(e),
                },
                None => None,
            };
            let health = hub.health_snapshot().await;
            let overrides = hub.overrides();
            let state = hub.state();
            let extras = views::Extras {
                configured: &state.configured,
                overrides: &overrides,
                health: health.as_ref(),
            };
            Response::ok(BackendsResult {
                source: Source::Daemon,
                backends: views::backends(&s, only, Some(&extras)),
            })
        }
        Command::Vrrp => Response::ok(VrrpResult {
            instances: hub.vrrp_instances(),
        }),
        Command::Sync => Response::ok(super::protocol::SyncResult {
            sync: hub.sync_info(),
        }),
        Command::Stats => match stats(hub) {
            Ok(s) => Response::ok(StatsResult {
                source: Source::Daemon,
                at_unix_ms: super::protocol::unix_ms(std::time::SystemTime::now()),
                global: views::global(&s),
                services: views::services(&s),
            }),
            Err(e) => failure(e),
        },
        Command::Conns { limit } => {
            let Some(dp) = hub.dataplane() else {
                return failure(no_dataplane());
            };
            match dp.view.connections(limit.saturating_add(1)) {
                Ok(mut c) => {
                    let truncated = c.len() > limit;
                    c.truncate(limit);
                    Response::ok(ConnsResult {
                        source: Source::Daemon,
                        connections: views::conns(c),
                        truncated,
                    })
                }
                Err(e @ DataplaneError::Unavailable { .. }) => {
                    Response::error(ErrorCode::Unavailable, e.to_string())
                }
                Err(e) => Response::error(ErrorCode::Internal, e.to_string()),
            }
        }
        Command::SetWeight {
            service,
            backend,
            weight,
        } => action(
            hub,
            peer,
            service,
            backend,
            Some(OverrideInfo::SetWeight { weight }),
        ),
        Command::Drain { service, backend } => {
            action(hub, peer, service, backend, Some(OverrideInfo::Drain))
        }
        Command::Disable { service, backend } => {
            action(hub, peer, service, backend, Some(OverrideInfo::Disable))
        }
        Command::Enable { service, backend } => action(hub, peer, service, backend, None),
        Command::Reload => reload(hub, peer).await,
    }
}

fn no_dataplane() -> (ErrorCode, String) {
    (
        ErrorCode::Unavailable,
        "lbd runs without a data plane (no virtual_server)".into(),
    )
}

fn stats(hub: &Hub) -> Result<crate::dataplane::Stats, (ErrorCode, String)> {
    let dp = hub.dataplane().ok_or_else(no_dataplane)?;
    dp.view
        .stats()
        .map_err(|e| (ErrorCode::Internal, e.to_string()))
}

fn status(hub: &Hub) -> StatusResult {
    let dp = hub.dataplane();
    let counted = dp.as_ref().and_then(|d| d.view.stats().ok());
    let state = hub.state();
    let (services, backends) = match &counted {
        Some(s) => (
            s.services.len(),
            s.services
                .iter()
                .map(|x| x.backends.iter().filter(|b| !b.sorry).count())
                .sum(),
        ),
        None => (
            state.configured.len(),
            state.configured.iter().map(|s| s.backends.len()).sum(),
        ),
    };
    let vrrp = hub.vrrp_instances().len().max(state.vrrp_configured);
    let now = std::time::SystemTime::now();
    StatusResult {
        source: Source::Daemon,
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: Some(std::process::id()),
        started_unix_ms: Some(super::protocol::unix_ms(hub.started)),
        uptime_secs: Some(
            now.duration_since(hub.started)
                .unwrap_or_default()
                .as_secs(),
        ),
        dataplane: dp.as_ref().map(|d| d.kind.clone()),
        interfaces: dp
            .as_ref()
            .map(|d| d.interfaces.clone())
            .unwrap_or_default(),
        pin_path: dp
            .as_ref()
            .and_then(|d| d.pin_path.as_ref())
            .map(|p| p.display().to_string()),
        config_file: Some(hub.config_file.display().to_string()),
        config_loaded_unix_ms: state.config_loaded.map(super::protocol::unix_ms),
        last_reload: state.last_reload.clone(),
        services,
        backends,
        vrrp_instances: vrrp,
        overrides: hub.overrides().len(),
        announce: hub.announce(),
    }
}

fn action(
    hub: &Hub,
    peer: &Peer,
    service: ServiceRef,
    backend: std::net::SocketAddr,
    value: Option<OverrideInfo>,
) -> Response {
    let state = hub.state();
    let (vip, proto) =
        match views::resolve(state.configured.iter().map(|s| (s.vip, s.proto)), &service) {
            Ok(k) => k,
            Err(e) => return failure(e),
        };
    let spec = state
        .configured
        .iter()
        .find(|s| s.vip == vip && s.proto == proto)
        .expect("resolved above");
    let name = service_name(vip, views::proto_name(proto));
    if !spec
        .backends
        .iter()
        .chain(spec.sorry.iter())
        .any(|b| b.addr == backend)
    {
        return Response::error(
            ErrorCode::NotFound,
            format!("{name} has no backend {backend}"),
        );
    }
    drop(state);
    hub.change_overrides(|o| o.set((vip, proto, backend), value));
    let message = match value {
        Some(OverrideInfo::SetWeight { weight }) => format!(
            "{backend} of {name}: weight {weight} (an override of the configuration and the \
             health checks' weight until the next reload; a failing backend still gets nothing)"
        ),
        Some(OverrideInfo::Drain) => format!(
            "{backend} of {name}: draining, no new connections; established ones finish \
             (until enable or the next reload)"
        ),
        Some(OverrideInfo::Disable) => format!(
            "{backend} of {name}: disabled, out of the service; its connections are scheduled \
             anew (until enable or the next reload)"
        ),
        None => {
            format!("{backend} of {name}: override removed, configuration and health checks decide")
        }
    };
    info!(
        peer_uid = peer.uid,
        peer_pid = peer.pid,
        "control: {message}"
    );
    Response::ok(ActionResult {
        service: name,
        backend,
        override_: value,
        message,
    })
}

async fn reload(hub: &Hub, peer: &Peer) -> Response {
    let file = hub.config_file.clone();
    // Checked here first, so the caller hears why a bad file is refused;
    // on the blocking pool, as a big file takes a while to read and the
    // runtime's workers carry VRRP.
    let path = file.clone();
    let checked = tokio::task::spawn_blocking(move || {
        crate::config::load_for(&path, crate::config::Mode::Reload).map(|_| ())
    })
    .await
    .unwrap_or_else(|e| {
        Err(crate::config::Diagnostics(vec![
            crate::config::Diagnostic::at(
                crate::config::Severity::Error,
                &crate::config::Location::default(),
                format!("checking the file failed: {e}"),
            ),
        ]))
    });
    if let Err(diags) = checked {
        let text = diags.to_string();
        error!(
            peer_uid = peer.uid,
            peer_pid = peer.pid,
            "control: reload refused: {text}"
        );
        return Response::error(
            ErrorCode::ReloadFailed,
            format!("{text}\nreload refused: the running configuration is kept"),
        );
    }
    let mut reloads = hub.reloads.subscribe();
    reloads.borrow_and_update();
    // The main loop reloads on SIGHUP; the same path for both.
    // SAFETY: signalling ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    if tokio::time::timeout(Duration::from_secs(10), reloads.changed())
        .await
        .is_err()
    {
        return Response::error(ErrorCode::Internal, "lbd did not reload within 10 s");
    }
    let last = hub.state().last_reload.clone();
    match last {
        Some(ReloadInfo {
            ok: true,
            at_unix_ms,
            overrides_cleared,
            ..
        }) => Response::ok(ReloadResult {
            config_file: file.display().to_string(),
            loaded_unix_ms: at_unix_ms,
            overrides_cleared,
            message: format!(
                "configuration {} reloaded ({overrides_cleared} operator override{} cleared)",
                file.display(),
                if overrides_cleared == 1 { "" } else { "s" }
            ),
        }),
        Some(ReloadInfo { error, .. }) => Response::error(
            ErrorCode::ReloadFailed,
            error.unwrap_or_else(|| "reload refused".into()),
        ),
        None => Response::error(ErrorCode::Internal, "no reload recorded"),
    }
}

/// Interfaces of the data plane, for `status`.
pub fn interfaces(attached: Vec<(String, &'static str)>) -> Vec<InterfaceInfo> {
    attached
        .into_iter()
        .map(|(name, mode)| InterfaceInfo {
            name,
            mode: mode.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    fn ask(path: &Path, line: &str) -> serde_json::Value {
        let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(&s).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn requests_are_answered_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("lb-ctl-{}", std::process::id()));
        let path = dir.join("lbd.sock");
        let config = crate::config::parse_str(
            "virtual_server 10.0.0.1 80 {\n lb_algo wrr\n lb_kind DR\n real_server 10.0.0.11 80 { }\n}\n",
            Path::new("t.conf"),
        )
        .unwrap()
        .config;
        let hub = Arc::new(Hub::new("t.conf".into(), &config));
        // SAFETY: getegid cannot fail.
        let gid = unsafe { libc::getegid() };
        let (listener, guard) = bind(&path, gid).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // A second lbd does not take a live socket over.
        assert!(bind(&path, gid).is_err());
        let server = tokio::spawn(serve(listener, hub.clone(), gid));
        let p = path.clone();
        let answers = tokio::task::spawn_blocking(move || {
            vec![
                ask(&p, "hello"),
                ask(&p, r#"{"version":9,"command":"status"}"#),
                ask(&p, r#"{"version":1,"command":"frobnicate"}"#),
                ask(&p, r#"{"version":1,"command":"status"}"#),
                ask(&p, r#"{"version":1,"command":"services"}"#),
                ask(
                    &p,
                    r#"{"version":1,"command":"drain","service":{"vip":"10.0.0.1:80"},"backend":"10.0.0.11:80"}"#,
                ),
                ask(
                    &p,
                    r#"{"version":1,"command":"drain","service":{"vip":"10.0.0.1:80"},"backend":"10.0.0.12:80"}"#,
                ),
                ask(&p, r#"{"version":1,"command":"vrrp"}"#),
            ]
        })
        .await
        .unwrap();
        let code = |i: usize| {
            answers[i]["error"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(code(0), "bad_request");
        assert_eq!(code(1), "unsupported_version");
        assert_eq!(code(2), "bad_request");
        assert!(answers[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frobnicate"));
        assert_eq!(answers[3]["result"]["services"], 1, "{}", answers[3]);
        assert_eq!(answers[3]["result"]["dataplane"], serde_json::Value::Null);
        assert_eq!(code(4), "unavailable");
        assert_eq!(
            answers[5]["result"]["override"]["action"], "drain",
            "{}",
            answers[5]
        );
        assert_eq!(code(6), "not_found");
        assert_eq!(answers[7]["result"]["instances"], serde_json::json!([]));
        assert_eq!(hub.overrides().len(), 1);
        server.abort();
        drop(guard);
        assert!(!path.exists(), "the socket is removed with its guard");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn long_lines_bad_utf8_and_connections_past_the_cap_are_answered() {
        let dir = std::env::temp_dir().join(format!("lb-ctl-cap-{}", std::process::id()));
        let path = dir.join("lbd.sock");
        let config = crate::config::parse_str("", Path::new("t.conf"))
            .unwrap()
            .config;
        let hub = Arc::new(Hub::new("t.conf".into(), &config));
        // SAFETY: getegid cannot fail.
        let gid = unsafe { libc::getegid() };
        let (listener, guard) = bind(&path, gid).unwrap();
        let server = tokio::spawn(serve(listener, hub.clone(), gid));
        let p = path.clone();
        let h = hub.clone();
        tokio::task::spawn_blocking(move || {
            // 4 MiB without a newline: refused once 64 KiB are in, and the
            // connection closed long before the rest is sent.
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            let mut reader = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0usize;
                for _ in 0..64 {
                    match s.write_all(&chunk) {
                        Ok(()) => sent += chunk.len(),
                        Err(_) => break,
                    }
                }
                sent
            });
            let mut answer = String::new();
            std::io::BufReader::new(&mut reader)
                .read_line(&mut answer)
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(v["error"]["code"], "bad_request", "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("too long"));
            let sent = writer.join().unwrap();
            assert!(sent < 4 * 1024 * 1024, "all {sent} bytes were taken");

            // Invalid UTF-8: an answer, and the connection still serves.
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.write_all(b"\xff\xfe\n{\"version\":1,\"command\":\"vrrp\"}\n")
                .unwrap();
            let mut r = std::io::BufReader::new(&s);
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut second = String::new();
            r.read_line(&mut second).unwrap();
            let first: serde_json::Value = serde_json::from_str(&first).unwrap();
            assert_eq!(first["error"]["code"], "bad_request", "{first}");
            assert!(first["error"]["message"]
                .as_str()
                .unwrap()
                .contains("UTF-8"));
            assert!(second.contains("instances"), "{second}");
            drop(r);
            drop(s);

            // The cap: idle connections up to it, then the next is told so
            // and closed; a slot frees when a connection goes.
            let wait_open = |n: usize| {
                for _ in 0..500 {
                    if h.listeners.control.current() == n {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                panic!("{} open, not {n}", h.listeners.control.current());
            };
            wait_open(0);
            let mut idle: Vec<_> = (0..CONTROL_MAX_CONNS)
                .map(|_| std::os::unix::net::UnixStream::connect(&p).unwrap())
                .collect();
            wait_open(CONTROL_MAX_CONNS);
            let refused = ask(&p, r#"{"version":1,"command":"vrrp"}"#);
            assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
            assert_eq!(h.listeners.control.refused(), 1);
            idle.pop();
            wait_open(CONTROL_MAX_CONNS - 1);
            let served = ask(&p, r#"{"version":1,"command":"vrrp"}"#);
            assert_eq!(served["result"]["instances"], serde_json::json!([]));
        })
        .await
        .unwrap();
        server.abort();
        drop(guard);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// IPVS's tables as a reader hands them over (what GET_SERVICE and
    /// GET_DEST return), without the kernel.
    struct IpvsTables;

    impl crate::dataplane::Reader for IpvsTables {
        fn stats(&self) -> Result<crate::dataplane::Stats, DataplaneError> {
            use crate::dataplane::ipvs::{
                self,
                attrs::{fwd, Dest, Key, Service, IPPROTO_TCP},
            };
            let vip: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
            let key = Key::Addr {
                protocol: IPPROTO_TCP,
                vip,
            };
            let mut svc = Service {
                key,
                sched: "wrr".into(),
                flags: 0,
                timeout: 0,
                netmask: u32::MAX,
                pe_name: None,
                stats: Default::default(),
            };
            svc.stats.conns = 7;
            svc.stats.inpkts = 30;
            svc.stats.outpkts = 20;
            let mut a = Dest::new("10.0.0.11:80".parse().unwrap(), fwd::MASQ, 3);
            a.active = 2;
            a.inactive = 4;
            a.stats.conns = 6;
            a.stats.inpkts = 25;
            a.stats.outpkts = 15;
            let b = Dest::new("10.0.0.12:80".parse().unwrap(), fwd::MASQ, 0);
            let sorry = Dest::new("10.0.0.99:80".parse().unwrap(), fwd::MASQ, 0);
            let sorry_servers = [(key, sorry.addr)].into_iter().collect();
            Ok(ipvs::stats_of(
                vec![(svc, vec![a, b, sorry])],
                &sorry_servers,
            ))
        }

        fn connections(
            &self,
            limit: usize,
        ) -> Result<Vec<crate::dataplane::ConnInfo>, DataplaneError> {
            crate::dataplane::ipvs::IpvsReader::no_connections(limit)
        }
    }

    #[tokio::test]
    async fn the_ipvs_tier_answers_from_its_tables() {
        let config = crate::config::parse_str(
            "virtual_server 10.0.0.1 80 {\n lb_algo wrr\n lb_kind NAT\n real_server 10.0.0.11 80 { weight 3 }\n real_server 10.0.0.12 80 { weight 2 }\n}\n",
            Path::new("t.conf"),
        )
        .unwrap()
        .config;
        let hub = Hub::new("t.conf".into(), &config);
        hub.set_dataplane(super::super::hub::DataplaneInfo {
            kind: "ipvs".into(),
            interfaces: Vec::new(),
            pin_path: None,
            view: Box::new(IpvsTables),
        });
        let peer = Peer {
            uid: 0,
            gid: 0,
            pid: None,
        };
        let ask = |c: Command| {
            let hub = &hub;
            let peer = &peer;
            async move { serde_json::to_value(handle(hub, c, peer).await).unwrap() }
        };
        let status = ask(Command::Status).await;
        assert_eq!(status["result"]["dataplane"], "ipvs", "{status}");
        assert_eq!(status["result"]["services"], 1);
        assert_eq!(status["result"]["backends"], 2);

        let services = ask(Command::Services).await;
        let s = &services["result"]["services"][0];
        assert_eq!(s["service"], "10.0.0.1:80/tcp", "{services}");
        assert_eq!(s["algo"], "wrr");
        assert_eq!(s["mode"], "NAT");
        assert_eq!(s["backends"], 2);
        assert_eq!(s["backends_up"], 1);
        assert_eq!(s["sorry_server"], "10.0.0.99:80");
        assert_eq!(s["packets"], 50);
        assert_eq!(s["new_conns"], 7);
        assert_eq!(s["active_conns"], 2);
        assert_eq!(s["inactive_conns"], 4);

        let backends = ask(Command::Backends { service: None }).await;
        let b = backends["result"]["backends"].as_array().unwrap();
        assert_eq!(b.len(), 3, "{backends}");
        assert_eq!(b[0]["address"], "10.0.0.11");
        assert_eq!(b[0]["weight"], 3);
        assert_eq!(b[0]["configured_weight"], 3);
        assert_eq!(b[0]["active_conns"], 2);
        assert_eq!(b[0]["inactive_conns"], 4);
        assert_eq!(b[0]["packets"], 40);
        assert_eq!(b[0]["new_conns"], 6);
        assert_eq!(b[0]["ready"], true);
        assert_eq!(b[0]["mac"], serde_json::Value::Null);
        assert_eq!(b[1]["weight"], 0);
        assert_eq!(b[1]["configured_weight"], 2);
        assert_eq!(b[1]["ready"], false);
        assert_eq!(b[2]["sorry"], true);

        let stats = ask(Command::Stats).await;
        assert_eq!(stats["result"]["global"][0]["name"], "in", "{stats}");
        assert_eq!(stats["result"]["global"][0]["packets"], 30);
        assert_eq!(stats["result"]["global"][1]["packets"], 20);

        let conns = ask(Command::Conns { limit: 10 }).await;
        assert_eq!(conns["error"]["code"], "unavailable", "{conns}");
        assert!(conns["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not available on the ipvs tier"));

        let metrics = super::super::metrics::render(super::super::metrics::gather(&hub).await);
        let active = metrics
            .lines()
            .find(|l| l.starts_with("lb_backend_active_connections{") && l.contains("10.0.0.11:80"))
            .unwrap_or_else(|| panic!("{metrics}"));
        assert!(active.ends_with(" 2"), "{active}");
    }
}
