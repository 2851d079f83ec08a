//! Each probe against real servers on loopback that the test starts, and
//! the runner with fake probes (one of them hanging).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

use super::core::Outcome;
use super::plan::{ProbeKey, ProbeSpec, Timing};
use super::{dns, http, misc, smtp, tcp, udp};
use crate::config::{
    CheckerKind, DnsCheck, HttpCheck, Location, MiscCheck, SmtpCheck, UdpCheck, Url,
};

fn spec(kind: CheckerKind, target: SocketAddr, timeout_ms: u64) -> ProbeSpec {
    ProbeSpec {
        key: ProbeKey("test".into()),
        backend: target,
        target,
        bind: None,
        connect_timeout: Duration::from_millis(timeout_ms),
        timing: Timing {
            retry: 0,
            delay_before_retry: Duration::ZERO,
            delay_loop: Duration::from_secs(1),
            warmup: Duration::ZERO,
            alpha: false,
        },
        kind,
        ca: None,
    }
}

fn is_down(o: &Outcome, needle: &str) -> bool {
    matches!(o, Outcome::Down { reason } if reason.contains(needle))
}

/// A port on loopback where nothing listens.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn tcp_check_connects_or_reports_why_not() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    assert_eq!(
        tcp::probe(&spec(CheckerKind::Tcp, addr, 1000)).await,
        Outcome::up()
    );
    drop(l);
    let o = tcp::probe(&spec(CheckerKind::Tcp, addr, 1000)).await;
    assert!(is_down(&o, "refused"), "{o:?}");
    // bind_port: the connection comes from that port.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut s = spec(CheckerKind::Tcp, l.local_addr().unwrap(), 1000);
    let from = closed_port().await;
    s.bind = Some(from);
    let (o, accepted) = tokio::join!(tcp::probe(&s), l.accept());
    assert_eq!(o, Outcome::up());
    assert_eq!(accepted.unwrap().1, from);
}

/// Serves canned answers by path; records each request head.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(head);
    let (status, body) = match path.as_str() {
        "/ok" => ("200 OK", "hello\n"),
        "/created" => ("201 Created", "made\n"),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        _ => ("404 Not Found", "no\n"),
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn http_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_http(s, log2.clone()));
        }
    });
    (addr, log)
}

fn url(path: &str, digest: Option<&str>, status: &[(u16, u16)]) -> Url {
    Url {
        path: path.into(),
        digest: digest.map(str::to_string),
        status_code: status.to_vec(),
        virtualhost: None,
        location: Location::default(),
    }
}

fn http_kind(urls: Vec<Url>) -> HttpCheck {
    HttpCheck {
        urls,
        virtualhost: None,
        http_protocol: None,
        enable_sni: false,
    }
}

#[tokio::test]
async fn http_get_checks_status_and_digest() {
    let (addr, log) = http_server().await;
    let good = http::digest_of(b"hello\n");
    let check = |urls| spec(CheckerKind::Http(http_kind(urls)), addr, 1000);

    let o = http::probe(&check(vec![url("/ok", Some(&good), &[])])).await;
    assert_eq!(o, Outcome::up());
    let head = log.lock().unwrap().last().cloned().unwrap();
    assert!(head.starts_with("GET /ok HTTP/1.0\r\n"), "{head}");
    assert!(head.contains(&format!("Host: {addr}\r\n")), "{head}");

    let o = http::probe(&check(vec![url("/ok", Some(&"0".repeat(32)), &[])])).await;
    assert!(is_down(&o, &format!("MD5 digest {good}")), "{o:?}");

    let o = http::probe(&check(vec![
        url("/ok", None, &[]),
        url("/missing", None, &[]),
    ]))
    .await;
    assert!(is_down(&o, "GET /missing: status 404"), "{o:?}");
    let o = http::probe(&check(vec![url("/missing", None, &[(404, 404)])])).await;
    assert_eq!(o, Outcome::up());
    let o = http::probe(&check(vec![url("/created", None, &[(200, 200)])])).await;
    assert!(is_down(&o, "status 201"), "{o:?}");

    // A server that never answers is down at connect_timeout, not later.
    let started = Instant::now();
    let o = http::probe(&spec(
        CheckerKind::Http(http_kind(vec![url("/hang", None, &[])])),
        addr,
        300,
    ))
    .await;
    assert!(is_down(&o, "within"), "{o:?}");
    assert!(started.elapsed() < Duration::from_millis(1000));

    let o = http::probe(&check(vec![url("/ok", None, &[])]).clone_to(closed_port().await)).await;
    assert!(is_down(&o, "refused"), "{o:?}");
}

