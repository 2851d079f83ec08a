//! The IPVS tier against a real kernel IPVS. This host's kernel has no
//! IPVS, so these tests run inside a small VM booted with Debian's cloud
//! kernel: `cargo xtask vm-test [FILTER]` builds this target, puts its
//! binary in the VM's initramfs and runs it there with
//! `--ignored --test-threads=1` (as aya runs its integration tests in a VM).
//! On the host (`cargo test --workspace`) every test here is ignored.
//!
//! Inside the VM: root, IPVS and its schedulers loaded, `ipvsadm` and
//! iproute2's `ip` on PATH, lbd, lbctl and lb-test-http in `LB_BIN_DIR`.
//! One thread: the tests share the kernel's one IPVS table, and each
//! empties it when it ends (`Cleared`).

use std::{collections::BTreeSet, net::SocketAddr, path::Path, process::Command};

use anyhow::{ensure, Context, Result};
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
use lb_tests::{
    ipvs_lab::{clear_ipvs, ipvsadm, lab_config, lbctl, wait_for, Lab, CONTROL, VIP},
    netns::run,
};

mod sync;

/// Empties IPVS when a test ends, passed, failed or panicked: the next
/// test starts from an empty table.
struct Cleared;

impl Drop for Cleared {
    fn drop(&mut self) {
        clear_ipvs();
    }
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

// ------------------------------------------------------------- tests

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn ipvs_family_resolves_and_reports_version() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn every_scheduler_method_family_and_fwmark_matches_ipvsadm() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn reload_changes_weights_and_deletes_only_the_difference() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn existing_services_are_adopted_and_foreign_ones_left_alone() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn kernel_errors_name_the_service_and_the_field() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn timeouts_round_trip_and_match_ipvsadm() -> Result<()> {
    let _cleared = Cleared;
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

#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn lbd_forwards_nat_traffic_follows_health_and_reload() -> Result<()> {
    let _cleared = Cleared;
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
#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn lbd_auto_falls_back_to_ipvs_saying_why() -> Result<()> {
    let _cleared = Cleared;
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
