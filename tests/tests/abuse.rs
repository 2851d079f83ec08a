//! Reliability under abuse (needs root): idle and slow clients of lbd's
//! listeners, from an unprivileged user, against an lbd whose descriptor
//! limit is the default 1,024 (hard), must not take the health checks'
//! descriptors nor lbd's memory.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lb_tests::lab::DrLab;
use lb_tests::metrics::value;
use serde_json::Value;

const METRICS: &str = "127.0.0.1:9477";

/// Both backends checked every second: with either one marked down by a
/// local error the spread shows it, with both the VIP refuses. `plain`
/// more services without checks make the metrics page larger.
fn checked_config(plain: usize) -> String {
    let mut text = String::new();
    for i in 0..plain {
        text.push_str(&format!(
            "virtual_server 10.77.0.100 {} {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
             real_server 10.77.0.11 80 {{\n }}\n real_server 10.77.0.12 80 {{\n }}\n}}\n",
            1000 + i
        ));
    }
    text.push_str(
        "virtual_server 10.77.0.100 80 {\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
         real_server 10.77.0.11 80 {\n TCP_CHECK {\n connect_timeout 1\n connect_port 80\n }\n }\n\
         real_server 10.77.0.12 80 {\n TCP_CHECK {\n connect_timeout 1\n connect_port 80\n }\n }\n}\n",
    );
    text
}

/// lbd with a hard (and soft) limit of 1,024 descriptors, metrics on, and
/// nobody's group allowed on the control socket.
fn start(lab: &mut DrLab, config: &str) {
    let path = lab.write_config("abuse.conf", config).unwrap();
    let extra = [
        "--metrics-addr".to_string(),
        METRICS.into(),
        "--control-group".into(),
        "nogroup".into(),
    ];
    lab.start_lbd_wrapped(&path, 2, &["prlimit", "--nofile=1024:1024", "--"], &extra)
        .expect("lbd ready");
}

/// `lb-test-hold ARGS` as nobody in the load balancer's namespace, once it
/// has made its connections; their number.
fn hold_as_nobody(lab: &DrLab, args: &[&str]) -> (Child, usize) {
    let mut child = lab
        .lb
        .ns
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(lb_tests::bin("lb-test-hold"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("lb-test-hold");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let open = line
        .strip_prefix("open ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("lb-test-hold said {line:?}"));
    (child, open)
}

fn scrape(lab: &DrLab) -> String {
    let out = lab
        .lb
        .ns
        .command("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://{METRICS}/metrics"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Polls until `f` holds (at most `secs`).
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn abuse_idle_listener_floods_from_nobody_leave_checks_passing() {
    let mut lab = DrLab::new().expect("lab");
    start(&mut lab, &checked_config(0));
    let sock = lab.control_socket().display().to_string();
    // 1,500 idle connections to each listener: past 1,024 descriptors
    // without the caps.
    let (mut control, control_open) = hold_as_nobody(&lab, &["unix", &sock, "1500", "8"]);
    let (mut metrics, metrics_open) = hold_as_nobody(&lab, &["tcp", METRICS, "1500", "8"]);
    println!("connections made: control {control_open}, metrics {metrics_open}");
    // While they are held, checks every second: both backends stay in.
    let mut spreads = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        spreads.push(lab.spread(4));
    }
    let _ = control.wait();
    let _ = metrics.wait();
    let log = lab.lbd_log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("backend down"), "{log}");
    for s in &spreads {
        assert_eq!(s.len(), 2, "both backends answer: {spreads:?}\n{log}");
    }
    // The refusals are counted; the slots come back once the clients go.
    wait_for(15, "listener slots released", || {
        let m = scrape(&lab);
        value(&m, "lb_listener_connections{listener=\"control\"}") == 0.0
            && value(&m, "lb_listener_connections{listener=\"metrics\"}") <= 1.0
    });
    let m = scrape(&lab);
    let refused_c = value(&m, "lb_listener_refused_total{listener=\"control\"}");
    let refused_m = value(&m, "lb_listener_refused_total{listener=\"metrics\"}");
    println!("refused: control {refused_c}, metrics {refused_m}");
    assert!(refused_c >= 1000.0 && refused_m >= 1000.0, "{m}");
    let out = lab.lbctl(&["backends", "--json"]).unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("lbctl backends");
    for b in doc["backends"].as_array().unwrap() {
        assert_eq!(b["health"]["state"], "up", "{doc:#}");
    }
}

#[test]
fn abuse_slow_metrics_readers_leave_memory_bounded() {
    let mut lab = DrLab::new().expect("lab");
    // 1,000 services, 2,000 backends: a page of a few MiB, more than the
    // kernel's socket buffers take.
    start(&mut lab, &checked_config(1000));
    let pid = lab.lbd_pid().unwrap();
    let page = scrape(&lab).len();
    let before = rss_kib(pid);
    let (mut slow, open) = hold_as_nobody(&lab, &["tcp", METRICS, "300", "25", "get"]);
    let mut peak = before;
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(20) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Cut off by the write timeout, not by the clients leaving.
    let m = scrape(&lab);
    let open_now = value(&m, "lb_listener_connections{listener=\"metrics\"}");
    let _ = slow.kill();
    let _ = slow.wait();
    let after = rss_kib(pid);
    println!(
        "page {page} B, {open} slow readers: RSS {before} KiB before, {peak} KiB peak, {after} KiB after; {open_now} metrics connections open at 20 s"
    );
    assert_eq!(open_now, 1.0, "only this scrape is open: {m}");
    // At most 16 pages held at once (plus rendering), never 300.
    let bound = before + 16 * 3 * page as u64 / 1024 + 32 * 1024;
    assert!(peak < bound, "peak {peak} KiB, bound {bound} KiB");
}

/// A valid file followed by blocks nested 5,000 deep.
fn deep_config() -> String {
    let deep = 5000;
    format!(
        "{}{}{}",
        checked_config(0),
        "vrrp_script chk {\n".repeat(deep),
        "}\n".repeat(deep)
    )
}

#[test]
fn abuse_deep_nesting_is_a_located_error_at_lbd_t_reload_and_sighup() {
    let dir = std::env::temp_dir().join(format!("lb-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deep = dir.join("deep.conf");
    std::fs::write(&deep, deep_config()).unwrap();
    let out = std::process::Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(&deep)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The 33rd `{`: after the 18 lines of the valid part.
    assert!(
        err.contains(&format!("{}:51:", deep.display())) && err.contains("nested more than 32"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let mut lab = DrLab::new().expect("lab");
    start(&mut lab, &checked_config(0));
    let path = lab.write_config("abuse.conf", &deep_config()).unwrap();
    let out = lab.lbctl(&["reload"]).unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("nested more than 32"), "{said}");
    assert!(said.contains(&path.display().to_string()), "{said}");
    lab.signal_lbd(libc::SIGHUP).unwrap();
    // The main loop's own line (the control socket's refusal logs another).
    lab.wait_lbd_log(
        "reload refused: the running configuration is kept",
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.lbd_log()));
    // Still running, still serving the running configuration.
    let out = lab.lbctl(&["status", "--json"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", lab.lbd_log());
    assert_eq!(lab.spread(2).len(), 2);
}

#[test]
fn abuse_lbctl_output_into_a_closed_pipe_does_not_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = std::env::temp_dir().join(format!("lb-abuse-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.conf");
    // More output than a pipe holds: lbctl is still writing when it closes.
    std::fs::write(&path, checked_config(1000)).unwrap();
    let mut child = std::process::Command::new(lb_tests::bin("lbctl"))
        .args(["config", "dump"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
}
