//! `cargo xtask run` with no arguments: the whole system in namespaces.
//! Two load balancers in VRRP, three web servers with health checks, a
//! client requesting the VIP every 200 ms. Then the master crashes and a
//! web server stops, while the demo prints, with timestamps, what the
//! client sees and what lbctl shows. Everything is torn down at the end.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use lb_tests::demo_lab::{DemoLab, VIP};

/// What the client saw: (time since start, answering backend or error).
type Seen = Arc<Mutex<Vec<(Duration, Result<String, String>)>>>;

fn main() {
    if let Err(e) = demo() {
        eprintln!("demo failed: {e:#}");
        std::process::exit(1);
    }
}

fn stamp(t0: Instant) -> String {
    format!("[{:>6.2}s]", t0.elapsed().as_secs_f64())
}

fn show(t0: Instant, title: &str, text: &str) {
    println!("{} {title}", stamp(t0));
    for line in text.lines() {
        println!("           | {line}");
    }
}

fn demo() -> Result<()> {
    let t0 = Instant::now();
    println!(
        "== lb demo: two load balancers in VRRP, XDP direct routing, health-checked web servers =="
    );
    let mut lab = DemoLab::new().context("building the namespace lab")?;
    println!(
        "{} lab: client 10.77.0.10, lb1 10.77.0.2 (priority 150), lb2 10.77.0.3 (priority 100), web servers b1..b3 10.77.0.11-13, VIP {VIP}:80",
        stamp(t0)
    );
    let template = lb_tests::repo_root().join("examples/keepalived-demo.conf.in");
    lab.start_lbd(0, &template, 150)?;
    lab.start_lbd(1, &template, 100)?;
    lab.wait_holder(0, Duration::from_secs(10))?;
    for lb in 0..2 {
        lab.wait_log(lb, "every backend resolved", Duration::from_secs(10))?;
    }
    println!(
        "{} lb1 is VRRP master and holds the VIP; both lbd forward with XDP",
        stamp(t0)
    );

    // The client: one GET every 200 ms, printed as it happens.
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = lab.client.name.clone();
    let (seen2, stop2) = (seen.clone(), stop.clone());
    let loop_thread = std::thread::spawn(move || {
        // Bounded: at most 2 minutes or 600 requests.
        for _ in 0..600 {
            if stop2.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(120) {
                break;
            }
            let started = Instant::now();
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &client, "curl", "-sS", "--max-time", "1"])
                .arg(format!("http://{VIP}/"))
                .output();
            let r = match out {
                Ok(o) if o.status.success() => {
                    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
                }
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Err(e.to_string()),
            };
            match &r {
                Ok(b) => println!("{} client: GET http://{VIP}/ answered by {b}", stamp(t0)),
                Err(e) => println!("{} client: GET http://{VIP}/ failed: {e}", stamp(t0)),
            }
            seen2.lock().unwrap().push((t0.elapsed(), r));
            std::thread::sleep(Duration::from_millis(200).saturating_sub(started.elapsed()));
        }
    });

    std::thread::sleep(Duration::from_millis(2500));
    show(t0, "lbctl vrrp (lb1):", &lab.lbctl(0, &["vrrp"])?);
    show(t0, "lbctl backends (lb1):", &lab.lbctl(0, &["backends"])?);

    println!("{} *** lb1 crashes (link down, lbd killed) ***", stamp(t0));
    let crash = Instant::now();
    lab.crash(0)?;
    lab.wait_holder(1, Duration::from_secs(10))?;
    println!(
        "{} lb2 took over the VIP {} ms after the crash",
        stamp(t0),
        crash.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_millis(1500));
    show(t0, "lbctl vrrp (lb2):", &lab.lbctl(1, &["vrrp"])?);

    println!("{} *** b2's web server stops ***", stamp(t0));
    lab.kill("b2")?;
    lab.wait_log(1, "backend down", Duration::from_secs(10))?;
    let b2_out = t0.elapsed();
    println!(
        "{} lb2's HTTP_GET check took b2 out of the service",
        stamp(t0)
    );
    std::thread::sleep(Duration::from_millis(2000));
    show(t0, "lbctl backends (lb2):", &lab.lbctl(1, &["backends"])?);

    stop.store(true, Ordering::Relaxed);
    let _ = loop_thread.join();
    let seen = seen.lock().unwrap().clone();
    drop(lab);
    println!("{} lab torn down", stamp(t0));

    let answered = |from: Duration, to: Duration, b: &str| {
        seen.iter()
            .filter(|(t, r)| *t >= from && *t < to && r.as_deref() == Ok(b))
            .count()
    };
    let failed = seen.iter().filter(|(_, r)| r.is_err()).count();
    let out_at = b2_out;
    println!(
        "\nclient: {} requests, {failed} failed (during the failover, and before b2's check caught it); after b2 was taken out: b1 {}, b2 {}, b3 {}",
        seen.len(),
        answered(out_at, Duration::MAX, "b1"),
        answered(out_at + Duration::from_millis(200), Duration::MAX, "b2"),
        answered(out_at, Duration::MAX, "b3"),
    );
    for b in ["b1", "b2", "b3"] {
        ensure!(
            answered(Duration::ZERO, Duration::MAX, b) > 0,
            "{b} never answered"
        );
    }
    ensure!(
        answered(out_at + Duration::from_millis(200), Duration::MAX, "b2") == 0,
        "b2 still answered after its check failed"
    );
    Ok(())
}
