//! The IPVS tier against a real kernel IPVS: run by `cargo xtask vm-test`
//! as the only program of a small VM booted with Debian's cloud kernel
//! (this host's kernel has no IPVS). Every check runs in that one boot;
//! the output ends with `N passed, M failed`.
//!
//! Inside the VM: root, IPVS and its schedulers loaded, `ipvsadm` and
//! iproute2's `ip` on PATH, lbd, lbctl and lb-test-http in `LB_BIN_DIR`.
//!
//! `lb-vm-ipvs --bench` (`cargo xtask bench ipvs`) runs no check: it
//! measures requests per second and CPU through the IPVS tier and the XDP
//! (SKB) tier on the same NAT lab and configuration.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use lb_daemon::{
    config,
    dataplane::{
        ipvs::{
            self,
            attrs::{fwd, svc_flag, Key},
            IpvsDataplane,
        },
        Capabilities, Dataplane, ServiceSpec, Timeouts,
    },
    services,
};
use lb_tests::netns::{run, Netns};

type Check = fn() -> Result<()>;

fn main() {
    let checks: &[(&str, Check)] = &[
        ("ipvs_family_resolves_and_reports_version", family_and_info),
        (
            "every_scheduler_method_family_and_fwmark_matches_ipvsadm",
            every_kind,
        ),
        (
            "reload_changes_weights_and_deletes_only_the_difference",
            reload_difference,
        ),
        (
            "existing_services_are_adopted_and_foreign_ones_left_alone",
            adoption,
        ),
        (
            "kernel_errors_name_the_service_and_the_field",
            kernel_errors,
        ),
        ("timeouts_round_trip_and_match_ipvsadm", timeouts),
        (
            "lbd_forwards_nat_traffic_follows_health_and_reload",
            lbd_traffic,
        ),
        ("lbd_auto_falls_back_to_ipvs_saying_why", auto_fallback),
    ];
    let filter = std::env::args().nth(1);
    if filter.as_deref() == Some("--bench") {
        let failed = match bench::measure() {
            Ok(()) => 0,
            Err(e) => {
                println!("bench FAILED: {e:#}");
                1
            }
        };
        println!("{} passed, {failed} failed", 1 - failed);
        std::process::exit(failed);
    }
    let (mut passed, mut failed) = (0, 0);
    println!("running {} VM checks", checks.len());
    for (name, check) in checks {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(check).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(anyhow::anyhow!("panicked: {msg}"))
        });
        let secs = start.elapsed().as_secs_f32();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test vm::{name} ... ok ({secs:.1}s)");
            }
            Err(e) => {
                failed += 1;
                println!("test vm::{name} ... FAILED ({secs:.1}s)\n    {e:#}");
            }
        }
        let _ = run(Command::new("ipvsadm").arg("-C"));
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}

// ------------------------------------------------------------- helpers

/// The services a keepalived.conf text asks the IPVS tier for.
fn plan(text: &str) -> Result<Vec<ServiceSpec>> {
    let loaded = config::parse_str(text, Path::new("vm.conf"))
        .map_err(|d| anyhow::anyhow!("config: {d}"))?;
    let plan = services::plan_for(&loaded.config, Capabilities::IPVS);
    ensure!(plan.skipped.is_empty(), "skipped: {:?}", plan.skipped);
    Ok(plan.services)
}

