//! `cargo xtask vm-test`: the IPVS tier against a real kernel IPVS.
//!
//! This machine's kernel has no IPVS, so the checks run in a small VM:
//! Debian's cloud kernel (which has ip_vs and every scheduler as modules)
//! under qemu with software emulation, an initramfs of busybox, ipvsadm,
//! iproute2's ip, the modules, and the test binary with lbd and lbctl (each with the
//! libraries `ldd` names). One boot runs every check (`lb-vm-ipvs`); its
//! output comes back on a second serial port.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{build, setup};

/// What the VM needs on the host, with a file that proves each.
const VM_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("busybox-static", "/bin/busybox"),
    ("ipvsadm", "/usr/sbin/ipvsadm"),
    ("iproute2", "/usr/sbin/ip"),
    ("binutils", "/usr/bin/strip"),
];

/// The kernel's meta package: its first dependency is the image to boot.
const KERNEL_META: &str = "linux-image-cloud-amd64";

/// Modules to load (with their dependencies, found in each module's
/// `depends=`). ip_vs_twos is not built in Debian's kernel; the tests use
/// that for the missing-scheduler error.
const MODULES: &[&str] = &[
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "veth",
];

/// The whole boot, checks included, must end within this.
const BOOT_TIMEOUT: Duration = Duration::from_secs(480);

const TEST_BIN: &str = "lb-vm-ipvs";
const EXIT_MARKER: &str = "LB-VM-EXIT";

pub enum Outcome {
    Ran { passed: u64, failed: u64 },
    Skipped(String),
}

fn work_dir() -> PathBuf {
    build::target_dir(false)
        .parent()
        .expect("target dir")
        .join("vm")
}

/// Runs the VM checks with binaries from `bin_dir` (built beforehand).
pub fn run(bin_dir: &Path, filter: Option<&str>) -> Result<Outcome> {
    if let Err(e) = setup::ensure_packages(VM_PACKAGES) {
        return Ok(Outcome::Skipped(format!(
            "qemu and the VM's tools cannot be installed here ({e:#})"
        )));
    }
    let dir = work_dir();
    fs::create_dir_all(&dir)?;
    let (vmlinuz, modules) = kernel(&dir)?;
    let initrd = dir.join("initrd.cpio");
    let started = Instant::now();
    initramfs(&initrd, bin_dir, &modules, filter)?;
    eprintln!(
        "xtask: VM initramfs ready ({} MB, {:.1}s); booting",
        fs::metadata(&initrd)?.len() >> 20,
        started.elapsed().as_secs_f32()
    );
    let out = boot(&dir, &vmlinuz, &initrd)?;
    let mut totals = None;
    let mut exit = None;
    for line in out.lines() {
        println!("{line}");
        if let Some(code) = line.trim().strip_prefix(EXIT_MARKER) {
            exit = code.trim().parse::<i32>().ok();
        }
        if let Some(t) = parse_totals(line) {
            totals = Some(t);
        }
    }
    match (totals, exit) {
        (Some((passed, failed)), Some(_)) => Ok(Outcome::Ran { passed, failed }),
        _ => {
            let console = fs::read_to_string(dir.join("console.txt")).unwrap_or_default();
            let tail: Vec<_> = console.lines().rev().take(40).collect();
            for l in tail.into_iter().rev() {
                eprintln!("vm console: {l}");
            }
            bail!("the VM test run did not complete (exit marker {exit:?}); console above")
        }
    }
}

/// `N passed, M failed` alone on a line.
fn parse_totals(line: &str) -> Option<(u64, u64)> {
    let (p, f) = line.trim().split_once(", ")?;
    let p = p.strip_suffix(" passed")?.parse().ok()?;
    let f = f.strip_suffix(" failed")?.parse().ok()?;
    Some((p, f))
}

/// Downloads (once) and unpacks Debian's cloud kernel; returns vmlinuz and
/// the modules directory.
fn kernel(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let unpacked = dir.join("kernel");
    if let Some(found) = find_kernel(&unpacked) {
        return Ok(found);
    }
    let image = kernel_package().or_else(|_| {
        setup::apt_update()?;
        kernel_package()
    })?;
    eprintln!("xtask: downloading {image} (about 27 MB)");
    let st = Command::new("apt-get")
        .args(["download", "-q", &image])
        .current_dir(dir)
        .status()
        .context("apt-get download")?;
    if !st.success() {
        bail!("apt-get download {image} failed ({st})");
    }
    let deb = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&image) && n.ends_with(".deb"))
        })
        .context("the downloaded kernel package")?;
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()?;
    if !st.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    find_kernel(&unpacked).context("no vmlinuz and modules in the kernel package")
}

fn kernel_package() -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_META])
        .output()
        .context("apt-cache")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-"))
                .map(str::to_string)
        })
        .with_context(|| format!("apt-cache knows no {KERNEL_META}"))
}

fn find_kernel(unpacked: &Path) -> Option<(PathBuf, PathBuf)> {
    let boot = fs::read_dir(unpacked.join("boot")).ok()?;
    let vmlinuz = boot.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("vmlinuz-"))
    })?;
    let version = vmlinuz
        .file_name()?
        .to_str()?
        .strip_prefix("vmlinuz-")?
        .to_string();
    let modules = unpacked.join("lib/modules").join(version);
    modules.is_dir().then_some((vmlinuz, modules))
}

/// Every module under `dir` by name (`-` spelled `_`).
fn module_index(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            module_index(&p, out)?;
        } else if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            if let Some(stem) = name.strip_suffix(".ko") {
                out.insert(stem.replace('-', "_"), p.clone());
            }
        }
    }
    Ok(())
}

