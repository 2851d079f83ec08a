//! Two lbd on one bridge running VRRP-only configurations (no XDP): the
//! VIP lives on exactly one, moves on a crash, a graceful stop and a failing
//! tracked script, and comes back by preemption (or not, with nopreempt); a
//! restart with `--on-exit keep` moves nothing.
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
    // lbd creates the FIFO, as keepalived does.
    let fifo = lab.path("notify.fifo");
    std::fs::write(&flag, "").unwrap();
    let script = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 0.1\n  weight -60\n  fall 1\n  rise 1\n}}\n\
         global_defs {{\n  vrrp_notify_fifo {}\n}}\n",
        flag.display(),
        fifo.display()
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

    // The same transitions, as keepalived writes them to its FIFO (lbd
    // holds it open, so what was written before this reader is kept).
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("lbd created the notify FIFO");
    let mut text = String::new();
    let deadline = Instant::now() + SECS_5;
    loop {
        let mut buf = [0u8; 4096];
        if let Ok(n) = reader.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let want = [
            "INSTANCE \"VI_1\" BACKUP 100\n",
            "INSTANCE \"VI_1\" MASTER 100\n",
            "INSTANCE \"VI_1\" BACKUP 40\n",
        ];
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "FIFO lines missing: got\n{text}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends raw IPv4 packets (header included) from inside the client's
/// namespace to the VRRP group on its eth0.
fn send_raw(lab: &VrrpLab, packets: Vec<Vec<u8>>) {
    lab.client
        .enter(move || {
            // SAFETY: plain socket calls on a descriptor we own and close.
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
                assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
                let dev = b"eth0\0";
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    dev.as_ptr().cast(),
                    dev.len() as u32,
                );
                let mut to: libc::sockaddr_in = std::mem::zeroed();
                to.sin_family = libc::AF_INET as u16;
                to.sin_addr.s_addr = u32::from_ne_bytes([224, 0, 0, 18]);
                for p in &packets {
                    libc::sendto(
                        fd,
                        p.as_ptr().cast(),
                        p.len(),
                        0,
                        (&to as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    );
                }
                libc::close(fd);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn vrrp_lbd_hostile_adverts_change_nothing() {
    use lb_daemon::vrrp::{encode_ipv4, Advert, AdvertInterval, Auth, Version};
    use std::net::{IpAddr, Ipv4Addr};

    let mut lab = VrrpLab::new(1).expect("lab");
    lab.start("a", 0, Daemon::Lbd, &config(100, "0.1", "", ""))
        .unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();

    let src = lb_tests::vrrp_lab::CLIENT;
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let advert = |priority: u8, addrs: Vec<IpAddr>, version: Version| Advert {
        version,
        vrid: 51,
        priority,
        max_advert_int: AdvertInterval::from_centis(if version == Version::V3 { 10 } else { 100 }),
        addrs,
        auth: Auth::None,
    };
    let vip = vec![IpAddr::V4(VIP)];
    let usurper = encode_ipv4(&advert(254, vip.clone(), Version::V3), src, group, 1).unwrap();

    // Each would win the election if it were accepted.
    let mut hostile = Vec::new();
    let mut routed = usurper.clone();
    routed[8] = 64; // TTL: the kernel recomputes the header checksum
    hostile.push(routed);
    let mut bad_sum = usurper.clone();
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 0xff;
    hostile.push(bad_sum);
    hostile.push(encode_ipv4(&advert(254, vip.clone(), Version::V2), src, group, 1).unwrap());
    hostile.push(
        encode_ipv4(
            &advert(
                254,
                vec![IpAddr::V4(Ipv4Addr::new(10, 88, 0, 99))],
                Version::V3,
            ),
            src,
            group,
            1,
        )
        .unwrap(),
    );
    hostile.push(usurper[..usurper.len() - 3].to_vec());
    let mut packets = Vec::new();
    for _ in 0..200 {
        packets.extend(hostile.iter().cloned());
    }
    // And noise: random VRRP payloads behind a valid IP header.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut p = usurper[..20].to_vec();
        let len = (x % 64) as usize;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.push(x as u8);
        }
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        packets.push(p);
    }
    send_raw(&lab, packets);
    lab.assert_vip_stays_on(0, Duration::from_millis(800))
        .unwrap();
    lab.check_running("a").unwrap();
    let log = lab.log("a");
    for reason in [
        "bad_ttl",
        "bad_checksum",
        "wrong_version",
        "address_list_mismatch",
    ] {
        assert!(
            log.contains(&format!("reason={reason}")),
            "no {reason} drop logged:\n{log}"
        );
    }

    // The control: the same advert with nothing wrong does make lbd step
    // down, so the hostile ones did reach it.
    let stop = Instant::now() + Duration::from_millis(600);
    while Instant::now() < stop && lab.has_addr(0, VIP) {
        send_raw(&lab, vec![usurper.clone()]);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !lab.has_addr(0, VIP),
        "a valid higher-priority advert was ignored"
    );
    // Silence again: lbd takes the VIP back after the master-down interval.
    lab.wait_vip_only_on(0, SECS_5).unwrap();
}

#[test]
fn vrrp_two_lbd_sync_group_moves_together() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let vip2 = std::net::Ipv4Addr::new(10, 88, 0, 101);
    let flag = lab.path("healthy");
    std::fs::write(&flag, "").unwrap();
    let group = |priority: u8, track: &str| {
        format!(
            "global_defs {{ vrrp_version 3 }}\n\
             vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 0.1\n}}\n\
             vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
             priority {priority}\n  advert_int 0.1\n  {track}\n\
             virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n\
             priority {priority}\n  advert_int 0.1\n\
             virtual_ipaddress {{\n    {vip2}/24\n  }}\n}}\n",
            flag.display()
        )
    };
    lab.start(
        "a",
        0,
        Daemon::Lbd,
        &group(100, "track_script {\n    chk\n  }"),
    )
    .unwrap();
    lab.start("b", 1, Daemon::Lbd, &group(50, "")).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    let holders2 = |lab: &VrrpLab| {
        (0..2)
            .filter(|r| lab.has_addr(*r, vip2))
            .collect::<Vec<_>>()
    };
    let wait2 = |lab: &VrrpLab, want: usize| {
        let deadline = Instant::now() + SECS_5;
        while holders2(lab) != [want] {
            assert!(
                Instant::now() < deadline,
                "second VIP not on r{} alone\n{}",
                want + 1,
                lab.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait2(&lab, 0);

    // VI_1's script fails (weight 0: Fault); the group pulls VI_2 along.
    std::fs::remove_file(&flag).unwrap();
    lab.wait_vip_only_on(1, SECS_5).unwrap();
    wait2(&lab, 1);

    std::fs::write(&flag, "").unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    wait2(&lab, 0);
}

#[test]
fn vrrp_lbd_sighup_keeps_unchanged_instances() {
    let mut lab = VrrpLab::new(2).expect("lab");
    lab.start("a", 0, Daemon::Lbd, &config(100, "0.1", "", ""))
        .unwrap();
    lab.start("b", 1, Daemon::Lbd, &config(50, "0.1", "", ""))
        .unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    let changes = |lab: &VrrpLab| lab.log("a").matches("VRRP state change").count();
    let before = changes(&lab);

    // The same configuration: nothing moves.
    lab.signal("a", libc::SIGHUP).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(600))
        .unwrap();
    assert!(lab.log("a").contains("configuration reloaded"));
    assert_eq!(changes(&lab), before, "{}", lab.log("a"));

    // A lower priority: the instance restarts and hands over.
    std::fs::write(lab.path("a.conf"), config(30, "0.1", "", "")).unwrap();
    lab.signal("a", libc::SIGHUP).unwrap();
    lab.wait_vip_only_on(1, SECS_5).unwrap();
    lab.assert_vip_stays_on(1, Duration::from_millis(500))
        .unwrap();
    lab.check_running("a").unwrap();
}

#[test]
fn vrrp_two_lbd_ipv6_failover() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let vip6: std::net::Ipv6Addr = "fd88::100".parse().unwrap();
    // IPv6 VRRP is v3, sent from the link-local address (which is usable
    // once its duplicate address detection is over: lbd retries).
    let conf = |priority: u8| {
        format!(
            "vrrp_instance VI_6 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 61\n\
             priority {priority}\n  advert_int 0.1\n\
             virtual_ipaddress {{\n    {vip6}/64\n  }}\n}}\n"
        )
    };
    lab.start("a", 0, Daemon::Lbd, &conf(100)).unwrap();
    lab.start("b", 1, Daemon::Lbd, &conf(50)).unwrap();
    let holders = |lab: &VrrpLab| {
        (0..2)
            .filter(|r| lab.has_addr(*r, vip6))
            .collect::<Vec<_>>()
    };
    let wait = |lab: &VrrpLab, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(8);
        while holders(lab) != [want] {
            assert!(
                Instant::now() < deadline,
                "IPv6 VIP not on r{} alone: {:?}\n{}",
                want + 1,
                holders(lab),
                lab.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait(&lab, 0);
    // b hears a: it never takes the VIP while a runs.
    let end = Instant::now() + Duration::from_millis(800);
    while Instant::now() < end {
        assert_eq!(holders(&lab), [0], "{}", lab.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    lab.signal("a", libc::SIGTERM).unwrap();
    wait(&lab, 1);
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(300),
        "IPv6 graceful takeover took {took:?}"
    );
}

/// Samples, every 5 ms until stopped, which of the routers (namespaces
/// `names`) hold the VIP; returns every sample that was not `[0]`.
fn watch_vip(
    names: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<usize>>> {
    std::thread::spawn(move || {
        let needle = format!(" {VIP}/");
        let mut bad = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let holders: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    std::process::Command::new("ip")
                        .args(["-n", n, "-o", "-4", "addr", "show"])
                        .output()
                        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&needle))
                })
                .map(|(i, _)| i)
                .collect();
            if holders != [0] {
                bad.push(holders);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bad
    })
}

#[test]
fn vrrp_lbd_restart_of_the_master_is_no_transition() {
    let mut lab = VrrpLab::new(2).expect("lab");
    // b (priority 50) declares a silent master down after 3 * 0.3 s + its
    // skew, 0.98 s; the restart must be shorter than that.
    let a = config(100, "0.3", "", "");
    let b = config(50, "0.3", "", "");
    let keep = ["--on-exit", "keep", "--pin-path", "none"];
    lab.start_with("a", 0, Daemon::Lbd, &a, &keep).unwrap();
    lab.start("b", 1, Daemon::Lbd, &b).unwrap();
    lab.wait_vip_only_on(0, SECS_5).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(1200))
        .unwrap();
    let b_masters = |lab: &VrrpLab| {
        lab.log("b")
            .lines()
            .filter(|l| l.contains("VRRP state change") && l.contains("to=MASTER"))
            .count()
    };
    assert_eq!(b_masters(&lab), 0, "{}", lab.logs());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let names = lab.routers.iter().map(|r| r.name.clone()).collect();
    let watcher = watch_vip(names, stop.clone());
    // A restart in place: SIGUSR1 (what `systemctl kill -s USR1 lbd` sends;
    // the unit restarts lbd on exit status 75), wait for the exit, start
    // again.
    let start = Instant::now();
    lab.signal("a", libc::SIGUSR1).unwrap();
    let status = lab.wait_exit("a", SECS_5).unwrap();
    assert_eq!(
        status.code(),
        Some(75),
        "lbd exit: {status}\n{}",
        lab.log("a")
    );
    let state_file = lab.run_dir(0).join("vrrp-state.json");
    assert!(state_file.exists(), "no restart state\n{}", lab.log("a"));
    lab.start_with("a2", 0, Daemon::Lbd, &a, &keep).unwrap();
    eprintln!("restarted after {:?}", start.elapsed());
    // Well past b's master-down interval.
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let bad = watcher.join().unwrap();
    assert!(
        bad.is_empty(),
        "the VIP left r1 alone during the restart: {bad:?}\n{}",
        lab.logs()
    );
    assert_eq!(b_masters(&lab), 0, "b took over\n{}", lab.logs());
    let log_a = lab.log("a");
    let exiting = log_a
        .split("SIGUSR1: restarting in place")
        .nth(1)
        .unwrap_or_default();
    assert!(
        !exiting.contains("VRRP state change"),
        "the old master stepped down\n{log_a}"
    );
    assert!(
        lab.log("a2").contains("resumed as master after a restart"),
        "{}",
        lab.logs()
    );
    assert!(!state_file.exists(), "the restart state was not removed");
    lab.check_running("a2").unwrap();
    lab.check_running("b").unwrap();
    // (A stop without --on-exit keep still hands over at once:
    // vrrp_two_lbd_sigterm_hands_over_within_skew_time.)
}

