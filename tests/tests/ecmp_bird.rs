//! Several active balancers behind ECMP, VIPs announced through real BIRD
//! on both sides (`lb_announce_table`).
//!
//! ```text
//!  router (BIRD, merge paths, BFD)  10.78.0.1 ─┐
//!  lb1 (lbd + BIRD)                 10.78.0.2 ─┤ br0 ("sw")
//!  lb2 (lbd + BIRD)                 10.78.0.3 ─┤
//!  backend b1 (DR real server)      10.78.0.11─┘
//! ```

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lb_tests::{
    bird::{bird, wait_hops, Procs},
    lab::{self, tempdir::TempDir},
    netns::{self, Netns},
};

const VIP: &str = "10.78.0.100";
const TABLE: u32 = 100;

fn lbd_config(backend_port: u16) -> String {
    format!(
        "global_defs {{\n lb_announce_table {TABLE}\n lb_announce_drain 1\n}}\n\
         virtual_server {VIP} 80 {{\n lb_algo mh\n lb_kind DR\n protocol TCP\n delay_loop 1\n\
         real_server 10.78.0.11 80 {{\n weight 1\n TCP_CHECK {{\n connect_port {backend_port}\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n"
    )
}

#[test]
fn router_has_one_next_hop_per_healthy_balancer_and_loses_it_on_crash_or_quorum_loss() -> Result<()>
{
    netns::sweep_stale();
    let prefix = netns::unique_prefix();
    let dir = TempDir::new(&prefix)?;
    let sw = Netns::switch(format!("{prefix}-sw"))?;
    let router = Netns::new(format!("{prefix}-r"))?;
    let lbs = [
        Netns::new(format!("{prefix}-lb1"))?,
        Netns::new(format!("{prefix}-lb2"))?,
    ];
    let backend = Netns::new(format!("{prefix}-b1"))?;
    let hosts: Vec<(&Netns, &str)> = vec![
        (&router, "10.78.0.1"),
        (&lbs[0], "10.78.0.2"),
        (&lbs[1], "10.78.0.3"),
        (&backend, "10.78.0.11"),
    ];
    for (i, (ns, ip)) in hosts.iter().enumerate() {
        sw.plug(&format!("p{i}"), ns, "eth0")?;
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
    }
    lab::dr_real_server(&backend, VIP.parse()?)?;
    router.sh(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
         net.ipv4.fib_multipath_hash_fields=0x0037",
    )?;
    // The one real server, started again after the test kills it.
    let serve = || {
        backend
            .command(lb_tests::bin("lb-test-http"))
            .args(["[::]:80", "b1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let mut procs = Procs(Vec::new());
    procs.0.push(serve()?);
    let neighbours: String = ["10.78.0.2", "10.78.0.3"]
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("protocol bgp lb{i} from lb {{ neighbor {ip} as 65001; }}\n"))
        .collect();
    procs.0.push(bird(
        &router,
        dir.path(),
        "router",
        &format!(
            "router id 10.78.0.1;\nprotocol device {{ }}\n\
             protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths yes limit 16; }}\n\
             protocol bfd {{ interface \"eth0\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}\n\
             template bgp lb {{ local 10.78.0.1 as 65000; hold time 9; keepalive time 3; connect retry time 1;\n\
               error wait time 1, 10; graceful restart off; bfd on; ipv4 {{ import all; export none; }}; }}\n{neighbours}"
        ),
    )?);
    // The balancer side: the shipped configuration with this lab's values.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/bird/bird.conf"),
    )?;
    let mut lbds = Procs(Vec::new());
    for (i, ns) in lbs.iter().enumerate() {
        let ip = format!("10.78.0.{}", i + 2);
        let conf = shipped
            .replace("192.0.2.10", &ip)
            .replace("192.0.2.1", "10.78.0.1");
        procs
            .0
            .push(bird(ns, dir.path(), &format!("lb{}", i + 1), &conf)?);
        let cfg = dir.path().join(format!("lbd{}.conf", i + 1));
        std::fs::write(&cfg, lbd_config(80))?;
        let run = dir.path().join(format!("run{}", i + 1));
        std::fs::create_dir_all(&run)?;
        let mut cmd = ns.command(lb_tests::bin("lbd"));
        cmd.arg("-f")
            .arg(&cfg)
            .args([
                "--interface",
                "eth0",
                "--xdp-mode",
                "skb",
                "--pin-path",
                "none",
            ])
            // Never the host's /run/lb.
            .arg("--run-dir")
            .arg(&run)
            .arg("--control-socket")
            .arg(run.join("lbd.sock"));
        lbds.0.push(lab::start_lbd(
            cmd,
            &dir.path().join(format!("lbd{}.log", i + 1)),
            1,
        )?);
    }
    // Announced after attach and quorum, one next hop per balancer.
    let t = wait_hops(
        &router,
        VIP,
        &["10.78.0.2", "10.78.0.3"],
        Duration::from_secs(20),
    )?;
    println!("both balancers announced after {t:?}");
    let status = Command::new(lb_tests::bin("lbctl"))
        .arg("--control-socket")
        .arg(dir.path().join("run1/lbd.sock"))
        .arg("status")
        .output()?;
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains(&format!("announce {VIP}")) && status.contains("announced"),
        "{status}"
    );
    for ns in &lbs {
        let routes = ns.ip(&["route", "show", "table", &TABLE.to_string()])?;
        assert!(String::from_utf8_lossy(&routes.stdout).contains("dev lbd-vip"));
    }
    // kill -9 of lb2's lbd: its next hop goes with its TUN device.
    lbds.0[1].kill()?;
    lbds.0[1].wait()?;
    let gone = wait_hops(&router, VIP, &["10.78.0.2"], Duration::from_secs(1))?;
    println!("kill -9: next hop gone after {gone:?}");
    // The last real server fails: lb1 loses quorum and withdraws.
    procs.0[0].kill()?;
    procs.0[0].wait()?;
    let t0 = Instant::now();
    wait_hops(&router, VIP, &[], Duration::from_secs(10))?;
    println!(
        "last real server down: withdrawn {:?} after the kill (checker delay_loop 1)",
        t0.elapsed()
    );
    // A graceful stop drains: withdrawn first, lbd still running meanwhile.
    procs.0.push(serve()?);
    wait_hops(&router, VIP, &["10.78.0.2"], Duration::from_secs(10))?;
    let lb1 = &mut lbds.0[0];
    // SAFETY: signalling our own child.
    unsafe { libc::kill(lb1.id() as i32, libc::SIGTERM) };
    wait_hops(&router, VIP, &[], Duration::from_secs(1))?;
    assert!(lb1.try_wait()?.is_none(), "lbd forwards during the drain");
    let deadline = Instant::now() + Duration::from_secs(5);
    while lb1.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = lb1.kill();
            bail!("lbd did not stop after its 1 s drain");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
