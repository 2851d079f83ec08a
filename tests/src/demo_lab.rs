//! The whole system in namespaces, for `cargo xtask run`: a client, two
//! load balancers in one VRRP router (the VIP on whichever is master, XDP
//! DR on both), three web servers with health checks.
//!
//! ```text
//!   client 10.77.0.10 ─┐
//!   lb1    10.77.0.2  ─┤ br0 (namespace "sw")      VIP 10.77.0.100 by VRRP
//!   lb2    10.77.0.3  ─┤
//!   b1..b3 10.77.0.11..13 (the VIP on lo, LVS-DR real servers)
//! ```

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use lb_daemon::net::MacAddr;

use crate::{
    lab::{attach_xdp_pass, dr_real_server, mac_of, tempdir::TempDir},
    netns::{self, Netns},
};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
pub const LBS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3)];
pub const BACKENDS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 77, 0, 11),
    Ipv4Addr::new(10, 77, 0, 12),
    Ipv4Addr::new(10, 77, 0, 13),
];

pub struct DemoLab {
    // Drop order: processes, XDP, namespaces.
    children: Vec<(String, Child)>,
    peer_xdp: Vec<aya::Ebpf>,
    pub client: Netns,
    pub lbs: Vec<Netns>,
    pub backends: Vec<Netns>,
    pub switch: Netns,
    pub dir: TempDir,
}

impl DemoLab {
    pub fn new() -> Result<Self> {
        netns::sweep_stale();
        let prefix = netns::unique_prefix();
        let dir = TempDir::new(&prefix)?;
        let switch = Netns::switch(format!("{prefix}-sw"))?;
        let host = |role: &str, ip: Ipv4Addr| -> Result<Netns> {
            let ns = Netns::new(format!("{prefix}-{role}"))?;
            switch.plug(role, &ns, "eth0")?;
            let mac = MacAddr(mac_of(ip)).to_string();
            ns.ip(&["link", "set", "eth0", "address", &mac])?;
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            Ok(ns)
        };
        let client = host("c", CLIENT)?;
        let lbs = vec![host("lb1", LBS[0])?, host("lb2", LBS[1])?];
        let mut backends = Vec::new();
        for (i, ip) in BACKENDS.iter().enumerate() {
            backends.push(host(&format!("b{}", i + 1), *ip)?);
        }
        let mut lab = Self {
            children: Vec::new(),
            peer_xdp: Vec::new(),
            client,
            lbs,
            backends,
            switch,
            dir,
        };
        lab.client.tx_checksum_off("eth0")?;
        for b in &lab.backends {
            dr_real_server(b, VIP)?;
        }
        for i in 0..lab.backends.len() {
            lab.start_backend(i)?;
        }
        for port in ["lb1", "lb2"] {
            let ebpf = lab.switch.enter(move || attach_xdp_pass(port))?;
            lab.peer_xdp.push(ebpf);
        }
        Ok(lab)
    }

    /// Starts the web server of backend `i` (0-based).
    pub fn start_backend(&mut self, i: usize) -> Result<()> {
        let name = format!("b{}", i + 1);
        let child = self.backends[i]
            .command(crate::bin("lb-test-http"))
            .args(["[::]:80", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.children.push((name, child));
        Ok(())
    }

    /// Serves backend `i` (0-based) with `program` (`LISTEN NAME`, as
    /// lb-test-http) instead of its web server.
    pub fn serve_with(&mut self, i: usize, program: &str) -> Result<()> {
        let name = format!("b{}", i + 1);
        self.kill(&name)?;
        let child = self.backends[i]
            .command(crate::bin(program))
            .args(["[::]:80", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.children.push((name, child));
        Ok(())
    }

    /// Stops a named process (`b2`, `lb1`) with SIGKILL.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let at = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("{name} not running"))?;
        let (_, mut child) = self.children.remove(at);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    pub fn socket(&self, lb: usize) -> PathBuf {
        self.dir.path().join(format!("lb{}.sock", lb + 1))
    }

    pub fn log(&self, lb: usize) -> PathBuf {
        self.dir.path().join(format!("lb{}.log", lb + 1))
    }

    /// Starts lbd on load balancer `lb` (0-based) with `template`, its
    /// priority and router id filled in.
    pub fn start_lbd(&mut self, lb: usize, template: &Path, priority: u8) -> Result<()> {
        let text = std::fs::read_to_string(template)?
            .replace("@PRIORITY@", &priority.to_string())
            .replace("@ROUTER@", &format!("lb{}", lb + 1));
        let conf = self.dir.path().join(format!("lb{}.conf", lb + 1));
        std::fs::write(&conf, text)?;
        let child = self.lbs[lb]
            .command(crate::bin("lbd"))
            .arg("-f")
            .arg(&conf)
            .args(["--interface", "eth0", "--pin-path", "none"])
            .arg("--control-socket")
            .arg(self.socket(lb))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log(lb))?)
            .spawn()
            .context("starting lbd")?;
        self.children.push((format!("lb{}", lb + 1), child));
        Ok(())
    }

    /// Whether load balancer `lb` holds the VIP (a crashed one keeps it on
    /// its downed link, so this asks each node, not "who has it").
    pub fn holds_vip(&self, lb: usize) -> bool {
        self.lbs[lb]
            .ip(&["-4", "addr", "show", "dev", "eth0"])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/32")))
            .unwrap_or(false)
    }

    /// Waits (bounded) until load balancer `lb` holds the VIP.
    pub fn wait_holder(&self, lb: usize, limit: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.holds_vip(lb) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("lb{} did not take the VIP within {limit:?}", lb + 1)
    }

    /// Waits (bounded) until lbd on `lb` logged `text`.
    pub fn wait_log(&self, lb: usize, text: &str, limit: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if std::fs::read_to_string(self.log(lb))
                .unwrap_or_default()
                .contains(text)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("lb{} did not log `{text}` within {limit:?}", lb + 1)
    }

    /// `lbctl ARGS` against load balancer `lb`: its standard output.
    pub fn lbctl(&self, lb: usize, args: &[&str]) -> Result<String> {
        let out = Command::new(crate::bin("lbctl"))
            .arg("--control-socket")
            .arg(self.socket(lb))
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Sends `sig` to a named process (`lb1`) and waits (bounded) for it
    /// to exit.
    pub fn stop_with(&mut self, name: &str, sig: i32, limit: Duration) -> Result<()> {
        let at = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("{name} not running"))?;
        let (_, mut child) = self.children.remove(at);
        // SAFETY: a plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("{name} did not exit within {limit:?}")
    }

    /// A crash of load balancer `lb`: its link goes down and lbd dies.
    pub fn crash(&mut self, lb: usize) -> Result<()> {
        self.lbs[lb].ip(&["link", "set", "eth0", "down"])?;
        self.kill(&format!("lb{}", lb + 1))
    }
}

impl Drop for DemoLab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
