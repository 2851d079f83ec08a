//! `cargo xtask bench ipvs`: requests per second and CPU through the IPVS
//! tier and the XDP (SKB) tier on the same NAT lab and configuration, run
//! as the only program of the IPVS VM (`cargo xtask vm-test`'s VM; this
//! host's kernel has no IPVS). Exits non-zero when a tier answered nothing.
//!
//! Inside the VM: root, IPVS and its schedulers loaded, `ipvsadm` and
//! iproute2's `ip` on PATH, lbd, lbctl and lb-test-http in `LB_BIN_DIR`.

use std::{
    collections::BTreeSet,
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd,
    process::Command,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use lb_tests::{
    ipvs_lab::{clear_ipvs, lab_config, lbctl, wait_for, Lab, CONTROL, VIP},
    netns::run,
};

fn main() {
    if let Err(e) = measure() {
        println!("bench FAILED: {e:#}");
        std::process::exit(1);
    }
}

/// How long each tier carries the measured load (after a warm-up).
const SECONDS: u64 = 8;
const WARMUP_SECONDS: u64 = 1;
/// Client threads, each one request per new TCP connection at a time.
const THREADS: usize = 3;
/// Rounds of (ipvs, xdp-skb), summed.
const ROUNDS: u32 = 2;

struct Measured {
    tier: &'static str,
    requests: u64,
    errors: u64,
    secs: f64,
    /// Busy share of the (one) CPU over the window, 0..=1.
    cpu: f64,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    fn per_cpu_second(&self) -> f64 {
        self.requests as f64 / (self.cpu * self.secs).max(f64::EPSILON)
    }
}

/// Both tiers, alternating, then the table of what each carried.
fn measure() -> Result<()> {
    let tiers: [(&'static str, &[&str]); 2] = [
        ("ipvs", &["--dataplane", "ipvs"]),
        (
            "xdp-skb",
            &[
                "--dataplane",
                "xdp",
                "--xdp-mode",
                "skb",
                "--interface",
                "l-cli",
                "--interface",
                "l-b0",
                "--interface",
                "l-b1",
                "--pin-path",
                "none",
            ],
        ),
    ];
    let mut results: Vec<Measured> = tiers
        .iter()
        .map(|(tier, _)| Measured {
            tier,
            requests: 0,
            errors: 0,
            secs: 0.0,
            cpu: 0.0,
        })
        .collect();
    // The tiers alternate, so that a change in the host's load falls
    // on both.
    for round in 1..=ROUNDS {
        for (total, (tier, args)) in results.iter_mut().zip(tiers) {
            let m = one_tier(tier, args).with_context(|| format!("tier {tier}, round {round}"))?;
            clear_ipvs();
            let secs = total.secs + m.secs;
            total.cpu = (total.cpu * total.secs + m.cpu * m.secs) / secs;
            total.secs = secs;
            total.requests += m.requests;
            total.errors += m.errors;
        }
    }
    println!(
        "bench: qemu TCG (software-emulated), 1 vCPU shared by the client, both \
         backends and the balancer; absolute numbers are low, the ratio is the point"
    );
    println!(
        "bench: NAT, rr over 2 backends, {THREADS} client threads, a new TCP connection \
         per HTTP/1.0 GET, {ROUNDS} x {SECONDS} s per tier (alternating); CPU from /proc/stat (busy / total jiffies)"
    );
    println!(
        "{:<8} {:>11} {:>7} {:>15} {:>8} {:>7}",
        "tier", "requests/s", "CPU %", "requests/CPU-s", "requests", "errors"
    );
    for m in &results {
        println!(
            "{:<8} {:>11.1} {:>7.1} {:>15.1} {:>8} {:>7}",
            m.tier,
            m.rps(),
            m.cpu * 100.0,
            m.per_cpu_second(),
            m.requests,
            m.errors
        );
    }
    let (ipvs, xdp) = (&results[0], &results[1]);
    println!(
        "ratio xdp-skb/ipvs: requests/s {:.2}x, requests per CPU-second {:.2}x",
        xdp.rps() / ipvs.rps().max(f64::EPSILON),
        xdp.per_cpu_second() / ipvs.per_cpu_second().max(f64::EPSILON)
    );
    for m in &results {
        ensure!(m.requests > 0, "{}: no request answered", m.tier);
    }
    Ok(())
}

fn one_tier(tier: &'static str, args: &[&str]) -> Result<Measured> {
    let mut lab = Lab::new()?;
    let conf = "/tmp/lbd-bench.conf";
    std::fs::write(conf, lab_config(1))?;
    let log = "/tmp/lbd-bench.log";
    lab.lbd = Some(
        Command::new(lb_tests::bin("lbd"))
            .args(args)
            .args(["--control-socket", CONTROL, "-f", conf])
            .stderr(File::create(log)?)
            .spawn()?,
    );
    let both = BTreeSet::from(["b0".to_string(), "b1".to_string()]);
    let ready = wait_for("both backends answering through lbd", 60, || {
        Ok(lab.answers(4).is_ok_and(|seen| seen == both))
    });
    ready.with_context(|| std::fs::read_to_string(log).unwrap_or_default())?;
    let status = lbctl(&["status"])?;
    let dataplane = status["dataplane"].as_str().unwrap_or_default();
    ensure!(
        tier.starts_with(dataplane) && !dataplane.is_empty(),
        "lbd runs the {dataplane:?} data plane, not {tier}: {status}"
    );
    load(WARMUP_SECONDS)?;
    let w = load(SECONDS)?;
    let (requests, errors, secs) = (w.requests, w.errors, w.secs);
    println!(
        "bench: {tier}: {requests} requests, {errors} errors in {secs:.1} s (lbd: {})",
        status["dataplane"]
    );
    if dataplane == "xdp" {
        // Which way the packets went: redirected by XDP, or to the stack.
        let stats =
            run(Command::new(lb_tests::bin("lbctl")).args(["--control-socket", CONTROL, "stats"]))?;
        for line in String::from_utf8_lossy(&stats.stdout).lines() {
            if [
                "xdp_pass",
                "xdp_tx",
                "xdp_redirect",
                "fib_miss",
                "nat_reply",
            ]
            .iter()
            .any(|k| line.contains(k))
            {
                println!("bench: {tier}: lbctl stats: {}", line.trim());
            }
        }
    }
    if let Some(mut lbd) = lab.lbd.take() {
        let _ = run(Command::new("kill").args(["-TERM", &lbd.id().to_string()]));
        let _ = lbd.wait();
    }
    Ok(Measured {
        tier,
        requests,
        errors,
        secs,
        cpu: w.cpu,
    })
}

/// (busy, total) jiffies of all CPUs from /proc/stat's `cpu` line
/// (idle and iowait are not busy).
fn cpu_jiffies() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text.lines().next().context("empty /proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(f.len() == 8, "short cpu line: {line}");
    let total: u64 = f.iter().sum();
    Ok((total - f[3] - f[4], total))
}

/// What one window of load counted.
struct Window {
    requests: u64,
    errors: u64,
    secs: f64,
    cpu: f64,
}

/// `THREADS` clients in the client namespace for `secs` seconds: the
/// requests answered and failed within that window, and the CPU's busy
/// share over exactly that window (a request still under way at its end
/// counts for nothing).
fn load(secs: u64) -> Result<Window> {
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let before = cpu_jiffies()?;
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let addr: SocketAddr = format!("{VIP}:80").parse()?;
    std::thread::scope(|s| -> Result<Window> {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let ns = File::open("/run/netns/cli")?;
                    // SAFETY: a valid namespace fd; only this thread switches.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        bail!("setns cli: {}", std::io::Error::last_os_error());
                    }
                    while Instant::now() < end {
                        let outcome = request(&addr);
                        if Instant::now() >= end {
                            break;
                        }
                        match outcome {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        let after = cpu_jiffies()?;
        let secs = start.elapsed().as_secs_f64();
        let (requests, errors) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        let (busy, total) = (after.0 - before.0, after.1 - before.1);
        Ok(Window {
            requests,
            errors,
            secs,
            cpu: busy as f64 / (total as f64).max(1.0),
        })
    })
}

/// One HTTP/1.0 GET on a new connection, read to the end.
fn request(addr: &SocketAddr) -> Result<()> {
    let mut s = TcpStream::connect_timeout(addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    ensure!(answer.starts_with(b"HTTP/1.0 200"), "bad answer");
    Ok(())
}
