//! From the configuration to what the health checker runs: one probe per
//! distinct (target, checker) pair, and per virtual server the real servers
//! with the probes that decide them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Checker, CheckerKind, Config, Protocol, VsTarget};
use crate::dataplane::Proto;

/// Identifies one probe: the real server, the resolved target and the whole
/// checker configuration. Two real servers (of different virtual servers)
/// with the same address and an identical checker share a key, so they are
/// checked once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeKey(pub Arc<str>);

impl std::fmt::Display for ProbeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a probe runs and how its results count (keepalived's checker
/// timings, already resolved through the real and virtual server).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub delay_loop: Duration,
    pub warmup: Duration,
    /// Start as down: the backend is out until the first success.
    pub alpha: bool,
}

/// Everything a probe needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub key: ProbeKey,
    /// The real server this probe belongs to.
    pub backend: SocketAddr,
    /// Where to connect: `connect_ip`/`connect_port`, else the real server.
    pub target: SocketAddr,
    /// Local address: `bindto` and/or `bind_port`.
    pub bind: Option<SocketAddr>,
    pub connect_timeout: Duration,
    pub timing: Timing,
    pub kind: CheckerKind,
    /// SSL_GET: the CA to verify the server against (`SSL { ca }`).
    pub ca: Option<std::path::PathBuf>,
}

impl ProbeSpec {
    /// keepalived's name for the checker kind.
    pub fn kind_name(&self) -> &'static str {
        kind_name(&self.kind)
    }
}

pub fn kind_name(kind: &CheckerKind) -> &'static str {
    match kind {
        CheckerKind::Tcp => "TCP_CHECK",
        CheckerKind::Http(_) => "HTTP_GET",
        CheckerKind::Ssl(_) => "SSL_GET",
        CheckerKind::Misc(_) => "MISC_CHECK",
        CheckerKind::Smtp(_) => "SMTP_CHECK",
        CheckerKind::Dns(_) => "DNS_CHECK",
        CheckerKind::Udp(_) => "UDP_CHECK",
    }
}

/// A real server as the health checker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendPlan {
    pub addr: SocketAddr,
    /// Configured weight.
    pub weight: u32,
    /// `inhibit_on_failure`: weight 0 instead of removal when down.
    pub inhibit: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Probes that must all be up for the backend to be up (none: always up).
    pub probes: Vec<ProbeKey>,
}

/// A virtual server as the health checker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub vip: SocketAddr,
    pub proto: Proto,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<SocketAddr>,
    pub sorry_server_inhibit: bool,
    pub backends: Vec<BackendPlan>,
}

/// The whole health-checking configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthPlan {
    pub services: Vec<ServicePlan>,
    pub probes: BTreeMap<ProbeKey, Arc<ProbeSpec>>,
}

impl HealthPlan {
    pub fn from_config(config: &Config) -> Self {
        let mut plan = HealthPlan::default();
        for vs in &config.expanded_virtual_servers() {
            // Only what a data plane can carry: an address and TCP or UDP.
            let VsTarget::Addr(vip) = vs.target else {
                continue;
            };
            let proto = match vs.protocol {
                Protocol::Tcp => Proto::Tcp,
                Protocol::Udp => Proto::Udp,
                Protocol::Sctp => continue,
            };
            let mut service = ServicePlan {
                vip,
                proto,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                sorry_server: vs.sorry_server,
                sorry_server_inhibit: vs.sorry_server_inhibit,
                backends: Vec::new(),
            };
            for rs in &vs.real_servers {
                let mut probes = Vec::new();
                for checker in &rs.checkers {
                    let ca = config.ssl.as_ref().and_then(|s| s.ca.as_deref());
                    for spec in probe_specs(rs.addr, checker, ca) {
                        probes.push(spec.key.clone());
                        plan.probes
                            .entry(spec.key.clone())
                            .or_insert(Arc::new(spec));
                    }
                }
                service.backends.push(BackendPlan {
                    addr: rs.addr,
                    weight: rs.weight,
                    inhibit: rs.inhibit_on_failure,
                    notify_up: rs.notify_up.clone(),
                    notify_down: rs.notify_down.clone(),
                    probes,
                });
            }
            plan.services.push(service);
        }
        plan
    }
}

fn endpoint(
    backend: SocketAddr,
    ip: Option<IpAddr>,
    port: Option<u16>,
    bindto: Option<IpAddr>,
    bind_port: Option<u16>,
) -> (SocketAddr, Option<SocketAddr>) {
    let target = SocketAddr::new(ip.unwrap_or(backend.ip()), port.unwrap_or(backend.port()));
    let bind = match (bindto, bind_port) {
        (None, None) => None,
        (ip, port) => Some(SocketAddr::new(
            ip.unwrap_or(match target {
                SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
                SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
            }),
            port.unwrap_or(0),
        )),
    };
    (target, bind)
}

