//! DR over IPv6, TUN and NAT over both families, and a restart of lbd
//! under load, end to end in namespaces with real HTTP. Needs root.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use lb_tests::{bpffs::Bpffs, lab::DrLab, nat_lab::NatLab};

fn tally(mut get: impl FnMut() -> anyhow::Result<String>, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let body = get().unwrap_or_else(|e| panic!("request {i}: {e:#}"));
        *seen.entry(body).or_default() += 1;
    }
    seen
}

fn even(n: usize) -> BTreeMap<String, usize> {
    [("b1".to_string(), n / 2), ("b2".to_string(), n / 2)].into()
}

fn service(vip: &str, kind: &str, backends: &[&str], port: u16) -> String {
    let rs: String = backends
        .iter()
        .map(|b| format!("    real_server {b} {port} {{\n        weight 1\n    }}\n"))
        .collect();
    format!("virtual_server {vip} 80 {{\n    lb_algo rr\n    lb_kind {kind}\n    protocol TCP\n{rs}}}\n")
}

#[test]
fn dr_over_ipv6_spreads_requests() {
    let mut lab = DrLab::new().expect("lab");
    let conf = service("fd77::100", "DR", &["fd77::b", "fd77::c"], 80);
    let path = lab.write_config("dr6.conf", &conf).unwrap();
    lab.start_lbd(&path, "native").expect("lbd ready");
    lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
        .unwrap();
    let seen = tally(|| lab.get("http://[fd77::100]/"), 10);
    assert_eq!(seen, even(10), "lbd log:\n{}", lab.lbd_log());
}

#[test]
fn tun_encapsulates_to_backends_over_both_families() {
    let mut lab = DrLab::new().expect("lab");
    lab.lb_forwarding().unwrap();
    lab.backends_decapsulate()
        .expect("tc_decap on the backends");
    let conf = service("10.77.0.100", "TUN", &["10.77.0.11", "10.77.0.12"], 80)
        + &service("fd77::100", "TUN", &["fd77::b", "fd77::c"], 80);
    let path = lab.write_config("tun.conf", &conf).unwrap();
    lab.start_lbd(&path, "native").expect("lbd ready");
    lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
        .unwrap();
    let seen = tally(|| lab.get("http://10.77.0.100/"), 10);
    assert_eq!(seen, even(10), "IPv4 TUN; lbd log:\n{}", lab.lbd_log());
    let seen = tally(|| lab.get("http://[fd77::100]/"), 10);
    assert_eq!(seen, even(10), "IPv6 TUN; lbd log:\n{}", lab.lbd_log());
}

#[test]
fn nat_rewrites_both_ways_over_both_families() {
    let mut lab = NatLab::new(2).expect("lab");
    let conf = service("10.78.1.100", "NAT", &["10.78.2.11", "10.78.2.12"], 8080)
        + &service("fd78:1::100", "NAT", &["fd78:2::11", "fd78:2::12"], 8080);
    let path = lab.dir.path().join("nat.conf");
    std::fs::write(&path, conf).unwrap();
    lab.start_lbd(&path, 2).expect("lbd ready");
    let seen = tally(|| lab.get("http://10.78.1.100/"), 10);
    assert_eq!(seen, even(10), "IPv4 NAT; lbd log:\n{}", lab.lbd_log());
    let seen = tally(|| lab.get("http://[fd78:1::100]/"), 10);
    assert_eq!(seen, even(10), "IPv6 NAT; lbd log:\n{}", lab.lbd_log());
}

#[test]
fn the_tc_tier_carries_dr_and_nat_without_xdp() {
    let mut lab = DrLab::new().expect("lab");
    let conf = service("10.77.0.100", "DR", &["10.77.0.11", "10.77.0.12"], 80)
        + &service("fd77::100", "DR", &["fd77::b", "fd77::c"], 80);
    let path = lab.write_config("tc.conf", &conf).unwrap();
    lab.start_lbd_with(&path, &["--dataplane", "tc"], 2)
        .expect("lbd ready");
    lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
        .unwrap();
    assert!(
        !lab.lb_xdp_attached().unwrap(),
        "--dataplane tc attached XDP"
    );
    assert!(lab.lbd_log().contains("TC attached"), "{}", lab.lbd_log());
    let seen = tally(|| lab.get("http://10.77.0.100/"), 10);
    assert_eq!(seen, even(10), "DR v4 over TC; lbd log:\n{}", lab.lbd_log());
    let seen = tally(|| lab.get("http://[fd77::100]/"), 10);
    assert_eq!(seen, even(10), "DR v6 over TC; lbd log:\n{}", lab.lbd_log());
    drop(lab);

    let mut lab = NatLab::new(2).expect("NAT lab");
    let conf = service("10.78.1.100", "NAT", &["10.78.2.11", "10.78.2.12"], 8080);
    let path = lab.dir.path().join("nat-tc.conf");
    std::fs::write(&path, conf).unwrap();
    lab.start_lbd_with(&path, &["--dataplane", "tc"], 2)
        .expect("lbd ready");
    let seen = tally(|| lab.get("http://10.78.1.100/"), 10);
    assert_eq!(seen, even(10), "NAT over TC; lbd log:\n{}", lab.lbd_log());
}

