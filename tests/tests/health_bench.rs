//! Benchmark (ignored by default; needs root): the health checker probing
//! 1,000 HTTP backends (listeners on loopback in a namespace of their own)
//! at delay_loop 1, reporting the CPU time of its runtime and how late the
//! probes start.
//!
//!     cargo xtask test --test health_bench -- --ignored --nocapture

use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_daemon::health::{HealthPlan, HealthRuntime, RunnerOptions};
use lb_tests::netns::{self, Netns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BACKENDS: u16 = 1000;
const FIRST_PORT: u16 = 20000;
const MEASURE: Duration = Duration::from_secs(10);

/// Enters `ns` on this thread (threads it creates inherit it).
fn enter(ns: &Netns) {
    let f = std::fs::File::open(format!("/run/netns/{}", ns.name)).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace fd; only this thread switches.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

/// CPU seconds (user + system) of this process's threads named `name`.
fn cpu_of_threads(name: &str) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut ticks = 0u64;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the command: state is field 3; utime and stime are 14, 15.
        ticks += fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ticks as f64 / tck
}

fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn health_bench_1000_http_backends_at_delay_loop_1() {
    raise_fd_limit();
    netns::sweep_stale();
    let ns = Arc::new(Netns::new(format!("{}-bench", netns::unique_prefix())).unwrap());

    // The backends: one small runtime answering HTTP on 1,000 ports.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let ns2 = ns.clone();
    let servers = std::thread::Builder::new()
        .name("backends".into())
        .spawn(move || {
            enter(&ns2);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                for i in 0..BACKENDS {
                    let l = tokio::net::TcpListener::bind(("127.0.0.1", FIRST_PORT + i))
                        .await
                        .unwrap();
                    tokio::spawn(async move {
                        while let Ok((mut s, _)) = l.accept().await {
                            tokio::spawn(async move {
                                let mut buf = [0u8; 1024];
                                let _ = s.read(&mut buf).await;
                                let _ = s
                                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                                    .await;
                            });
                        }
                    });
                }
                tokio::task::spawn_blocking(move || stop_rx.recv())
                    .await
                    .ok();
            });
        })
        .unwrap();

    let mut config = String::from(
        "virtual_server 10.0.0.1 80 {\n lb_kind DR\n lb_algo wrr\n delay_loop 1\n \
         connect_timeout 1\n warmup 1\n",
    );
    for i in 0..BACKENDS {
        config.push_str(&format!(
            " real_server 127.0.0.1 {} {{\n HTTP_GET {{\n url {{\n path /\n digest {}\n }}\n }}\n }}\n",
            FIRST_PORT + i,
            lb_daemon::health::http::digest_of(b"ok\n"),
        ));
    }
    config.push_str("}\n");
    let loaded = lb_daemon::config::parse_str(&config, std::path::Path::new("bench.conf")).unwrap();
    let plan = HealthPlan::from_config(&loaded.config);
    assert_eq!(plan.probes.len(), BACKENDS as usize);

    // The checker: lbd's runtime shape (2 workers), inside the namespace.
    let ns3 = ns.clone();
    let report = std::thread::spawn(move || {
        enter(&ns3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lb-health")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let checks = HealthRuntime::start(plan, RunnerOptions::default());
            // An advert timer at VRRPv3's 10 cs on the same runtime, as
            // lbd's VRRP tasks are: how late does it fire while 1,000
            // checks run?
            let advert_late = std::sync::Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
            let late2 = advert_late.clone();
            let advert = tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                for k in 1..=((MEASURE.as_millis() as u64 + 3000) / 100) {
                    let due = start + Duration::from_millis(100 * k);
                    tokio::time::sleep_until(due).await;
                    let late = tokio::time::Instant::now().duration_since(due);
                    late2.lock().unwrap().push(late.as_secs_f64() * 1000.0);
                }
            });
            // Let every probe start (warmup spreads them over 1 s).
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (cpu0, s0, t0) = (
                cpu_of_threads("lb-health"),
                checks.stats().await,
                Instant::now(),
            );
            tokio::time::sleep(MEASURE).await;
            let (cpu1, s1, elapsed) = (
                cpu_of_threads("lb-health"),
                checks.stats().await,
                t0.elapsed(),
            );
            let snap = checks.snapshot().await;
            let up = snap.services[0].backends.iter().filter(|b| b.up).count();
            advert.abort();
            // The adverts due while measuring (after the 2 s warm-up).
            let lates: Vec<f64> = advert_late
                .lock()
                .unwrap()
                .iter()
                .skip(20)
                .copied()
                .collect();
            (cpu1 - cpu0, elapsed, s0, s1, up, lates)
        })
    })
    .join()
    .unwrap();
    let _ = stop_tx.send(());
    let _ = servers.join();

    let (cpu, elapsed, s0, s1, up, lates) = report;
    let advert_mean = lates.iter().sum::<f64>() / lates.len().max(1) as f64;
    let advert_max = lates.iter().copied().fold(0.0, f64::max);
    let checks = s1.checks - s0.checks;
    println!(
        "health bench: {BACKENDS} HTTP_GET backends, delay_loop 1: {checks} checks in {:.1} s \
         ({:.0}/s), CPU {:.1}% of one core, start lateness mean {:.2} ms, max {:.1} ms, \
         {} of {} over 100 ms; {up} backends up; a 100 ms advert timer on the same runtime \
         fired {advert_mean:.2} ms late on average, {advert_max:.1} ms at worst ({} adverts)",
        elapsed.as_secs_f64(),
        checks as f64 / elapsed.as_secs_f64(),
        100.0 * cpu / elapsed.as_secs_f64(),
        s1.late_mean_ms,
        s1.late_max_ms,
        s1.late_over_100ms,
        s1.checks,
        lates.len(),
    );
    assert_eq!(up, BACKENDS as usize, "every backend answers");
    // One check per backend per second, give or take the window's edges.
    assert!(checks as f64 >= 0.9 * f64::from(BACKENDS) * elapsed.as_secs_f64() - 1000.0);
}
