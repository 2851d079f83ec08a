//! Connection sync through a director failover, in namespaces: two lbd in
//! one VRRP router with `lvs_sync_daemon`, a DR service over three real
//! servers that keep HTTP/1.1 connections open, and long-lived client
//! connections each asking every 100 ms and recording which backend
//! answered. The master goes away (a crash: link down and kill -9; or a
//! graceful stop); no connection may break, and each must still be
//! answered by the backend it began on.
//! Needs root.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use lb_tests::{
    demo_lab::{DemoLab, BACKENDS, CLIENT, LBS, VIP},
    lab::v6_of,
};

/// The IPv6 VIP (hosts get fd77::<last octet of their IPv4 address>).
const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);

/// Long-lived client connections.
const CONNECTIONS: usize = 30;
/// Between two requests on one connection.
const EVERY: Duration = Duration::from_millis(100);

/// The demo's two directors with connection sync on VI_1's interface.
fn template(algo: &str, kind: &str, extra_service: &str) -> String {
    let server = |ip: &str| {
        format!(
            "    real_server {ip} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n"
        )
    };
    format!(
        "global_defs {{\n    router_id @ROUTER@\n    vrrp_version 3\n    lvs_sync_daemon eth0 VI_1\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 77\n\
         priority @PRIORITY@\n    advert_int 0.2\n    virtual_ipaddress {{\n        {VIP}/32 dev eth0\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo {algo}\n    lb_kind {kind}\n    protocol TCP\n{extra_service}\n{}{}{}}}\n",
        server("10.77.0.11"),
        server("10.77.0.12"),
        server("10.77.0.13"),
    )
}

/// The IPv6 side: a second instance for the IPv6 VIP, moving with VI_1
/// in a sync group (sync follows VI_1), and the same service over IPv6.
fn template6(algo: &str, kind: &str, extra_service: &str) -> String {
    let server = |ip: std::net::Ipv6Addr| {
        format!(
            "    real_server {ip} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n"
        )
    };
    let servers: String = BACKENDS.iter().map(|b| server(v6_of(*b))).collect();
    format!(
        "vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_6\n    }}\n}}\n\
         vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 78\n\
         priority @PRIORITY@\n    advert_int 0.2\n    virtual_ipaddress {{\n        {VIP6}/128 dev eth0\n    }}\n}}\n\
         virtual_server {VIP6} 80 {{\n    delay_loop 1\n    lb_algo {algo}\n    lb_kind {kind}\n    protocol TCP\n{extra_service}\n{servers}}}\n"
    )
}

/// IPv6 addresses on every host (no DAD: the lab is one link), the IPv6
/// VIP on the real servers' lo.
fn add_ipv6(lab: &DemoLab) -> Result<()> {
    let hosts = std::iter::once((&lab.client, CLIENT))
        .chain(lab.lbs.iter().zip(LBS))
        .chain(lab.backends.iter().zip(BACKENDS));
    for (ns, ip) in hosts {
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/64", v6_of(ip)),
            "dev",
            "eth0",
            "nodad",
        ])?;
    }
    for b in &lab.backends {
        b.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"])?;
    }
    Ok(())
}

/// What one client connection saw.
#[derive(Debug, Default)]
struct Record {
    /// The backend of each answer, with when it came.
    answers: Vec<(Instant, String)>,
    /// Why the connection broke, if it did.
    broken: Option<String>,
}

/// One request on a kept-alive connection: the body (the backend's name).
fn ask(reader: &mut BufReader<TcpStream>) -> Result<String> {
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        .context("sending")?;
    let mut len = None;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if reader.read_line(&mut line).context("reading")? == 0 {
            bail!("closed by the peer");
        }
        if first {
            if !line.starts_with("HTTP/1.1 200") {
                bail!("status line {line:?}");
            }
            first = false;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len.context("no Content-Length")?];
    reader.read_exact(&mut body).context("reading the body")?;
    Ok(String::from_utf8_lossy(&body).trim().to_string())
}

/// The client connections, each on a thread of its own asking every
/// [`EVERY`] until stopped (bounded: at most two minutes).
struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Record>>,
}

impl Clients {
    fn start(lab: &DemoLab, vip: SocketAddr) -> Result<Clients> {
        Self::start_n(lab, CONNECTIONS, vip)
    }

