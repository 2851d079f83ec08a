//! `lbd -t` and `lbctl config check`: exit codes and `PATH:LINE:COL` errors.
//! No root needed.

use std::process::Command;

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn lbd_config_test_accepts_the_example() {
    lbd_accepts(&lb_tests::repo_root().join("examples/keepalived-dr.conf"));
}

/// `lbd -t -f FILE` exits 0.
fn lbd_accepts(file: &std::path::Path) {
    let out = Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lbd_config_test_reports_every_error_with_its_location() {
    let path = write(
        "bad.conf",
        "virtual_server 10.0.0.256 80 {\n    lb_algo foo\n    lb_kind DR\n    real_server 10.0.0.1 80 {\n        weight 1\n    }\n}\n",
    );
    let out = Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(err.contains(&format!("{p}:1:16: error:")), "{err}");
    assert!(err.contains(&format!("{p}:2:13: error:")), "{err}");
    assert!(err.contains("foo"), "{err}");
}

#[test]
fn lbctl_config_check_is_the_same_check() {
    let path = write(
        "unbalanced.conf",
        "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n",
    );
    let out = Command::new(lb_tests::bin("lbctl"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{}:1:", path.display())), "{text}");
    assert!(text.contains("error:"), "{text}");
}

/// A tier that cannot work is a clear error at start-up (this host's
/// kernel has no IPVS; TC without an interface cannot attach).
#[test]
fn lbd_refuses_a_data_plane_tier_that_cannot_work() {
    let path = write(
        "tier.conf",
        "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n}\n",
    );
    let has_ipvs = std::path::Path::new("/proc/net/ip_vs").exists();
    for (tier, needle) in [
        (
            "tc",
            "no interface given: the XDP and TC tiers need --interface",
        ),
        ("ipvs", "data plane ipvs: the kernel has no IPVS"),
    ] {
        if tier == "ipvs" && has_ipvs {
            continue;
        }
        let out = Command::new(lb_tests::bin("lbd"))
            .args(["--dataplane", tier, "-f"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(needle), "{tier}: {err}");
    }
}

#[test]
fn dist_example_config_is_valid_and_the_unit_notifies_restarts_and_keeps_forwarding() {
    let root = lb_tests::repo_root();
    let out = Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(root.join("dist/lb/keepalived.conf"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = std::fs::read_to_string(root.join("dist/systemd/lbd.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "--on-exit keep",
        "ProtectSystem=strict",
        "ReadWritePaths=/sys/fs/bpf /run/lb",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(line), "lbd.service lacks {line}");
    }
}

#[test]
fn lbctl_without_lbd_or_pins_exits_3_and_says_why() {
    let out = Command::new(lb_tests::bin("lbctl"))
        .args([
            "--control-socket",
            "/nonexistent/lbd.sock",
            "--pin-path",
            "/nonexistent",
            "services",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not running") && err.contains("/nonexistent"),
        "{err}"
    );
}

#[test]
fn lbctl_config_dump_prints_the_normalised_model_with_defaults() {
    let path = write(
        "dump.conf",
        "virtual_server 10.0.0.1 80 {\n    lb_kind DR\n    real_server 10.0.0.11 80 {\n    }\n}\n",
    );
    let out = Command::new(lb_tests::bin("lbctl"))
        .args(["config", "dump"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vs = &v["virtual_servers"][0];
    // keepalived's defaults, filled in.
    assert_eq!(vs["lb_algo"], "wlc");
    assert_eq!(vs["delay_loop"], "60s");
    assert_eq!(vs["real_servers"][0]["weight"], 1);
    let bad = write(
        "dump-bad.conf",
        "virtual_server 10.0.0.1 80 {\n    lb_algo foo\n}\n",
    );
    let out = Command::new(lb_tests::bin("lbctl"))
        .args(["config", "dump"])
        .arg(&bad)
        .output()
        .unwrap();
    // What a start runs: keepalived's fallback (wlc), the error printed.
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:13: error:"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["virtual_servers"][0]["lb_algo"], "wlc");
    // What keepalived does not start with, lbd does not either.
    let fatal = write(
        "dump-fatal.conf",
        "vrrp_instance VI_1 {\n    interface eth0\n}\n",
    );
    let out = Command::new(lb_tests::bin("lbctl"))
        .args(["config", "dump"])
        .arg(&fatal)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a `virtual_router_id`"));
}

#[test]
fn readme_example_is_the_file_in_examples_and_lbd_accepts_it() {
    let root = lb_tests::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let file = root.join("examples/keepalived-readme.conf");
    let text = std::fs::read_to_string(&file).unwrap();
    let body: String = text
        .lines()
        .skip_while(|l| l.starts_with('!') || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&body),
        "README.md does not show examples/keepalived-readme.conf as it is"
    );
    lbd_accepts(&file);
}

/// `count` virtual servers of 4 real servers each.
fn many_virtual_servers(count: u32, global: &str) -> String {
    let mut text = format!("global_defs {{\n{global}}}\n");
    for i in 0..count {
        let (a, b) = (i >> 8, i & 0xff);
        text.push_str(&format!(
            "virtual_server 10.{a}.{b}.1 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n"
        ));
        for r in 1..=4 {
            text.push_str(&format!(
                " real_server 10.{a}.{b}.{} 80 {{\n weight 1\n }}\n",
                r + 1
            ));
        }
        text.push_str("}\n");
    }
    text
}

#[test]
fn lbd_config_test_refuses_what_does_not_fit_the_maps_and_names_where() {
    // 5,000 virtual servers: the BPF maps hold 1,024.
    let path = write("too-many.conf", &many_virtual_servers(5000, ""));
    let out = Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The 1,025th virtual server, where it starts (17 lines per server,
    // after the 2 lines of global_defs).
    let line = 3 + 1024 * 17;
    assert!(
        err.contains(&format!("{}:{line}:1: error:", path.display())),
        "{err}"
    );
    assert!(err.contains("at most 1024 virtual servers"), "{err}");
    assert!(err.contains("this configuration has 5000"), "{err}");

    // The IPVS tier has no such limit: by flag or by lb_dataplane.
    let out = Command::new(lb_tests::bin("lbd"))
        .args(["--dataplane", "ipvs", "-t", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lbd_accepts(&write(
        "too-many-ipvs.conf",
        &many_virtual_servers(5000, " lb_dataplane ipvs\n"),
    ));
    // What fits passes.
    lbd_accepts(&write("fits.conf", &many_virtual_servers(1024, "")));
}

#[test]
fn lbd_config_test_reports_scripts_that_will_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("lb-cli-scripts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // World-writable without the sticky bit: anyone could swap the script.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display();
    let path = write(
        "scripts.conf",
        &format!(
            "global_defs {{\n enable_script_security\n script_user nobody\n}}\n\
             vrrp_script as_root {{\n script \"{s}\"\n user root\n}}\n\
             vrrp_script as_nobody {{\n script \"{s}\"\n}}\n"
        ),
    );
    let out = Command::new(lb_tests::bin("lbd"))
        .arg("-t")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Reported, not fatal: keepalived runs the rest.
    assert_eq!(out.status.code(), Some(0), "{err}");
    let p = path.display();
    assert!(
        err.contains(&format!(
            "{p}:5:1: warning: vrrp_script `{s}` will not run: unsafe permissions"
        )),
        "{err}"
    );
    // As nobody the script gains nothing: it runs.
    assert!(!err.contains(&format!("{p}:9:")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A control socket whose "lbd" takes connections and never answers.
#[test]
fn lbctl_against_a_hung_lbd_exits_3_and_says_the_request_may_still_apply() {
    let dir = std::env::temp_dir().join(format!("lb-cli-hung-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let held = std::thread::spawn(move || {
        // Holds two connections open without a word, then ends.
        let a = listener.accept().unwrap();
        let b = listener.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop((a, b));
    });
    for args in [vec!["status"], vec!["drain", "10.0.0.1:80", "10.0.0.11:80"]] {
        let started = std::time::Instant::now();
        let out = Command::new(lb_tests::bin("lbctl"))
            .arg("--control-socket")
            .arg(&sock)
            .args(["--timeout", "1"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("did not answer"), "{err}");
        assert!(err.contains("may still be carried out"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    held.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// lbd refuses a peer by answering at once and closing, before it reads
/// the request: lbctl reads that answer (exit 4) even when its own write
/// fails on the closed connection.
#[test]
fn lbctl_hears_a_permission_denial_sent_before_its_request() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("lb-cli-denied-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("denied.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    const ROUNDS: usize = 10;
    let server = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(
                b"{\"version\":1,\"ok\":false,\"error\":{\"code\":\"permission_denied\",\"message\":\"permission denied: only root and the control group may use lbd's control socket\"}}\n",
            );
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    });
    for _ in 0..ROUNDS {
        let out = Command::new(lb_tests::bin("lbctl"))
            .arg("--control-socket")
            .arg(&sock)
            .args(["--timeout", "5", "reload"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains("permission denied"), "{err}");
    }
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
