//! `cargo xtask deb`: the Debian package, `target/dist/lb_<version>_amd64.deb`.
//!
//! The tree is staged from the built binaries and `dist/` (the unit, the
//! example configuration as a conffile, /etc/default/lbd, the maintainer
//! scripts of `dist/debian/`), the man pages and completions rendered from
//! the command lines, and packed by `dpkg-deb`; `dpkg-shlibdeps` computes
//! the library dependencies and `lintian` checks the result.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{man, root, setup};

/// What packing and checking need on the host, with a file that proves each.
pub const DEB_PACKAGES: &[(&str, &str)] = &[
    ("dpkg-dev", "/usr/bin/dpkg-shlibdeps"),
    ("lintian", "/usr/bin/lintian"),
    ("binutils", "/usr/bin/strip"),
];

/// The package's name (and its directory under /usr/share and /etc).
pub const NAME: &str = "lb";
/// Where the unit goes (bookworm's systemd reads /lib/systemd/system).
const UNIT_DIR: &str = "lib/systemd/system";

/// The version the workspace declares.
pub fn default_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Builds the package from `lbd` and `lbctl` in `bin_dir`; writes
/// `out/lb_<version>_amd64.deb` and returns its path.
pub fn build(bin_dir: &Path, out: &Path, version: &str) -> Result<PathBuf> {
    setup::ensure_packages(DEB_PACKAGES)?;
    let stage = out.join(format!("deb-{version}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let dist = root().join("dist");
    let usr = stage.join("usr");

    for bin in ["lbd", "lbctl"] {
        let from = bin_dir.join(bin);
        if !from.exists() {
            bail!("{} is not built (cargo xtask build)", from.display());
        }
        let to = usr.join("sbin").join(bin);
        mkdir(to.parent().unwrap())?;
        run(Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(&to)
            .arg(&from))?;
        chmod(&to, 0o755)?;
    }

    // The unit as dist/ has it, with the binaries where the package puts
    // them (dist's unit names /usr/local/sbin, where a manual install goes).
    let unit = read(&dist.join("systemd/lbd.service"))?.replace("/usr/local/sbin/", "/usr/sbin/");
    write(
        &stage.join(UNIT_DIR).join("lbd.service"),
        unit.as_bytes(),
        0o644,
    )?;

    let conffiles = ["/etc/lb/keepalived.conf", "/etc/default/lbd"];
    copy(
        &dist.join("lb/keepalived.conf"),
        &stage.join("etc/lb/keepalived.conf"),
        0o644,
    )?;
    copy(
        &dist.join("default/lbd"),
        &stage.join("etc/default/lbd"),
        0o644,
    )?;

    // Man pages (gzipped, as policy wants) and completions.
    let rendered = out.join(format!("man-{version}"));
    man::generate(&rendered)?;
    let man8 = usr.join("share/man/man8");
    mkdir(&man8)?;
    for e in fs::read_dir(rendered.join("man"))? {
        let p = e?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .context("page name")?;
        let to = man8.join(format!("{name}.gz"));
        gzip(&read_bytes(&p)?, &to)?;
    }
    let comp = rendered.join("completions");
    for bin in ["lbd", "lbctl"] {
        copy(
            &comp.join(format!("{bin}.bash")),
            &usr.join("share/bash-completion/completions").join(bin),
            0o644,
        )?;
        copy(
            &comp.join(format!("_{bin}")),
            &usr.join("share/zsh/vendor-completions")
                .join(format!("_{bin}")),
            0o644,
        )?;
        copy(
            &comp.join(format!("{bin}.fish")),
            &usr.join("share/fish/vendor_completions.d")
                .join(format!("{bin}.fish")),
            0o644,
        )?;
    }

    // What /usr/share/lb holds: the Grafana dashboard, the example.
    let share = usr.join("share").join(NAME);
    let grafana = dist.join("grafana");
    if grafana.is_dir() {
        for e in fs::read_dir(&grafana)? {
            let p = e?.path();
            let name = p.file_name().context("file name")?;
            copy(&p, &share.join("grafana").join(name), 0o644)?;
        }
    }
    copy(
        &dist.join("lb/keepalived.conf"),
        &share.join("keepalived.conf.example"),
        0o644,
    )?;

    let doc = usr.join("share/doc").join(NAME);
    copy(
        &dist.join("debian/copyright"),
        &doc.join("copyright"),
        0o644,
    )?;
    gzip(changelog(version)?.as_bytes(), &doc.join("changelog.gz"))?;

    // The control area.
    let control_dir = stage.join("DEBIAN");
    mkdir(&control_dir)?;
    let depends = shlib_depends(&[usr.join("sbin/lbd"), usr.join("sbin/lbctl")])?;
    let control = read(&dist.join("debian/control"))?
        .replace("@VERSION@", version)
        .replace("@DEPENDS@", &depends)
        .replace("@INSTALLED_SIZE@", &(du_kib(&stage)?).to_string());
    write(&control_dir.join("control"), control.as_bytes(), 0o644)?;
    let mut list = conffiles.join("\n");
    list.push('\n');
    write(&control_dir.join("conffiles"), list.as_bytes(), 0o644)?;
    for script in ["postinst", "prerm", "postrm"] {
        copy(
            &dist.join("debian").join(script),
            &control_dir.join(script),
            0o755,
        )?;
    }
    write(
        &control_dir.join("md5sums"),
        md5sums(&stage)?.as_bytes(),
        0o644,
    )?;

    dir_modes(&stage)?;
    let deb = out.join(format!("{NAME}_{version}_amd64.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&stage)
        .arg(&deb))?;
    Ok(deb)
}

/// `lintian` on the package: Ok when it reports no error (its warnings are
/// printed).
pub fn lintian(deb: &Path) -> Result<String> {
    setup::ensure_packages(DEB_PACKAGES)?;
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .context("running lintian")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("lintian reports errors on {}:\n{text}", deb.display());
    }
    Ok(text)
}

/// `Depends:` for the libraries the binaries link (dpkg-shlibdeps reads a
/// debian/control of its working directory, so it gets a minimal one).
fn shlib_depends(bins: &[PathBuf]) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("lb-shlibdeps-{}", std::process::id()));
    mkdir(&dir.join("debian"))?;
    write(
        &dir.join("debian/control"),
        format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: amd64\n").as_bytes(),
        0o644,
    )?;
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.arg("-O").current_dir(&dir);
    for b in bins {
        cmd.arg(format!("-e{}", b.display()));
    }
    let out = cmd.output().context("running dpkg-shlibdeps")?;
    let _ = fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "dpkg-shlibdeps failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_string)
        .context("dpkg-shlibdeps printed no shlibs:Depends")
}

