//! `lbd`, the daemon.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

/// eBPF/XDP layer-4 load balancer reading keepalived.conf.
#[derive(Debug, Parser)]
#[command(name = "lbd", version)]
pub struct Args {
    /// Configuration file (keepalived.conf syntax).
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub config_file: PathBuf,
    /// Check the configuration and exit: 0 valid, 1 invalid.
    #[arg(short = 't', long = "config-test")]
    pub config_test: bool,
    /// Configuration id, as keepalived's `-i` (here `-i` is
    /// `--interface`): `@ID` lines apply only when it is ID, `@^ID` lines
    /// only when it is not, and `$_INSTANCE` is it. Default: the host name
    /// up to its first `.`, as keepalived's.
    #[arg(long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
    /// Data plane tier: xdp, tc (the same program at clsact ingress, where
    /// XDP cannot serve), ipvs (the kernel's IPVS over generic netlink), or
    /// auto: XDP (native, then SKB), then TC, then IPVS, each skip logged
    /// with its reason. A tier that cannot work is an error. Without it:
    /// `lb_dataplane` in global_defs, else auto.
    #[arg(long, value_enum)]
    pub dataplane: Option<Dataplane>,
    /// Interface to attach XDP (or TC) to (repeatable; not needed for IPVS,
    /// nor for a VRRP-only configuration).
    #[arg(short = 'i', long = "interface")]
    pub interfaces: Vec<String>,
    /// XDP attach mode: native (driver), skb (generic), or auto (native,
    /// falling back to skb with a warning).
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpMode,
    /// Load this eBPF object instead of the one built into lbd.
    #[arg(long, value_name = "PATH")]
    pub bpf_object: Option<PathBuf>,
    /// bpffs directory where maps and links are pinned (a bpffs is mounted
    /// there when it is not on one). `none`: pin nothing.
    #[arg(long, value_name = "DIR", default_value = crate::DEFAULT_PIN_PATH)]
    pub pin_path: String,
    /// What happens to the data plane when lbd exits: `detach` removes the
    /// program and the pins; `keep` leaves it forwarding from the pinned
    /// maps, and the next lbd takes it over without a gap (restarts).
    #[arg(long, value_enum, default_value = "detach")]
    pub on_exit: OnExit,
    /// Entries of the connection table.
    #[arg(long, value_name = "N")]
    pub conn_table_size: Option<u32>,
    /// Outer source address of TUN packets (one per family; default: the
    /// first interface's addresses).
    #[arg(long, value_name = "ADDR")]
    pub tunnel_source: Vec<std::net::IpAddr>,
    /// Directory for state handed to the next lbd on a restart (the VRRP
    /// masters kept with `--on-exit keep`). Default: the control socket's
    /// directory, or /run/lb.
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Unix socket of the control API (lbctl). `none`: no control socket.
    #[arg(long, value_name = "PATH", default_value = crate::DEFAULT_CONTROL_SOCKET)]
    pub control_socket: String,
    /// Group allowed to use the control socket (besides root); the socket
    /// is owned by root and this group, mode 0660.
    #[arg(long, value_name = "GROUP")]
    pub control_group: Option<String>,
    /// Serve Prometheus metrics over HTTP on this address (off by default),
    /// e.g. 127.0.0.1:9477.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// More detailed logs (debug level); RUST_LOG overrides.
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Accepted for keepalived compatibility: lbd always stays in the foreground.
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    pub dont_fork: bool,
    /// Accepted for keepalived compatibility: lbd always logs to stderr.
    #[arg(short = 'l', long = "log-console", hide = true)]
    pub log_console: bool,
}

/// `--dataplane`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataplane {
    /// XDP, then TC, then IPVS: the first that works.
    Auto,
    Xdp,
    Tc,
    Ipvs,
}

/// `--xdp-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic (SKB) mode with a warning.
    Auto,
    Native,
    Skb,
}

/// `--on-exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExit {
    Detach,
    Keep,
}
