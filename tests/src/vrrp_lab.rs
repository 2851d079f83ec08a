//! The VRRP lab: routers and a client on one bridge, each in a network
//! namespace of its own, the bridge in another, so nothing touches the
//! host's network. Routers run `lbd` or keepalived; everything they start
//! is killed and every namespace removed on drop, panics included.
//!
//! ```text
//!   r1 10.88.0.1 ─┐
//!   r2 10.88.0.2 ─┤ br0 (namespace "sw")
//!   c  10.88.0.10 ┘      VIP 10.88.0.100 moves between the routers
//! ```

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::lab::tempdir::TempDir;
use crate::netns::{self, Netns};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 10);

/// The address of router `i` (0-based): 10.88.0.(i+1).
pub fn router_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, i as u8 + 1)
}

/// What runs on a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Lbd,
    Keepalived,
}

struct Proc {
    name: String,
    child: Child,
}

pub struct VrrpLab {
    // Field order is drop order: processes, then namespaces.
    procs: Vec<Proc>,
    pub routers: Vec<Netns>,
    pub client: Netns,
    pub switch: Netns,
    pub dir: TempDir,
}

impl VrrpLab {
    /// `n` routers and a client on one bridge.
    pub fn new(n: usize) -> Result<Self> {
        netns::sweep_stale();
        let prefix = netns::unique_prefix();
        let dir = TempDir::new(&prefix)?;
        let switch = Netns::switch(format!("{prefix}-sw"))?;
        // No multicast snooping: adverts reach every port at once.
        switch.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        let host = |role: &str, ip: Ipv4Addr| -> Result<Netns> {
            let ns = Netns::new(format!("{prefix}-{role}"))?;
            switch.plug(role, &ns, "eth0")?;
            let o = ip.octets();
            let mac = format!("02:88:00:00:00:{:02x}", o[3]);
            ns.ip(&["link", "set", "eth0", "address", &mac])?;
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            Ok(ns)
        };
        let mut routers = Vec::new();
        for i in 0..n {
            routers.push(host(&format!("r{}", i + 1), router_ip(i))?);
        }
        let client = host("c", CLIENT)?;
        Ok(Self {
            procs: Vec::new(),
            routers,
            client,
            switch,
            dir,
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Starts `daemon` on router `r` with `config`; `name` identifies the
    /// process (and its config and log files) from then on.
    pub fn start(&mut self, name: &str, r: usize, daemon: Daemon, config: &str) -> Result<()> {
        self.start_with(name, r, daemon, config, &[])
    }

    /// The run directory of lbd on router `r` (`--run-dir`): one per
    /// router, shared by the lbd that follow one another there, never the
    /// host's /run/lb.
    pub fn run_dir(&self, r: usize) -> PathBuf {
        self.path(&format!("run-r{}", r + 1))
    }

    /// [`VrrpLab::start`] with more command-line arguments.
    pub fn start_with(
        &mut self,
        name: &str,
        r: usize,
        daemon: Daemon,
        config: &str,
        args: &[&str],
    ) -> Result<()> {
        if self.procs.iter().any(|p| p.name == name) {
            bail!("{name} is already running");
        }
        let conf = self.path(&format!("{name}.conf"));
        std::fs::write(&conf, config)?;
        let mut cmd = match daemon {
            Daemon::Lbd => {
                let mut c = self.routers[r].command(crate::bin("lbd"));
                c.arg("-f")
                    .arg(&conf)
                    .arg("--run-dir")
                    .arg(self.run_dir(r))
                    // A control socket of its own, never the host's.
                    .arg("--control-socket")
                    .arg(self.path(&format!("{name}.sock")))
                    .env("RUST_LOG", "info,lb_daemon::vrrp=debug");
                c
            }
            Daemon::Keepalived => {
                let mut c = self.routers[r].command("keepalived");
                c.args(["-n", "-l", "-D", "-P", "-f"]).arg(&conf);
                for (flag, file) in [("-p", "pid"), ("-r", "vrrp.pid"), ("-c", "chk.pid")] {
                    c.arg(flag).arg(self.path(&format!("{name}.{file}")));
                }
                c
            }
        };
        cmd.args(args);
        self.spawn(name, cmd)
    }

    /// Starts any program on router `r` (a test server, say) under `name`.
    pub fn start_program(
        &mut self,
        name: &str,
        r: usize,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Result<()> {
        let mut cmd = self.routers[r].command(program);
        cmd.args(args);
        self.spawn(name, cmd)
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) -> Result<()> {
        if self.procs.iter().any(|p| p.name == name) {
            bail!("{name} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.log")))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.procs.push(Proc {
            name: name.to_string(),
            child,
        });
        Ok(())
    }

    /// Sends `sig` to process `name`; SIGKILL also forgets it.
    pub fn signal(&mut self, name: &str, sig: i32) -> Result<()> {
        let i = self.index(name)?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.procs[i].child.id() as i32, sig) };
        if sig == libc::SIGKILL {
            let mut p = self.procs.remove(i);
            let _ = p.child.wait();
        }
        Ok(())
    }

    /// Waits for `name` to exit (bounded) and forgets it.
    pub fn wait_exit(&mut self, name: &str, limit: Duration) -> Result<std::process::ExitStatus> {
        let i = self.index(name)?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.procs[i].child.try_wait()? {
                self.procs.remove(i);
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("{name} still running after {limit:?}\n{}", self.log(name));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops `name` as an operator would (SIGTERM) and waits for it.
    pub fn stop(&mut self, name: &str) -> Result<std::process::ExitStatus> {
        self.signal(name, libc::SIGTERM)?;
        self.wait_exit(name, Duration::from_secs(10))
    }

    /// Fails if `name` has exited.
    pub fn check_running(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        if let Some(st) = self.procs[i].child.try_wait()? {
            bail!("{name} exited ({st}):\n{}", self.log(name));
        }
        Ok(())
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.procs
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("{name} is not running"))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Every log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                out.push_str(&format!("==== {}\n{text}\n", p.display()));
            }
        }
        out
    }