/// `count` virtual_server_group blocks: lbd parses and checks them but
/// carries nothing for them (no virtual_server uses them), so the file is
/// big while the daemon stays VRRP-only.
fn filler(count: u32) -> String {
    let mut text = String::with_capacity(count as usize * 48);
    for i in 0..count {
        text.push_str(&format!(
            "virtual_server_group g{i} {{\n  10.{}.{}.{} 80\n}}\n",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        ));
    }
    text
}

/// The master reloads a big file (through lbctl, which checks it first,
/// then the main loop) while the backup listens at advert_int 0.1: the
/// adverts keep coming, so the backup stays BACKUP and the VIP never moves.
#[test]
fn vrrp_lbd_reloading_a_big_file_keeps_the_backup_backup() {
    let mut lab = VrrpLab::new(2).expect("lab");
    let a = config(100, "0.1", "", &filler(200_000));
    eprintln!("config of {} MB", a.len() >> 20);
    lab.start("a", 0, Daemon::Lbd, &a).unwrap();
    lab.start("b", 1, Daemon::Lbd, &config(50, "0.1", "", ""))
        .unwrap();
    // Starting parses the big file too: allow for it.
    lab.wait_vip_only_on(0, Duration::from_secs(60)).unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(600))
        .unwrap();
    let changes = |lab: &VrrpLab| lab.log("b").matches("VRRP state change").count();
    let before = changes(&lab);

    for round in 0..2 {
        let started = Instant::now();
        let mut reload = std::process::Command::new(lb_tests::bin("lbctl"))
            .arg("--control-socket")
            .arg(lab.path("a.sock"))
            .arg("reload")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            assert_eq!(
                lab.vip_holders(),
                vec![0],
                "round {round}: the VIP moved during the reload after {:?}\n{}",
                started.elapsed(),
                lab.logs()
            );
            if let Some(status) = reload.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "lbctl reload never finished");
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = reload.wait_with_output().unwrap();
        assert!(
            status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("round {round}: reload took {:?}", started.elapsed());
    }
    lab.assert_vip_stays_on(0, Duration::from_millis(500))
        .unwrap();
    assert_eq!(changes(&lab), before, "{}", lab.log("b"));
    assert!(lab.log("a").contains("configuration reloaded"));
    lab.check_running("a").unwrap();
    lab.check_running("b").unwrap();
}