impl ProbeSpec {
    fn clone_to(&self, target: SocketAddr) -> ProbeSpec {
        ProbeSpec {
            target,
            ..self.clone()
        }
    }
}

#[test]
fn http_requests_follow_protocol_and_virtualhost() {
    let target: SocketAddr = "10.0.0.11:8080".parse().unwrap();
    let mut check = http_kind(vec![url("/h", None, &[])]);
    let s = spec(CheckerKind::Http(check.clone()), target, 1000);
    assert_eq!(
        http::request(&s, &check, &check.urls[0]),
        "GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.11:8080\r\n\r\n"
    );
    check.http_protocol = Some("1.1".into());
    check.virtualhost = Some("www.example.com".into());
    assert_eq!(
        http::request(&s, &check, &check.urls[0]),
        "GET /h HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"
    );
    check.http_protocol = Some("1.0C".into());
    check.urls[0].virtualhost = Some("url.example.com".into());
    let r = http::request(&s, &check, &check.urls[0]);
    assert!(
        r.starts_with("GET /h HTTP/1.0\r\n")
            && r.contains("Connection: close\r\nHost: url.example.com\r\n"),
        "{r}"
    );
    let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
    let check = http_kind(vec![url("/", None, &[])]);
    let s = spec(CheckerKind::Http(check.clone()), v6, 1000);
    assert!(http::request(&s, &check, &check.urls[0]).contains("Host: [2001:db8::1]:80\r\n"));
    assert!(http::status_accepted(204, &[]) && !http::status_accepted(301, &[]));
}

#[tokio::test]
async fn ssl_get_speaks_tls_without_verifying_and_sends_sni_when_asked() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(include_bytes!("testdata/cert.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("testdata/key.der").to_vec(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let snis = Arc::new(Mutex::new(Vec::new()));
    let (log2, snis2) = (log.clone(), snis.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, log, snis) = (acceptor.clone(), log2.clone(), snis2.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    snis.lock().unwrap().push(sni);
                    serve_http(tls, log).await;
                }
            });
        }
    });
    let good = http::digest_of(b"hello\n");
    let mut check = http_kind(vec![url("/ok", Some(&good), &[])]);
    let o = http::probe(&spec(CheckerKind::Ssl(check.clone()), addr, 2000)).await;
    assert_eq!(o, Outcome::up());
    assert_eq!(
        snis.lock().unwrap().pop(),
        Some(None),
        "no SNI without enable_sni"
    );

    check.virtualhost = Some("backend.test".into());
    check.enable_sni = true;
    let o = http::probe(&spec(CheckerKind::Ssl(check.clone()), addr, 2000)).await;
    assert_eq!(o, Outcome::up());
    assert_eq!(
        snis.lock().unwrap().pop(),
        Some(Some("backend.test".to_string()))
    );

    // With a CA configured the certificate is verified.
    let s = spec(CheckerKind::Ssl(check.clone()), addr, 2000);
    let ca = CertificateDer::from(include_bytes!("testdata/ca.der").to_vec());
    let o = http::probe_with(&s, &check, Some(http::tls_with_ca(&[ca]).unwrap())).await;
    assert_eq!(o, Outcome::up());
    let o = http::probe_with(&s, &check, Some(http::tls_with_ca(&[cert]).unwrap())).await;
    assert!(is_down(&o, "invalid peer certificate"), "{o:?}");

    // The same through the configuration's `SSL { ca FILE }` (PEM).
    let dir = std::env::temp_dir().join(format!("lb-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = |der: &[u8], name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem_certificate(der)).unwrap();
        p
    };
    let mut with_ca = spec(CheckerKind::Ssl(check.clone()), addr, 2000);
    with_ca.ca = Some(pem(include_bytes!("testdata/ca.der"), "ca.pem"));
    assert_eq!(http::probe(&with_ca).await, Outcome::up());
    with_ca.ca = Some(pem(include_bytes!("testdata/cert.der"), "not-the-ca.pem"));
    let o = http::probe(&with_ca).await;
    assert!(is_down(&o, "invalid peer certificate"), "{o:?}");
    // A CA that cannot be read fails the check; it never skips verifying.
    with_ca.ca = Some(dir.join("missing.pem"));
    let o = http::probe(&with_ca).await;
    assert!(is_down(&o, "missing.pem"), "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);

    // Plain HTTP to a TLS server fails.
    let o = http::probe(&spec(CheckerKind::Http(check), addr, 1000)).await;
    assert!(matches!(o, Outcome::Down { .. }), "{o:?}");
}

fn misc(path: &str, timeout_ms: Option<u64>, dynamic: bool) -> ProbeSpec {
    spec(
        CheckerKind::Misc(MiscCheck {
            misc_path: path.into(),
            misc_timeout: timeout_ms.map(Duration::from_millis),
            misc_dynamic: dynamic,
            user: None,
        }),
        "127.0.0.1:1".parse().unwrap(),
        1000,
    )
}

#[tokio::test]
async fn misc_check_exit_codes_and_dynamic_weights() {
    assert_eq!(
        misc::probe(&misc("/bin/true", None, false)).await,
        Outcome::up()
    );
    let o = misc::probe(&misc("/bin/false", None, false)).await;
    assert!(is_down(&o, "exited with status 1"), "{o:?}");
    let o = misc::probe(&misc("/bin/sh -c 'exit 7'", None, true)).await;
    assert_eq!(o, Outcome::Up { weight: Some(5) });
    let o = misc::probe(&misc("/bin/sh -c 'exit 7'", None, false)).await;
    assert!(is_down(&o, "status 7"), "{o:?}");
    let o = misc::probe(&misc("/bin/sh -c 'exit 1'", None, true)).await;
    assert!(is_down(&o, "status 1"), "{o:?}");
    // A script that cannot run says nothing about the backend.
    let o = misc::probe(&misc("/nonexistent/script", None, false)).await;
    assert!(
        matches!(&o, Outcome::LocalError { reason } if reason.contains("refused")),
        "{o:?}"
    );
    assert_eq!(
        misc::split_command(r#"/bin/sh -c "echo 'a b'" x\ y"#),
        vec!["/bin/sh", "-c", "echo 'a b'", "x y"]
    );
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie (state Z) still counts as a leftover.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('X')),
    }
}

