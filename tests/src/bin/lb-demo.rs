//! `cargo xtask run` with no arguments: the DR lab in namespaces, lbd with
//! the example configuration, and requests through the VIP showing which
//! backend answered each. Everything is torn down before it exits.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use lb_tests::lab::{self, DrLab};

const REQUESTS: usize = 10;

fn main() {
    if let Err(e) = demo() {
        eprintln!("demo failed: {e:#}");
        std::process::exit(1);
    }
}

fn demo() -> Result<()> {
    println!("== lb demo: XDP direct routing, round robin ==");
    let mut lab = DrLab::new().context("building the namespace lab")?;
    println!(
        "lab: client {} -> VIP {}:80 on the load balancer {} -> backends {}",
        lab::CLIENT,
        lab::VIP,
        lab::LB,
        lab::BACKENDS.map(|b| b.to_string()).join(", ")
    );
    let config = lb_tests::repo_root().join("examples/keepalived-dr.conf");
    println!("starting lbd -f {} --interface eth0", config.display());
    lab.start_lbd(&config, "native").context("starting lbd")?;
    println!("lbd is forwarding (XDP native on the load balancer's eth0)\n");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 1..=REQUESTS {
        let body = lab.get_vip()?;
        println!("request {i:2}: GET http://{}/ answered by {body}", lab::VIP);
        *seen.entry(body).or_default() += 1;
    }
    println!();
    for (backend, n) in &seen {
        println!("{backend}: {n} of {REQUESTS} requests");
    }
    let status = lab.stop_lbd()?;
    println!("lbd stopped ({status}); tearing the lab down");
    drop(lab);
    anyhow::ensure!(
        seen.len() == lab::BACKENDS.len(),
        "not every backend answered: {seen:?}"
    );
    Ok(())
}
