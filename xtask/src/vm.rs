//! `cargo xtask vm-test`: the IPVS tier against a real kernel IPVS.
//!
//! This machine's kernel has no IPVS, so the `vm_ipvs` test target
//! (`tests/vm/ipvs.rs`) runs in a small VM: Debian's cloud kernel (which
//! has ip_vs and every scheduler as modules) under qemu with software
//! emulation, an initramfs of busybox, ipvsadm, iproute2's ip, the modules,
//! the test binary (`cargo test --no-run` builds it; its tests are
//! `#[ignore]`d on the host) with lbd, lbctl and lb-test-http (each with the
//! libraries `ldd` names). One boot runs every test with libtest's own
//! runner and output, which comes back on a second serial port; the host
//! reads its `test result:` line. `cargo xtask bench ipvs` boots the same
//! VM with `lb-bench-ipvs` in place of the tests.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{build, setup, test::Totals};

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

/// The whole boot, tests included, must end within this.
const BOOT_TIMEOUT: Duration = Duration::from_secs(480);

/// The test target the VM runs (`[[test]]` of the lb-tests package).
const TEST_TARGET: &str = "vm_ipvs";
/// The benchmark the VM runs instead for `cargo xtask bench ipvs`.
const BENCH_BIN: &str = "lb-bench-ipvs";
const EXIT_MARKER: &str = "LB-VM-EXIT";

/// What one boot of the VM runs.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// The `vm_ipvs` tests, those whose name contains the filter if any.
    Tests { filter: Option<&'a str> },
    /// `lb-bench-ipvs`: passed when it exits 0.
    Bench,
}

/// How a VM run went: libtest's counts (the benchmark counts as one test),
/// or why no VM could run here.
pub enum Outcome {
    Ran(Totals),
    Skipped(String),
}

pub fn work_dir() -> PathBuf {
    build::target_dir(false)
        .parent()
        .expect("target dir")
        .join("vm")
}

/// Runs `payload` in the VM, with the host binaries of `bin_dir` (built
/// beforehand with the eBPF object `obj`, which the test binary embeds too).
pub fn run(obj: &Path, bin_dir: &Path, payload: Payload) -> Result<Outcome> {
    if let Err(e) = setup::ensure_packages(VM_PACKAGES) {
        return Ok(Outcome::Skipped(format!(
            "qemu and the VM's tools cannot be installed here ({e:#})"
        )));
    }
    let (program, args) = match payload {
        Payload::Tests { filter } => {
            // One thread: the tests share the kernel's one IPVS table.
            let mut args = vec!["--ignored".to_string(), "--test-threads=1".to_string()];
            args.extend(filter.map(str::to_string));
            (test_binary(obj)?, args)
        }
        Payload::Bench => (bin_dir.join(BENCH_BIN), Vec::new()),
    };
    let dir = work_dir();
    fs::create_dir_all(&dir)?;
    let (vmlinuz, modules) = kernel(&dir)?;
    let initrd = dir.join("initrd.cpio");
    let started = Instant::now();
    initramfs(&initrd, bin_dir, &modules, &program, &args)?;
    eprintln!(
        "xtask: VM initramfs ready ({} MB, {:.1}s); booting",
        fs::metadata(&initrd)?.len() >> 20,
        started.elapsed().as_secs_f32()
    );
    let out = boot(&dir, &vmlinuz, &initrd)?;
    for line in out.lines() {
        println!("{line}");
    }
    match outcome(&out, payload) {
        Some(totals) => Ok(Outcome::Ran(totals)),
        None => {
            let console = fs::read_to_string(dir.join("console.txt")).unwrap_or_default();
            let tail: Vec<_> = console.lines().rev().take(40).collect();
            for l in tail.into_iter().rev() {
                eprintln!("vm console: {l}");
            }
            bail!("the VM run did not complete (no exit marker or no test result); console above")
        }
    }
}

/// What the VM's output says: libtest's `test result:` totals for the
/// tests, the exit status for the benchmark (one pass or one failure);
/// `None` when the run did not finish (no exit marker, or tests that never
/// summed up).
fn outcome(out: &str, payload: Payload) -> Option<Totals> {
    let mut totals = Totals::default();
    let (mut results, mut exit) = (0, None);
    for line in out.lines() {
        if let Some(code) = line.trim().strip_prefix(EXIT_MARKER) {
            exit = code.trim().parse::<i32>().ok();
        }
        results += usize::from(totals.add_line(line));
    }
    let exit = exit?;
    match payload {
        Payload::Tests { .. } if results == 0 => None,
        // A test binary that failed without a failed test (it crashed
        // after its summary, say) must not pass.
        Payload::Tests { .. } if exit != 0 && totals.failed == 0 => {
            totals.failed = 1;
            Some(totals)
        }
        Payload::Tests { .. } => Some(totals),
        Payload::Bench => Some(Totals {
            passed: u64::from(exit == 0),
            failed: u64::from(exit != 0),
            ..Totals::default()
        }),
    }
}

