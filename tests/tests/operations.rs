//! Operations end to end (needs root): lbctl against a live lbd over the
//! control socket and against the pinned maps of a stopped one, overrides
//! steering wrr, the Prometheus endpoint, and systemd notifications.

use std::os::unix::net::UnixDatagram;
use std::process::Output;
use std::time::{Duration, Instant};

use lb_tests::{
    bpffs::Bpffs,
    lab::{counts, DrLab, VIP},
    metrics::value,
};
use serde_json::Value;

const WRR: &str = "virtual_server 10.77.0.100 80 {\n lb_algo wrr\n lb_kind DR\n protocol TCP\n\
                   real_server 10.77.0.11 80 {\n weight 1\n }\n\
                   real_server 10.77.0.12 80 {\n weight 1\n }\n}\n";

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `lbctl ARGS --json`, which must succeed; its document.
fn json(lab: &DrLab, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = lab.lbctl(&all).expect("lbctl");
    assert_eq!(out.status.code(), Some(0), "lbctl {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lbctl {args:?}: not JSON ({e}): {}", text(&out)))
}

/// lbctl run as nobody:nogroup (uid/gid 65534), no supplementary groups.
fn lbctl_as_nobody(lab: &DrLab, args: &[&str]) -> Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(lb_tests::bin("lbctl"))
        .arg("--control-socket")
        .arg(lab.control_socket())
        .args(args)
        .output()
        .expect("setpriv lbctl")
}

