//! lbd: the load balancer daemon. Its command line is in `lb_cli::lbd`.

use std::path::PathBuf;

use clap::Parser;
use lb_cli::lbd::{Args, Dataplane, OnExit, XdpMode};
use lb_daemon::{
    check, control, daemon,
    dataplane::{bpf::AttachMode, select::Tier},
};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(id) = &args.config_id {
        lb_daemon::config::set_config_id(id);
    }
    let tier = args.dataplane.map(|d| match d {
        Dataplane::Auto => Tier::Auto,
        Dataplane::Xdp => Tier::Xdp,
        Dataplane::Tc => Tier::Tc,
        Dataplane::Ipvs => Tier::Ipvs,
    });
    if args.config_test {
        let code = check::check_config_for(&args.config_file, tier, &mut std::io::stderr());
        return std::process::ExitCode::from(code as u8);
    }
    init_logging(args.log_detail);
    // Health checks, listeners and the data plane share one descriptor
    // table: use all the hard limit allows.
    match control::limits::raise_nofile_limit() {
        Ok(n) => tracing::debug!(nofile = n, "file descriptor limit"),
        Err(e) => tracing::warn!("cannot raise the file descriptor limit: {e}"),
    }
    let control_socket =
        (args.control_socket != "none").then(|| PathBuf::from(&args.control_socket));
    let run_dir = args
        .run_dir
        .clone()
        .or_else(|| {
            control_socket
                .as_ref()
                .and_then(|s| s.parent())
                .filter(|d| !d.as_os_str().is_empty())
                .map(|d| d.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("/run/lb"));
    let opts = daemon::Options {
        config_file: args.config_file,
        interfaces: args.interfaces,
        xdp_mode: match args.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Native,
            XdpMode::Skb => AttachMode::Skb,
        },
        tier,
        bpf_object: args.bpf_object,
        pin_path: (args.pin_path != "none").then(|| PathBuf::from(&args.pin_path)),
        keep_on_exit: args.on_exit == OnExit::Keep,
        run_dir,
        conn_table_size: args.conn_table_size,
        tunnel_source: args.tunnel_source,
        control: control::Options {
            socket: control_socket,
            group: args.control_group,
            metrics_addr: args.metrics_addr,
        },
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
        Ok(daemon::Exit::Stopped) => std::process::ExitCode::SUCCESS,
        Ok(daemon::Exit::Restart) => std::process::ExitCode::from(daemon::RESTART_EXIT_STATUS),
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
