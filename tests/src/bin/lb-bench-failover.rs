//! `cargo xtask bench failover`: how long a virtual address is unreachable
//! when its master goes away, lbd against keepalived with the same
//! settings, in namespaces.
//!
//! Each run builds a fresh lab: master (priority 100) and backup (50) on a
//! bridge with a client; a TCP server listens on the backup only. The
//! clock starts when the master goes away and stops at the first TCP
//! connection to VIP:80 the backup accepts (so the client's ARP entry must
//! have followed the new master's gratuitous ARP too):
//! - crash: the master's link goes down and its daemon is killed with
//!   SIGKILL (keepalived's VRRP child too): the backup waits out the
//!   master-down interval;
//! - graceful: SIGTERM; the master sends priority 0 and the backup takes
//!   over after its skew time.
//!
//! Usage: lb-bench-failover [--runs N]

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lb_tests::vrrp_lab::{Daemon, VrrpLab, VIP};

#[derive(Clone, Copy)]
enum Stop {
    Crash,
    Graceful,
}

#[derive(Clone, Copy)]
struct Scenario {
    stop: Stop,
    v3: bool,
}

impl Scenario {
    fn label(self) -> String {
        format!(
            "{}, {}",
            match self.stop {
                Stop::Crash => "crash   ",
                Stop::Graceful => "graceful",
            },
            if self.v3 {
                "v3 advert_int 10 cs"
            } else {
                "v2 advert_int 1 s  "
            }
        )
    }

    fn config(self, priority: u8) -> String {
        let (version, advert) = if self.v3 { (3, "0.1") } else { (2, "1") };
        format!(
            "global_defs {{\n  vrrp_version {version}\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
             priority {priority}\n  advert_int {advert}\n\
             virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
        )
    }
}

fn main() {
    let mut runs = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|n| n.parse().ok())) {
            ("--runs", Some(n)) if n > 0 => runs = n,
            _ => {
                eprintln!("usage: lb-bench-failover [--runs N]");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = bench(runs) {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn bench(runs: usize) -> Result<()> {
    let scenarios = [
        Scenario {
            stop: Stop::Crash,
            v3: false,
        },
        Scenario {
            stop: Stop::Crash,
            v3: true,
        },
        Scenario {
            stop: Stop::Graceful,
            v3: false,
        },
        Scenario {
            stop: Stop::Graceful,
            v3: true,
        },
    ];
    println!(
        "failover: time from the master going away to the first connection the new master accepts"
    );
    println!("median of {runs} runs each\n");
    let mut rows = Vec::new();
    for s in scenarios {
        let mut medians = Vec::new();
        for daemon in [Daemon::Lbd, Daemon::Keepalived] {
            let mut times = Vec::new();
            for _ in 0..runs {
                times.push(
                    one_run(s, daemon)
                        .with_context(|| format!("{} with {daemon:?}", s.label().trim()))?,
                );
            }
            times.sort();
            let shown: Vec<String> = times.iter().map(|t| ms(*t)).collect();
            let name = format!("{daemon:?}").to_lowercase();
            eprintln!("  {:36} {name:10}: {}", s.label(), shown.join(" "));
            medians.push(times[times.len() / 2]);
        }
        rows.push((s.label(), medians[0], medians[1]));
    }
    println!(
        "\n{:36} {:>10} {:>14} {:>16}",
        "scenario", "lbd", "keepalived", "lbd/keepalived"
    );
    for (label, lbd, ka) in rows {
        println!(
            "{label:36} {:>10} {:>14} {:>16.2}",
            ms(lbd),
            ms(ka),
            lbd.as_secs_f64() / ka.as_secs_f64()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn one_run(s: Scenario, daemon: Daemon) -> Result<Duration> {
    let mut lab = VrrpLab::new(2)?;
    lab.start_program(
        "http",
        1,
        lb_tests::bin("lb-test-http"),
        &["0.0.0.0:80", "r2"],
    )?;
    lab.start("m", 0, daemon, &s.config(100))?;
    lab.start("b", 1, daemon, &s.config(50))?;
    lab.wait_vip_only_on(0, Duration::from_secs(15))?;
    // The client learns the master's MAC (the master refuses port 80).
    if !lab.vip_answers(Duration::from_secs(2)) {
        bail!("the VIP does not answer before the failover");
    }
    let limit = Duration::from_secs(15);
    let start = Instant::now();
    match s.stop {
        Stop::Crash => {
            lab.routers[0].ip(&["link", "set", "eth0", "down"])?;
            if daemon == Daemon::Keepalived {
                // Killing the parent alone would be a graceful stop.
                let pid = std::fs::read_to_string(lab.path("m.vrrp.pid"))?;
                let pid: i32 = pid.trim().parse().context("keepalived VRRP pid")?;
                // SAFETY: the VRRP child of a keepalived this run started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            lab.signal("m", libc::SIGKILL)?;
        }
        Stop::Graceful => lab.signal("m", libc::SIGTERM)?,
    }
    let took = lab
        .client
        .enter(move || {
            while start.elapsed() < limit {
                let addr = SocketAddr::from((VIP, 80));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(20)).is_ok() {
                    return Ok(Some(start.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(None)
        })?
        .with_context(|| {
            format!(
                "no answer from the new master within {limit:?}\n{}",
                lab.logs()
            )
        })?;
    Ok(took)
}
