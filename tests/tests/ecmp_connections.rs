//! Long-lived connections behind ECMP: balancers crash, drain and join
//! while keep-alive connections keep asking, and every connection stays
//! answered by the backend it began on (`mh` gives every balancer the same
//! table; DR leaves the TCP state on the backend).
//!
//! ```text
//!  router (BIRD, merge paths; the client)  10.79.0.1 ─┐
//!  lb1, lb2, lb3 (lbd + BIRD)         10.79.0.2 .. .4 ─┤ br0 ("sw")
//!  backends b1, b2 (DR real servers)  10.79.0.11, .12 ─┘
//! ```

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use lb_tests::{
    bird::{bird, next_hops, wait_hops, Procs},
    lab::{self, tempdir::TempDir},
    netns::{self, Netns},
};

const VIP: &str = "10.79.0.100";
const TABLE: u32 = 100;
const ROUTER: &str = "10.79.0.1";
const BALANCERS: [&str; 3] = ["10.79.0.2", "10.79.0.3", "10.79.0.4"];
const BACKENDS: [&str; 2] = ["10.79.0.11", "10.79.0.12"];
const CONNECTIONS: usize = 120;

/// The balancer a connection from `sport` takes, as the router's L4 hash
/// (policy 3, fields 0x0037) picks it.
fn path_of(router: &Netns, sport: u16) -> Result<String> {
    let out = router.ip(&[
        "route",
        "get",
        VIP,
        "from",
        ROUTER,
        "ipproto",
        "tcp",
        "sport",
        &sport.to_string(),
        "dport",
        "80",
    ])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .with_context(|| format!("no next hop in {text:?}"))
}

fn lbd_config() -> String {
    let reals: String = BACKENDS
        .iter()
        .map(|ip| {
            format!(
                "real_server {ip} 80 {{\n weight 1\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n"
            )
        })
        .collect();
    format!(
        "global_defs {{\n lb_announce_table {TABLE}\n lb_announce_drain 2\n}}\n\
         virtual_server {VIP} 80 {{\n lb_algo mh\n mh-port\n lb_kind DR\n protocol TCP\n delay_loop 1\n{reals}}}\n"
    )
}

/// One keep-alive connection and the backend that answered it first.
struct Conn {
    stream: TcpStream,
    sport: u16,
    backend: String,
}

/// Sends one request on `stream` and returns the body (the backend's name).
fn ask(stream: &mut TcpStream) -> Result<String> {
    stream.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            bail!("closed");
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .context("no Content-Length")?
                .trim()
                .parse()?;
            if got.len() >= head_end + 4 + len {
                return Ok(text[head_end + 4..head_end + 4 + len].trim().to_string());
            }
        }
    }
}

/// Asks on every connection once; returns how many broke (an error, or
/// another backend answering) by the path the router gives them now.
fn ask_all(router: &Netns, conns: &mut [Conn]) -> Result<(usize, BTreeMap<String, usize>)> {
    let mut broken = 0;
    let mut by_path = BTreeMap::new();
    for c in conns.iter_mut() {
        *by_path.entry(path_of(router, c.sport)?).or_insert(0) += 1;
        match ask(&mut c.stream) {
            Ok(b) if b == c.backend => {}
            Ok(b) => {
                eprintln!("port {}: began on {}, now {b}", c.sport, c.backend);
                broken += 1;
            }
            Err(e) => {
                eprintln!("port {}: {e}", c.sport);
                broken += 1;
            }
        }
    }
    Ok((broken, by_path))
}