fn backend<'a>(doc: &'a Value, addr: &str) -> &'a Value {
    doc["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| format!("{}:{}", b["address"].as_str().unwrap(), b["port"]) == addr)
        .unwrap_or_else(|| panic!("no backend {addr} in {doc:#}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Polls `lbctl backends` until the data plane has `weight` for `addr`.
fn wait_weight(lab: &DrLab, addr: &str, weight: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let doc = json(lab, &["backends"]);
        if u(&backend(&doc, addr)["weight"]) == weight {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never got weight {weight}: {doc:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ops_lbctl_reads_a_live_lbd_and_set_weight_drain_reload_steer_wrr() {
    let mut lab = DrLab::new().expect("lab");
    let path = lab.write_config("wrr.conf", WRR).unwrap();
    lab.start_lbd(&path, "native").expect("lbd ready");
    let vip = format!("{VIP}:80");

    let st = json(&lab, &["status"]);
    assert_eq!(st["source"], "daemon");
    assert_eq!(st["dataplane"], "xdp");
    assert_eq!(st["interfaces"][0]["name"], "eth0");
    assert_eq!(st["interfaces"][0]["mode"], "native");
    assert_eq!((u(&st["services"]), u(&st["backends"])), (1, 2));
    assert_eq!(st["config_file"], path.display().to_string());
    assert!(u(&st["uptime_secs"]) < 60);

    assert_eq!(lab.spread(4), counts(&[("b1", 2), ("b2", 2)]));
    let svc = json(&lab, &["services"]);
    let s = &svc["services"][0];
    assert_eq!(s["service"], format!("{vip}/tcp"));
    assert_eq!(
        (s["algo"].as_str(), s["mode"].as_str()),
        (Some("wrr"), Some("DR"))
    );
    assert_eq!(u(&s["new_conns"]), 4);
    assert!(u(&s["packets"]) >= 4 * 4, "{s}");
    let b = json(&lab, &["backends", &vip]);
    let b1 = backend(&b, "10.77.0.11:80");
    assert_eq!((u(&b1["weight"]), u(&b1["configured_weight"])), (1, 1));
    assert_eq!(u(&b1["new_conns"]), 2);
    assert_eq!(b1["mac"], "02:77:00:00:00:0b");
    assert!(b1["override"].is_null());

    // Counters move with traffic.
    let before = json(&lab, &["stats"]);
    lab.spread(2);
    let after = json(&lab, &["stats"]);
    let tx = |d: &Value| {
        u(&d["global"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "xdp_tx")
            .expect("xdp_tx")["packets"])
    };
    assert!(tx(&after) > tx(&before), "{before}\n{after}");
    assert_eq!(u(&after["services"][0]["new_conns"]), 6);
    let conns = json(&lab, &["conns", "--limit", "3"]);
    let list = conns["connections"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{conns:#}");
    assert_eq!(conns["truncated"], true);
    assert!(list[0]["client"]
        .as_str()
        .unwrap()
        .starts_with("10.77.0.10:"));
    assert_eq!(list[0]["vip"], vip);

    // set-weight 3: wrr sends 3 of every 4 new connections to b1.
    let out = lab
        .lbctl(&["set-weight", &vip, "10.77.0.11:80", "3"])
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("until the next reload"));
    wait_weight(&lab, "10.77.0.11:80", 3);
    assert_eq!(lab.spread(8), counts(&[("b1", 6), ("b2", 2)]));

    // drain b2: nothing new goes there.
    let out = lab.lbctl(&["drain", &vip, "10.77.0.12:80"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_weight(&lab, "10.77.0.12:80", 0);
    assert_eq!(lab.spread(4), counts(&[("b1", 4)]));
    let b = json(&lab, &["backends"]);
    assert_eq!(backend(&b, "10.77.0.12:80")["override"]["action"], "drain");
    assert_eq!(backend(&b, "10.77.0.11:80")["override"]["weight"], 3);
    assert_eq!(u(&json(&lab, &["status"])["overrides"]), 2);

    // enable b2: back to 3:1.
    let out = lab.lbctl(&["enable", &vip, "10.77.0.12:80"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_weight(&lab, "10.77.0.12:80", 1);
    assert_eq!(lab.spread(8), counts(&[("b1", 6), ("b2", 2)]));

    // reload drops the remaining override: 1:1 again.
    let r = json(&lab, &["reload"]);
    assert_eq!(u(&r["overrides_cleared"]), 1, "{r}");
    wait_weight(&lab, "10.77.0.11:80", 1);
    assert_eq!(lab.spread(4), counts(&[("b1", 2), ("b2", 2)]));

    // Errors scripts can tell apart.
    let out = lab
        .lbctl(&["set-weight", &vip, "10.77.0.99:80", "2"])
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = lab
        .lbctl(&["drain", "10.77.0.100:81", "10.77.0.11:80"])
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = lab.lbctl(&["set-weight", &vip, "ten", "2"]).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'ten'"),
        "{}",
        text(&out)
    );

    // Only root and the control group (root here) may use the socket.
    let out = lbctl_as_nobody(&lab, &["status"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));

    // VRRP is not wired yet: an empty table.
    assert_eq!(json(&lab, &["vrrp"])["instances"], Value::Array(vec![]));
    let out = lab.lbctl(&["vrrp"]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no VRRP instances"));

    // Human tables (shown with --nocapture).
    for verb in ["status", "services", "stats", "conns"] {
        let out = lab.lbctl(&[verb]).unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        println!("$ lbctl {verb}\n{}", String::from_utf8_lossy(&out.stdout));
    }
    let out = lab.lbctl(&["backends"]).unwrap();
    println!("$ lbctl backends\n{}", String::from_utf8_lossy(&out.stdout));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.starts_with("SERVICE") && t.contains("10.77.0.12:80"),
        "{t}"
    );

    // Every action was logged with who asked.
    let log = lab.lbd_log();
    assert!(
        log.matches("control: action requested").count() >= 4,
        "{log}"
    );
    assert!(log.contains("peer_uid=0"), "{log}");
}

#[test]
fn ops_lbctl_reads_the_pinned_maps_of_a_stopped_lbd() {
    let mut lab = DrLab::new().expect("lab");
    let bpffs = Bpffs::new();
    let pins = bpffs.path().join("lb");
    let path = lab.write_config("wrr.conf", WRR).unwrap();
    let extra = [
        "--pin-path".to_string(),
        pins.display().to_string(),
        "--on-exit".into(),
        "keep".into(),
    ];
    lab.start_lbd_full(&path, "native", 2, &extra, &[])
        .expect("lbd ready");
    assert_eq!(lab.spread(4), counts(&[("b1", 2), ("b2", 2)]));
    let live = json(&lab, &["backends"]);
    assert!(lab.stop_lbd().unwrap().success());

    // The data plane keeps forwarding; lbctl reads its maps and says so.
    assert_eq!(lab.spread(2), counts(&[("b1", 1), ("b2", 1)]));
    let pin = pins.display().to_string();
    let read = |args: &[&str]| {
        let mut all = vec!["--pin-path", pin.as_str()];
        all.extend_from_slice(args);
        let out = lab.lbctl(&all).unwrap();
        assert_eq!(out.status.code(), Some(0), "lbctl {args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("lbd is not running"),
            "{}",
            text(&out)
        );
        out
    };
    let doc = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_slice(&read(&all).stdout).unwrap()
    };
    let svc = doc(&["services"]);
    assert_eq!(svc["source"], "pinned-maps");
    assert_eq!(u(&svc["services"][0]["new_conns"]), 6);
    assert_eq!(svc["services"][0]["algo"], "wrr");
    let b = doc(&["backends", &format!("{VIP}:80/tcp")]);
    let b1 = backend(&b, "10.77.0.11:80");
    assert_eq!(u(&b1["new_conns"]), 3);
    assert_eq!(b1["mac"], "02:77:00:00:00:0b");
    assert!(b1["configured_weight"].is_null() && b1["health"].is_null());
    assert!(
        u(&b1["packets"]) > u(&backend(&live, "10.77.0.11:80")["packets"]),
        "counters moved after lbd stopped"
    );
    let st = doc(&["status"]);
    assert_eq!(st["source"], "pinned-maps");
    assert_eq!(st["interfaces"][0]["name"], "eth0");
    assert_eq!(u(&st["backends"]), 2);
    let before = doc(&["stats"]);
    lab.spread(2);
    let after = doc(&["stats"]);
    assert_eq!(
        u(&after["services"][0]["new_conns"]),
        8,
        "{before}\n{after}"
    );
    let conns = doc(&["conns"]);
    assert!(
        conns["connections"].as_array().unwrap().len() >= 8,
        "{conns:#}"
    );
    let t = String::from_utf8_lossy(&read(&["services"]).stdout).to_string();
    assert!(t.contains("10.77.0.100:80/tcp"), "{t}");

    // Actions need lbd.
    let out = lab
        .lbctl(&[
            "--pin-path",
            &pin,
            "drain",
            &format!("{VIP}:80"),
            "10.77.0.11:80",
        ])
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // Nothing pinned there either: 3 as well.
    let out = lab
        .lbctl(&["--pin-path", "/nonexistent", "services"])
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn ops_metrics_scrape_moves_with_traffic() {
    let mut lab = DrLab::new().expect("lab");
    // b1 with a TCP_CHECK: health shows in lbctl and the metrics.
    let config = WRR
        .replace(
            " weight 1\n }\nreal_server 10.77.0.12",
            " weight 1\n TCP_CHECK {\n connect_timeout 1\n }\n }\nreal_server 10.77.0.12",
        )
        .replace("protocol TCP\n", "protocol TCP\n delay_loop 1\n warmup 0\n");
    assert!(config.contains("TCP_CHECK"), "{config}");
    let path = lab.write_config("wrr.conf", &config).unwrap();
    let extra = [
        "--metrics-addr".to_string(),
        "127.0.0.1:9477".into(),
        "--control-group".into(),
        "nogroup".into(),
    ];
    lab.start_lbd_full(&path, "native", 2, &extra, &[])
        .expect("lbd ready");
    let scrape = || -> String {
        let out = lab
            .lb
            .ns
            .command("curl")
            .args(["-sS", "--max-time", "5", "http://127.0.0.1:9477/metrics"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let svc = "{vip=\"10.77.0.100\",port=\"80\",proto=\"tcp\"}";
    let b1 = "{vip=\"10.77.0.100\",port=\"80\",proto=\"tcp\",backend=\"10.77.0.11:80\"}";
    // The control group may use the socket (SO_PEERCRED: its gid).
    let out = lbctl_as_nobody(&lab, &["services"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let meta = std::fs::metadata(lab.control_socket()).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777),
        (0, 65534, 0o660)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = loop {
        let b = json(&lab, &["backends"]);
        let h = backend(&b, "10.77.0.11:80")["health"].clone();
        assert!(
            backend(&b, "10.77.0.12:80")["health"].is_null(),
            "no checker, no health"
        );
        if h["last_result"] == "success" {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no check result within 5 s: {b:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (health["state"].as_str(), health["status"].as_str()),
        (Some("up"), Some("in_pool"))
    );
    assert!(u(&health["last_check_unix_ms"]) > 0);
    assert_eq!(health["checkers"][0]["kind"], "TCP_CHECK");
    let first = scrape();
    assert_eq!(value(&first, &format!("lb_backend_health_up{b1}")), 1.0);
    assert!(first.contains("lb_build_info{version=\""), "{first}");
    assert!(first.contains("# TYPE lb_vrrp_state gauge"), "{first}");
    assert_eq!(value(&first, &format!("lb_backend_weight{b1}")), 1.0);
    assert_eq!(value(&first, &format!("lb_backend_ready{b1}")), 1.0);
    let p0 = value(&first, &format!("lb_service_packets_total{svc}"));
    lab.spread(4);
    let second = scrape();
    assert_eq!(
        value(&second, &format!("lb_service_connections_total{svc}")),
        4.0
    );
    assert_eq!(
        value(&second, &format!("lb_backend_connections_total{b1}")),
        2.0
    );
    assert!(value(&second, &format!("lb_service_packets_total{svc}")) >= p0 + 16.0);
    assert!(value(&second, &format!("lb_service_bytes_total{svc}")) > 0.0);
    assert!(value(&second, "lb_dataplane_packets_total{event=\"xdp_tx\"}") >= 16.0);
    assert!(second.contains("lb_dataplane_packets_total{event=\"conn_insert_failed\"} 0"));
    assert!(second.ends_with("# EOF\n"));
    dashboard_queries_only_scraped_metrics(&second);
}

/// Every metric the Grafana dashboard (dist/grafana/lb.json, shipped in
/// the package) queries is one lbd's /metrics declares, so the dashboard
/// cannot drift from the code.
fn dashboard_queries_only_scraped_metrics(scrape: &str) {
    // Series names from the `# TYPE` lines (a family with no series yet,
    // such as VRRP's without an instance, is declared all the same).
    let mut names = std::collections::BTreeSet::new();
    for l in scrape.lines() {
        let mut w = l.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
            (w.next(), w.next(), w.next(), w.next())
        {
            names.insert(match kind {
                "counter" => format!("{family}_total"),
                "info" => format!("{family}_info"),
                _ => family.to_string(),
            });
        }
    }
    let path = lb_tests::repo_root().join("dist/grafana/lb.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queried = std::collections::BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    for e in &exprs {
        // Metric names: `lb_` words (label names and values never start so).
        for (i, _) in e.match_indices("lb_") {
            if i > 0 && (e.as_bytes()[i - 1].is_ascii_alphanumeric() || e.as_bytes()[i - 1] == b'_')
            {
                continue;
            }
            let word: String = e[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            queried.insert(word);
        }
    }
    assert!(queried.len() >= 20, "{queried:?}");
    let missing: Vec<_> = queried.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "{} queries metrics lbd does not export: {missing:?}\nexported: {names:?}",
        path.display()
    );
}

/// A notification as received: its text, the lbd log then, and when.
type Note = (String, String, Instant);

#[test]
fn ops_sd_notify_ready_after_services_watchdog_and_reload() {
    let mut lab = DrLab::new().expect("lab");
    let path = lab.write_config("wrr.conf", WRR).unwrap();
    let sock_path = lab.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let env = [
        ("NOTIFY_SOCKET", sock_path.display().to_string()),
        // WATCHDOG=1 every 150 ms.
        ("WATCHDOG_USEC", "300000".to_string()),
    ];
    lab.start_lbd_full(&path, "native", 2, &[], &env)
        .expect("lbd ready");
    // Messages as they come, with the lbd log at that moment.
    let mut messages: Vec<Note> = Vec::new();
    let mut collect = |lab: &DrLab, until: &dyn Fn(&[Note]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while !until(&messages) {
            assert!(
                Instant::now() < deadline,
                "notifications so far: {messages:?}"
            );
            if let Ok(n) = sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).to_string();
                messages.push((m, lab.lbd_log(), Instant::now()));
            }
        }
        messages.clone()
    };
    let has =
        |ms: &[Note], what: &str| ms.iter().filter(|m| m.0.lines().any(|l| l == what)).count();
    let got = collect(&lab, &|m| {
        has(m, "READY=1") >= 1 && has(m, "WATCHDOG=1") >= 4
    });
    let ready = got.iter().find(|m| m.0.contains("READY=1")).unwrap();
    assert!(
        ready.1.contains("service applied"),
        "READY=1 before services were applied:\n{}",
        ready.1
    );
    let pings: Vec<Instant> = got
        .iter()
        .filter(|m| m.0.contains("WATCHDOG=1"))
        .map(|m| m.2)
        .collect();
    let span = *pings.last().unwrap() - pings[0];
    assert!(span < Duration::from_millis(1200), "4 pings over {span:?}");

    lab.reload_lbd().unwrap();
    let got = collect(&lab, &|m| {
        m.iter()
            .position(|x| x.0.contains("RELOADING=1"))
            .is_some_and(|i| has(&m[i..], "READY=1") >= 1)
    });
    let reloading = got.iter().find(|m| m.0.contains("RELOADING=1")).unwrap();
    assert!(reloading.0.contains("MONOTONIC_USEC="), "{}", reloading.0);

    lab.signal_lbd(libc::SIGTERM).unwrap();
    collect(&lab, &|m| has(m, "STOPPING=1") >= 1);
}
