//! `cargo xtask test`: every test, one summary.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
};

use anyhow::{bail, Context, Result};

use crate::{build, vm};

/// Totals from libtest's per-binary `test result:` lines (cargo test's on
/// the host, the `vm_ipvs` binary's in the VM).
#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Totals {
    /// Adds a `test result:` line's counts; whether `line` was one.
    pub fn add_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match kind {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
        true
    }

    pub fn add(&mut self, other: &Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

pub fn run(extra: &[String]) -> Result<()> {
    let obj = build::all(false)?;
    let mut cmd = build::cargo(&obj);
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("LB_BIN_DIR", build::target_dir(false))
        .stdout(Stdio::piped());
    eprintln!("xtask: running tests");
    let mut child = cmd.spawn().context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        totals.add_line(&line);
    }
    let status = child.wait()?;
    // The IPVS tier needs a kernel with IPVS: the vm_ipvs tests, ignored in
    // the run above, run in a VM (all of them, only when no filter narrows
    // the run).
    if extra.is_empty() {
        eprintln!("xtask: running the IPVS tests in a VM");
        let tests = vm::Payload::Tests { filter: None };
        match vm::run(&obj, &build::target_dir(false), tests) {
            Ok(vm::Outcome::Ran(vm_totals)) => totals.add(&vm_totals),
            Ok(vm::Outcome::Skipped(why)) => {
                println!("VM tests SKIPPED: {why}");
                totals.ignored += 1;
            }
            Err(e) => {
                println!("VM tests FAILED: {e:#}");
                totals.failed += 1;
            }
        }
    }
    // The fuzz targets, for a bounded time: in CI (CI=true), or when
    // LB_FUZZ_SECONDS asks for it.
    let fuzz_seconds = std::env::var("LB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .or_else(|| (std::env::var("CI").as_deref() == Ok("true")).then_some(30));
    if let (true, Some(seconds)) = (extra.is_empty(), fuzz_seconds) {
        match crate::fuzz::run(seconds) {
            Ok((passed, failed)) => {
                totals.passed += passed;
                totals.failed += failed;
            }
            Err(e) => {
                println!("fuzz targets FAILED to run: {e:#}");
                totals.failed += 1;
            }
        }
    }
    let verdict = if status.success() && totals.failed == 0 {
        "ok"
    } else {
        "FAILED"
    };
    println!();
    println!(
        "test result: {verdict}. {} passed; {} failed; {} ignored (all test binaries)",
        totals.passed, totals.failed, totals.ignored
    );
    println!("{} passed, {} failed", totals.passed, totals.failed);
    if verdict != "ok" {
        bail!("tests failed");
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_cargo_result_lines() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 5 tests");
        assert_eq!(
            t,
            Totals {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}
