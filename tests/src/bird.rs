//! A BIRD lab's pieces shared by the ECMP tests: BIRD in a namespace, the
//! children a test owns, and the router's next hops to a VIP.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::Netns;

/// Children killed and reaped when the test ends, passed or failed.
pub struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts BIRD in `ns` with `conf`, its files under `dir` named `name`.
pub fn bird(ns: &Netns, dir: &Path, name: &str, conf: &str) -> Result<Child> {
    let c = dir.join(format!("{name}.conf"));
    std::fs::write(&c, conf)?;
    ns.command("bird")
        .args(["-f", "-c"])
        .arg(&c)
        .arg("-s")
        .arg(dir.join(format!("{name}.ctl")))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log")))?)
        .spawn()
        .context("starting bird (apt-get install bird2, or cargo xtask setup)")
}

/// Next hops of the router's route to `vip`, sorted.
pub fn next_hops(router: &Netns, vip: &str) -> Vec<String> {
    let out = router
        .ip(&["route", "show", vip])
        .map(|o| o.stdout)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    let mut hops: Vec<String> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    hops.sort();
    hops
}

/// Waits until the router's next hops to `vip` are `want`; how long it took.
pub fn wait_hops(router: &Netns, vip: &str, want: &[&str], within: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        let hops = next_hops(router, vip);
        if hops == want {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > within {
            bail!("router next hops {hops:?}, want {want:?} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