/// Builds the `vm_ipvs` test target without running it (as aya builds
/// the integration tests it runs in its VMs); returns its executable, from
/// cargo's JSON messages.
fn test_binary(obj: &Path) -> Result<PathBuf> {
    let mut cmd = build::cargo(obj);
    // `--workspace`, as `cargo xtask test` builds every test: the same
    // feature set, so after that run this finds its binary built already.
    cmd.args([
        "test",
        "--workspace",
        "--test",
        TEST_TARGET,
        "--no-run",
        "--message-format=json",
    ])
    .stdout(Stdio::piped());
    eprintln!("xtask: building the {TEST_TARGET} tests");
    let mut child = cmd.spawn().context("running cargo test --no-run")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut found = None;
    for line in BufReader::new(stdout).lines() {
        found = found.or(test_executable(&line?));
    }
    let st = child.wait()?;
    if !st.success() {
        bail!("cargo test --no-run failed ({st})");
    }
    found.with_context(|| format!("cargo built no test executable named {TEST_TARGET}"))
}

/// The executable of a `compiler-artifact` message for the test target.
fn test_executable(message: &str) -> Option<PathBuf> {
    let v: serde_json::Value = serde_json::from_str(message).ok()?;
    (v["reason"] == "compiler-artifact"
        && v["target"]["name"] == TEST_TARGET
        && v["profile"]["test"] == true)
        .then(|| v["executable"].as_str().map(PathBuf::from))
        .flatten()
}

/// Downloads (once) and unpacks Debian's cloud kernel; returns vmlinuz and
/// the modules directory.
pub fn kernel(dir: &Path) -> Result<(PathBuf, PathBuf)> {
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

/// The VM's initramfs: tools, libraries, modules, lbd, lbctl,
/// lb-test-http and `program`, and an /init that runs `program ARGS`.
fn initramfs(
    path: &Path,
    bin_dir: &Path,
    modules: &Path,
    program: &Path,
    args: &[String],
) -> Result<()> {
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
    let helpers = ["lbd", "lbctl", "lb-test-http"].map(|name| bin_dir.join(name));
    for bin in helpers.iter().map(PathBuf::as_path).chain([program]) {
        if !bin.exists() {
            bail!("{} is not built", bin.display());
        }
        let name = bin
            .file_name()
            .and_then(|n| n.to_str())
            .context("binary name")?;
        libs.extend(libraries(bin)?);
        cpio.file(&format!("/lb/{name}"), &stripped(bin, &scratch)?, 0o755);
    }
    let program = program
        .file_name()
        .and_then(|n| n.to_str())
        .context("program name")?;
    for lib in &libs {
        cpio.host_file(lib)?;
    }

    let mut index = BTreeMap::new();
    module_index(modules, &mut index)?;
    let order = load_order(&index, MODULES)?;
    for m in &order {
        cpio.file(&format!("/modules/{m}.ko"), &fs::read(&index[m])?, 0o644);
    }
    // Backtraces for panics, not for every anyhow error a failing test
    // returns (libtest prints those with their causes).
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin LB_BIN_DIR=/lb RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=0\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mount -t tmpfs tmpfs /run\n\
         mount -t tmpfs tmpfs /tmp\n\
         for m in {modules}; do insmod /modules/$m.ko || echo \"insmod $m failed\" > /dev/ttyS1; done\n\
         ip link set lo up\n\
         /lb/{program} {args} > /dev/ttyS1 2>&1\n\
         echo \"{EXIT_MARKER} $?\" > /dev/ttyS1\n\
         sync\n\
         poweroff -f\n",
        modules = order.join(" "),
        args = args.iter().map(|a| shell_quoted(a)).collect::<Vec<_>>().join(" "),
    );
    cpio.file("/init", init.as_bytes(), 0o755);
    fs::write(path, cpio.finish())?;
    Ok(())
}

/// `arg` as one word of a shell command line (a test filter may hold
/// anything).
fn shell_quoted(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
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
        let tests = Payload::Tests { filter: None };
        let out = "running 8 tests\ntest a ... ok\n\
                   test result: FAILED. 7 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\
                   LB-VM-EXIT 101\n";
        let t = outcome(out, tests).unwrap();
        assert_eq!((t.passed, t.failed), (7, 1));
        // No summary, or no exit marker: the run did not finish.
        assert!(outcome("test a ... ok\nLB-VM-EXIT 0\n", tests).is_none());
        assert!(outcome("test result: ok. 8 passed; 0 failed\n", tests).is_none());
        // A non-zero exit never passes.
        let t = outcome(
            "test result: ok. 8 passed; 0 failed\nLB-VM-EXIT 134\n",
            tests,
        )
        .unwrap();
        assert_eq!(t.failed, 1);
        let t = outcome("bench FAILED: x\nLB-VM-EXIT 1\n", Payload::Bench).unwrap();
        assert_eq!((t.passed, t.failed), (0, 1));
    }

    #[test]
    fn the_test_executable_is_read_from_cargo_messages() {
        let msg = r#"{"reason":"compiler-artifact","target":{"name":"vm_ipvs","kind":["test"]},"profile":{"test":true},"executable":"/t/debug/deps/vm_ipvs-0123"}"#;
        assert_eq!(
            test_executable(msg),
            Some(PathBuf::from("/t/debug/deps/vm_ipvs-0123"))
        );
        let lib = msg.replace(r#""test":true"#, r#""test":false"#);
        assert_eq!(test_executable(&lib), None);
        assert_eq!(test_executable(r#"{"reason":"build-finished"}"#), None);
    }

    #[test]
    fn filters_reach_the_vm_shell_as_one_word() {
        assert_eq!(shell_quoted("lbd_auto"), "'lbd_auto'");
        assert_eq!(shell_quoted("it's a b"), r"'it'\''s a b'");
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
