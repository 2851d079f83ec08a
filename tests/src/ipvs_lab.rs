//! The IPVS tier's lab inside the VM (`cargo xtask vm-test`, `cargo xtask
//! bench ipvs`): a client and two HTTP backends in namespaces, routed by
//! the VM's own root namespace where lbd runs, and the tools both the
//! `vm_ipvs` tests and `lb-bench-ipvs` drive it with.
//!
//! The names (namespaces `cli`, `b0`, `b1`, links `l-*`, the VIP on `lo`)
//! are fixed: one VM runs one lab at a time, and nothing here is meant for
//! the host.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::netns::{run, Netns};

/// `ipvsadm ARGS...`, its standard output.
pub fn ipvsadm(args: &[&str]) -> Result<String> {
    let out = run(Command::new("ipvsadm").args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Empties the kernel's IPVS table: what one test or tier leaves must not
/// reach the next (they share the VM's one table).
pub fn clear_ipvs() {
    let _ = run(Command::new("ipvsadm").arg("-C"));
}

/// Polls `f` every 200 ms until it says yes, for at most `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The service's address, on the VM's loopback.
pub const VIP: &str = "10.10.0.100";

/// The client (`cli`, 10.10.1.2) and backends `b0`, `b1` (10.10.2.2,
/// 10.10.3.2, each serving `lb-test-http` on port 80 answering its name),
/// each behind a veth whose outer end the root namespace routes; removed
/// on drop, lbd (if the caller started one) killed first.
pub struct Lab {
    cli: Netns,
    backends: Vec<Netns>,
    servers: Vec<Option<Child>>,
    /// The lbd the caller started for this lab.
    pub lbd: Option<Child>,
}

impl Lab {
    pub fn new() -> Result<Self> {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        run(Command::new("ip").args(["addr", "add", &format!("{VIP}/32"), "dev", "lo"]))?;
        let link = |ns: &Netns, name: &str, net: u8| -> Result<()> {
            let (outer, inner) = (format!("l-{name}"), format!("i-{name}"));
            run(Command::new("ip").args([
                "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name,
            ]))?;
            run(Command::new("ip").args([
                "addr",
                "add",
                &format!("10.10.{net}.1/24"),
                "dev",
                &outer,
            ]))?;
            run(Command::new("ip").args(["link", "set", &outer, "up"]))?;
            ns.ip(&["addr", "add", &format!("10.10.{net}.2/24"), "dev", &inner])?;
            ns.ip(&["link", "set", &inner, "up"])?;
            ns.ip(&["route", "add", "default", "via", &format!("10.10.{net}.1")])?;
            Ok(())
        };
        let cli = Netns::new("cli".into())?;
        link(&cli, "cli", 1)?;
        let mut backends = Vec::new();
        for i in 0..2u8 {
            let ns = Netns::new(format!("b{i}"))?;
            link(&ns, &format!("b{i}"), 2 + i)?;
            backends.push(ns);
        }
        let mut lab = Lab {
            cli,
            backends,
            servers: vec![None, None],
            lbd: None,
        };
        lab.start_server(0)?;
        lab.start_server(1)?;
        Ok(lab)
    }

    /// The client's namespace (`cli`, 10.10.1.2 behind `l-cli`).
    pub fn client(&self) -> &Netns {
        &self.cli
    }

    /// (Re)starts backend `i`'s HTTP server.
    pub fn start_server(&mut self, i: usize) -> Result<()> {
        let child = self.backends[i]
            .command(crate::bin("lb-test-http"))
            .args(["0.0.0.0:80", &format!("b{i}")])
            .stdout(Stdio::null())
            .spawn()?;
        self.servers[i] = Some(child);
        Ok(())
    }

    /// Kills backend `i`'s HTTP server (its health check then fails).
    pub fn stop_server(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One GET from the client to VIP:80: the name of the backend that answered.
    pub fn get(&self) -> Result<String> {
        self.cli.enter(|| {
            let addr: SocketAddr = format!("{VIP}:80").parse()?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body.lines().last().unwrap_or("").trim().to_string())
        })
    }

    /// The backends that answered `n` GETs.
    pub fn answers(&self, n: usize) -> Result<BTreeSet<String>> {
        (0..n).map(|_| self.get()).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.lbd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stop_server(0);
        self.stop_server(1);
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{VIP}/32"), "dev", "lo"])
            .output();
    }
}

/// The lab's configuration: rr over both backends, NAT, TCP_CHECK every
/// second, backend 0 at weight `w0`.
pub fn lab_config(w0: u32) -> String {
    let mut c = format!(
        "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
    );
    for (i, w) in [(0, w0), (1, 1)] {
        c += &format!(
            " real_server 10.10.{}.2 80 {{\n  weight {w}\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n",
            2 + i
        );
    }
    c + "}\n"
}

/// lbd's control socket in the lab.
pub const CONTROL: &str = "/tmp/lbd-vm.sock";

/// `lbctl --json ARGS` against the lbd of the lab.
pub fn lbctl(args: &[&str]) -> Result<serde_json::Value> {
    let out = run(Command::new(crate::bin("lbctl"))
        .args(["--control-socket", CONTROL, "--json"])
        .args(args))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
    Ok(v)
}