/// The probes of one checker block: one, or with SMTP_CHECK's deprecated
/// `host` blocks one per host (as keepalived turns each into a checker; the
/// real server itself is checked too only if the block sets a connection
/// option of its own).
fn probe_specs(backend: SocketAddr, c: &Checker, ca: Option<&std::path::Path>) -> Vec<ProbeSpec> {
    let timing = Timing {
        retry: c.retry,
        delay_before_retry: c.delay_before_retry,
        delay_loop: c.delay_loop,
        warmup: c.warmup,
        alpha: c.alpha,
    };
    // The checker's settings, without its source location, as the key.
    let json = serde_json::to_string(c).unwrap_or_default();
    let make = |target, bind, connect_timeout, n: usize| {
        let key = ProbeKey(format!("{backend} {target} #{n} {json}").into());
        ProbeSpec {
            key,
            backend,
            target,
            bind,
            connect_timeout,
            timing,
            kind: c.kind.clone(),
            ca: match c.kind {
                CheckerKind::Ssl(_) => ca.map(std::path::Path::to_path_buf),
                _ => None,
            },
        }
    };
    let mut out = Vec::new();
    let own = c.connect_ip.is_some()
        || c.connect_port.is_some()
        || c.bindto.is_some()
        || c.bind_port.is_some();
    let hosts = match &c.kind {
        CheckerKind::Smtp(s) => s.hosts.as_slice(),
        _ => &[],
    };
    if own || hosts.is_empty() {
        let (target, bind) = endpoint(backend, c.connect_ip, c.connect_port, c.bindto, c.bind_port);
        out.push(make(target, bind, c.connect_timeout, 0));
    }
    for (i, h) in hosts.iter().enumerate() {
        let (target, bind) = endpoint(
            backend,
            h.connect_ip.or(c.connect_ip),
            h.connect_port.or(c.connect_port),
            h.bindto.or(c.bindto),
            h.bind_port.or(c.bind_port),
        );
        out.push(make(
            target,
            bind,
            h.connect_timeout.unwrap_or(c.connect_timeout),
            i + 1,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan_of(text: &str) -> HealthPlan {
        let loaded = crate::config::parse_str(text, Path::new("t.conf")).expect("valid config");
        HealthPlan::from_config(&loaded.config)
    }

    #[test]
    fn a_backend_shared_by_two_services_with_the_same_checker_is_probed_once() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n TCP_CHECK { connect_timeout 2 }\n }\n}\n\
             virtual_server 10.0.0.2 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n TCP_CHECK { connect_timeout 2 }\n }\n\
              real_server 10.0.0.12 80 {\n TCP_CHECK { connect_timeout 3 }\n }\n}\n",
        );
        assert_eq!(p.services.len(), 2);
        assert_eq!(p.probes.len(), 2, "{:?}", p.probes.keys());
        assert_eq!(
            p.services[0].backends[0].probes,
            p.services[1].backends[0].probes
        );
        assert_ne!(
            p.services[1].backends[0].probes,
            p.services[1].backends[1].probes
        );
    }

    #[test]
    fn connect_and_bind_options_resolve_the_endpoints() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n \
             TCP_CHECK { connect_ip 10.0.0.99\n connect_port 8080\n bind_port 5000 }\n }\n}\n",
        );
        let spec = p.probes.values().next().unwrap();
        assert_eq!(spec.target, "10.0.0.99:8080".parse().unwrap());
        assert_eq!(spec.bind, Some("0.0.0.0:5000".parse().unwrap()));
        assert_eq!(spec.backend, "10.0.0.11:80".parse().unwrap());
    }

    #[test]
    fn smtp_host_blocks_become_probes_of_their_own() {
        let p = plan_of(
            "virtual_server 10.0.0.1 25 {\n lb_kind DR\n real_server 10.0.0.11 25 {\n \
             SMTP_CHECK {\n host { connect_ip 10.0.0.21 }\n host { connect_ip 10.0.0.22\n connect_port 2525 }\n }\n }\n}\n",
        );
        let targets: Vec<_> = p.probes.values().map(|s| s.target).collect();
        assert_eq!(targets.len(), 2);
        assert!(targets.contains(&"10.0.0.21:25".parse().unwrap()));
        assert!(targets.contains(&"10.0.0.22:2525".parse().unwrap()));
    }
}
