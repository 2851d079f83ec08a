//! Health checks end to end: lbd in the DR lab, checking real servers in
//! namespaces and steering the client's traffic through the VIP. Needs root.
//!
//! Timings are keepalived's, made short: delay_loop 1, connect_timeout 1,
//! warmup 0.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lb_tests::lab::{counts, DrLab};

/// Waits (bounded) until the lbd log has `needle` `times` times; returns
/// how long that took.
fn wait_log(lab: &DrLab, needle: &str, times: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let log = lab.lbd_log();
        if log.matches(needle).count() >= times {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no {needle:?} (×{times}) in the lbd log within {limit:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls the traffic split until it is `want` (bounded).
fn wait_split(lab: &DrLab, n: usize, want: &BTreeMap<String, usize>, limit: Duration) {
    let start = Instant::now();
    loop {
        let got = lab.spread(n);
        if &got == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "split {got:?}, expected {want:?} within {limit:?}\nlbd log:\n{}",
            lab.lbd_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(lab: &DrLab, name: &str, text: &str) -> PathBuf {
    lab.write_config(name, text)
        .expect("write into the lab dir")
}

#[test]
fn health_http_get_takes_a_stopped_backend_out_keeps_it_out_on_reload_and_back() {
    let mut lab = DrLab::with_backends(3).expect("lab");
    let check = "HTTP_GET {\n url {\n path /\n status_code 200\n }\n }";
    let config = format!(
        "virtual_server 10.77.0.100 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
         delay_loop 1\n connect_timeout 1\n retry 1\n delay_before_retry 0.2\n warmup 0\n\
         real_server 10.77.0.11 80 {{\n {check}\n }}\n\
         real_server 10.77.0.12 80 {{\n {check}\n }}\n\
         real_server 10.77.0.13 80 {{\n {check}\n }}\n}}\n"
    );
    let path = write(&lab, "http.conf", &config);
    lab.start_lbd(&path, "native").expect("lbd ready");
    assert_eq!(lab.spread(6), counts(&[("b1", 2), ("b2", 2), ("b3", 2)]));

    // Down: within delay_loop + connect_timeout × (retry + 1) (+ the
    // retry delay and a margin) the backend is out.
    lab.stop_backend_server(1, 80).unwrap();
    let bound = Duration::from_secs_f64(1.0 + 1.0 * 2.0 + 0.2 + 1.0);
    let took = wait_log(&lab, "backend down", 1, bound);
    assert!(took <= bound, "out after {took:?}");
    // The data plane has it (reconcile follows the verdict at once); after
    // that no request fails.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(20), counts(&[("b1", 10), ("b3", 10)]));

    // A reload with the backend unchanged: it stays out, no flap.
    let again = write(&lab, "http.conf", &format!("! reloaded\n{config}"));
    assert_eq!(again, path);
    lab.reload_lbd().unwrap();
    wait_log(&lab, "health checks reloaded", 1, Duration::from_secs(5));
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let got = lab.spread(2);
        assert!(!got.contains_key("b2"), "{got:?}");
    }
    assert!(!lab.lbd_log().contains("backend up"), "{}", lab.lbd_log());

    // Up: one success brings it back with traffic.
    lab.start_backend_server(1, 80).unwrap();
    let took = wait_log(&lab, "backend up", 1, Duration::from_secs(3));
    assert!(took <= Duration::from_secs(3), "back after {took:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(9), counts(&[("b1", 3), ("b2", 3), ("b3", 3)]));
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(marker))
        .count()
}

#[test]
fn health_misc_dynamic_weights_steer_wrr_and_a_hanging_script_is_killed() {
    let mut lab = DrLab::with_backends(3).expect("lab");
    let dir = lab.dir.path().to_path_buf();
    for (name, w) in [("w1", 5), ("w2", 3)] {
        std::fs::write(dir.join(name), format!("{w}\n")).unwrap();
        std::fs::write(
            dir.join(format!("{name}.sh")),
            format!("exit $(cat {})\n", dir.join(name).display()),
        )
        .unwrap();
    }
    // Unique per lab, to find the hanging scripts among all processes.
    let marker = format!("hang-{}", dir.file_name().unwrap().to_string_lossy());
    let config = format!(
        "virtual_server 10.77.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n protocol TCP\n\
         delay_loop 1\n warmup 0\n\
         real_server 10.77.0.11 80 {{\n MISC_CHECK {{\n misc_path \"/bin/sh {d}/w1.sh\"\n misc_dynamic\n }}\n }}\n\
         real_server 10.77.0.12 80 {{\n MISC_CHECK {{\n misc_path \"/bin/sh {d}/w2.sh\"\n misc_dynamic\n }}\n }}\n\
         real_server 10.77.0.13 80 {{\n MISC_CHECK {{\n misc_path \"/bin/sh -c 'sleep 30; : {marker}'\"\n misc_timeout 1\n }}\n }}\n}}\n",
        d = dir.display()
    );
    let path = write(&lab, "misc.conf", &config);
    lab.start_lbd(&path, "native").expect("lbd ready");

    // The hanging script is killed at misc_timeout: b3 is down.
    let took = wait_log(&lab, "backend down", 1, Duration::from_secs(3));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        lab.lbd_log().contains("timed out after 1s"),
        "{}",
        lab.lbd_log()
    );
    // Exits 5 and 3: weights 3 and 1, wrr sends 3 of 4 new connections to b1.
    wait_split(
        &lab,
        8,
        &counts(&[("b1", 6), ("b2", 2)]),
        Duration::from_secs(4),
    );
    // b2's script now exits 5: weight 3, an even split.
    std::fs::write(dir.join("w2"), "5\n").unwrap();
    wait_split(
        &lab,
        8,
        &counts(&[("b1", 4), ("b2", 4)]),
        Duration::from_secs(4),
    );
    // Never more than the one hanging script at a time, and none left after
    // lbd stops.
    let n = processes_with(&marker);
    assert!(n <= 2, "{n} hanging scripts (sh and its sleep count 2)");
    lab.stop_lbd().unwrap();
    let start = Instant::now();
    while processes_with(&marker) > 0 && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        processes_with(&marker),
        0,
        "hanging scripts left after lbd stopped"
    );
}

