//! From the configuration's `virtual_server` blocks to the services the data
//! plane carries. What the data plane cannot carry yet is skipped with one
//! reason each, so a real keepalived.conf still loads.

use crate::config::{
    Config, Diagnostic, ErrorKind, LbKind, Protocol, Scheduler, VirtualServer, VsTarget,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dataplane::{
    capacity::{self, Limits},
    ipvs::attrs::svc_flag,
    Algo, BackendSpec, Capabilities, IpvsOptions, Mode, Persistence, Proto, ServiceSpec,
};

/// The services to carry, and why others are left out.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub services: Vec<ServiceSpec>,
    /// `PATH:LINE:COL: warning: ...` lines, one per skipped virtual server.
    pub skipped: Vec<String>,
}

/// What the XDP tier carries.
pub fn plan(config: &Config) -> Plan {
    plan_for(config, Capabilities::XDP)
}

/// What a tier with `caps` carries.
pub fn plan_for(config: &Config, caps: Capabilities) -> Plan {
    let mut plan = Plan::default();
    for vs in &config.expanded_virtual_servers() {
        match service(vs, caps) {
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

/// Whether the services `config` plans for a BPF tier fit its maps
/// ([`capacity`]): the first virtual server that does not, as a located
/// error. Fatal for a start, refused by a reload, reported by `lbd -t`.
pub fn check_capacity(config: &Config, limits: Limits) -> Result<(), Diagnostic> {
    let mut located = Vec::new();
    let mut specs = Vec::new();
    for vs in &config.virtual_servers {
        if let Ok(spec) = service(vs, Capabilities::XDP) {
            located.push(&vs.location);
            specs.push(spec);
        }
    }
    capacity::check(&specs, limits).map_err(|o| {
        Diagnostic::error_of(
            ErrorKind::Fatal,
            located[o.index],
            format!("virtual_server does not fit: {} (the IPVS data plane, lb_dataplane ipvs, has no such limit)", o.what),
        )
    })
}

fn service(vs: &VirtualServer, caps: Capabilities) -> Result<ServiceSpec, String> {
    let (vip, fwmark) = match &vs.target {
        VsTarget::Addr(a) => (*a, None),
        VsTarget::Fwmark(m) if caps.fwmark => {
            // The family of a fwmark service is its real servers' (as in
            // keepalived), IPv4 when it has none.
            let v6 = vs
                .real_servers
                .first()
                .map(|r| r.addr.is_ipv6())
                .or(vs.sorry_server.map(|s| s.is_ipv6()))
                .unwrap_or(false);
            let any = if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            (std::net::SocketAddr::new(any, 0), Some(*m))
        }
        VsTarget::Fwmark(m) => {
            return Err(format!(
                "fwmark {m} services are not supported by the XDP data plane yet (the IPVS one carries them)"
            ))
        }
        // Expanded by `Config::expanded_virtual_servers`.
        VsTarget::Group(g) => return Err(format!("virtual_server group {g} names no group")),
    };
    let proto = match vs.protocol {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
        Protocol::Sctp => return Err("protocol SCTP is not supported".into()),
    };
    let mode = match vs.lb_kind {
        LbKind::Dr => Mode::Dr,
        LbKind::Nat => Mode::Nat,
        LbKind::Tun => Mode::Tun,
    };
    let (algo, hash_port, fallback) = match vs.lb_algo {
        Scheduler::Rr => (Algo::Rr, false, false),
        Scheduler::Wrr => (Algo::Wrr, false, false),
        Scheduler::Lc => (Algo::Lc, false, false),
        Scheduler::Wlc => (Algo::Wlc, false, false),
        Scheduler::Sh => (Algo::Sh, vs.sched_flags.sh_port, vs.sched_flags.sh_fallback),
        Scheduler::Mh => (Algo::Mh, vs.sched_flags.mh_port, vs.sched_flags.mh_fallback),
        // Only tiers that take every IPVS scheduler get here: `algo` is a
        // stand-in and `ipvs.sched` names the real one.
        _ if caps.all_schedulers => (Algo::Wlc, false, false),
        other => {
            return Err(format!(
                "lb_algo {other:?} is not supported by the XDP data plane (rr, wrr, lc, wlc, sh and mh are; the IPVS one carries them all)"
            ))
        }
    };
    let f = &vs.sched_flags;
    let ipvs = IpvsOptions {
        sched: vs.lb_algo.name().to_string(),
        sched_flags: [
            (f.flag_1, svc_flag::SCHED1),
            (f.flag_2, svc_flag::SCHED2),
            (f.flag_3, svc_flag::SCHED3),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit),
        one_packet: f.ops && vs.protocol == Protocol::Udp,
        fwmark,
        sorry_inhibit: vs.sorry_server_inhibit,
    };
    let backend = |addr: std::net::SocketAddr, weight: u32, what: &str| {
        if addr.is_ipv4() != vip.is_ipv4() {
            return Err(format!(
                "{what} {addr} is not of the virtual server's address family"
            ));
        }
        Ok(BackendSpec::new(addr, weight))
    };
    let mut backends = Vec::with_capacity(vs.real_servers.len());
    for rs in &vs.real_servers {
        if rs.lb_kind != vs.lb_kind {
            return Err(format!(
                "real_server {} uses lb_kind {:?}, different from its virtual server",
                rs.addr, rs.lb_kind
            ));
        }
        backends.push(backend(rs.addr, rs.weight, "real_server")?);
    }
    let sorry = match vs.sorry_server {
        Some(addr) => Some(backend(addr, 1, "sorry_server")?),
        None => None,
    };
    let persistence = match vs.persistence_timeout {
        Some(t) => Some(Persistence {
            timeout_secs: t.as_secs().min(u64::from(u32::MAX)) as u32,
            mask: granularity(vs.persistence_granularity.as_deref(), vip.is_ipv6())?,
        }),
        None => None,
    };
    Ok(ServiceSpec {
        vip,
        proto,
        algo,
        hash_port,
        fallback,
        mode,
        persistence,
        backends,
        sorry,
        ipvs,
    })
}

/// `persistence_granularity`: an IPv4 netmask, or an IPv6 prefix length.
fn granularity(g: Option<&str>, v6: bool) -> Result<IpAddr, String> {
    let prefix = |len: u32, bits: u32| -> u128 {
        if len == 0 {
            0
        } else {
            (!0u128) << (bits - len) & if bits == 32 { 0xffff_ffff } else { !0 }
        }
    };
    match (g, v6) {
        (None, false) => Ok(IpAddr::V4(Ipv4Addr::BROADCAST)),
        (None, true) => Ok(IpAddr::V6(Ipv6Addr::from(u128::MAX))),
        (Some(s), false) => match s.parse::<Ipv4Addr>() {
            Ok(m) => Ok(IpAddr::V4(m)),
            Err(_) => match s.parse::<u32>() {
                Ok(n) if n <= 32 => Ok(IpAddr::V4(Ipv4Addr::from(prefix(n, 32) as u32))),
                _ => Err(format!(
                    "persistence_granularity `{s}` is not an IPv4 netmask"
                )),
            },
        },
        (Some(s), true) => match s.parse::<u32>() {
            Ok(n) if n <= 128 => Ok(IpAddr::V6(Ipv6Addr::from(prefix(n, 128)))),
            _ => Err(format!(
                "persistence_granularity `{s}` is not an IPv6 prefix length (0-128)"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan_of(text: &str) -> Plan {
        let loaded = crate::config::parse_str(text, Path::new("t.conf")).expect("valid config");
        plan(&loaded.config)
    }

    const GROUP: &str =
        "virtual_server_group web {\n  192.0.2.1-3 80\n  192.0.2.9 8080\n  fwmark 7\n}\n\
        virtual_server group web {\n  lb_algo rr\n  lb_kind DR\n  \
        real_server 10.0.0.11 80 {\n    weight 2\n    TCP_CHECK { connect_timeout 1 }\n  }\n}\n";

    #[test]
    fn a_group_becomes_one_service_per_address_and_range_address() {
        let p = plan_of(GROUP);
        let vips: Vec<String> = p.services.iter().map(|s| s.vip.to_string()).collect();
        assert_eq!(
            vips,
            [
                "192.0.2.1:80",
                "192.0.2.2:80",
                "192.0.2.3:80",
                "192.0.2.9:8080"
            ]
        );
        assert!(p
            .services
            .iter()
            .all(|s| s.algo == Algo::Rr && s.backends.len() == 1 && s.backends[0].weight == 2));
        // The fwmark entry is skipped on XDP, as a fwmark virtual server is.
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
        assert!(p.skipped[0].contains("fwmark 7"), "{:?}", p.skipped);
        // The IPVS tier carries it.
        let ipvs = plan_for(
            &crate::config::parse_str(GROUP, Path::new("t.conf"))
                .unwrap()
                .config,
            Capabilities::IPVS,
        );
        assert_eq!(ipvs.services.len(), 5, "{:?}", ipvs.skipped);
    }

    #[test]
    fn a_groups_services_are_health_checked() {
        let config = crate::config::parse_str(GROUP, Path::new("t.conf"))
            .unwrap()
            .config;
        let health = crate::health::HealthPlan::from_config(&config);
        let vips: Vec<String> = health.services.iter().map(|s| s.vip.to_string()).collect();
        assert_eq!(
            vips,
            [
                "192.0.2.1:80",
                "192.0.2.2:80",
                "192.0.2.3:80",
                "192.0.2.9:8080"
            ]
        );
        // One probe of the real server, shared by the four services.
        assert_eq!(health.probes.len(), 1);
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
    fn schedulers_flags_persistence_and_sorry_are_carried() {
        let p = plan_of(
            "virtual_server 10.0.0.1 53 {\n lb_algo sh\n sh-port\n sh-fallback\n lb_kind TUN\n \
             protocol UDP\n persistence_timeout 600\n persistence_granularity 255.255.255.0\n \
             sorry_server 10.0.0.99 53\n real_server 10.0.0.11 53 { weight 3 }\n}\n\
             virtual_server 2001:db8::1 80 {\n lb_algo mh\n lb_kind DR\n persistence_timeout\n \
             persistence_granularity 64\n real_server 2001:db8::11 80 { }\n}\n",
        );
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let s = &p.services[0];
        assert_eq!(
            (s.algo, s.hash_port, s.fallback, s.mode),
            (Algo::Sh, true, true, Mode::Tun)
        );
        let per = s.persistence.unwrap();
        assert_eq!(per.timeout_secs, 600);
        assert_eq!(per.mask, "255.255.255.0".parse::<IpAddr>().unwrap());
        assert_eq!(
            s.sorry.as_ref().unwrap().addr,
            "10.0.0.99:53".parse().unwrap()
        );
        let v6 = &p.services[1];
        assert_eq!(v6.algo, Algo::Mh);
        let per = v6.persistence.unwrap();
        assert_eq!(
            per.timeout_secs, 360,
            "keepalived's default for a bare keyword"
        );
        assert_eq!(per.mask, "ffff:ffff:ffff:ffff::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_ipvs_tier_takes_fwmark_and_every_scheduler() {
        let text = "virtual_server fwmark 7 {\n lb_algo lblc\n lb_kind DR\n flag-1\n flag-3\n \
                    sorry_server 2001:db8::99 0\n sorry_server_inhibit\n real_server 2001:db8::11 { }\n}\n\
                    virtual_server 10.0.0.1 53 {\n lb_algo dh\n protocol UDP\n ops\n lb_kind NAT\n}\n";
        let loaded = crate::config::parse_str(text, Path::new("t.conf")).expect("valid config");
        let xdp = plan(&loaded.config);
        assert_eq!(xdp.services.len(), 0);
        assert_eq!(xdp.skipped.len(), 2, "{:?}", xdp.skipped);
        let p = plan_for(&loaded.config, Capabilities::IPVS);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let fw = &p.services[0];
        assert_eq!(fw.ipvs.fwmark, Some(7));
        assert_eq!(
            fw.vip,
            "[::]:0".parse().unwrap(),
            "family from the real servers"
        );
        assert_eq!(fw.ipvs.sched, "lblc");
        assert_eq!(fw.ipvs.sched_flags, svc_flag::SCHED1 | svc_flag::SCHED3);
        assert!(fw.ipvs.sorry_inhibit);
        let udp = &p.services[1];
        assert_eq!((udp.ipvs.sched.as_str(), udp.ipvs.one_packet), ("dh", true));
    }

    #[test]
    fn mixed_families_are_refused() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n real_server 2001:db8::1 80 { }\n}\n",
        );
        assert!(p.services.is_empty());
        assert!(
            p.skipped[0].contains("not of the virtual server's address family"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn unsupported_kinds_are_skipped_with_their_location() {
        let p = plan_of(
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind NAT\n}\n\
             virtual_server 10.0.0.2 80 {\n lb_algo lblc\n lb_kind DR\n}\n",
        );
        assert_eq!(p.services.len(), 1);
        assert_eq!(p.services[0].mode, Mode::Nat);
        assert_eq!(p.skipped.len(), 1);
        assert!(
            p.skipped[0].starts_with("t.conf:5:1: warning: virtual_server skipped: lb_algo Lblc"),
            "{}",
            p.skipped[0]
        );
    }
}