/// A one-entry changelog dated by the last commit (so rebuilding the same
/// commit gives the same file).
fn changelog(version: &str) -> Result<String> {
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root())
        .output();
    let epoch = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".to_string());
    let date = Command::new("date")
        .args(["-R", "-u", "-d", &format!("@{epoch}")])
        .output()
        .context("date")?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    Ok(format!(
        "{NAME} ({version}) unstable; urgency=medium\n\n  \
         * Built from the lb repository by cargo xtask deb.\n\n \
         -- lb developers <lb@example.org>  {date}\n"
    ))
}

/// The tree's size in KiB (the control file's Installed-Size).
fn du_kib(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for p in files(dir)? {
        total += fs::metadata(&p)?.len().div_ceil(1024);
    }
    Ok(total)
}

/// `md5sum` lines of every file outside DEBIAN/, paths relative to the root.
fn md5sums(stage: &Path) -> Result<String> {
    let mut rel: Vec<String> = files(stage)?
        .iter()
        .filter_map(|p| p.strip_prefix(stage).ok())
        .filter(|p| !p.starts_with("DEBIAN"))
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    rel.sort();
    let out = Command::new("md5sum")
        .args(&rel)
        .current_dir(stage)
        .output()
        .context("md5sum")?;
    if !out.status.success() {
        bail!("md5sum failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(files(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn gzip(data: &[u8], to: &Path) -> Result<()> {
    use std::io::Write;
    mkdir(to.parent().context("parent")?)?;
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(fs::File::create(to)?)
        .spawn()
        .context("gzip")?;
    child.stdin.take().context("gzip stdin")?.write_all(data)?;
    if !child.wait()?.success() {
        bail!("gzip {} failed", to.display());
    }
    chmod(to, 0o644)
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("running {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

/// Every directory of the tree 0755, whatever the umask was.
fn dir_modes(dir: &Path) -> Result<()> {
    chmod(dir, 0o755)?;
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            dir_modes(&p)?;
        }
    }
    Ok(())
}

fn chmod(p: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

fn read(p: &Path) -> Result<String> {
    fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

fn read_bytes(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).with_context(|| format!("reading {}", p.display()))
}

fn write(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    mkdir(p.parent().context("parent")?)?;
    fs::write(p, data).with_context(|| format!("writing {}", p.display()))?;
    chmod(p, mode)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    write(to, &read_bytes(from)?, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binaries `cargo xtask test` built (LB_BIN_DIR), else target/debug.
    fn bin_dir() -> PathBuf {
        std::env::var_os("LB_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::build::target_dir(false))
    }

    fn dpkg_deb(args: &[&str], deb: &Path) -> String {
        let out = Command::new("dpkg-deb")
            .args(args)
            .arg(deb)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg-deb {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The package holds what the issue lists, with the right modes; its
    /// control fields and conffiles are right; the packaged lbd accepts
    /// the packaged configuration; lintian finds no error.
    #[test]
    fn the_package_holds_the_daemon_unit_conffiles_and_passes_lintian() {
        let out = std::env::temp_dir().join(format!("lb-deb-test-{}", std::process::id()));
        let deb = build(&bin_dir(), &out, "0.0.1~test").unwrap();
        assert!(
            deb.ends_with("lb_0.0.1~test_amd64.deb"),
            "{}",
            deb.display()
        );

        let list = dpkg_deb(&["-c"], &deb);
        let has = |mode: &str, path: &str| {
            list.lines().any(|l| {
                l.starts_with(mode)
                    && l.contains(" root/root ")
                    && l.ends_with(&format!(" .{path}"))
            })
        };
        for (mode, path) in [
            ("-rwxr-xr-x", "/usr/sbin/lbd"),
            ("-rwxr-xr-x", "/usr/sbin/lbctl"),
            ("-rw-r--r--", "/lib/systemd/system/lbd.service"),
            ("-rw-r--r--", "/etc/lb/keepalived.conf"),
            ("-rw-r--r--", "/etc/default/lbd"),
            ("-rw-r--r--", "/usr/share/man/man8/lbd.8.gz"),
            ("-rw-r--r--", "/usr/share/man/man8/lbctl.8.gz"),
            ("-rw-r--r--", "/usr/share/man/man8/lbctl-set-weight.8.gz"),
            ("-rw-r--r--", "/usr/share/bash-completion/completions/lbctl"),
            ("-rw-r--r--", "/usr/share/zsh/vendor-completions/_lbctl"),
            (
                "-rw-r--r--",
                "/usr/share/fish/vendor_completions.d/lbctl.fish",
            ),
            ("-rw-r--r--", "/usr/share/doc/lb/copyright"),
            ("-rw-r--r--", "/usr/share/lb/grafana/lb.json"),
        ] {
            assert!(has(mode, path), "{mode} {path} missing from:\n{list}");
        }

        let field = |name: &str| {
            dpkg_deb(&["-f"], &deb)
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
        };
        assert_eq!(field("Package").as_deref(), Some("lb"));
        assert_eq!(field("Version").as_deref(), Some("0.0.1~test"));
        assert_eq!(field("Architecture").as_deref(), Some("amd64"));
        let depends = field("Depends").unwrap();
        assert!(depends.contains("libc6 (>= "), "{depends}");
        assert!(depends.contains("passwd"), "{depends}");

        // The control area: conffiles, maintainer scripts.
        let ctrl = out.join("control");
        let st = Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(&ctrl)
            .status()
            .unwrap();
        assert!(st.success());
        let conffiles = fs::read_to_string(ctrl.join("conffiles")).unwrap();
        assert_eq!(conffiles, "/etc/lb/keepalived.conf\n/etc/default/lbd\n");
        let postinst = fs::read_to_string(ctrl.join("postinst")).unwrap();
        assert!(postinst.contains("groupadd --system lb"), "{postinst}");
        assert!(postinst.contains("--signal=USR1"), "{postinst}");

        // The unit runs the packaged binary; the packaged lbd accepts the
        // packaged configuration.
        let root = out.join("root");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success());
        let unit = fs::read_to_string(root.join("lib/systemd/system/lbd.service")).unwrap();
        assert!(unit.contains("ExecStart=/usr/sbin/lbd "), "{unit}");
        assert!(!unit.contains("/usr/local/"), "{unit}");
        let t = Command::new(root.join("usr/sbin/lbd"))
            .args(["-t", "-f"])
            .arg(root.join("etc/lb/keepalived.conf"))
            .output()
            .unwrap();
        assert!(
            t.status.success(),
            "lbd -t: {}",
            String::from_utf8_lossy(&t.stderr)
        );

        let report = lintian(&deb).unwrap();
        eprintln!("lintian:\n{report}");
        let _ = fs::remove_dir_all(&out);
    }
}
