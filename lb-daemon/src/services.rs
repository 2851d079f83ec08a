//! From the configuration's `virtual_server` blocks to the services the data
//! plane carries. What the data plane cannot carry yet is skipped with one
//! reason each, so a real keepalived.conf still loads.

use crate::config::{Config, LbKind, Protocol, Scheduler, VirtualServer, VsTarget};
use crate::dataplane::{Algo, BackendSpec, Mode, Proto, ServiceSpec};

/// The services to carry, and why others are left out.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub services: Vec<ServiceSpec>,
    /// `PATH:LINE:COL: warning: ...` lines, one per skipped virtual server.
    pub skipped: Vec<String>,
}

pub fn plan(config: &Config) -> Plan {
    let mut plan = Plan::default();
    for vs in &config.virtual_servers {
        match service(vs) {
            Ok(spec) => plan.services.push(spec),
            Err(reason) => plan.skipped.push(format!(
                "{}:{}:{}: warning: virtual_server skipped: {reason}",
                vs.location.file.display(),
                vs.location.line,
                vs.location.col
            )),
        }
    }
    plan
}

fn service(vs: &VirtualServer) -> Result<ServiceSpec, String> {
    let vip = match &vs.target {
        VsTarget::Addr(a) => *a,
        VsTarget::Fwmark(m) => {
            return Err(format!(
                "fwmark {m} services are not supported by the XDP data plane yet"
            ))
        }
        VsTarget::Group(g) => {
            return Err(format!(
                "virtual_server group {g} is not supported by the XDP data plane yet"
            ))
        }
    };
    if vip.is_ipv6() {
        return Err(format!(
            "{vip}: IPv6 services are not supported by the XDP data plane yet"
        ));
    }
    let proto = match vs.protocol {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
        Protocol::Sctp => return Err("protocol SCTP is not supported".into()),
    };
    let mode = match vs.lb_kind {
        LbKind::Dr => Mode::Dr,
        other => {
            return Err(format!(
                "lb_kind {other:?} is not supported by the XDP data plane yet (DR is)"
            ))
        }
    };
    let algo = match vs.lb_algo {
        Scheduler::Rr => Algo::Rr,
        Scheduler::Wrr => Algo::Wrr,
        other => {
            return Err(format!(
                "lb_algo {other:?} is not supported by the XDP data plane yet (rr and wrr are)"
            ))
        }
    };
    let mut backends = Vec::with_capacity(vs.real_servers.len());
    for rs in &vs.real_servers {
        if rs.lb_kind != vs.lb_kind {
            return Err(format!(
                "real_server {} uses lb_kind {:?}, different from its virtual server",
                rs.addr, rs.lb_kind
            ));
        }
        if rs.addr.is_ipv6() {
            return Err(format!(
                "real_server {}: IPv6 is not supported yet",
                rs.addr
            ));
        }
        backends.push(BackendSpec {
            addr: rs.addr,
            weight: rs.weight,
            mac: None,
        });
    }
    Ok(ServiceSpec {
        vip,
        proto,
        algo,
        mode,
        backends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan_of(text: &str) -> Plan {
        let loaded = crate::config::parse_str(text, Path::new("t.conf")).expect("valid config");
        plan(&loaded.config)
    }

    #[test]
    fn dr_rr_service_is_planned_with_its_backends() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
             real_server 10.0.0.11 80 { weight 2 }\n real_server 10.0.0.12 80 { }\n}\n",
        );
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.services.len(), 1);
        let s = &p.services[0];
        assert_eq!(s.vip, "10.0.0.1:80".parse().unwrap());
        assert_eq!((s.proto, s.algo, s.mode), (Proto::Tcp, Algo::Rr, Mode::Dr));
        let b: Vec<_> = s.backends.iter().map(|b| (b.addr, b.weight)).collect();
        assert_eq!(
            b,
            vec![
                ("10.0.0.11:80".parse().unwrap(), 2),
                ("10.0.0.12:80".parse().unwrap(), 1)
            ]
        );
    }

    #[test]
    fn unsupported_kinds_are_skipped_with_their_location() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind NAT\n}\n\
             virtual_server 10.0.0.2 80 {\n lb_algo lc\n lb_kind DR\n}\n",
        );
        assert!(p.services.is_empty());
        assert_eq!(p.skipped.len(), 2);
        assert!(
            p.skipped[0].starts_with("t.conf:1:1: warning: virtual_server skipped: lb_kind Nat"),
            "{}",
            p.skipped[0]
        );
        assert!(p.skipped[1].starts_with("t.conf:5:1: "), "{}", p.skipped[1]);
        assert!(p.skipped[1].contains("lb_algo Lc"), "{}", p.skipped[1]);
    }
}
