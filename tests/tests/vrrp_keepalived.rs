//! lbd and Debian's keepalived in the same virtual router: each hears the
//! other's adverts (the backup never takes over while the master runs),
//! a graceful stop of either hands over through the priority-0 advert, and
//! the restarted higher-priority node preempts. VRRPv2 with PASS
//! authentication at 1 s, VRRPv3 at 0.1 s. Needs root and keepalived
//! (`cargo xtask setup` installs it).

use std::time::{Duration, Instant};

use lb_tests::vrrp_lab::{Daemon, VrrpLab, VIP};

#[derive(Clone, Copy)]
enum Flavour {
    V2Pass,
    V3,
}

impl Flavour {
    /// Advert interval in seconds.
    fn interval(self) -> f64 {
        match self {
            Flavour::V2Pass => 1.0,
            Flavour::V3 => 0.1,
        }
    }

    /// The backup's (priority 50) master-down interval.
    fn master_down(self) -> Duration {
        Duration::from_secs_f64(self.interval() * (3.0 + 206.0 / 256.0))
    }
}

fn config(flavour: Flavour, priority: u8) -> String {
    let (version, advert, auth) = match flavour {
        Flavour::V2Pass => (
            2,
            "1",
            "authentication {\n    auth_type PASS\n    auth_pass 1111\n  }",
        ),
        Flavour::V3 => (3, "0.1", ""),
    };
    format!(
        "global_defs {{\n  vrrp_version {version}\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
         priority {priority}\n  advert_int {advert}\n  {auth}\n\
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

fn keepalived_available() -> bool {
    std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok()
}

/// Router 0 runs `master` at priority 100, router 1 `backup` at 50.
fn interop(flavour: Flavour, master: Daemon, backup: Daemon) {
    assert!(
        keepalived_available(),
        "keepalived is not installed: run `cargo xtask setup` as root"
    );
    let mut lab = VrrpLab::new(2).expect("lab");
    let hi = config(flavour, 100);
    let lo = config(flavour, 50);
    lab.start("m", 0, master, &hi).unwrap();
    lab.start("b", 1, backup, &lo).unwrap();
    lab.wait_vip_only_on(0, Duration::from_secs(10)).unwrap();
    // Past the backup's master-down interval from its start: it hears the
    // master's adverts, or it would have taken the VIP.
    let watch = flavour.master_down() + Duration::from_millis(700);
    lab.assert_vip_stays_on(0, watch).unwrap();
    lab.check_running("b").unwrap();

    // A graceful stop of the master: the backup takes over after its skew
    // time, well before a master-down interval.
    let start = Instant::now();
    lab.signal("m", libc::SIGTERM).unwrap();
    lab.wait_vip_on(1, flavour.master_down() * 2).unwrap();
    let took = start.elapsed();
    eprintln!("graceful takeover after {took:?}");
    assert!(
        took < flavour.master_down().mul_f64(0.75),
        "takeover took {took:?}: the priority-0 advert was not honoured\n{}",
        lab.logs()
    );
    lab.wait_exit("m", Duration::from_secs(10)).unwrap();
    lab.wait_vip_only_on(1, Duration::from_secs(5)).unwrap();

    // The master returns and preempts; the backup lets go.
    lab.start("m2", 0, master, &hi).unwrap();
    lab.wait_vip_only_on(0, flavour.master_down() * 2 + Duration::from_secs(5))
        .unwrap();
    lab.assert_vip_stays_on(0, Duration::from_millis(500))
        .unwrap();
    lab.check_running("b").unwrap();
    assert!(
        lab.vip_answers(Duration::from_secs(2)),
        "VIP does not answer"
    );
}

#[test]
fn vrrp_interop_v2_pass_lbd_master_keepalived_backup() {
    interop(Flavour::V2Pass, Daemon::Lbd, Daemon::Keepalived);
}

#[test]
fn vrrp_interop_v2_pass_keepalived_master_lbd_backup() {
    interop(Flavour::V2Pass, Daemon::Keepalived, Daemon::Lbd);
}

#[test]
fn vrrp_interop_v3_lbd_master_keepalived_backup() {
    interop(Flavour::V3, Daemon::Lbd, Daemon::Keepalived);
}

#[test]
fn vrrp_interop_v3_keepalived_master_lbd_backup() {
    interop(Flavour::V3, Daemon::Keepalived, Daemon::Lbd);
}
