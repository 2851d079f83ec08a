//! `cargo xtask`: set up the toolchain, build the eBPF object and the daemon,
//! run the demo or lbd, run every test.

mod bench_failover;
mod build;
mod deb;
mod fuzz;
mod man;
mod setup;
mod test;
mod vm;
mod vm_systemd;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building the eBPF object needs (idempotent).
    Setup,
    /// Build the eBPF object.
    BuildEbpf,
    /// Build the eBPF object, then lbd and lbctl with it embedded.
    Build {
        /// Optimised build (what a host should run).
        #[arg(long)]
        release: bool,
    },
    /// No arguments: the demo lab in network namespaces. With arguments:
    /// build lbd and run it on this host with them (`cargo xtask run -- -f FILE -i eth0`).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        lbd_args: Vec<String>,
    },
    /// The IPVS tier against a real kernel IPVS: the `vm_ipvs` tests, run
    /// in a VM booted with Debian's cloud kernel under qemu (installs qemu
    /// and what the VM needs).
    VmTest {
        /// Only the tests whose name contains this.
        filter: Option<String>,
    },
    /// The Debian package under a real systemd: Debian bookworm booted in
    /// the VM, the package installed, started, reloaded, restarted in
    /// place, upgraded, stopped and removed (tests/vm/systemd/check.sh).
    VmSystemd,
    /// The fuzz targets (config parser, VRRP decoder), each for a bounded
    /// time (`cargo xtask test` runs them too when CI=true or
    /// LB_FUZZ_SECONDS is set).
    Fuzz {
        #[arg(long, default_value = "30")]
        seconds: u32,
    },
    /// Man pages (lbd.8, lbctl.8 and one per lbctl verb) and bash, zsh and
    /// fish completions, from the command-line definitions.
    Man {
        /// Where to write them (man/ and completions/ below it).
        #[arg(long, value_name = "DIR", default_value = "target/dist")]
        out: PathBuf,
    },
    /// The Debian package, target/dist/lb_<version>_amd64.deb (release
    /// binaries; `--debug` packs the debug build, as the VM tests do),
    /// checked with lintian.
    Deb {
        #[arg(long)]
        debug: bool,
        /// The package's version (default: the workspace's).
        #[arg(long)]
        version: Option<String>,
        /// Where to write it.
        #[arg(long, value_name = "DIR", default_value = "target/dist")]
        out: PathBuf,
    },
    /// Every test: host unit tests, BPF test-run tests, namespace tests, and
    /// the IPVS VM tests.
    Test {
        /// Extra arguments for `cargo test` (a filter, `--nocapture`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// The full keepalived differential sweep: keepalived 2.2.7 and lbd on
    /// `tests/configs/` and every generated variant (`cargo xtask test` runs
    /// a seeded sample of them).
    Conformance {
        /// Reproduce a run: the seed `cargo xtask test` printed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Benchmarks. `dataplane` (default): the XDP program's cost per packet
    /// with BPF_PROG_TEST_RUN (`cargo xtask bench dataplane -- CALLS
    /// [FILTER]`, FILTER a part of the row names, e.g. "TUN mh v4").
    /// `failover`: VRRP failover time, lbd against keepalived
    /// (`cargo xtask bench failover -- --runs N`). `ipvs`: requests/s and
    /// CPU through the IPVS tier and the XDP (SKB) tier in the VM.
    Bench {
        #[arg(default_value = "dataplane")]
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the repository")
        .to_path_buf()
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Setup => setup::ensure(),
        Command::BuildEbpf => {
            setup::ensure()?;
            build::ebpf().map(|_| ())
        }
        Command::Build { release } => {
            setup::ensure()?;
            build::all(release).map(|_| ())
        }
        Command::Run { lbd_args } => {
            setup::ensure()?;
            if lbd_args.is_empty() {
                build::run_demo()
            } else {
                let obj = build::ebpf()?;
                build::run_lbd(&obj, &lbd_args)
            }
        }
        Command::VmTest { filter } => {
            setup::ensure()?;
            let obj = build::all(false)?;
            let tests = vm::Payload::Tests {
                filter: filter.as_deref(),
            };
            match vm::run(&obj, &build::target_dir(false), tests)? {
                vm::Outcome::Ran(t) if t.failed == 0 => Ok(()),
                vm::Outcome::Ran(t) => anyhow::bail!("{} VM tests failed", t.failed),
                vm::Outcome::Skipped(why) => {
                    eprintln!("xtask: VM tests SKIPPED: {why}");
                    Ok(())
                }
            }
        }
        Command::VmSystemd => {
            setup::ensure()?;
            let t = vm_systemd::run()?;
            println!("{} passed, {} failed", t.passed, t.failed);
            if t.failed > 0 {
                anyhow::bail!("{} systemd VM checks failed", t.failed);
            }
            Ok(())
        }
        Command::Fuzz { seconds } => {
            setup::ensure()?;
            let (_, failed) = fuzz::run(seconds)?;
            if failed > 0 {
                anyhow::bail!("{failed} fuzz targets failed");
            }
            Ok(())
        }
        Command::Man { out } => {
            let out = if out.is_absolute() {
                out
            } else {
                root().join(out)
            };
            let written = man::generate(&out)?;
            for p in written {
                println!("{}", p.display());
            }
            Ok(())
        }
        Command::Deb {
            debug,
            version,
            out,
        } => {
            setup::ensure()?;
            build::all(!debug)?;
            let out = if out.is_absolute() {
                out
            } else {
                root().join(out)
            };
            let version = version.unwrap_or_else(deb::default_version);
            let deb = deb::build(&build::target_dir(!debug), &out, &version)?;
            print!("{}", deb::lintian(&deb)?);
            println!("{}", deb.display());
            Ok(())
        }
        Command::Test { cargo_args } => {
            setup::ensure()?;
            test::run(&cargo_args)
        }
        Command::Conformance { seed } => {
            setup::ensure()?;
            // Read by tests/tests/keepalived_conformance.rs; xtask is
            // single-threaded here.
            std::env::set_var("LB_CONFORMANCE_SAMPLE", "all");
            if let Some(seed) = seed {
                std::env::set_var("LB_CONFORMANCE_SEED", seed.to_string());
            }
            test::run(&[
                "--test".into(),
                "keepalived_conformance".into(),
                "--".into(),
                "--nocapture".into(),
            ])
        }
        Command::Bench { what, args } => {
            setup::ensure()?;
            match what.as_str() {
                "failover" => bench_failover::run(&args),
                "dataplane" => build::run_bench_dataplane(&args),
                "ipvs" => {
                    let obj = build::all(false)?;
                    match vm::run(&obj, &build::target_dir(false), vm::Payload::Bench)? {
                        vm::Outcome::Ran(t) if t.failed == 0 => Ok(()),
                        vm::Outcome::Ran(_) => anyhow::bail!("the VM benchmark failed"),
                        vm::Outcome::Skipped(why) => anyhow::bail!("VM benchmark skipped: {why}"),
                    }
                }
                other => {
                    anyhow::bail!("unknown benchmark `{other}` (known: dataplane, failover, ipvs)")
                }
            }
        }
    }
}
