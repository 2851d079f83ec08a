//! The NAT lab: clients and real servers on different networks, the load
//! balancer routing between them and the real servers using it as their
//! gateway, as LVS-NAT wants.
//!
//! ```text
//!   client 10.78.1.10 ── br0 (sw-a) ── eth0 lb eth1 ── br0 (sw-b) ── b1 10.78.2.11
//!                           VIP 10.78.1.100 on eth0        gateway  └─ b2 10.78.2.12
//! ```
//! and the same in IPv6 (fd78:1::/64, fd78:2::/64, VIP fd78:1::100).
//! The real servers listen on port 8080; the VIP is port 80.

use std::{
    path::Path,
    process::{Child, Stdio},
};

use anyhow::Result;

use crate::{
    lab::{attach_xdp_pass, start_lbd, tempdir::TempDir},
    netns::{self, Netns},
};

pub const VIP: &str = "10.78.1.100";
pub const VIP6: &str = "fd78:1::100";

pub struct NatLab {
    // Drop order: processes, XDP, namespaces.
    children: Vec<(String, Child)>,
    peer_xdp: Vec<aya::Ebpf>,
    pub client: Netns,
    pub lb: Netns,
    pub backends: Vec<Netns>,
    pub sw_a: Netns,
    pub sw_b: Netns,
    pub dir: TempDir,
}

fn link(switch: &Netns, port: &str, ns: &Netns, ifname: &str) -> Result<()> {
    switch.plug(port, ns, ifname)?;
    ns.ip(&["link", "set", ifname, "up"])?;
    Ok(())
}

fn addr(ns: &Netns, ifname: &str, a: &str) -> Result<()> {
    if a.contains(':') {
        ns.ip(&["addr", "add", a, "dev", ifname, "nodad"])?;
    } else {
        ns.ip(&["addr", "add", a, "dev", ifname])?;
    }
    Ok(())
}

impl NatLab {
    pub fn new(n_backends: usize) -> Result<Self> {
        netns::sweep_stale();
        let prefix = netns::unique_prefix();
        let dir = TempDir::new(&prefix)?;
        let sw_a = Netns::switch(format!("{prefix}-swa"))?;
        let sw_b = Netns::switch(format!("{prefix}-swb"))?;
        let client = Netns::new(format!("{prefix}-c"))?;
        let lb = Netns::new(format!("{prefix}-lb"))?;
        link(&sw_a, "c", &client, "eth0")?;
        link(&sw_a, "lb", &lb, "eth0")?;
        link(&sw_b, "lb", &lb, "eth1")?;
        addr(&client, "eth0", "10.78.1.10/24")?;
        addr(&client, "eth0", "fd78:1::10/64")?;
        addr(&lb, "eth0", "10.78.1.2/24")?;
        addr(&lb, "eth0", "fd78:1::2/64")?;
        addr(&lb, "eth0", &format!("{VIP}/32"))?;
        addr(&lb, "eth0", &format!("{VIP6}/128"))?;
        addr(&lb, "eth1", "10.78.2.1/24")?;
        addr(&lb, "eth1", "fd78:2::1/64")?;
        lb.sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding; \
             echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; \
             echo 1 > /proc/sys/net/ipv4/conf/all/accept_local")?;
        let mut backends = Vec::new();
        for i in 0..n_backends {
            let b = Netns::new(format!("{prefix}-b{}", i + 1))?;
            link(&sw_b, &format!("b{}", i + 1), &b, "eth0")?;
            addr(&b, "eth0", &format!("10.78.2.{}/24", 11 + i))?;
            addr(&b, "eth0", &format!("fd78:2::{:x}/64", 0x11 + i))?;
            b.ip(&["route", "add", "default", "via", "10.78.2.1"])?;
            b.ip(&["-6", "route", "add", "default", "via", "fd78:2::1"])?;
            backends.push(b);
        }
        let mut lab = Self {
            children: Vec::new(),
            peer_xdp: Vec::new(),
            client,
            lb,
            backends,
            sw_a,
            sw_b,
            dir,
        };
        // Senders whose packets native XDP rewrites, both ways.
        lab.client.tx_checksum_off("eth0")?;
        for i in 0..lab.backends.len() {
            lab.backends[i].tx_checksum_off("eth0")?;
            let name = format!("b{}", i + 1);
            let log = lab.dir.path().join(format!("{name}.log"));
            let child = lab.backends[i]
                .command(crate::bin("lb-test-http"))
                .args(["[::]:8080", &name])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?;
            lab.children.push((name, child));
        }
        // Redirected frames leave through both of lb's veths: their peers
        // need an XDP program for native delivery.
        for sw in [&lab.sw_a, &lab.sw_b] {
            let ebpf = sw.enter(|| attach_xdp_pass("lb"))?;
            lab.peer_xdp.push(ebpf);
        }
        Ok(lab)
    }

    /// Starts lbd on both of the balancer's interfaces; waits for `ready`.
    pub fn start_lbd(&mut self, config: &Path, ready: usize) -> Result<()> {
        self.start_lbd_with(config, &["--xdp-mode", "native"], ready)
    }

    /// Starts lbd with extra arguments (e.g. `--dataplane tc`).
    pub fn start_lbd_with(&mut self, config: &Path, args: &[&str], ready: usize) -> Result<()> {
        let mut cmd = self.lb.command(crate::bin("lbd"));
        cmd.arg("-f")
            .arg(config)
            .args(["--interface", "eth0", "--interface", "eth1"])
            .args(args)
            .args(["--pin-path", "none"])
            .arg("--control-socket")
            .arg(self.dir.path().join("lbd.sock"));
        let child = start_lbd(cmd, &self.dir.path().join("lbd.log"), ready)?;
        self.children.push(("lbd".into(), child));
        Ok(())
    }

    pub fn lbd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lbd.log")).unwrap_or_default()
    }

    /// One HTTP GET from the client; the body (trimmed).
    pub fn get(&self, url: &str) -> Result<String> {
        let out =
            netns::run(
                self.client
                    .command("curl")
                    .args(["-sS", "-g", "--max-time", "5", url]),
            )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