    /// Whether router `r` has `addr` on any interface.
    pub fn has_addr(&self, r: usize, addr: impl Into<std::net::IpAddr>) -> bool {
        let addr = addr.into();
        let family = if addr.is_ipv6() { "-6" } else { "-4" };
        let Ok(out) = self.routers[r].ip(&["-o", family, "addr", "show"]) else {
            return false;
        };
        let needle = format!(" {addr}/");
        String::from_utf8_lossy(&out.stdout).contains(&needle)
    }

    /// The routers holding the VIP.
    pub fn vip_holders(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|r| self.has_addr(*r, VIP))
            .collect()
    }

    /// Polls (every 5 ms) until the VIP is on router `r` alone; returns how
    /// long that took.
    pub fn wait_vip_only_on(&self, r: usize, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let holders = self.vip_holders();
            if holders == [r] {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!(
                    "VIP not on r{} alone after {limit:?}: held by {:?}\n{}",
                    r + 1,
                    holders.iter().map(|h| h + 1).collect::<Vec<_>>(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls until router `r` holds the VIP (others may still hold it too).
    pub fn wait_vip_on(&self, r: usize, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if self.has_addr(r, VIP) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!("VIP not on r{} after {limit:?}\n{}", r + 1, self.logs());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Checks for `span` that the VIP stays on router `r` alone.
    pub fn assert_vip_stays_on(&self, r: usize, span: Duration) -> Result<()> {
        let end = Instant::now() + span;
        while Instant::now() < end {
            let holders = self.vip_holders();
            if holders != [r] {
                bail!(
                    "VIP moved: held by {:?}, expected r{} alone\n{}",
                    holders.iter().map(|h| h + 1).collect::<Vec<_>>(),
                    r + 1,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Whether the VIP answers the client within `wait`: a TCP connection
    /// to port 9, refused or accepted, is an answer from whoever holds it.
    pub fn vip_answers(&self, wait: Duration) -> bool {
        self.client.enter(move || Ok(probe(wait))).unwrap_or(false)
    }

    /// Probes the VIP from the client every few milliseconds until it
    /// answers; how long that took, or `None` after `limit`.
    pub fn wait_vip_answers(&self, limit: Duration) -> Option<Duration> {
        self.client
            .enter(move || {
                let start = Instant::now();
                while start.elapsed() < limit {
                    if probe(Duration::from_millis(20)) {
                        return Ok(Some(start.elapsed()));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None)
            })
            .unwrap_or(None)
    }
}

/// One TCP SYN to VIP:9; a SYN-ACK or a RST is an answer.
fn probe(wait: Duration) -> bool {
    let addr = SocketAddr::from((VIP, 9));
    match TcpStream::connect_timeout(&addr, wait) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    }
}

impl Drop for VrrpLab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            // SAFETY: signalling our own child; a graceful stop first so
            // keepalived's children go too.
            unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for p in &mut self.procs {
            while Instant::now() < deadline {
                if matches!(p.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        // Whatever our children left running in the namespaces (keepalived
        // forks): each by its pid.
        for ns in self.routers.iter().chain([&self.client]) {
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", &ns.name])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: a process inside a namespace this lab created.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
    }
}