#[tokio::test]
async fn a_hanging_script_is_killed_with_its_group_at_misc_timeout_and_reaped() {
    let dir = std::env::temp_dir().join(format!("lb-misc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pids = dir.join("pids");
    let script = format!(
        "/bin/sh -c 'sleep 30 & echo $$ $! > {}; wait'",
        pids.display()
    );
    let started = Instant::now();
    let o = misc::probe(&misc(&script, Some(400), false)).await;
    let took = started.elapsed();
    assert!(is_down(&o, "timed out"), "{o:?}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    let ids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    // The script was reaped by us; its background child, killed with the
    // group, is reaped by init: allow it a moment, bounded.
    assert!(process_gone(ids[0]), "script {} left behind", ids[0]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !process_gone(ids[1]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        process_gone(ids[1]),
        "background child {} left behind",
        ids[1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn smtp_check_wants_a_220_banner_and_a_250_helo() {
    async fn server(banner: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut s = BufReader::new(s);
                    let _ = s.get_mut().write_all(banner.as_bytes()).await;
                    let mut line = String::new();
                    let _ = s.read_line(&mut line).await;
                    let reply = if line == "HELO lb.test\r\n" {
                        "250 hi\r\n"
                    } else {
                        "501 what\r\n"
                    };
                    let _ = s.get_mut().write_all(reply.as_bytes()).await;
                    line.clear();
                    let _ = s.read_line(&mut line).await;
                });
            }
        });
        addr
    }
    let kind = CheckerKind::Smtp(SmtpCheck {
        helo_name: "lb.test".into(),
        hosts: Vec::new(),
    });
    let ok = server("220-mail.test ESMTP\r\n220 ready\r\n").await;
    assert_eq!(
        smtp::probe(&spec(kind.clone(), ok, 1000)).await,
        Outcome::up()
    );
    let busy = server("554 go away\r\n").await;
    let o = smtp::probe(&spec(kind.clone(), busy, 1000)).await;
    assert!(is_down(&o, "banner reply \"554 go away\""), "{o:?}");
    let o = smtp::probe(&spec(kind, closed_port().await, 1000)).await;
    assert!(is_down(&o, "refused"), "{o:?}");
}

#[tokio::test]
async fn dns_check_sends_the_query_and_wants_rcode_0() {
    let q = dns::query(0x1234, "example.com", 6).unwrap();
    assert_eq!(
        q,
        [
            &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x07example\x03com\x00",
            &[0, 6, 0, 1]
        ]
        .concat()
    );
    assert_eq!(dns::query(1, "", 6).unwrap()[12..], [0, 0, 6, 0, 1]);

    async fn server(rcode: u8) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                // First a stray reply with another id, then the real one.
                let mut stray = buf[..n].to_vec();
                stray[0] ^= 0xff;
                stray[2] = 0x81;
                let _ = sock.send_to(&stray, from).await;
                let mut r = buf[..n].to_vec();
                r[2] = 0x81;
                r[3] = 0x80 | rcode;
                let _ = sock.send_to(&r, from).await;
            }
        });
        addr
    }
    let kind = CheckerKind::Dns(DnsCheck {
        qtype: "A".into(),
        name: "www.example.com".into(),
    });
    let ok = server(0).await;
    assert_eq!(
        dns::probe(&spec(kind.clone(), ok, 1000)).await,
        Outcome::up()
    );
    let servfail = server(2).await;
    let o = dns::probe(&spec(kind.clone(), servfail, 1000)).await;
    assert!(is_down(&o, "RCODE 2"), "{o:?}");
    let o = dns::probe(&spec(kind, closed_port().await, 1000)).await;
    assert!(
        is_down(&o, "unreachable") || is_down(&o, "no DNS reply"),
        "{o:?}"
    );
}

