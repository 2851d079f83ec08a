//! The DR lab: a client, a load balancer and backends on one bridge, each in
//! its own network namespace, with the bridge in a namespace of its own so
//! nothing touches the host's network.
//!
//! ```text
//!   client 10.77.0.10 ─┐
//!   lb     10.77.0.2  ─┤ br0 (namespace "sw")
//!   b1     10.77.0.11 ─┤
//!   b2     10.77.0.12 ─┘      VIP 10.77.0.100: on lb's eth0, and on the
//!                             backends' lo with arp_ignore=1/arp_announce=2
//! ```
//!
//! Two things a real NIC would give and veth needs arranged (verified on this
//! kernel): native XDP_TX frames out of a veth are delivered only if its peer
//! has an XDP program attached (a bare XDP_PASS), and the client's veth needs
//! TX checksum offload off, or native XDP forwards TCP with partial checksums
//! that the backend drops.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aya::programs::{Xdp, XdpMode};
use lb_daemon::net::MacAddr;

use crate::netns::{self, Netns};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
pub const LB: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const BACKENDS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 77, 0, 11), Ipv4Addr::new(10, 77, 0, 12)];
/// The IPv6 side of the lab: every host also has fd77::<last octet>.
pub const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);

/// The IPv6 address of a host of the lab, from its IPv4 address.
pub fn v6_of(ip: Ipv4Addr) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, u16::from(ip.octets()[3]))
}

/// Address of backend `i` (0-based): 10.77.0.11, .12, .13, ...
pub fn backend_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 11 + i as u8)
}

/// Deterministic MACs: 02:77:00:00:00:<last octet of the host's address>.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    [0x02, 0x77, 0, 0, 0, ip.octets()[3]]
}

