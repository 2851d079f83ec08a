//! lbd: the load balancer daemon.

use std::path::PathBuf;

use clap::Parser;
use lb_daemon::{
    check, daemon,
    dataplane::{select::Tier, xdp::AttachMode},
};

/// eBPF/XDP layer-4 load balancer reading keepalived.conf.
#[derive(Debug, Parser)]
#[command(name = "lbd", version)]
struct Args {
    /// Configuration file (keepalived.conf syntax).
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    config_file: PathBuf,
    /// Check the configuration and exit: 0 valid, 1 invalid.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// Data plane tier: xdp, tc (the same program at clsact ingress, where
    /// XDP cannot serve), ipvs (the kernel's IPVS over generic netlink), or
    /// auto: XDP (native, then SKB), then TC, then IPVS, each skip logged
    /// with its reason. A tier that cannot work is an error.
    #[arg(long, value_enum, default_value = "auto")]
    dataplane: Tier,
    /// Interface to attach XDP to (repeatable; not needed for IPVS).
    #[arg(short = 'i', long = "interface")]
    interfaces: Vec<String>,
    /// XDP attach mode: native (driver), skb (generic), or auto (native,
    /// falling back to skb with a warning).
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: AttachMode,
    /// Load this eBPF object instead of the one built into lbd.
    #[arg(long, value_name = "PATH")]
    bpf_object: Option<PathBuf>,
    /// bpffs directory where maps and links are pinned (a bpffs is mounted
    /// there when it is not on one). `none`: pin nothing.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/lb")]
    pin_path: String,
    /// What happens to the data plane when lbd exits: `detach` removes the
    /// program and the pins; `keep` leaves it forwarding from the pinned
    /// maps, and the next lbd takes it over without a gap (restarts).
    #[arg(long, value_enum, default_value = "detach")]
    on_exit: OnExit,
    /// Entries of the connection table.
    #[arg(long, value_name = "N")]
    conn_table_size: Option<u32>,
    /// Outer source address of TUN packets (one per family; default: the
    /// first interface's addresses).
    #[arg(long, value_name = "ADDR")]
    tunnel_source: Vec<std::net::IpAddr>,
    /// More detailed logs (debug level); RUST_LOG overrides.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Accepted for keepalived compatibility: lbd always stays in the foreground.
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    _dont_fork: bool,
    /// Accepted for keepalived compatibility: lbd always logs to stderr.
    #[arg(short = 'l', long = "log-console", hide = true)]
    _log_console: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnExit {
    Detach,
    Keep,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.config_test {
        let code = check::check_config(&args.config_file, &mut std::io::stderr());
        return std::process::ExitCode::from(code as u8);
    }
    init_logging(args.log_detail);
    let opts = daemon::Options {
        config_file: args.config_file,
        interfaces: args.interfaces,
        xdp_mode: args.xdp_mode,
        tier: args.dataplane,
        bpf_object: args.bpf_object,
        pin_path: (args.pin_path != "none").then(|| PathBuf::from(&args.pin_path)),
        keep_on_exit: args.on_exit == OnExit::Keep,
        conn_table_size: args.conn_table_size,
        tunnel_source: args.tunnel_source,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lbd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(detail: bool) {
    use std::io::IsTerminal;
    let default = if detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