#[tokio::test]
async fn udp_check_icmp_errors_replies_and_silence() {
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let kind = |require_reply, min| {
        CheckerKind::Udp(UdpCheck {
            payload: Some("68656c6c6f".into()),
            require_reply,
            min_reply_length: min,
            max_reply_length: None,
        })
    };
    assert_eq!(
        udp::probe(&spec(kind(true, None), echo_addr, 500)).await,
        Outcome::up()
    );
    let o = udp::probe(&spec(kind(true, Some(6)), echo_addr, 500)).await;
    assert!(is_down(&o, "reply of 5 bytes"), "{o:?}");
    assert_eq!(
        udp::probe(&spec(kind(false, None), silent_addr, 300)).await,
        Outcome::up()
    );
    let o = udp::probe(&spec(kind(true, None), silent_addr, 300)).await;
    assert!(is_down(&o, "no reply"), "{o:?}");
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let o = udp::probe(&spec(kind(false, None), closed, 500)).await;
    assert!(is_down(&o, "ICMP port unreachable"), "{o:?}");
    drop(silent);
}

mod runner {
    use super::*;
    use crate::health::plan::HealthPlan;
    use crate::health::runner::{HealthRuntime, ProbeFuture, Prober};
    use std::collections::HashMap;
    use std::path::Path;

    /// Answers by backend: "hang" never answers; otherwise the current
    /// outcome of that backend.
    struct Fake(Mutex<HashMap<SocketAddr, Option<Outcome>>>);

    impl Prober for Fake {
        fn probe(&self, spec: Arc<ProbeSpec>) -> ProbeFuture {
            let o = self.0.lock().unwrap().get(&spec.backend).cloned().flatten();
            Box::pin(async move {
                match o {
                    Some(o) => o,
                    None => std::future::pending().await,
                }
            })
        }
    }