#[test]
fn health_tcp_check_wrong_digest_and_alpha() {
    let mut lab = DrLab::with_backends(3).expect("lab");
    lab.start_backend_server(0, 8081).unwrap();
    let config = "virtual_server 10.77.0.100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
         delay_loop 1\n connect_timeout 1\n retry 1\n delay_before_retry 0.2\n warmup 0\n\
         real_server 10.77.0.11 80 {\n TCP_CHECK {\n connect_port 8081\n }\n }\n\
         real_server 10.77.0.12 80 {\n HTTP_GET {\n url {\n path /\n digest 00000000000000000000000000000000\n }\n }\n }\n\
         real_server 10.77.0.13 80 {\n alpha\n TCP_CHECK {\n connect_port 8083\n }\n }\n}\n";
    let path = write(&lab, "tcp.conf", config);
    lab.start_lbd(&path, "native").expect("lbd ready");

    // The wrong digest takes b2 out; alpha keeps b3 out from the start.
    wait_log(&lab, "backend down", 1, Duration::from_secs(3));
    assert!(lab.lbd_log().contains("MD5 digest"), "{}", lab.lbd_log());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(6), counts(&[("b1", 6)]));

    // b3's checked port starts listening: its first success brings it in.
    lab.start_backend_server(2, 8083).unwrap();
    wait_log(&lab, "backend up", 1, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(6), counts(&[("b1", 3), ("b3", 3)]));

    // b1's checked port stops listening (its HTTP on 80 still serves): out.
    lab.stop_backend_server(0, 8081).unwrap();
    wait_log(&lab, "backend down", 2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(6), counts(&[("b3", 6)]));
}

#[test]
fn health_quorum_lost_switches_to_the_sorry_server_and_back() {
    let mut lab = DrLab::with_backends(3).expect("lab");
    let check = "HTTP_GET {\n url {\n path /\n }\n }";
    let config = format!(
        "virtual_server 10.77.0.100 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
         delay_loop 1\n connect_timeout 1\n retry 0\n warmup 0\n quorum 2\n\
         sorry_server 10.77.0.13 80\n\
         real_server 10.77.0.11 80 {{\n {check}\n }}\n\
         real_server 10.77.0.12 80 {{\n {check}\n }}\n}}\n"
    );
    let path = write(&lab, "quorum.conf", &config);
    // The sorry server is resolved ahead, with no new connections.
    lab.start_lbd_ready(&path, "native", 3).expect("lbd ready");
    assert_eq!(lab.spread(4), counts(&[("b1", 2), ("b2", 2)]));

    // One of two backends down: live weight 1 < quorum 2.
    lab.stop_backend_server(0, 80).unwrap();
    wait_log(&lab, "quorum lost", 1, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(4), counts(&[("b3", 4)]));

    lab.start_backend_server(0, 80).unwrap();
    wait_log(&lab, "quorum gained", 1, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.spread(4), counts(&[("b1", 2), ("b2", 2)]));
}
