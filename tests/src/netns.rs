//! Network namespaces that remove themselves, and commands inside them.

use std::{
    fs::File,
    os::fd::AsRawFd,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{bail, Context, Result};

/// Prefix of every namespace the tests create: `lbt<pid>x<n>-<role>`.
const PREFIX: &str = "lbt";

/// Runs `cmd`, failing with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("spawning {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// `ip ARGS...`
pub fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

/// A unique prefix for one lab's namespaces.
pub fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes namespaces left by test processes that no longer exist (a test
/// killed with SIGKILL cannot clean up after itself).
pub fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if pid.is_empty() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new("ip").args(["netns", "del", name]).output();
    }
}

/// A network namespace, deleted on drop (also when a test panics).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Result<Self> {
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A namespace holding one bridge, `br0`, up: a lab's switch.
    pub fn switch(name: String) -> Result<Self> {
        let ns = Self::new(name)?;
        ns.ip(&["link", "add", "br0", "type", "bridge"])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(ns)
    }

    /// Cables `host` to this switch: a veth pair with `port` on br0 (up)
    /// and `ifname` in `host`, left down for the host to configure.
    pub fn plug(&self, port: &str, host: &Netns, ifname: &str) -> Result<()> {
        self.ip(&[
            "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", &host.name,
        ])?;
        self.ip(&["link", "set", port, "master", "br0", "up"])?;
        Ok(())
    }

    /// Turns TX checksum offload off on `ifname`: frames whose TCP checksum
    /// the veth left partial would leave native XDP incomplete and be
    /// dropped by the receiver, so senders whose traffic XDP rewrites send
    /// complete checksums, as a NIC without offload would.
    pub fn tx_checksum_off(&self, ifname: &str) -> Result<()> {
        run(self.command("ethtool").args(["-K", ifname, "tx", "off"]))?;
        Ok(())
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command to run inside the namespace (`ip netns exec NAME PROGRAM`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs a shell snippet inside the namespace.
    pub fn sh(&self, script: &str) -> Result<Output> {
        run(self.command("sh").args(["-c", script]))
    }

    /// Runs `f` on a thread that has entered this namespace; the rest of
    /// the process stays where it is.
    pub fn enter<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(&path).with_context(|| format!("opening {path}"))?;
            // SAFETY: a valid namespace fd; only this thread switches.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {path}: {}", std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in namespace panicked"))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