struct Lab {
    lbds: Vec<Option<Child>>,
    _procs: Procs,
    router: Netns,
    lbs: Vec<Netns>,
    _backends: Vec<Netns>,
    _sw: Netns,
    dir: TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.lbds.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Lab {
    fn new() -> Result<Self> {
        netns::sweep_stale();
        let prefix = netns::unique_prefix();
        let dir = TempDir::new(&prefix)?;
        let sw = Netns::switch(format!("{prefix}-sw"))?;
        let router = Netns::new(format!("{prefix}-r"))?;
        let lbs = (1..=BALANCERS.len())
            .map(|i| Netns::new(format!("{prefix}-lb{i}")))
            .collect::<Result<Vec<_>>>()?;
        let backends = (1..=BACKENDS.len())
            .map(|i| Netns::new(format!("{prefix}-b{i}")))
            .collect::<Result<Vec<_>>>()?;
        let mut hosts: Vec<(&Netns, &str)> = vec![(&router, ROUTER)];
        hosts.extend(lbs.iter().zip(BALANCERS));
        hosts.extend(backends.iter().zip(BACKENDS));
        for (i, (ns, ip)) in hosts.iter().enumerate() {
            sw.plug(&format!("p{i}"), ns, "eth0")?;
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
        }
        router.sh(
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
             net.ipv4.fib_multipath_hash_fields=0x0037",
        )?;
        let mut procs = Procs(Vec::new());
        for (i, b) in backends.iter().enumerate() {
            lab::dr_real_server(b, VIP.parse()?)?;
            procs.0.push(
                b.command(lb_tests::bin("lb-test-http"))
                    .args(["[::]:80", &format!("b{}", i + 1)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
        }
        let neighbours: String = BALANCERS
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("protocol bgp lb{i} from lb {{ neighbor {ip} as 65001; }}\n"))
            .collect();
        procs.0.push(bird(
            &router,
            dir.path(),
            "router",
            &format!(
                "router id {ROUTER};\nprotocol device {{ }}\n\
                 protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths yes limit 16; }}\n\
                 template bgp lb {{ local {ROUTER} as 65000; hold time 9; keepalive time 3; connect retry time 1;\n\
                   error wait time 1, 10; graceful restart off; ipv4 {{ import all; export none; }}; }}\n{neighbours}"
            ),
        )?);
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/bird/bird.conf"),
        )?;
        for (i, ns) in lbs.iter().enumerate() {
            let conf = shipped
                .replace("192.0.2.10", BALANCERS[i])
                .replace("192.0.2.1", ROUTER);
            procs
                .0
                .push(bird(ns, dir.path(), &format!("lb{}", i + 1), &conf)?);
        }
        Ok(Self {
            lbds: (0..BALANCERS.len()).map(|_| None).collect(),
            _procs: procs,
            router,
            lbs,
            _backends: backends,
            _sw: sw,
            dir,
        })
    }

    fn start_lbd(&mut self, i: usize) -> Result<()> {
        self.start_lbd_with(i, &["--pin-path", "none"])
    }

    fn start_lbd_with(&mut self, i: usize, args: &[&str]) -> Result<()> {
        self.lbds[i] = Some(self.spawn_lbd(i, args)?);
        Ok(())
    }

    /// Starts lbd on balancer `i` and waits until both backends are ready.
    fn spawn_lbd(&self, i: usize, args: &[&str]) -> Result<Child> {
        let cfg = self.dir.path().join(format!("lbd{}.conf", i + 1));
        std::fs::write(&cfg, lbd_config())?;
        let run = self.dir.path().join(format!("run{}", i + 1));
        std::fs::create_dir_all(&run)?;
        let mut cmd = self.lbs[i].command(lb_tests::bin("lbd"));
        cmd.arg("-f")
            .arg(&cfg)
            .args(["--interface", "eth0", "--xdp-mode", "skb"])
            .args(args)
            // Never the host's /run/lb; kept across restarts in place.
            .arg("--run-dir")
            .arg(&run)
            .arg("--control-socket")
            .arg(run.join("lbd.sock"));
        lab::start_lbd(
            cmd,
            &self.dir.path().join(format!("lbd{}.log", i + 1)),
            BACKENDS.len(),
        )
    }

    /// Opens `n` keep-alive connections from the router to the VIP and
    /// asks once on each, to learn its backend.
    fn connect(&self, n: usize) -> Result<Vec<Conn>> {
        let streams = self.router.enter(move || {
            (0..n)
                .map(|_| {
                    let s = TcpStream::connect_timeout(
                        &format!("{VIP}:80").parse()?,
                        Duration::from_secs(2),
                    )?;
                    s.set_read_timeout(Some(Duration::from_millis(500)))?;
                    Ok(s)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        streams
            .into_iter()
            .map(|mut stream| {
                let sport = stream.local_addr()?.port();
                let backend = ask(&mut stream)?;
                Ok(Conn {
                    stream,
                    sport,
                    backend,
                })
            })
            .collect()
    }
}

#[test]
fn keep_alive_connections_survive_crash_drain_and_join_behind_ecmp() -> Result<()> {
    let mut lab = Lab::new()?;
    lab.start_lbd(0)?;
    lab.start_lbd(1)?;
    wait_hops(&lab.router, VIP, &BALANCERS[..2], Duration::from_secs(20))?;
    let mut conns = lab.connect(CONNECTIONS)?;
    let per_backend = conns.iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.backend.clone()).or_insert(0usize) += 1;
        m
    });
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    println!("{CONNECTIONS} connections: backends {per_backend:?}, paths {paths:?}");
    assert_eq!(broken, 0);
    assert_eq!(
        per_backend.len(),
        BACKENDS.len(),
        "mh spreads over both backends"
    );
    assert_eq!(paths.len(), 2, "the router spreads over both balancers");

    // A balancer joins: the flows the router moves to it stay on their backends.
    lab.start_lbd(2)?;
    wait_hops(&lab.router, VIP, &BALANCERS, Duration::from_secs(20))?;
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    println!("lb3 joined: paths {paths:?}, broken {broken}");
    assert!(
        paths.get(BALANCERS[2]).copied().unwrap_or(0) > 0,
        "some flows moved to lb3"
    );
    assert_eq!(broken, 0, "a joining balancer breaks no connection");

    // kill -9 of lb2: the survivors' flows are untouched, lb2's resume on a
    // survivor with the same backend.
    let through_lb2 = paths.get(BALANCERS[1]).copied().unwrap_or(0);
    assert!(through_lb2 > 0);
    let mut lb2 = lab.lbds[1].take().context("lb2 running")?;
    lb2.kill()?;
    lb2.wait()?;
    wait_hops(
        &lab.router,
        VIP,
        &[BALANCERS[0], BALANCERS[2]],
        Duration::from_secs(1),
    )?;
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    println!("lb2 killed ({through_lb2} flows through it): paths {paths:?}, broken {broken}");
    assert_eq!(paths.values().sum::<usize>(), CONNECTIONS);
    assert!(!paths.contains_key(BALANCERS[1]));
    assert_eq!(broken, 0, "a crash breaks no connection");

    // lb1 drains (SIGTERM, lb_announce_drain 2): withdrawn, still forwarding
    // while the router moves its flows to lb3.
    let through_lb1 = paths.get(BALANCERS[0]).copied().unwrap_or(0);
    let lb1 = lab.lbds[0].as_ref().context("lb1 running")?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(lb1.id() as i32, libc::SIGTERM) };
    wait_hops(&lab.router, VIP, &[BALANCERS[2]], Duration::from_secs(1))?;
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    println!("lb1 drained ({through_lb1} flows through it): paths {paths:?}, broken {broken}");
    assert_eq!(paths.get(BALANCERS[2]).copied(), Some(CONNECTIONS));
    assert_eq!(broken, 0, "a drain breaks no connection");
    Ok(())
}

#[test]
fn restart_in_place_keeps_the_next_hop_and_every_connection() -> Result<()> {
    let mut lab = Lab::new()?;
    // Pinned, so the data plane stays attached while no lbd runs (an
    // unpinned XDP link goes with the process).
    let pins = lb_tests::bpffs::Bpffs::new();
    let pin_paths = [pins.path().join("lb1"), pins.path().join("lb2")];
    let keep_args = |i: usize| -> Result<[&str; 4]> {
        let pin = pin_paths[i].to_str().context("pin path")?;
        Ok(["--on-exit", "keep", "--pin-path", pin])
    };
    let keep = keep_args(0)?;
    lab.start_lbd_with(0, &keep)?;
    lab.start_lbd_with(1, &keep_args(1)?)?;
    let both = &BALANCERS[..2];
    wait_hops(&lab.router, VIP, both, Duration::from_secs(20))?;
    let mut conns = lab.connect(CONNECTIONS)?;
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    assert_eq!(broken, 0);
    let through_lb1 = paths.get(BALANCERS[0]).copied().unwrap_or(0);
    assert!(through_lb1 > 0, "{paths:?}");

    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut lb1 = lab.lbds[0].take().context("lb1 running")?;
    let lab_ref = &lab;
    let router = &lab.router;
    let (changes, polls, lb1_again) = std::thread::scope(|s| -> Result<_> {
        // Polls the router's route while lb1 restarts: any other set of
        // next hops is a flap.
        let watcher = s.spawn(|| {
            let mut changes = Vec::new();
            let mut polls = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && polls < 20_000 {
                let hops = next_hops(router, VIP);
                if hops != both {
                    changes.push(hops);
                }
                polls += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (changes, polls)
        });
        let result = (|| -> Result<()> {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(lb1.id() as i32, libc::SIGUSR1) };
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(st) = lb1.try_wait()? {
                    break st;
                }
                if Instant::now() > deadline {
                    let _ = lb1.kill();
                    bail!("lbd did not exit after SIGUSR1");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if status.code() != Some(75) {
                bail!("lbd exit after SIGUSR1: {status}");
            }
            // No lbd on lb1 now: the kept data plane still forwards.
            let (broken, paths) = ask_all(router, &mut conns)?;
            if broken != 0 {
                bail!("{broken} connections broke while lb1 was down (paths {paths:?})");
            }
            Ok(())
        })();
        let restarted = result.and_then(|()| lab_ref.spawn_lbd(0, &keep));
        // Past BIRD's next scan of the kernel table.
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = watcher
            .join()
            .map_err(|_| anyhow::anyhow!("watcher panicked"))?;
        Ok((seen.0, seen.1, restarted?))
    })?;
    lab.lbds[0] = Some(lb1_again);
    println!(
        "restart in place: {polls} polls of the router's route, {} not both",
        changes.len()
    );
    assert!(
        changes.is_empty(),
        "the router's route changed: {changes:?}"
    );
    let log = std::fs::read_to_string(lab.dir.path().join("lbd1.log")).unwrap_or_default();
    let (broken, paths) = ask_all(&lab.router, &mut conns)?;
    println!("after the restart: paths {paths:?}, broken {broken}");
    assert_eq!(broken, 0, "a restart in place breaks no connection\n{log}");
    assert_eq!(next_hops(&lab.router, VIP), both);
    Ok(())
}