fn ipvsadm(args: &[&str]) -> Result<String> {
    let out = run(Command::new("ipvsadm").args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One service line of `ipvsadm -Ln` reduced to what both sides show:
/// (protocol, address or mark, scheduler, persistence timeout, sorted
/// destinations as (address, forward, weight)).
type Row = (
    String,
    String,
    String,
    Option<u32>,
    Vec<(String, String, i32)>,
);

fn ipvsadm_rows() -> Result<BTreeSet<Row>> {
    let text = ipvsadm(&["-Ln"])?;
    let mut rows: Vec<Row> = Vec::new();
    for line in text.lines().skip(3) {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.first() == Some(&"->") {
            let row = rows.last_mut().context("destination before its service")?;
            row.4
                .push((t[1].to_string(), t[2].to_string(), t[3].parse()?));
            continue;
        }
        if t.len() < 3 {
            continue;
        }
        // FWM lines of IPv6 services say so before the scheduler.
        let sched_at = if t[0] == "FWM" && t[2] == "IPv6" {
            3
        } else {
            2
        };
        let persistent = t
            .iter()
            .position(|w| *w == "persistent")
            .and_then(|i| t.get(i + 1))
            .map(|n| n.parse())
            .transpose()?;
        let addr = if t[0] == "FWM" && sched_at == 3 {
            format!("{} IPv6", t[1])
        } else {
            t[1].to_string()
        };
        rows.push((
            t[0].into(),
            addr,
            t[sched_at].into(),
            persistent,
            Vec::new(),
        ));
    }
    Ok(rows
        .into_iter()
        .map(|mut r| {
            r.4.sort();
            r
        })
        .collect())
}

/// The same rows from what lbd's own GET_SERVICE / GET_DEST read back.
fn our_rows(dp: &IpvsDataplane) -> Result<BTreeSet<Row>> {
    let mut rows = BTreeSet::new();
    for (svc, dests) in dp.read()? {
        let (prot, addr) = match svc.key {
            Key::Addr { protocol, vip } => (
                ipvs::attrs::proto_name(protocol).to_uppercase(),
                vip.to_string(),
            ),
            Key::Fwmark { af, mark } => (
                "FWM".to_string(),
                if af == ipvs::attrs::AF_INET6 {
                    format!("{mark} IPv6")
                } else {
                    mark.to_string()
                },
            ),
        };
        let persistent = (svc.flags & svc_flag::PERSISTENT != 0).then_some(svc.timeout);
        let mut d: Vec<_> = dests
            .iter()
            .map(|d| (d.addr.to_string(), fwd::name(d.fwd).to_string(), d.weight))
            .collect();
        d.sort();
        rows.insert((prot, addr, svc.sched.clone(), persistent, d));
    }
    Ok(rows)
}

/// IPVS holds exactly what `specs` want (no operation left to do), and
/// ipvsadm sees the same tables as lbd.
fn assert_applied(dp: &IpvsDataplane, specs: &[ServiceSpec]) -> Result<()> {
    let wanted: Vec<_> = specs.iter().map(ipvs::wanted).collect();
    let owned = specs.iter().map(ipvs::key_of).collect();
    let left = ipvs::diff(&dp.read()?, &wanted, &owned);
    ensure!(
        left.is_empty(),
        "IPVS differs from the configuration: {left:#?}"
    );
    let (ours, theirs) = (our_rows(dp)?, ipvsadm_rows()?);
    ensure!(
        ours == theirs,
        "lbd reads {ours:#?}\nipvsadm -Ln shows {theirs:#?}\n{}",
        ipvsadm(&["-Ln"]).unwrap_or_default()
    );
    Ok(())
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ------------------------------------------------------------- checks

fn family_and_info() -> Result<()> {
    let dp = IpvsDataplane::open()?;
    let d = dp.describe();
    ensure!(d.contains("IPVS 1.2.1"), "{d}");
    ensure!(
        ipvsadm(&["-Ln"])?.contains("version 1.2.1"),
        "ipvsadm disagrees"
    );
    Ok(())
}

const SCHEDULERS: [&str; 13] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// Every scheduler (alternating IPv4 / IPv6 and NAT / DR / TUN), fwmark
/// services of both families, UDP with ops and sh flags, persistence.
fn every_kind_config(weight_bump: u32, skip_last: bool) -> String {
    let mut c = String::new();
    let kinds = ["NAT", "DR", "TUN"];
    for (i, s) in SCHEDULERS.iter().enumerate() {
        if skip_last && i == SCHEDULERS.len() - 1 {
            continue;
        }
        let n = i + 1;
        let (vip, r1, r2) = if i % 2 == 0 {
            (
                format!("10.20.0.{n}"),
                format!("10.21.0.{n}"),
                format!("10.22.0.{n}"),
            )
        } else {
            (
                format!("2001:db8:20::{n}"),
                format!("2001:db8:21::{n}"),
                format!("2001:db8:22::{n}"),
            )
        };
        // NAT may change the port; DR and TUN keep the service's.
        let port2 = if i % 3 == 0 { 8080 } else { 80 };
        c += &format!(
            "virtual_server {vip} 80 {{\n lb_algo {s}\n lb_kind {}\n protocol TCP\n \
             real_server {r1} 80 {{ weight {} }}\n real_server {r2} {port2} {{ weight 1 }}\n}}\n",
            kinds[i % 3],
            n as u32 + weight_bump
        );
    }
    c += "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n \
          real_server 10.23.0.1 { weight 2 }\n}\n\
          virtual_server fwmark 6 {\n lb_algo wlc\n lb_kind DR\n \
          real_server 2001:db8:23::1 { weight 3 }\n}\n\
          virtual_server 10.24.0.1 53 {\n lb_algo sh\n sh-port\n sh-fallback\n ops\n lb_kind NAT\n \
          protocol UDP\n real_server 10.24.0.11 53 { }\n}\n\
          virtual_server 10.25.0.1 443 {\n lb_algo wlc\n lb_kind NAT\n persistence_timeout 600\n \
          persistence_granularity 255.255.255.0\n real_server 10.25.0.11 443 { }\n}\n\
          virtual_server 2001:db8:25::1 443 {\n lb_algo wlc\n lb_kind DR\n persistence_timeout\n \
          persistence_granularity 64\n real_server 2001:db8:25::11 443 { }\n}\n";
    c
}

fn every_kind() -> Result<()> {
    let mut dp = IpvsDataplane::open()?;
    let specs = plan(&every_kind_config(0, false))?;
    ensure!(specs.len() == SCHEDULERS.len() + 5);
    dp.apply(&specs)?;
    assert_applied(&dp, &specs)?;
    let listed = ipvsadm(&["-Ln"])?;
    for needle in [
        "persistent 600 mask 255.255.255.0",
        "-> [2001:db8:21::2]:80",
        "Tunnel",
        "Route",
        "Masq",
    ] {
        ensure!(
            listed.contains(needle),
            "ipvsadm -Ln lacks `{needle}`:\n{listed}"
        );
    }
    // Applying the same again changes nothing.
    dp.apply(&specs)?;
    assert_applied(&dp, &specs)
}

fn reload_difference() -> Result<()> {
    let mut dp = IpvsDataplane::open()?;
    let first = plan(&every_kind_config(0, false))?;
    dp.apply(&first)?;
    // Counters of an untouched service survive (no flush and rebuild): give
    // one a scheduled-connection count first by reading it back later.
    let before = dp.read()?;
    let second = plan(&every_kind_config(10, true))?;
    dp.apply(&second)?;
    assert_applied(&dp, &second)?;
    let after = dp.read()?;
    ensure!(
        after.len() == before.len() - 1,
        "the dropped service is gone"
    );
    let rr = |v: &Vec<(ipvs::attrs::Service, Vec<ipvs::attrs::Dest>)>| {
        v.iter()
            .find(|(s, _)| s.sched == "rr" && matches!(s.key, Key::Addr { .. }))
            .map(|(_, d)| {
                let mut w: Vec<_> = d.iter().map(|d| d.weight).collect();
                w.sort();
                w
            })
    };
    ensure!(rr(&after) == Some(vec![1, 11]), "{:?}", rr(&after));
    Ok(())
}

fn adoption() -> Result<()> {
    for args in [
        "-A -t 10.30.0.1:80 -s rr",
        "-a -t 10.30.0.1:80 -r 10.30.0.11:80 -m -w 1",
        "-a -t 10.30.0.1:80 -r 10.30.0.66:80 -m -w 1",
        "-A -t 10.30.0.2:80 -s rr",
        "-a -t 10.30.0.2:80 -r 10.30.0.21:80 -g -w 1",
    ] {
        ipvsadm(&args.split(' ').collect::<Vec<_>>())?;
    }
    let mut dp = IpvsDataplane::open()?;
    let specs = plan(
        "virtual_server 10.30.0.1 80 {\n lb_algo wlc\n lb_kind NAT\n \
         real_server 10.30.0.11 80 { weight 3 }\n real_server 10.30.0.12 80 { weight 1 }\n}\n",
    )?;
    dp.apply(&specs)?;
    let listed = ipvsadm(&["-Ln"])?;
    ensure!(
        listed.matches("10.30.0.1:80").count() == 1,
        "duplicated:\n{listed}"
    );
    ensure!(
        listed.contains("TCP  10.30.0.1:80 wlc"),
        "not adopted:\n{listed}"
    );
    ensure!(
        !listed.contains("10.30.0.66"),
        "stray real server kept:\n{listed}"
    );
    ensure!(
        listed.contains("10.30.0.2:80 rr"),
        "foreign service touched:\n{listed}"
    );
    ensure!(
        listed.contains("10.30.0.21:80"),
        "foreign service touched:\n{listed}"
    );
    let ours: Vec<_> = dp.owned().copied().collect();
    ensure!(ours == vec![ipvs::key_of(&specs[0])], "{ours:?}");
    // Leaving the configuration: the adopted service goes, the foreign stays.
    dp.apply(&[])?;
    let listed = ipvsadm(&["-Ln"])?;
    ensure!(
        !listed.contains("10.30.0.1:80"),
        "owned service kept:\n{listed}"
    );
    ensure!(
        listed.contains("10.30.0.2:80"),
        "foreign service removed:\n{listed}"
    );
    // Stopping lbd (without --on-exit keep) removes only what it owns.
    dp.apply(&specs)?;
    dp.shutdown(false);
    let listed = ipvsadm(&["-Ln"])?;
    ensure!(
        !listed.contains("10.30.0.1:80") && listed.contains("10.30.0.2:80"),
        "{listed}"
    );
    Ok(())
}

fn kernel_errors() -> Result<()> {
    let mut dp = IpvsDataplane::open()?;
    // This kernel is built without ip_vs_twos: the scheduler is absent.
    let specs = plan(
        "virtual_server 10.40.0.1 80 {\n lb_algo twos\n lb_kind NAT\n real_server 10.40.0.11 80 { }\n}\n\
         virtual_server 10.40.0.2 80 {\n lb_algo rr\n lb_kind NAT\n real_server 10.40.0.21 80 { }\n}\n",
    )?;
    let err = dp
        .apply(&specs)
        .expect_err("twos is not in this kernel")
        .to_string();
    for needle in ["10.40.0.1:80/tcp", "lb_algo twos", "ip_vs_twos", "ENOENT"] {
        ensure!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    // The other service went in all the same.
    ensure!(ipvsadm(&["-Ln"])?.contains("10.40.0.21:80"));
    // Something else took the service meanwhile: EEXIST is explained.
    ipvsadm(&["-A", "-t", "10.40.0.3:80", "-s", "rr"])?;
    let op = ipvs::Op::AddService(
        ipvs::wanted(&plan("virtual_server 10.40.0.3 80 {\n lb_algo rr\n}\n")?[0]).svc,
    );
    let e = dp.execute(&op).expect_err("exists");
    let msg = ipvs::explain(&op, &e);
    ensure!(
        msg.contains("already in IPVS") && msg.contains("EEXIST"),
        "{msg}"
    );
    Ok(())
}

fn timeouts() -> Result<()> {
    let mut dp = IpvsDataplane::open()?;
    let t = Timeouts {
        tcp: 901,
        tcpfin: 121,
        udp: 301,
    };
    dp.set_timeouts(t)?;
    ensure!(dp.timeouts()? == t, "{:?}", dp.timeouts()?);
    let shown = ipvsadm(&["-L", "--timeout"])?;
    ensure!(shown.contains("901 121 301"), "{shown}");
    Ok(())
}

// ------------------------------------------------------ traffic through lbd

const VIP: &str = "10.10.0.100";

struct Lab {
    cli: Netns,
    backends: Vec<Netns>,
    servers: Vec<Option<Child>>,
    lbd: Option<Child>,
}

impl Lab {
    fn new() -> Result<Self> {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        run(Command::new("ip").args(["addr", "add", &format!("{VIP}/32"), "dev", "lo"]))?;
        let link = |ns: &Netns, name: &str, net: u8| -> Result<()> {
            let (outer, inner) = (format!("l-{name}"), format!("i-{name}"));
            run(Command::new("ip").args([
                "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name,
            ]))?;
            run(Command::new("ip").args([
                "addr",
                "add",
                &format!("10.10.{net}.1/24"),
                "dev",
                &outer,
            ]))?;
            run(Command::new("ip").args(["link", "set", &outer, "up"]))?;
            ns.ip(&["addr", "add", &format!("10.10.{net}.2/24"), "dev", &inner])?;
            ns.ip(&["link", "set", &inner, "up"])?;
            ns.ip(&["route", "add", "default", "via", &format!("10.10.{net}.1")])?;
            Ok(())
        };
        let cli = Netns::new("cli".into())?;
        link(&cli, "cli", 1)?;
        let mut backends = Vec::new();
        for i in 0..2u8 {
            let ns = Netns::new(format!("b{i}"))?;
            link(&ns, &format!("b{i}"), 2 + i)?;
            backends.push(ns);
        }
        let mut lab = Lab {
            cli,
            backends,
            servers: vec![None, None],
            lbd: None,
        };
        lab.start_server(0)?;
        lab.start_server(1)?;
        Ok(lab)
    }

    fn start_server(&mut self, i: usize) -> Result<()> {
        let child = self.backends[i]
            .command(lb_tests::bin("lb-test-http"))
            .args(["0.0.0.0:80", &format!("b{i}")])
            .stdout(Stdio::null())
            .spawn()?;
        self.servers[i] = Some(child);
        Ok(())
    }

    fn stop_server(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn get(&self) -> Result<String> {
        self.cli.enter(|| {
            let addr: SocketAddr = format!("{VIP}:80").parse()?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body.lines().last().unwrap_or("").trim().to_string())
        })
    }

    fn answers(&self, n: usize) -> Result<BTreeSet<String>> {
        (0..n).map(|_| self.get()).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.lbd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stop_server(0);
        self.stop_server(1);
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{VIP}/32"), "dev", "lo"])
            .output();
    }
}

fn lab_config(w0: u32) -> String {
    let mut c = format!(
        "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    );
    for (i, w) in [(0, w0), (1, 1)] {
        c += &format!(
            " real_server 10.10.{}.2 80 {{\n  weight {w}\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n",
            2 + i
        );
    }
    c + "}\n"
}

fn lbd_traffic() -> Result<()> {
    let mut lab = Lab::new()?;
    let conf = "/tmp/lbd-vm.conf";
    std::fs::write(conf, lab_config(1))?;
    let log = std::fs::File::create("/tmp/lbd.log")?;
    lab.lbd = Some(
        Command::new(lb_tests::bin("lbd"))
            .args([
                "--dataplane",
                "ipvs",
                "--control-socket",
                CONTROL,
                "-f",
                conf,
            ])
            .stderr(log)
            .spawn()?,
    );
    let result = traffic_steps(&mut lab, conf);
    if result.is_err() {
        println!(
            "--- lbd log ---\n{}\n--- ipvsadm ---\n{}",
            std::fs::read_to_string("/tmp/lbd.log").unwrap_or_default(),
            ipvsadm(&["-Ln", "--stats"]).unwrap_or_default()
        );
    }
    result
}

const CONTROL: &str = "/tmp/lbd-vm.sock";

/// `lbctl --json ARGS` against the lbd of the lab.
fn lbctl(args: &[&str]) -> Result<serde_json::Value> {
    let out = run(Command::new(lb_tests::bin("lbctl"))
        .args(["--control-socket", CONTROL, "--json"])
        .args(args))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
    Ok(v)
}

/// (backend, weight, active, inactive, connections, packets, bytes).
type BackendRow = (String, i64, u64, u64, u64, u64, u64);

/// The lab service's backends as `lbctl backends --json` shows them.
fn lbctl_backends() -> Result<BTreeSet<BackendRow>> {
    let v = lbctl(&["backends"])?;
    let list = v["backends"]
        .as_array()
        .with_context(|| format!("no backends in {v}"))?;
    let n = |b: &serde_json::Value, k: &str| b[k].as_u64().with_context(|| format!("{k} in {b}"));
    list.iter()
        .filter(|b| b["service"] == format!("{VIP}:80/tcp").as_str())
        .map(|b| {
            Ok((
                format!(
                    "{}:{}",
                    b["address"].as_str().context("address")?,
                    n(b, "port")?
                ),
                n(b, "weight")? as i64,
                n(b, "active_conns")?,
                n(b, "inactive_conns")?,
                n(b, "new_conns")?,
                n(b, "packets")?,
                n(b, "bytes")?,
            ))
        })
        .collect()
}

/// The same from `ipvsadm -Ln` (weights, connection counts) and
/// `ipvsadm -Ln --stats --exact` (counters, both directions summed).
fn ipvsadm_backends() -> Result<BTreeSet<BackendRow>> {
    let dests = |text: &str| -> Vec<Vec<String>> {
        let mut inside = false;
        let mut out = Vec::new();
        for line in text.lines() {
            let t: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if t.first().map(String::as_str) == Some("->") {
                if inside && t.get(1).is_some_and(|a| a != "RemoteAddress:Port") {
                    out.push(t);
                }
            } else if t.len() >= 2 {
                inside = t[1] == format!("{VIP}:80");
            }
        }
        out
    };
    let table = ipvsadm(&["-Ln"])?;
    let stats = ipvsadm(&["-Ln", "--stats", "--exact"])?;
    let counters = dests(&stats);
    dests(&table)
        .into_iter()
        .map(|t| {
            let c = counters
                .iter()
                .find(|c| c[1] == t[1])
                .with_context(|| format!("{} not in\n{stats}", t[1]))?;
            let n = |s: &String| s.parse::<u64>().with_context(|| format!("{s} in {c:?}"));
            Ok((
                t[1].clone(),
                t[3].parse()?,
                t[4].parse()?,
                t[5].parse()?,
                n(&c[2])?,
                n(&c[3])? + n(&c[4])?,
                n(&c[5])? + n(&c[6])?,
            ))
        })
        .collect()
}

/// Waits until lbctl and ipvsadm agree, on backends `ok` accepts (the
/// kernel folds its per-CPU counters into what it reports every 2 s).
fn wait_for_lbctl_matching_ipvsadm(
    ok: impl Fn(&BTreeSet<BackendRow>) -> bool,
) -> Result<BTreeSet<BackendRow>> {
    let mut last = (BTreeSet::new(), BTreeSet::new());
    let agreed = wait_for("lbctl backends to match ipvsadm", 10, || {
        let ours = lbctl_backends()?;
        let theirs = ipvsadm_backends()?;
        let done = ok(&ours) && ours == theirs;
        last = (ours, theirs);
        Ok(done)
    });
    agreed.with_context(|| format!("lbctl {:?}\nipvsadm {:?}", last.0, last.1))?;
    Ok(last.0)
}

fn traffic_steps(lab: &mut Lab, conf: &str) -> Result<()> {
    let reader = IpvsDataplane::open()?;
    let vip: SocketAddr = format!("{VIP}:80").parse()?;
    let weights = |reader: &IpvsDataplane| -> Result<Vec<(SocketAddr, i32)>> {
        Ok(reader
            .read()?
            .into_iter()
            .find(|(s, _)| matches!(s.key, Key::Addr { vip: v, .. } if v == vip))
            .map(|(_, d)| {
                let mut w: Vec<_> = d.iter().map(|d| (d.addr, d.weight)).collect();
                w.sort();
                w
            })
            .unwrap_or_default())
    };
    wait_for("lbd to install both real servers", 30, || {
        Ok(weights(&reader)?.len() == 2)
    })?;
    let seen = lab.answers(4)?;
    ensure!(
        seen == BTreeSet::from(["b0".into(), "b1".into()]),
        "{seen:?}"
    );

    // The kernel folds its per-CPU counters into what it reports every 2 s.
    let mut last = None;
    let counted = wait_for("the connections in IPVS's counters", 10, || {
        let stats = reader.stats()?;
        let svc = stats.services.into_iter().find(|s| s.vip == vip);
        let ok = svc.as_ref().is_some_and(|s| {
            s.new_conns >= 4
                && s.packets > 0
                && s.backends
                    .iter()
                    .all(|b| b.new_conns >= 1 && b.active + b.inactive >= 1)
        });
        last = svc;
        Ok(ok)
    });
    counted.with_context(|| format!("{last:?}"))?;

    // lbctl shows IPVS's tables: the same backends, weights, connection
    // counts and counters as ipvsadm, and the counters move with traffic.
    let status = lbctl(&["status"])?;
    ensure!(status["dataplane"] == "ipvs", "{status}");
    let total = |b: &BTreeSet<BackendRow>| b.iter().map(|r| r.4).sum::<u64>();
    let before = wait_for_lbctl_matching_ipvsadm(|b| b.len() == 2)?;
    lab.answers(4)?;
    let moved = |b: &BTreeSet<BackendRow>| {
        b.len() == 2
            && total(b) >= total(&before) + 4
            && b.iter().zip(&before).all(|(a, o)| a.5 > o.5 && a.6 > o.6)
    };
    wait_for_lbctl_matching_ipvsadm(moved).context("the counters moving")?;
    let conns = Command::new(lb_tests::bin("lbctl"))
        .args(["--control-socket", CONTROL, "conns"])
        .output()?;
    let said = String::from_utf8_lossy(&conns.stderr);
    ensure!(
        !conns.status.success() && said.contains("not available on the ipvs tier"),
        "lbctl conns: {} {said}",
        conns.status
    );

    // Health: b1 stops answering → TCP_CHECK fails → deleted (no inhibit).
    lab.stop_server(1);
    wait_for("b1 to be removed", 30, || Ok(weights(&reader)?.len() == 1))?;
    wait_for_lbctl_matching_ipvsadm(|b| b.len() == 1).context("lbctl without b1")?;
    let seen = lab.answers(3)?;
    ensure!(seen == BTreeSet::from(["b0".into()]), "{seen:?}");
    lab.start_server(1)?;
    wait_for("b1 to come back", 30, || Ok(weights(&reader)?.len() == 2))?;

    // Reload: only the weight changes.
    std::fs::write(conf, lab_config(5))?;
    let pid = lab.lbd.as_ref().map(|c| c.id()).context("lbd")?;
    run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
    wait_for("the new weight", 30, || {
        Ok(weights(&reader)?.first().map(|w| w.1) == Some(5))
    })?;
    wait_for_lbctl_matching_ipvsadm(|b| b.first().map(|r| r.1) == Some(5))
        .context("lbctl with the new weight")?;

    // SIGTERM: lbd removes what it installed.
    run(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    let mut lbd = lab.lbd.take().context("lbd")?;
    let status = lbd.wait()?;
    ensure!(status.success(), "lbd exited with {status}");
    ensure!(weights(&reader)?.is_empty(), "service left behind");
    Ok(())
}

/// `--dataplane auto` without an interface: XDP and TC are skipped, each
/// with its reason, and IPVS carries the services.
fn auto_fallback() -> Result<()> {
    let conf = "/tmp/lbd-auto.conf";
    std::fs::write(
        conf,
        "virtual_server 10.50.0.1 80 {\n lb_algo wrr\n lb_kind DR\n real_server 10.50.0.11 80 { weight 4 }\n}\n",
    )?;
    let log = "/tmp/lbd-auto.log";
    let mut lbd = Command::new(lb_tests::bin("lbd"))
        .args(["-f", conf])
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let waited = wait_for("lbd (auto) to install the service", 30, || {
        Ok(ipvsadm(&["-Ln"])?.contains("10.50.0.11:80"))
    });
    let _ = run(Command::new("kill").args(["-TERM", &lbd.id().to_string()]));
    let status = lbd.wait()?;
    let text = std::fs::read_to_string(log)?;
    waited.with_context(|| text.clone())?;
    ensure!(status.success(), "lbd exited with {status}: {text}");
    for needle in [
        "XDP skipped: no interface given",
        "TC skipped: no interface given",
        "using IPVS",
    ] {
        ensure!(text.contains(needle), "`{needle}` not logged:\n{text}");
    }
    ensure!(
        !ipvsadm(&["-Ln"])?.contains("10.50.0.1:80"),
        "left behind after SIGTERM"
    );
    Ok(())
}

// ------------------------------------------------------------- benchmark

/// `--bench`: the same NAT lab, configuration and load through the IPVS
/// tier, then the XDP tier in SKB (generic) mode.
mod bench {
    use std::{
        fs::File,
        os::fd::AsRawFd,
        sync::atomic::{AtomicU64, Ordering},
    };

    use super::*;

    /// How long each tier carries the measured load (after a warm-up).
    const SECONDS: u64 = 8;
    const WARMUP_SECONDS: u64 = 1;
    /// Client threads, each one request per new TCP connection at a time.
    const THREADS: usize = 3;
    /// Rounds of (ipvs, xdp-skb), summed.
    const ROUNDS: u32 = 2;

    struct Measured {
        tier: &'static str,
        requests: u64,
        errors: u64,
        secs: f64,
        /// Busy share of the (one) CPU over the window, 0..=1.
        cpu: f64,
    }

    impl Measured {
        fn rps(&self) -> f64 {
            self.requests as f64 / self.secs
        }
        fn per_cpu_second(&self) -> f64 {
            self.requests as f64 / (self.cpu * self.secs).max(f64::EPSILON)
        }
    }

    pub fn measure() -> Result<()> {
        let tiers: [(&'static str, &[&str]); 2] = [
            ("ipvs", &["--dataplane", "ipvs"]),
            (
                "xdp-skb",
                &[
                    "--dataplane",
                    "xdp",
                    "--xdp-mode",
                    "skb",
                    "--interface",
                    "l-cli",
                    "--interface",
                    "l-b0",
                    "--interface",
                    "l-b1",
                    "--pin-path",
                    "none",
                ],
            ),
        ];
        let mut results: Vec<Measured> = tiers
            .iter()
            .map(|(tier, _)| Measured {
                tier,
                requests: 0,
                errors: 0,
                secs: 0.0,
                cpu: 0.0,
            })
            .collect();
        // The tiers alternate, so that a change in the host's load falls
        // on both.
        for round in 1..=ROUNDS {
            for (total, (tier, args)) in results.iter_mut().zip(tiers) {
                let m =
                    one_tier(tier, args).with_context(|| format!("tier {tier}, round {round}"))?;
                let _ = run(Command::new("ipvsadm").arg("-C"));
                let secs = total.secs + m.secs;
                total.cpu = (total.cpu * total.secs + m.cpu * m.secs) / secs;
                total.secs = secs;
                total.requests += m.requests;
                total.errors += m.errors;
            }
        }
        println!(
            "bench: qemu TCG (software-emulated), 1 vCPU shared by the client, both \
             backends and the balancer; absolute numbers are low, the ratio is the point"
        );
        println!(
            "bench: NAT, rr over 2 backends, {THREADS} client threads, a new TCP connection \
             per HTTP/1.0 GET, {ROUNDS} x {SECONDS} s per tier (alternating); CPU from /proc/stat (busy / total jiffies)"
        );
        println!(
            "{:<8} {:>11} {:>7} {:>15} {:>8} {:>7}",
            "tier", "requests/s", "CPU %", "requests/CPU-s", "requests", "errors"
        );
        for m in &results {
            println!(
                "{:<8} {:>11.1} {:>7.1} {:>15.1} {:>8} {:>7}",
                m.tier,
                m.rps(),
                m.cpu * 100.0,
                m.per_cpu_second(),
                m.requests,
                m.errors
            );
        }
        let (ipvs, xdp) = (&results[0], &results[1]);
        println!(
            "ratio xdp-skb/ipvs: requests/s {:.2}x, requests per CPU-second {:.2}x",
            xdp.rps() / ipvs.rps().max(f64::EPSILON),
            xdp.per_cpu_second() / ipvs.per_cpu_second().max(f64::EPSILON)
        );
        for m in &results {
            ensure!(m.requests > 0, "{}: no request answered", m.tier);
        }
        Ok(())
    }

    fn one_tier(tier: &'static str, args: &[&str]) -> Result<Measured> {
        let mut lab = Lab::new()?;
        let conf = "/tmp/lbd-bench.conf";
        std::fs::write(conf, lab_config(1))?;
        let log = "/tmp/lbd-bench.log";
        lab.lbd = Some(
            Command::new(lb_tests::bin("lbd"))
                .args(args)
                .args(["--control-socket", CONTROL, "-f", conf])
                .stderr(File::create(log)?)
                .spawn()?,
        );
        let both = BTreeSet::from(["b0".to_string(), "b1".to_string()]);
        let ready = wait_for("both backends answering through lbd", 60, || {
            Ok(lab.answers(4).is_ok_and(|seen| seen == both))
        });
        ready.with_context(|| std::fs::read_to_string(log).unwrap_or_default())?;
        let status = lbctl(&["status"])?;
        let dataplane = status["dataplane"].as_str().unwrap_or_default();
        ensure!(
            tier.starts_with(dataplane) && !dataplane.is_empty(),
            "lbd runs the {dataplane:?} data plane, not {tier}: {status}"
        );
        load(WARMUP_SECONDS)?;
        let w = load(SECONDS)?;
        let (requests, errors, secs) = (w.requests, w.errors, w.secs);
        println!(
            "bench: {tier}: {requests} requests, {errors} errors in {secs:.1} s (lbd: {})",
            status["dataplane"]
        );
        if dataplane == "xdp" {
            // Which way the packets went: redirected by XDP, or to the stack.
            let stats = run(Command::new(lb_tests::bin("lbctl")).args([
                "--control-socket",
                CONTROL,
                "stats",
            ]))?;
            for line in String::from_utf8_lossy(&stats.stdout).lines() {
                if [
                    "xdp_pass",
                    "xdp_tx",
                    "xdp_redirect",
                    "fib_miss",
                    "nat_reply",
                ]
                .iter()
                .any(|k| line.contains(k))
                {
                    println!("bench: {tier}: lbctl stats: {}", line.trim());
                }
            }
        }
        if let Some(mut lbd) = lab.lbd.take() {
            let _ = run(Command::new("kill").args(["-TERM", &lbd.id().to_string()]));
            let _ = lbd.wait();
        }
        Ok(Measured {
            tier,
            requests,
            errors,
            secs,
            cpu: w.cpu,
        })
    }

    /// (busy, total) jiffies of all CPUs from /proc/stat's `cpu` line
    /// (idle and iowait are not busy).
    fn cpu_jiffies() -> Result<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat")?;
        let line = text.lines().next().context("empty /proc/stat")?;
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        ensure!(f.len() == 8, "short cpu line: {line}");
        let total: u64 = f.iter().sum();
        Ok((total - f[3] - f[4], total))
    }

    /// What one window of load counted.
    struct Window {
        requests: u64,
        errors: u64,
        secs: f64,
        cpu: f64,
    }

    /// `THREADS` clients in the client namespace for `secs` seconds: the
    /// requests answered and failed within that window, and the CPU's busy
    /// share over exactly that window (a request still under way at its end
    /// counts for nothing).
    fn load(secs: u64) -> Result<Window> {
        let ok = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let before = cpu_jiffies()?;
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let addr: SocketAddr = format!("{VIP}:80").parse()?;
        std::thread::scope(|s| -> Result<Window> {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        let ns = File::open("/run/netns/cli")?;
                        // SAFETY: a valid namespace fd; only this thread switches.
                        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                            bail!("setns cli: {}", std::io::Error::last_os_error());
                        }
                        while Instant::now() < end {
                            let outcome = request(&addr);
                            if Instant::now() >= end {
                                break;
                            }
                            match outcome {
                                Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                        Ok(())
                    })
                })
                .collect();
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            let after = cpu_jiffies()?;
            let secs = start.elapsed().as_secs_f64();
            let (requests, errors) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
            for w in workers {
                w.join()
                    .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
            }
            let (busy, total) = (after.0 - before.0, after.1 - before.1);
            Ok(Window {
                requests,
                errors,
                secs,
                cpu: busy as f64 / (total as f64).max(1.0),
            })
        })
    }

    /// One HTTP/1.0 GET on a new connection, read to the end.
    fn request(addr: &SocketAddr) -> Result<()> {
        let mut s = TcpStream::connect_timeout(addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        ensure!(answer.starts_with(b"HTTP/1.0 200"), "bad answer");
        Ok(())
    }
}