/// Restarts lbd (stop with --on-exit keep, start again) under a steady
/// request loop at `tier` (`xdp` or `tc`); no request may fail.
fn restart_under_load(tier: &str) {
    let mut lab = DrLab::new().expect("lab");
    let pins = Bpffs::at(lab.dir.path().join("bpf"));
    let pin = pins.path().join("lb").display().to_string();
    let config = lb_tests::repo_root().join("examples/keepalived-dr.conf");
    let args = [
        "--dataplane",
        tier,
        "--xdp-mode",
        "native",
        "--pin-path",
        &pin,
        "--on-exit",
        "keep",
    ];
    lab.start_lbd_with(&config, &args, 2).expect("first lbd");

    // A steady request loop from the client, bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let client = lab.client.ns.name.clone();
    let loop_stop = stop.clone();
    let load = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !loop_stop.load(Ordering::Relaxed) && Instant::now() < deadline && ok < 5000 {
            let out = Command::new("ip")
                .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "3"])
                .arg("http://10.77.0.100/")
                .output()
                .unwrap();
            let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && (body == "b1" || body == "b2") {
                ok += 1;
            } else {
                failed.push(String::from_utf8_lossy(&out.stderr).to_string());
            }
        }
        (ok, failed)
    });
    std::thread::sleep(Duration::from_millis(700));
    // Stop: the program stays attached and keeps forwarding from the pins.
    let status = lab.stop_lbd().unwrap();
    assert!(status.success(), "{}", lab.lbd_log());
    if tier == "xdp" {
        assert!(
            lab.lb_xdp_attached().unwrap(),
            "--on-exit keep detached XDP"
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    // A new lbd takes the pinned maps and link over.
    lab.start_lbd_with(&config, &args, 2).expect("second lbd");
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    let log = lab.lbd_log();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok >= 20, "only {ok} requests made");
    assert!(log.contains("adopted the pinned data plane"), "{log}");
    let took_over = if tier == "tc" {
        "took over the TC link"
    } else {
        "took over the XDP link"
    };
    assert!(log.contains(took_over), "{log}");
    // This time detach: nothing is left attached.
    let _ = lab.stop_lbd();
}

#[test]
fn restarting_lbd_under_load_loses_no_request() {
    restart_under_load("xdp");
}

#[test]
fn restarting_lbd_at_tc_under_load_loses_no_request() {
    restart_under_load("tc");
}

const ALGOS: [&str; 6] = ["rr", "wrr", "lc", "wlc", "sh", "mh"];

/// One virtual server per scheduler, on ports 81..86 of `vip`.
fn every_scheduler(vip: &str, kind: &str, backends: &[&str], rport: Option<u16>) -> String {
    ALGOS
        .iter()
        .enumerate()
        .map(|(i, algo)| {
            let vport = 81 + i as u16;
            let rs: String = backends
                .iter()
                .map(|b| format!("    real_server {b} {} {{\n    }}\n", rport.unwrap_or(vport)))
                .collect();
            format!(
                "virtual_server {vip} {vport} {{\n    lb_algo {algo}\n    lb_kind {kind}\n    protocol TCP\n{rs}}}\n"
            )
        })
        .collect()
}

/// Six requests to each scheduler's service: all answered; rr, wrr, lc and
/// wlc spread them over both backends, sh and mh keep this one client on
/// one backend.
fn check_every_scheduler(what: &str, get: impl Fn(&str) -> anyhow::Result<String>, host: &str) {
    for (i, algo) in ALGOS.iter().enumerate() {
        let url = format!("http://{host}:{}/", 81 + i);
        let seen = tally(|| get(&url), 6);
        let n: usize = seen.values().sum();
        assert_eq!(n, 6, "{what} {algo}: {seen:?}");
        if matches!(*algo, "sh" | "mh") {
            assert_eq!(
                seen.len(),
                1,
                "{what} {algo}: one client, one backend: {seen:?}"
            );
        } else {
            assert_eq!(seen, even(6), "{what} {algo}");
        }
    }
}

#[test]
fn every_scheduler_end_to_end_over_dr_and_tun_and_both_families() {
    for kind in ["DR", "TUN"] {
        let mut lab = DrLab::new().expect("lab");
        for i in 0..2 {
            for port in 81..87 {
                lab.start_backend_server(i, port).unwrap();
            }
        }
        if kind == "TUN" {
            lab.lb_forwarding().unwrap();
            lab.backends_decapsulate().unwrap();
        }
        let conf = every_scheduler("10.77.0.100", kind, &["10.77.0.11", "10.77.0.12"], None)
            + &every_scheduler("fd77::100", kind, &["fd77::b", "fd77::c"], None);
        let path = lab.write_config("algos.conf", &conf).unwrap();
        lab.start_lbd(&path, "native").expect("lbd ready");
        lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
            .unwrap();
        check_every_scheduler(&format!("{kind} v4"), |u| lab.get(u), "10.77.0.100");
        check_every_scheduler(&format!("{kind} v6"), |u| lab.get(u), "[fd77::100]");
    }
}

#[test]
fn every_scheduler_end_to_end_over_nat_and_both_families() {
    let mut lab = NatLab::new(2).expect("lab");
    let conf = every_scheduler(
        "10.78.1.100",
        "NAT",
        &["10.78.2.11", "10.78.2.12"],
        Some(8080),
    ) + &every_scheduler(
        "fd78:1::100",
        "NAT",
        &["fd78:2::11", "fd78:2::12"],
        Some(8080),
    );
    let path = lab.dir.path().join("algos.conf");
    std::fs::write(&path, conf).unwrap();
    lab.start_lbd(&path, 2).expect("lbd ready");
    check_every_scheduler("NAT v4", |u| lab.get(u), "10.78.1.100");
    check_every_scheduler("NAT v6", |u| lab.get(u), "[fd78:1::100]");
}