/// The `depends=` of a module's .modinfo.
fn module_deps(path: &Path) -> Result<Vec<String>> {
    let data = fs::read(path)?;
    let key = b"\0depends=";
    let Some(at) = data.windows(key.len()).position(|w| w == key) else {
        return Ok(Vec::new());
    };
    let rest = &data[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect())
}

/// `wanted` and their dependencies, each after what it depends on.
fn load_order(index: &BTreeMap<String, PathBuf>, wanted: &[&str]) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if done.contains(name) {
            return Ok(());
        }
        done.insert(name.to_string());
        let path = index
            .get(name)
            .with_context(|| format!("module {name} is not in the kernel package"))?;
        for dep in module_deps(path)? {
            visit(&dep, index, done, order)?;
        }
        order.push(name.to_string());
        Ok(())
    }
    let (mut done, mut order) = (BTreeSet::new(), Vec::new());
    for w in wanted {
        visit(w, index, &mut done, &mut order)?;
    }
    Ok(order)
}

/// The libraries `ldd` lists for a binary (absolute paths).
fn libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(bin).output().context("ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

/// A newc cpio archive.
#[derive(Default)]
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    /// A directory and its parents, once each.
    fn dir(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            cur = format!("{cur}/{part}");
            if self.dirs.insert(cur.clone()) {
                self.entry(&cur, 0o040755, &[], (0, 0));
            }
        }
    }
    fn file(&mut self, path: &str, data: &[u8], mode: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, data, (0, 0));
    }
    fn symlink(&mut self, path: &str, target: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o120777, target.as_bytes(), (0, 0));
    }
    /// A host file at the same path, following symlinks.
    fn host_file(&mut self, path: &Path) -> Result<()> {
        let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.file(&path.to_string_lossy(), &data, 0o755);
        Ok(())
    }
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }
}

/// A copy of a binary without its debug information (lbd's debug build is
/// over 100 MB with it).
fn stripped(bin: &Path, dir: &Path) -> Result<Vec<u8>> {
    let out = dir.join(format!(
        "{}.stripped",
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("bin")
    ));
    let st = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(bin)
        .status()
        .context("strip")?;
    if !st.success() {
        bail!("strip {} failed", bin.display());
    }
    Ok(fs::read(&out)?)
}

fn initramfs(path: &Path, bin_dir: &Path, modules: &Path, filter: Option<&str>) -> Result<()> {
    let mut cpio = Cpio::default();
    for d in [
        "/proc", "/sys", "/dev", "/run", "/tmp", "/etc", "/lb", "/sbin", "/usr/bin",
    ] {
        cpio.dir(d);
    }
    cpio.entry("/dev/console", 0o020600, &[], (5, 1));
    cpio.symlink("/var/run", "/run");
    cpio.file("/etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644);
    cpio.host_file(Path::new("/bin/busybox"))?;

    let mut libs = BTreeSet::new();
    for tool in ["/usr/sbin/ipvsadm", "/usr/sbin/ip"] {
        cpio.host_file(Path::new(tool))?;
        libs.extend(libraries(Path::new(tool))?);
    }
    let scratch = work_dir();
    for name in [TEST_BIN, "lbd", "lbctl", "lb-test-http"] {
        let bin = bin_dir.join(name);
        if !bin.exists() {
            bail!("{} is not built", bin.display());
        }
        libs.extend(libraries(&bin)?);
        cpio.file(&format!("/lb/{name}"), &stripped(&bin, &scratch)?, 0o755);
    }
    for lib in &libs {
        cpio.host_file(lib)?;
    }

    let mut index = BTreeMap::new();
    module_index(modules, &mut index)?;
    let order = load_order(&index, MODULES)?;
    for m in &order {
        cpio.file(&format!("/modules/{m}.ko"), &fs::read(&index[m])?, 0o644);
    }
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin LB_BIN_DIR=/lb RUST_BACKTRACE=1\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mount -t tmpfs tmpfs /run\n\
         mount -t tmpfs tmpfs /tmp\n\
         for m in {modules}; do insmod /modules/$m.ko || echo \"insmod $m failed\" > /dev/ttyS1; done\n\
         ip link set lo up\n\
         /lb/{TEST_BIN} {filter} > /dev/ttyS1 2>&1\n\
         echo \"{EXIT_MARKER} $?\" > /dev/ttyS1\n\
         sync\n\
         poweroff -f\n",
        modules = order.join(" "),
        filter = filter.unwrap_or(""),
    );
    cpio.file("/init", init.as_bytes(), 0o755);
    fs::write(path, cpio.finish())?;
    Ok(())
}

fn boot(dir: &Path, vmlinuz: &Path, initrd: &Path) -> Result<String> {
    let out = dir.join("out.txt");
    let console = dir.join("console.txt");
    let _ = fs::remove_file(&out);
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1"])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", out.display()))
        .stdin(Stdio::null())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    loop {
        if let Some(st) = child.try_wait()? {
            eprintln!(
                "xtask: VM powered off after {:.1}s ({st})",
                started.elapsed().as_secs_f32()
            );
            break;
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "xtask: the VM ran past {}s and was stopped",
                BOOT_TIMEOUT.as_secs()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(fs::read_to_string(&out).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_line_is_recognised() {
        assert_eq!(parse_totals("7 passed, 1 failed"), Some((7, 1)));
        assert_eq!(parse_totals("test x ... ok"), None);
    }

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut c = Cpio::default();
        c.file("/a/b", b"hello", 0o644);
        let buf = c.finish();
        assert!(buf.starts_with(b"070701"));
        assert_eq!(buf.len() % 4, 0);
        // The directory /a comes before /a/b.
        let text = String::from_utf8_lossy(&buf);
        assert!(text.find("a\0").unwrap() < text.find("a/b\0").unwrap());
        assert!(text.contains("TRAILER!!!"));
    }
}