    #[tokio::test]
    async fn a_hanging_probe_delays_nothing_else_and_changes_are_published() {
        let text = "virtual_server 10.0.0.1 80 {\n lb_kind DR\n\
            real_server 10.0.0.11 80 {\n TCP_CHECK { retry 0 }\n }\n\
            real_server 10.0.0.12 80 {\n TCP_CHECK { retry 0 }\n }\n\
            real_server 10.0.0.13 80 {\n TCP_CHECK { retry 0 }\n }\n}\n";
        let loaded = crate::config::parse_str(text, Path::new("t.conf")).unwrap();
        let mut plan = HealthPlan::from_config(&loaded.config);
        for spec in plan.probes.values_mut() {
            let s = Arc::make_mut(spec);
            s.timing.delay_loop = Duration::from_millis(20);
            s.timing.warmup = Duration::ZERO;
        }
        let b = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let fake = Arc::new(Fake(Mutex::new(HashMap::from([
            (b("10.0.0.11:80"), Some(Outcome::up())),
            (b("10.0.0.12:80"), Some(Outcome::up())),
            (b("10.0.0.13:80"), None),
        ]))));
        let rt =
            HealthRuntime::start_with(plan, fake.clone(), Arc::new(tokio::sync::Semaphore::new(4)));
        let mut verdicts = rt.verdicts();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = rt.stats().await;
        assert_eq!(stats.probes, 3);
        // Two live probes every 20 ms for 300 ms.
        assert!(stats.checks >= 15, "{stats:?}");
        verdicts.borrow_and_update();
        fake.0
            .lock()
            .unwrap()
            .insert(b("10.0.0.12:80"), Some(Outcome::down("gone")));
        tokio::time::timeout(Duration::from_secs(2), verdicts.changed())
            .await
            .expect("a verdict within a few probes")
            .unwrap();
        let v = verdicts.borrow().clone();
        let svc = &v.services[&(b("10.0.0.1:80"), crate::dataplane::Proto::Tcp)];
        assert_eq!(
            svc.backends,
            vec![
                (b("10.0.0.11:80"), 1),
                (b("10.0.0.12:80"), 0),
                (b("10.0.0.13:80"), 1)
            ]
        );
        let snap = rt.snapshot().await;
        let c = &snap.services[0].backends[1].checkers[0];
        assert_eq!(c.failure.as_deref(), Some("gone"));
        assert!(serde_json::to_string(&snap)
            .unwrap()
            .contains("\"status\":\"removed\""));
        // The hanging one has no result yet.
        assert_eq!(snap.services[0].backends[2].checkers[0].last_result, None);
    }

    /// Three backends fail and their `notify_down` scripts hang; the one
    /// notify slot is taken and two wait. The MISC_CHECK of a fourth
    /// backend still runs in its own single slot and sees it go down.
    #[tokio::test]
    async fn hanging_notify_scripts_never_hold_up_checks() {
        let dir = std::env::temp_dir().join(format!("lb-notify-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("up");
        std::fs::write(&flag, "").unwrap();
        let failing = "MISC_CHECK {\n misc_path /bin/false\n }\n notify_down \"/bin/sleep 30\"";
        let text = format!(
            "virtual_server 10.0.0.1 80 {{\n lb_kind DR\n\
             real_server 10.0.0.11 80 {{\n {failing}\n }}\n\
             real_server 10.0.0.12 80 {{\n {failing}\n }}\n\
             real_server 10.0.0.13 80 {{\n {failing}\n }}\n\
             real_server 10.0.0.14 80 {{\n MISC_CHECK {{\n misc_path \"/bin/test -e {}\"\n }}\n }}\n}}\n",
            flag.display()
        );
        let loaded = crate::config::parse_str(&text, Path::new("t.conf")).unwrap();
        let mut plan = HealthPlan::from_config(&loaded.config);
        for spec in plan.probes.values_mut() {
            let s = Arc::make_mut(spec);
            s.timing.delay_loop = Duration::from_millis(20);
            s.timing.warmup = Duration::ZERO;
            s.timing.retry = 0;
        }
        let opts = crate::health::RunnerOptions {
            max_connects: 4,
            max_scripts: 1,
            max_notify_scripts: 1,
        };
        let rt = HealthRuntime::start(plan, opts);
        let mut verdicts = rt.verdicts();
        let weight_of = |v: &crate::health::Verdicts, b: &str| {
            let svc = &v.services[&("10.0.0.1:80".parse().unwrap(), crate::dataplane::Proto::Tcp)];
            svc.backends
                .iter()
                .find(|(a, _)| *a == b.parse::<SocketAddr>().unwrap())
                .map(|(_, w)| *w)
        };
        // The three go down (their notify scripts start and hang).
        let deadline = Instant::now() + Duration::from_secs(5);
        while ["10.0.0.11:80", "10.0.0.12:80", "10.0.0.13:80"]
            .iter()
            .any(|b| weight_of(&verdicts.borrow(), b) != Some(0))
        {
            assert!(
                Instant::now() < deadline,
                "the failing backends never went down"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), verdicts.changed()).await;
        }
        assert_eq!(weight_of(&verdicts.borrow(), "10.0.0.14:80"), Some(1));
        std::fs::remove_file(&flag).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while weight_of(&verdicts.borrow(), "10.0.0.14:80") != Some(0) {
            assert!(
                Instant::now() < deadline,
                "a check waited for the hanging notify scripts"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), verdicts.changed()).await;
        }
        drop(rt);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A DER certificate as PEM.
fn pem_certificate(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
