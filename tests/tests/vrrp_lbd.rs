//! Two lbd on one bridge running VRRP-only configurations (no XDP): the
//! VIP lives on exactly one, moves on a crash, a graceful stop and a failing
//! tracked script, and comes back by preemption (or not, with nopreempt).
//! Needs root.

use std::time::{Duration, Instant};

use lb_tests::vrrp_lab::{Daemon, VrrpLab, VIP};

/// A VRRPv3 instance on eth0 with VRID 51 and the lab's VIP.
fn config(priority: u8, advert_int: &str, extra: &str, top: &str) -> String {
    format!(
        "global_defs {{ vrrp_version 3 }}\n{top}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
         priority {priority}\n  advert_int {advert_int}\n  {extra}\n\
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

const SECS_5: Duration = Duration::from_secs(5);

#[test]
fn vrrp_two_lbd_crash_failover_and_preempt() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let a = config(100, "0.1", "", "");
    let b = config(50, "0.1", "", "");
    lab.start("a", 0, Daemon::Lbd, &a).unwrap();
    lab.start("b", 1, Daemon::Lbd, &b).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    // Several master-down intervals (0.38 s): the backup hears the master.
    lab.assert_vip_stays_on(0, Duration::from_millis(1200))
        .unwrap();
    assert!(
        lab.vip_answers(Duration::from_secs(2)),
        "VIP does not answer"
    );

    // kill -9: no priority 0; the backup waits for the master-down interval.
    lab.signal("a", libc::SIGKILL).unwrap();
    let took = lab.wait_vip_on(1, Duration::from_secs(3)).unwrap();
    eprintln!("crash takeover seen after {took:?}");
    assert!(
        lab.vip_answers(Duration::from_secs(2)),
        "VIP does not answer on b"
    );

    // Restarted, a cleans up the VIP its crash left and preempts.
    lab.start("a2", 0, Daemon::Lbd, &a).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(500))
        .unwrap();
    lab.check_running("b").unwrap();
}

#[test]
fn vrrp_two_lbd_nopreempt_keeps_the_new_master() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let a = config(100, "0.1", "nopreempt", "");
    let b = config(50, "0.1", "nopreempt", "");
    lab.start("a", 0, Daemon::Lbd, &a).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    lab.start("b", 1, Daemon::Lbd, &b).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(800))
        .unwrap();

    lab.signal("a", libc::SIGKILL).unwrap();
    lab.wait_vip_on(1, Duration::from_secs(3)).unwrap();
    lab.start("a2", 0, Daemon::Lbd, &a).unwrap();
    // a's stale VIP goes, and b stays master although a has the higher
    // priority: well past a's master-down interval.
    lab.wait_vip_only_on(1, SECS_5).unwrap();
    lab.assert_vip_stays_on(1, Duration::from_millis(1500))
        .unwrap();
}

#[test]
fn vrrp_two_lbd_sigterm_hands_over_within_skew_time() {
    let mut lab = VrrpLab::new(2).expect("lab");
    // At 0.5 s, b (priority 50) waits 1.90 s for a silent master but only
    // its skew time, 0.40 s, after a priority-0 advert.
    let a = config(100, "0.5", "", "");
    let b = config(50, "0.5", "", "");
    lab.start("a", 0, Daemon::Lbd, &a).unwrap();
    lab.start("b", 1, Daemon::Lbd, &b).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(600))
        .unwrap();

    let start = Instant::now();
    lab.signal("a", libc::SIGTERM).unwrap();
    lab.wait_vip_on(1, Duration::from_secs(5)).unwrap();
    let took = start.elapsed();
    eprintln!("graceful takeover after {took:?}");
    assert!(
        took < Duration::from_millis(1200),
        "takeover took {took:?}: the priority-0 advert was not used\n{}",
        lab.logs()
    );
    let status = lab.wait_exit("a", Duration::from_secs(5)).unwrap();
    assert!(status.success(), "lbd exit: {status}\n{}", lab.log("a"));
    // A stopped master leaves nothing behind.
    assert!(!lab.has_addr(0, VIP), "VIP left on a after SIGTERM");
    lab.wait_vip_only_on(1, SECS_5).unwrap();
}

#[test]
fn vrrp_two_lbd_failing_script_moves_the_vip_and_notifies() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let flag = lab.path("healthy");
    let notes = lab.path("notify.out");
    std::fs::write(&flag, "").unwrap();
    let script = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 0.1\n  weight -60\n  fall 1\n  rise 1\n}}\n",
        flag.display()
    );
    let extra = format!(
        "track_script {{\n    chk\n  }}\n  notify \"/bin/sh -c 'echo $* >> {}' notify\"",
        notes.display()
    );
    let a = config(100, "0.1", &extra, &script);
    let b = config(50, "0.1", "", "");
    lab.start("a", 0, Daemon::Lbd, &a).unwrap();
    lab.start("b", 1, Daemon::Lbd, &b).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(500))
        .unwrap();

    // Failing: a drops to 40 < 50 and b takes over.
    std::fs::remove_file(&flag).unwrap();
    lab.wait_vip_only_on(1, SECS_5).unwrap();
    lab.assert_vip_stays_on(1, Duration::from_millis(500))
        .unwrap();

    // Healthy again: a is back at 100 and preempts.
    std::fs::write(&flag, "").unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();

    let deadline = Instant::now() + SECS_5;
    loop {
        let text = std::fs::read_to_string(&notes).unwrap_or_default();
        let want = [
            "INSTANCE VI_1 BACKUP 100",
            "INSTANCE VI_1 MASTER 100",
            "INSTANCE VI_1 BACKUP 40",
        ];
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "notify calls missing: got\n{text}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