    fn start_n(lab: &DemoLab, n: usize, vip: SocketAddr) -> Result<Clients> {
        // Connected from inside the client's namespace; the sockets stay
        // there whichever thread uses them.
        let streams = lab.client.enter(move || {
            let mut v = Vec::new();
            for _ in 0..n {
                let s = TcpStream::connect_timeout(&vip, Duration::from_secs(2))
                    .context("connecting to the VIP")?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.set_nodelay(true)?;
                v.push(s);
            }
            Ok(v)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = streams
            .into_iter()
            .map(|s| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut rec = Record::default();
                    let mut reader = BufReader::new(s);
                    let began = Instant::now();
                    while !stop.load(Ordering::Relaxed)
                        && began.elapsed() < Duration::from_secs(120)
                    {
                        match ask(&mut reader) {
                            Ok(b) => rec.answers.push((Instant::now(), b)),
                            Err(e) => {
                                rec.broken = Some(format!("{e:#}"));
                                break;
                            }
                        }
                        std::thread::sleep(EVERY);
                    }
                    rec
                })
            })
            .collect();
        Ok(Clients { stop, threads })
    }

    fn finish_after(self, wait: Duration) -> Vec<Record> {
        std::thread::sleep(wait);
        self.finish()
    }

    fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

/// How the master goes away.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// Link down and kill -9.
    Crash,
    /// SIGTERM: priority 0, sync flushed first.
    Graceful,
}

/// The whole scenario; returns the lab's logs on failure for context.
fn failover(algo: &str, kind: &str, extra: &str, away: Away) {
    failover_family(algo, kind, extra, away, false)
}

fn failover_family(algo: &str, kind: &str, extra: &str, away: Away, v6: bool) {
    let mut lab = DemoLab::new().expect("lab");
    let result = run(&mut lab, algo, kind, extra, away, v6);
    if let Err(e) = result {
        let logs: String = (0..2)
            .map(|lb| {
                format!(
                    "--- lb{} ---\n{}\n",
                    lb + 1,
                    std::fs::read_to_string(lab.log(lb)).unwrap_or_default()
                )
            })
            .collect();
        panic!("{e:#}\n{logs}");
    }
}

