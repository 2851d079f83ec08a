//! Reloads under a steady request loop: a weight change, a new backend and
//! a file with a syntax error each apply (or are refused) without a failed
//! request and without a VRRP transition. Needs root.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use lb_tests::lab::DrLab;

/// The configuration: a VRRP instance (its own address, so the lab's
/// static VIP is untouched) and a wrr DR service over `backends`.
fn config(backends: &[(u8, u32)], broken: bool) -> String {
    let rs: String = backends
        .iter()
        .map(|(last, w)| {
            format!("    real_server 10.77.0.{last} 80 {{\n        weight {w}\n    }}\n")
        })
        .collect();
    format!(
        "global_defs {{\n    vrrp_version 3\n}}\n\
         vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 66\n    \
         priority 200\n    advert_int 0.2\n    virtual_ipaddress {{\n        10.77.0.200/32 dev eth0\n    }}\n}}\n\
         virtual_server 10.77.0.100 80 {{\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n{rs}}}\n{}",
        if broken { "virtual_server 10.77.0.256 80 {\n" } else { "" }
    )
}

#[test]
fn reloads_under_load_lose_no_request_and_keep_vrrp_state() {
    let mut lab = DrLab::with_backends(3).expect("lab");
    let path = lab
        .write_config("reload.conf", &config(&[(11, 1), (12, 1)], false))
        .unwrap();
    lab.start_lbd_ready(&path, "native", 2).expect("lbd ready");
    lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
        .unwrap();
    lab.wait_lbd_log("to=MASTER", Duration::from_secs(10))
        .unwrap();
    let transitions = lab.lbd_log().matches("VRRP state change").count();

    // The client loop: bounded in time and count; (time, answer or error).
    type Seen = Arc<Mutex<Vec<(Instant, Result<String, String>)>>>;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen2, stop2) = (seen.clone(), stop.clone());
    let client = lab.client.ns.name.clone();
    let load = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..3000 {
            if stop2.load(Ordering::Relaxed) || Instant::now() > deadline {
                break;
            }
            let out = Command::new("ip")
                .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "3"])
                .arg("http://10.77.0.100/")
                .output()
                .unwrap();
            let r = if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).to_string())
            };
            seen2.lock().unwrap().push((Instant::now(), r));
        }
    });
    let settle = Duration::from_millis(1200);
    std::thread::sleep(settle);

    // 1: b2's weight 1 → 3.
    std::fs::write(&path, config(&[(11, 1), (12, 3)], false)).unwrap();
    let t1 = Instant::now();
    lab.reload_lbd().unwrap();
    std::thread::sleep(settle);
    // 2: b3 joins.
    std::fs::write(&path, config(&[(11, 1), (12, 3), (13, 1)], false)).unwrap();
    let t2 = Instant::now();
    lab.reload_lbd().unwrap();
    lab.wait_lbd_log("backends=3 ready=3", Duration::from_secs(10))
        .unwrap();
    std::thread::sleep(settle);
    // 3: a syntax error: refused, the running configuration kept.
    std::fs::write(&path, config(&[(11, 1)], true)).unwrap();
    let t3 = Instant::now();
    lab.reload_lbd().unwrap();
    lab.wait_lbd_log("reload refused", Duration::from_secs(5))
        .unwrap();
    std::thread::sleep(settle);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    let seen = seen.lock().unwrap().clone();
    let log = lab.lbd_log();
    let failed: Vec<_> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let count = |from: Instant, to: Instant| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for (t, r) in &seen {
            if *t >= from && *t < to {
                *m.entry(r.clone().unwrap()).or_default() += 1;
            }
        }
        m
    };
    // Between reloads 1 and 2, b2 takes three new flows for each of b1's.
    let w = count(t1 + Duration::from_millis(300), t2);
    let (b1, b2) = (
        w.get("b1").copied().unwrap_or(0),
        w.get("b2").copied().unwrap_or(0),
    );
    assert!(b2 >= 2 * b1 && b1 > 0, "after the weight change: {w:?}");
    // After reload 2, b3 answers; after the refused reload nothing changed.
    assert!(
        count(t2, Instant::now()).contains_key("b3"),
        "b3 never answered"
    );
    let after_bad = count(t3 + Duration::from_millis(300), Instant::now());
    assert!(
        after_bad.contains_key("b3") && after_bad.contains_key("b2"),
        "{after_bad:?}"
    );
    assert!(log.contains("10.77.0.256"), "the error is reported:\n{log}");
    // VRRP: no transition since it became master.
    assert_eq!(
        log.matches("VRRP state change").count(),
        transitions,
        "{log}"
    );
}

/// A reload to a file that does not fit the BPF maps (1,100 virtual
/// servers; they hold 1,024) is refused whole with the located reason, by
/// lbctl (exit 1) and by SIGHUP alike; the running service keeps
/// forwarding and nothing of the new file is programmed.
#[test]
fn a_reload_that_does_not_fit_the_maps_is_refused_and_the_running_one_kept() {
    let mut lab = DrLab::with_backends(2).expect("lab");
    let path = lab
        .write_config("fit.conf", &config(&[(11, 1), (12, 1)], false))
        .unwrap();
    lab.start_lbd_ready(&path, "native", 2).expect("lbd ready");
    lab.wait_lbd_log("every backend resolved", Duration::from_secs(10))
        .unwrap();
    let before = lab.get_vip().unwrap();
    assert!(before.starts_with('b'), "{before}");

    let mut big = config(&[(11, 1), (12, 1)], false);
    for i in 0..1100u32 {
        big.push_str(&format!(
            "virtual_server 10.78.{}.{} 80 {{\n    lb_kind DR\n    real_server 10.77.0.11 80 {{\n    }}\n}}\n",
            i >> 8,
            i & 0xff
        ));
    }
    std::fs::write(&path, big).unwrap();
    let out = lab.lbctl(&["reload"]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not fit"), "{err}");
    assert!(err.contains("at most 1024 virtual servers"), "{err}");
    lab.reload_lbd().unwrap();
    lab.wait_lbd_log("reload refused", Duration::from_secs(10))
        .unwrap();
    let log = lab.lbd_log();
    assert!(
        log.contains(&format!("{}:", path.display())) && log.contains("does not fit"),
        "located:\n{log}"
    );
    // Still the one service, still forwarding.
    let services = lab.lbctl(&["--json", "services"]).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&services.stdout).unwrap();
    let list = doc["services"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{doc}");
    let after = lab.get_vip().unwrap();
    assert!(after.starts_with('b'), "{after}\n{log}");
}
