//! `lbctl`, the operator's command line.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

/// Inspect and control the lbd load balancer.
///
/// Read commands ask lbd over its control socket; when lbd is not running
/// they fall back to the maps it left pinned (read-only, no health or
/// configuration details) and say so on stderr. Actions need lbd.
#[derive(Debug, Parser)]
#[command(
    name = "lbctl",
    version,
    about = "Inspect and control the lbd load balancer",
    after_help = "Exit status: 0 success; 1 failure (the request was refused or failed); \
                  2 bad command line; 3 lbd not reachable (or no answer within --timeout) and nothing to fall back to; \
                  4 permission denied; 5 no such service or backend."
)]
pub struct Args {
    /// lbd's control socket.
    #[arg(long, global = true, value_name = "PATH", default_value = crate::DEFAULT_CONTROL_SOCKET)]
    pub control_socket: PathBuf,
    /// Where lbd pins its maps (read when lbd is down).
    #[arg(long, global = true, value_name = "DIR", default_value = crate::DEFAULT_PIN_PATH)]
    pub pin_path: PathBuf,
    /// How long to wait for lbd's answer, in seconds (a reload waits for
    /// lbd to apply the configuration). No answer in time: exit status 3;
    /// the request may still be carried out when lbd catches up.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: u64,
    /// Machine-readable output: one JSON document (one per line with --watch).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon version and uptime, data plane and interfaces, configuration.
    Status,
    /// Virtual services with their totals.
    Services,
    /// Backends (of one service, or all) with counters and health.
    Backends {
        /// Only this service: VIP:PORT, optionally /tcp or /udp.
        #[arg(value_parser = parse_service)]
        service: Option<ServiceArg>,
    },
    /// VRRP instances: state, priorities, master, transitions, counters.
    Vrrp,
    /// Connection sync (`lvs_sync_daemon`): role, settings, messages and
    /// losses by reason.
    Sync,
    /// Data plane counters.
    Stats {
        /// Print again every --interval seconds (with rates) until interrupted.
        #[arg(long, short = 'w')]
        watch: bool,
        /// Seconds between two prints with --watch.
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_interval)]
        interval: f64,
    },
    /// Connections in the connection table.
    Conns {
        /// Show at most N connections.
        #[arg(long, short = 'n', value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Override a backend's weight until the next reload (health checks
    /// still take it out when it fails).
    SetWeight {
        /// The service: VIP:PORT, optionally /tcp or /udp.
        #[arg(value_parser = parse_service)]
        service: ServiceArg,
        /// The backend: RIP:PORT.
        #[arg(value_parser = parse_backend)]
        backend: SocketAddr,
        /// New weight, 0 to 65535 (0: no new connections).
        #[arg(value_parser = clap::value_parser!(u32).range(0..=65535))]
        weight: u32,
    },
    /// Give a backend no new connections; established ones finish
    /// (weight 0 until enable or reload).
    Drain {
        #[arg(value_parser = parse_service)]
        service: ServiceArg,
        #[arg(value_parser = parse_backend)]
        backend: SocketAddr,
    },
    /// Take a backend out of its service altogether until enable or reload:
    /// its established connections are scheduled anew.
    Disable {
        #[arg(value_parser = parse_service)]
        service: ServiceArg,
        #[arg(value_parser = parse_backend)]
        backend: SocketAddr,
    },
    /// Drop any override of a backend (set-weight, drain, disable).
    Enable {
        #[arg(value_parser = parse_service)]
        service: ServiceArg,
        #[arg(value_parser = parse_backend)]
        backend: SocketAddr,
    },
    /// Reload the configuration (as SIGHUP does); a file with errors is
    /// refused and the running configuration kept.
    Reload,
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a keepalived.conf file: exit 0 when valid, 1 when not.
    Check {
        file: PathBuf,
        /// Configuration id for `@ID` lines (as `lbd --config-id`).
        #[arg(long = "config-id", value_name = "ID")]
        config_id: Option<String>,
    },
    /// Print the normalised model of a keepalived.conf file (every default
    /// filled in, includes resolved) as JSON: exit 0, or 1 with its errors.
    Dump {
        file: PathBuf,
        /// Configuration id for `@ID` lines (as `lbd --config-id`).
        #[arg(long = "config-id", value_name = "ID")]
        config_id: Option<String>,
    },
}

/// Transport protocol named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoArg {
    Tcp,
    Udp,
}

impl ProtoArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtoArg::Tcp => "tcp",
            ProtoArg::Udp => "udp",
        }
    }
}

/// A service on the command line: `VIP:PORT`, `VIP:PORT/tcp`, `[V6]:PORT/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceArg {
    pub addr: SocketAddr,
    /// None: whichever protocol the service has (an error when both do).
    pub proto: Option<ProtoArg>,
}

impl std::fmt::Display for ServiceArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.proto {
            Some(p) => write!(f, "{}/{}", self.addr, p.as_str()),
            None => write!(f, "{}", self.addr),
        }
    }
}

pub fn parse_service(s: &str) -> Result<ServiceArg, String> {
    let (addr, proto) = match s.rsplit_once('/') {
        Some((a, p)) => {
            let proto = match p.to_ascii_lowercase().as_str() {
                "tcp" => ProtoArg::Tcp,
                "udp" => ProtoArg::Udp,
                _ => return Err(format!("protocol `{p}` is neither tcp nor udp")),
            };
            (a, Some(proto))
        }
        None => (s, None),
    };
    let addr = addr.parse::<SocketAddr>().map_err(|_| {
        "expected VIP:PORT (IPv6 as [ADDR]:PORT), optionally followed by /tcp or /udp".to_string()
    })?;
    Ok(ServiceArg { addr, proto })
}

pub fn parse_backend(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| "expected RIP:PORT (IPv6 as [ADDR]:PORT)".to_string())
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err("expected seconds between 0.1 and 3600".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Args::command().debug_assert();
        crate::lbd::Args::command().debug_assert();
    }

    #[test]
    fn services_parse_with_and_without_protocol() {
        let s = parse_service("10.0.0.1:80").unwrap();
        assert_eq!((s.addr.port(), s.proto), (80, None));
        let s = parse_service("[2001:db8::1]:53/UDP").unwrap();
        assert_eq!(s.proto, Some(ProtoArg::Udp));
        assert!(parse_service("10.0.0.1").is_err());
        assert!(parse_service("10.0.0.1:80/sctp")
            .unwrap_err()
            .contains("sctp"));
    }

    #[test]
    fn bad_input_names_the_field_and_the_value() {
        let e = Args::try_parse_from(["lbctl", "set-weight", "10.0.0.1:80", "nope", "3"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'nope'") && e.contains("<BACKEND>"), "{e}");
        let e =
            Args::try_parse_from(["lbctl", "set-weight", "10.0.0.1:80", "10.0.0.2:80", "70000"])
                .unwrap_err()
                .to_string();
        assert!(e.contains("70000") && e.contains("<WEIGHT>"), "{e}");
    }
}