/// Makes `ns` an LVS-DR real server for `vip`: the VIP on lo, never
/// announced or answered for on eth0 (arp_ignore=1, arp_announce=2).
pub fn dr_real_server(ns: &Netns, vip: Ipv4Addr) -> Result<()> {
    ns.ip(&["addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
    ns.sh("for i in all eth0; do \
           echo 1 > /proc/sys/net/ipv4/conf/$i/arp_ignore; \
           echo 2 > /proc/sys/net/ipv4/conf/$i/arp_announce; \
         done")?;
    Ok(())
}

/// A host of the lab.
pub struct Host {
    pub ns: Netns,
    pub ip: Ipv4Addr,
    /// Name of its port on the bridge, in the switch namespace.
    pub port: String,
}

/// A running lab; everything is torn down on drop, panics included.
pub struct DrLab {
    // Field order is drop order: processes first, then XDP, then namespaces.
    children: Vec<(String, Child)>,
    peer_xdp: Vec<aya::Ebpf>,
    lbd_starts: usize,
    pub client: Host,
    pub lb: Host,
    pub backends: Vec<Host>,
    pub switch: Netns,
    pub dir: tempdir::TempDir,
}

pub mod tempdir {
    //! A private directory for configs and logs, removed on drop (kept
    //! when LB_KEEP_LOGS is set, for a post-mortem).
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> std::io::Result<Self> {
            let p = std::env::temp_dir().join(prefix);
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if std::env::var_os("LB_KEEP_LOGS").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    impl AsRef<Path> for TempDir {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }
}

impl DrLab {
    /// Builds the topology and starts an HTTP server on each backend.
    pub fn new() -> Result<Self> {
        Self::with_backends(BACKENDS.len())
    }

    /// The lab with `n` backends (b1 at 10.77.0.11, b2 at .12, ...), each
    /// serving HTTP on port 80 with a body naming it.
    pub fn with_backends(n: usize) -> Result<Self> {
        netns::sweep_stale();
        let prefix = netns::unique_prefix();
        let dir = tempdir::TempDir::new(&prefix)?;
        let switch = Netns::switch(format!("{prefix}-sw"))?;

        let host = |role: &str, ip: Ipv4Addr| -> Result<Host> {
            let ns = Netns::new(format!("{prefix}-{role}"))?;
            let port = role.to_string();
            switch.plug(&port, &ns, "eth0")?;
            let mac = MacAddr(mac_of(ip)).to_string();
            ns.ip(&["link", "set", "eth0", "address", &mac])?;
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            ns.ip(&[
                "addr",
                "add",
                &format!("{}/64", v6_of(ip)),
                "dev",
                "eth0",
                "nodad",
            ])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            Ok(Host { ns, ip, port })
        };
        let client = host("c", CLIENT)?;
        let lb = host("lb", LB)?;
        let mut backends = Vec::new();
        for i in 0..n {
            backends.push(host(&format!("b{}", i + 1), backend_ip(i))?);
        }
        let mut lab = Self {
            children: Vec::new(),
            peer_xdp: Vec::new(),
            lbd_starts: 0,
            client,
            lb,
            backends,
            switch,
            dir,
        };

        // The client's frames cross native XDP.
        lab.client.ns.tx_checksum_off("eth0")?;
        // The load balancer answers ARP (and ND) for the VIP.
        lab.lb
            .ns
            .ip(&["addr", "add", &format!("{VIP}/32"), "dev", "eth0"])?;
        lab.lb.ns.ip(&[
            "addr",
            "add",
            &format!("{VIP6}/128"),
            "dev",
            "eth0",
            "nodad",
        ])?;
        // LVS-DR real servers: the VIP on lo, never announced or answered for
        // (IPv6 answers neighbour solicitations only for the receiving
        // interface's own addresses).
        for b in &lab.backends {
            dr_real_server(&b.ns, VIP)?;
            b.ns.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"])?;
        }
        for i in 0..lab.backends.len() {
            lab.start_backend_server(i, 80)?;
        }
        // Native XDP_TX out of lb's eth0 arrives on its bridge port: give
        // that veth an XDP program so the frames are delivered.
        let port = lab.lb.port.clone();
        let ebpf = lab
            .switch
            .enter(move || attach_xdp_pass(&port))
            .context("attaching XDP_PASS to the load balancer's bridge port")?;
        lab.peer_xdp.push(ebpf);
        Ok(lab)
    }

    /// Starts lb-test-http on backend `i` (0-based) at `port`, answering
    /// with the backend's name (`b1`, ...). Its process is named
    /// `b<i+1>:<port>` for [`DrLab::stop_backend_server`].
    pub fn start_backend_server(&mut self, i: usize, port: u16) -> Result<()> {
        let name = format!("b{}", i + 1);
        let id = format!("{name}:{port}");
        let log = self.dir.path().join(format!("{name}-{port}.log"));
        let child = self.backends[i]
            .ns
            .command(crate::bin("lb-test-http"))
            .args([&format!("[::]:{port}"), &name])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting lb-test-http")?;
        self.children.push((id.clone(), child));
        // Listening before returning, so a check right after sees it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let want = format!(":{port:04X} ");
        while Instant::now() < deadline {
            let out = self.backends[i].ns.sh("cat /proc/net/tcp6")?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text
                .lines()
                .any(|l| l.contains(&want) && l.contains(" 0A "))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{id} not listening after 5 s")
    }

    /// Stops the server started by [`DrLab::start_backend_server`].
    pub fn stop_backend_server(&mut self, i: usize, port: u16) -> Result<()> {
        let id = format!("b{}:{port}", i + 1);
        let at = self
            .children
            .iter()
            .position(|(n, _)| *n == id)
            .with_context(|| format!("{id} not running"))?;
        let (_, mut child) = self.children.remove(at);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Sends SIGHUP to lbd (reload).
    pub fn reload_lbd(&self) -> Result<()> {
        let (_, child) = self
            .children
            .iter()
            .find(|(n, _)| n == "lbd")
            .context("lbd not running")?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        Ok(())
    }

    /// Waits until lbd's log contains `text` (bounded).
    pub fn wait_lbd_log(&self, text: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.lbd_log().contains(text) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "lbd did not log `{text}` within {timeout:?}:\n{}",
            self.lbd_log()
        )
    }

    /// Turns IP forwarding on in the load balancer (NAT and TUN find their
    /// next hop in the FIB, which answers only where forwarding is on).
    pub fn lb_forwarding(&self) -> Result<()> {
        self.lb
            .ns
            .sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding; \
             echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")?;
        Ok(())
    }

    /// TUN real servers: the project's TC program strips IPIP/IP6IP6 on each
    /// backend's eth0 (this kernel has no ipip module).
    pub fn backends_decapsulate(&mut self) -> Result<()> {
        for b in &self.backends {
            let ebpf = b.ns.enter(|| attach_tc_decap("eth0"))?;
            self.peer_xdp.push(ebpf);
            // The decapsulated packet arrives on eth0 for an address on lo.
            b.ns.sh("echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter; \
                     echo 0 > /proc/sys/net/ipv4/conf/eth0/rp_filter")?;
        }
        Ok(())
    }

    /// One HTTP GET from the client to `url`; the body (trimmed).
    pub fn get(&self, url: &str) -> Result<String> {
        let out =
            netns::run(
                self.client
                    .ns
                    .command("curl")
                    .args(["-sS", "-g", "--max-time", "5", url]),
            )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Writes a config file into the lab's directory.
    pub fn write_config(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }

    /// Starts `lbd` on the load balancer's eth0 and waits until every backend
    /// of the configuration has a MAC.
    pub fn start_lbd(&mut self, config: &Path, xdp_mode: &str) -> Result<()> {
        let n = self.backends.len();
        self.start_lbd_ready(config, xdp_mode, n)
    }

    /// Starts `lbd` and waits until `ready` backends have a MAC.
    pub fn start_lbd_ready(&mut self, config: &Path, xdp_mode: &str, ready: usize) -> Result<()> {
        self.start_lbd_full(config, xdp_mode, ready, &[], &[])
    }

    /// lbd's control socket in this lab (lbd always gets its own, so labs
    /// running side by side never share the default one).
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("lbd.sock")
    }

    /// Starts `lbd` on eth0 with extra arguments and waits until `ready`
    /// backends of a service have a MAC.
    pub fn start_lbd_with(&mut self, config: &Path, args: &[&str], ready: usize) -> Result<()> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.start_lbd_env(config, ready, &args, &[])
    }

    /// Starts `lbd` in an XDP mode with extra arguments and environment.
    pub fn start_lbd_full(
        &mut self,
        config: &Path,
        xdp_mode: &str,
        ready: usize,
        extra_args: &[String],
        env: &[(&str, String)],
    ) -> Result<()> {
        let mut args = vec!["--xdp-mode".to_string(), xdp_mode.to_string()];
        args.extend_from_slice(extra_args);
        self.start_lbd_env(config, ready, &args, env)
    }

    /// As [`DrLab::start_lbd_full`] (native XDP), with lbd run under
    /// `wrapper` (e.g. `prlimit --nofile=1024:1024 --`).
    pub fn start_lbd_wrapped(
        &mut self,
        config: &Path,
        ready: usize,
        wrapper: &[&str],
        args: &[String],
    ) -> Result<()> {
        self.lbd_starts += 1;
        let log = self.lbd_log_path();
        let mut cmd = self.lb.ns.command(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(crate::bin("lbd"))
            .arg("-f")
            .arg(config)
            .args(["--interface", "eth0", "--xdp-mode", "native"])
            .arg("--control-socket")
            .arg(self.control_socket())
            .args(args);
        let child = start_lbd(cmd, &log, ready)?;
        self.children.push(("lbd".into(), child));
        Ok(())
    }

    /// lbd's process id.
    pub fn lbd_pid(&self) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| n == "lbd")
            .map(|(_, c)| c.id())
    }

    /// Starts `lbd` on eth0 and waits until `ready` backends of a service
    /// have a MAC. Each start logs to a file of its own (`lbd.log`,
    /// `lbd-2.log`, ...); `lbd_log` reads the latest.
    fn start_lbd_env(
        &mut self,
        config: &Path,
        ready: usize,
        args: &[String],
        env: &[(&str, String)],
    ) -> Result<()> {
        self.lbd_starts += 1;
        let log = self.lbd_log_path();
        let mut cmd = self.lb.ns.command(crate::bin("lbd"));
        cmd.arg("-f")
            .arg(config)
            .args(["--interface", "eth0"])
            .arg("--control-socket")
            .arg(self.control_socket())
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let child = start_lbd(cmd, &log, ready)?;
        self.children.push(("lbd".into(), child));
        Ok(())
    }

    /// Runs `lbctl ARGS...` on the host against this lab's lbd (its exit
    /// status is the caller's to check).
    pub fn lbctl(&self, args: &[&str]) -> Result<std::process::Output> {
        std::process::Command::new(crate::bin("lbctl"))
            .arg("--control-socket")
            .arg(self.control_socket())
            .args(args)
            .output()
            .context("running lbctl")
    }

    /// Sends `signal` to lbd.
    pub fn signal_lbd(&self, signal: i32) -> Result<()> {
        let (_, child) = self
            .children
            .iter()
            .find(|(n, _)| n == "lbd")
            .context("lbd not running")?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        Ok(())
    }

    fn lbd_log_path(&self) -> PathBuf {
        match self.lbd_starts {
            0 | 1 => self.dir.path().join("lbd.log"),
            n => self.dir.path().join(format!("lbd-{n}.log")),
        }
    }

    /// The log of the latest lbd so far.
    pub fn lbd_log(&self) -> String {
        std::fs::read_to_string(self.lbd_log_path()).unwrap_or_default()
    }

    /// Stops lbd with SIGTERM and waits for it; returns its exit status.
    pub fn stop_lbd(&mut self) -> Result<std::process::ExitStatus> {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == "lbd")
            .context("lbd not running")?;
        let (_, mut child) = self.children.remove(i);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("lbd did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP GET from the client to the VIP; the body (trimmed).
    pub fn get_vip(&self) -> Result<String> {
        let out = netns::run(self.client.ns.command("curl").args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://{VIP}/"),
        ]))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs `n` requests through the VIP; counts answers by backend. Panics
    /// (with the lbd log) on any failed request.
    pub fn spread(&self, n: usize) -> BTreeMap<String, usize> {
        let mut answers = BTreeMap::new();
        for i in 0..n {
            let body = self
                .get_vip()
                .unwrap_or_else(|e| panic!("request {i}: {e:#}\nlbd log:\n{}", self.lbd_log()));
            *answers.entry(body).or_default() += 1;
        }
        answers
    }

    /// Names of the XDP programs attached to the load balancer's eth0.
    pub fn lb_xdp_attached(&self) -> Result<bool> {
        let out = self.lb.ns.ip(&["-d", "link", "show", "eth0"])?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("prog/xdp"))
    }
}

/// An expected spread, as `spread` returns it: answers by backend.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

impl Drop for DrLab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts lbd from `cmd` (its stderr in `log`) and waits, at most 15 s,
/// until it has logged `ready=N` for a service: the backends of that
/// service have their MACs (or next hops). Fails with the log when lbd
/// exits or times out first.
pub fn start_lbd(mut cmd: std::process::Command, log: &Path, ready: usize) -> Result<Child> {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting lbd")?;
    let want = format!("ready={ready}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(&want) {
            return Ok(child);
        }
        if let Some(st) = child.try_wait()? {
            bail!("lbd exited ({st}) before it was ready:\n{text}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("lbd not ready after 15 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Loads the project's object and attaches its TC decapsulation program to
/// `iface`'s ingress (call from inside the interface's namespace).
pub fn attach_tc_decap(iface: &str) -> Result<aya::Ebpf> {
    use aya::programs::{tc, SchedClassifier, TcAttachType};
    let object = lb_daemon::bpf_object::embedded()?;
    let mut ebpf = aya::Ebpf::load(object)?;
    let _ = tc::qdisc_add_clsact(iface);
    let prog: &mut SchedClassifier = ebpf
        .program_mut(lb_common::TC_DECAP_PROGRAM)
        .context("tc_decap program missing from the object")?
        .try_into()?;
    prog.load()?;
    prog.attach(iface, TcAttachType::Ingress)?;
    Ok(ebpf)
}

/// Loads the project's object and attaches its bare XDP_PASS program to
/// `iface` in native mode (call from inside the interface's namespace). The
/// attachment lasts as long as the returned object.
pub fn attach_xdp_pass(iface: &str) -> Result<aya::Ebpf> {
    let object = lb_daemon::bpf_object::embedded()?;
    let mut ebpf = aya::Ebpf::load(object)?;
    let prog: &mut Xdp = ebpf
        .program_mut(lb_common::XDP_PASS_PROGRAM)
        .context("xdp_pass program missing from the object")?
        .try_into()?;
    prog.load()?;
    prog.attach(iface, XdpMode::Driver)?;
    Ok(ebpf)
}