fn run(lab: &mut DemoLab, algo: &str, kind: &str, extra: &str, away: Away, v6: bool) -> Result<()> {
    for i in 0..3 {
        lab.serve_with(i, "lb-test-keepalive")?;
    }
    let conf = lab.dir.path().join("sync.conf.in");
    let mut text = template(algo, kind, extra);
    let vip = if v6 {
        add_ipv6(lab)?;
        text.push_str(&template6(algo, kind, extra));
        SocketAddr::from((VIP6, 80))
    } else {
        SocketAddr::from((VIP, 80))
    };
    std::fs::write(&conf, text)?;
    lab.start_lbd(0, &conf, 150)?;
    lab.start_lbd(1, &conf, 100)?;
    lab.wait_holder(0, Duration::from_secs(10))?;
    for lb in 0..2 {
        lab.wait_log(lb, "every backend resolved", Duration::from_secs(10))?;
        lab.wait_log(lb, "connection sync running", Duration::from_secs(10))?;
    }
    lab.wait_log(0, "to=Master", Duration::from_secs(5))?;

    let clients = Clients::start(lab, vip)?;
    // Reports leave within a second; give the backup time to write them.
    let synced = wait_synced(lab, CONNECTIONS, vip, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let went = Instant::now();
    match away {
        Away::Crash => lab.crash(0)?,
        Away::Graceful => lab.stop_with("lb1", libc::SIGTERM, Duration::from_secs(10))?,
    }
    lab.wait_holder(1, Duration::from_secs(5))?;
    let took = went.elapsed();
    // Every connection asks several times through the new master.
    std::thread::sleep(Duration::from_secs(3));
    let records = clients.finish();
    synced?;

    let mut problems = Vec::new();
    let mut spread = std::collections::BTreeMap::<String, usize>::new();
    for (i, r) in records.iter().enumerate() {
        let Some((_, first)) = r.answers.first() else {
            problems.push(format!("connection {i}: no answer at all ({:?})", r.broken));
            continue;
        };
        *spread.entry(first.clone()).or_default() += 1;
        if let Some(why) = &r.broken {
            problems.push(format!("connection {i} (on {first}) broke: {why}"));
        }
        if let Some((_, other)) = r.answers.iter().find(|(_, b)| b != first) {
            problems.push(format!(
                "connection {i} began on {first}, answered by {other}"
            ));
        }
        let after = r.answers.iter().filter(|(t, _)| *t > went + took).count();
        if after == 0 {
            problems.push(format!(
                "connection {i} (on {first}): no answer after the failover"
            ));
        }
    }
    eprintln!("{algo}/{kind} {away:?}: takeover after {took:?}; connections by backend {spread:?}");
    let persistent = extra.contains("persistence_timeout");
    if persistent {
        // One client: every connection on one backend, and a new
        // connection after the failover still goes there (the synced
        // persistence entry).
        if spread.len() != 1 {
            problems.push(format!(
                "a persistent client on several backends: {spread:?}"
            ));
        }
        let first = spread.keys().next().cloned().unwrap_or_default();
        let later = Clients::start_n(lab, 3, vip)?.finish_after(Duration::from_millis(300));
        for r in &later {
            if let Some((_, b)) = r.answers.first() {
                if *b != first {
                    problems.push(format!(
                        "a new connection after the failover went to {b}, not {first}"
                    ));
                }
            } else {
                problems.push(format!(
                    "a new connection after the failover got no answer ({:?})",
                    r.broken
                ));
            }
        }
    } else if spread.len() < 2 {
        problems.push(format!("all connections on one backend: {spread:?}"));
    }
    if !problems.is_empty() {
        bail!(
            "{} problems over {CONNECTIONS} connections:\n{}\nbackup's sync: {}",
            problems.len(),
            problems.join("\n"),
            lab.lbctl(1, &["sync"]).unwrap_or_default()
        );
    }
    Ok(())
}

/// Waits (bounded) until the backup's connection table holds `n`
/// connections to the VIP.
fn wait_synced(lab: &DemoLab, n: usize, vip: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut seen = 0;
    while Instant::now() < deadline {
        let out = lab.lbctl(1, &["--json", "conns", "-n", "1000"])?;
        seen = out.matches(&format!("\"{vip}\"")).count();
        if seen >= n {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the backup holds {seen} of {n} connections after {limit:?}")
}

#[test]
fn sync_failover_dr_rr_crash_keeps_every_connection() {
    failover("rr", "DR", "", Away::Crash);
}

#[test]
fn sync_failover_dr_rr_graceful_stop_keeps_every_connection() {
    failover("rr", "DR", "", Away::Graceful);
}

/// A message as the kernel's master sends it: one established DR
/// connection from `client` to the VIP on `dest`.
fn kernel_message(client: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    use lb_daemon::connsync::packet::{flags, state, MessageBuilder, SyncConn};
    let mut b = MessageBuilder::new(0, 1400);
    b.push(&SyncConn {
        protocol: 6,
        flags: flags::DROUTE,
        state: state::TCP_ESTABLISHED,
        client,
        vip: SocketAddr::from((VIP, 80)),
        dest,
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_data: None,
        pe_name: None,
    })
    .expect("one record fits");
    b.finish()
}

/// The receiving side alone: lbd (with no VRRP instance: it sends and
/// receives) writes what it hears on the group into its table, counts
/// what it cannot map, and shows both in `lbctl sync`.
#[test]
fn sync_lbd_writes_the_connections_it_hears() {
    let mut lab = DemoLab::new().expect("lab");
    let conf = lab.dir.path().join("recv.conf.in");
    let text = template("rr", "DR", "")
        .replace("lvs_sync_daemon eth0 VI_1", "lvs_sync_daemon eth0")
        .replace("@PRIORITY@", "100");
    std::fs::write(&conf, text).unwrap();
    lab.start_lbd(1, &conf, 100).unwrap();
    let check = || -> Result<()> {
        lab.wait_log(1, "every backend resolved", Duration::from_secs(10))?;
        lab.wait_log(1, "connection sync running", Duration::from_secs(10))?;
        let known: SocketAddr = "10.77.0.10:40001".parse()?;
        let msgs = vec![
            kernel_message(known, "10.77.0.12:80".parse()?),
            // A backend this node does not have: skipped, counted.
            kernel_message("10.77.0.10:40002".parse()?, "10.77.0.99:80".parse()?),
            // Garbage: refused, counted.
            vec![0, 0, 0, 8, 0, 0, 1, 0, 0xff],
        ];
        lab.client.enter(move || {
            let s = std::net::UdpSocket::bind("10.77.0.10:0")?;
            s.set_multicast_ttl_v4(1)?;
            for m in &msgs {
                s.send_to(m, "224.0.0.81:8848")?;
            }
            Ok(())
        })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let conns = lab.lbctl(1, &["conns"])?;
            if conns.contains("10.77.0.10:40001") && conns.contains("10.77.0.12:80") {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the synced connection is not in the table:\n{conns}\n{}",
                    lab.lbctl(1, &["sync"])?
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let sync = lab.lbctl(1, &["--json", "sync"])?;
        let v: serde_json::Value = serde_json::from_str(&sync)?;
        let s = &v["sync"];
        anyhow::ensure!(s["role"] == "both", "{sync}");
        anyhow::ensure!(s["written"] == 1, "{sync}");
        anyhow::ensure!(s["dropped"]["unknown_backend"] == 1, "{sync}");
        anyhow::ensure!(s["dropped"]["message_size_mismatch"] == 1, "{sync}");

        // A reload that changes lvs_sync_daemon restarts sync on the new
        // port: what is sent there is heard.
        let live = lab.dir.path().join("lb2.conf");
        let text = std::fs::read_to_string(&live)?
            .replace("lvs_sync_daemon eth0", "lvs_sync_daemon eth0 port 8850");
        std::fs::write(&live, text)?;
        lab.lbctl(1, &["reload"])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v: serde_json::Value = serde_json::from_str(&lab.lbctl(1, &["--json", "sync"])?)?;
            if v["sync"]["port"] == 8850 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "sync did not restart on port 8850: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let msg = kernel_message("10.77.0.10:40003".parse()?, "10.77.0.13:80".parse()?);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = msg.clone();
            lab.client.enter(move || {
                let s = std::net::UdpSocket::bind("10.77.0.10:0")?;
                s.send_to(&m, "224.0.0.81:8850")?;
                Ok(())
            })?;
            std::thread::sleep(Duration::from_millis(200));
            if lab.lbctl(1, &["conns"])?.contains("10.77.0.10:40003") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "nothing heard on the new port");
        }

        // A flood of damaged messages: each refused and counted, nothing
        // written, lbd still serving.
        let before: serde_json::Value = serde_json::from_str(&lab.lbctl(1, &["--json", "sync"])?)?;
        let good = kernel_message("10.77.0.10:40004".parse()?, "10.77.0.11:80".parse()?);
        lab.client.enter(move || {
            let s = std::net::UdpSocket::bind("10.77.0.10:0")?;
            for i in 0..2000usize {
                // Cut anywhere, or with a byte of the header flipped (not
                // the sync id: this node hears any).
                let mut m = good.clone();
                if i % 2 == 0 || i % 8 == 1 {
                    m.truncate(i % good.len());
                } else {
                    m[i % 8] ^= 0x5a;
                }
                let _ = s.send_to(&m, "224.0.0.81:8850");
            }
            Ok(())
        })?;
        std::thread::sleep(Duration::from_millis(500));
        let after: serde_json::Value = serde_json::from_str(&lab.lbctl(1, &["--json", "sync"])?)?;
        let refused = |v: &serde_json::Value| -> u64 {
            v["sync"]["dropped"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.starts_with("message_") || k.as_str() == "other_syncid")
                        .filter_map(|(_, n)| n.as_u64())
                        .sum()
                })
                .unwrap_or(0)
        };
        anyhow::ensure!(
            refused(&after) > refused(&before) + 500,
            "the flood was not counted: before {before}, after {after}"
        );
        anyhow::ensure!(
            !lab.lbctl(1, &["conns"])?.contains("10.77.0.10:40004"),
            "a damaged message installed a connection"
        );
        Ok(())
    };
    if let Err(e) = check() {
        panic!(
            "{e:#}\n{}",
            std::fs::read_to_string(lab.log(1)).unwrap_or_default()
        );
    }
}

#[test]
fn sync_failover_dr_wlc_crash_keeps_every_connection() {
    failover("wlc", "DR", "", Away::Crash);
}

#[test]
fn sync_failover_dr_persistent_crash_keeps_every_connection_and_the_client() {
    failover("rr", "DR", "    persistence_timeout 300\n", Away::Crash);
}

#[test]
fn sync_failover_ipv6_dr_rr_crash_keeps_every_connection() {
    failover_family("rr", "DR", "", Away::Crash, true);
}

#[test]
fn sync_failover_dr_lc_graceful_stop_keeps_every_connection() {
    failover("lc", "DR", "", Away::Graceful);
}
