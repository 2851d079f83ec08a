//! From the data plane's counters (and, in the daemon, the configuration,
//! the health checks and the overrides) to the protocol's tables. lbctl
//! builds the same tables from pinned maps when lbd is down.

use std::net::SocketAddr;

use super::overrides::Overrides;
use super::protocol::{
    service_name, BackendInfo, CheckerInfo, ConnEntry, ErrorCode, GlobalCounter, HealthInfo,
    OverrideInfo, ProtoName, ServiceInfo, ServiceRef,
};
use crate::{
    dataplane::{ConnInfo, Proto, ServiceSpec, ServiceStats, Stats},
    health,
};

pub fn proto_name(p: Proto) -> ProtoName {
    match p {
        Proto::Tcp => ProtoName::Tcp,
        Proto::Udp => ProtoName::Udp,
    }
}

pub fn proto_of(p: ProtoName) -> Proto {
    match p {
        ProtoName::Tcp => Proto::Tcp,
        ProtoName::Udp => Proto::Udp,
    }
}

/// What the daemon knows beyond the maps.
pub struct Extras<'a> {
    pub configured: &'a [ServiceSpec],
    pub overrides: &'a Overrides,
    pub health: Option<&'a health::Snapshot>,
}

pub fn service(s: &ServiceStats) -> ServiceInfo {
    let real = s.backends.iter().filter(|b| !b.sorry);
    ServiceInfo {
        service: service_name(s.vip, proto_name(s.proto)),
        vip: s.vip.ip(),
        port: s.vip.port(),
        proto: proto_name(s.proto),
        algo: s.algo.map(|a| a.to_string()),
        mode: s.mode.map(|m| m.to_string()),
        backends: real.clone().count(),
        backends_up: real.filter(|b| b.ready && b.weight > 0).count(),
        sorry_server: s.backends.iter().find(|b| b.sorry).map(|b| b.addr),
        packets: s.packets,
        bytes: s.bytes,
        new_conns: s.new_conns,
        active_conns: s.backends.iter().map(|b| b.active).sum(),
        inactive_conns: s.backends.iter().map(|b| b.inactive).sum(),
    }
}

pub fn services(stats: &Stats) -> Vec<ServiceInfo> {
    stats.services.iter().map(service).collect()
}

pub fn global(stats: &Stats) -> Vec<GlobalCounter> {
    stats
        .global
        .iter()
        .map(|(name, packets, bytes)| GlobalCounter {
            name: name.clone(),
            packets: *packets,
            bytes: *bytes,
        })
        .collect()
}

pub fn conns(conns: Vec<ConnInfo>) -> Vec<ConnEntry> {
    conns
        .into_iter()
        .map(|c| ConnEntry {
            proto: proto_name(c.proto),
            client: c.client,
            vip: c.vip,
            backend: c.backend,
            state: c.state.to_string(),
            idle_secs: c.idle_secs,
            expires_secs: c.expires_secs,
        })
        .collect()
}

/// The service `r` names among `known` (VIP, protocol) pairs.
pub fn resolve(
    known: impl IntoIterator<Item = (SocketAddr, Proto)>,
    r: &ServiceRef,
) -> Result<(SocketAddr, Proto), (ErrorCode, String)> {
    let matches: Vec<_> = known
        .into_iter()
        .filter(|(vip, p)| *vip == r.vip && r.proto.is_none_or(|rp| proto_of(rp) == *p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err((ErrorCode::NotFound, format!("no service {}", r.vip))),
        _ => Err((
            ErrorCode::Ambiguous,
            format!("{} is a TCP and a UDP service: add /tcp or /udp", r.vip),
        )),
    }
}

fn health_info(b: &health::core::BackendHealth) -> HealthInfo {
    let latest = b
        .checkers
        .iter()
        .filter(|c| c.last_check_unix_ms.is_some())
        .max_by_key(|c| c.last_check_unix_ms);
    let status = serde_json::to_value(b.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    HealthInfo {
        state: if b.up { "up" } else { "down" }.into(),
        status,
        weight: if b.up { b.weight } else { 0 },
        last_result: latest.and_then(|c| c.last_result.map(str::to_string)),
        last_check_unix_ms: latest.and_then(|c| c.last_check_unix_ms),
        last_change_unix_ms: b.last_change_unix_ms,
        failure: b.checkers.iter().find_map(|c| c.failure.clone()),
        local_errors: b.checkers.iter().map(|c| c.local_errors).sum(),
        checkers: b
            .checkers
            .iter()
            .map(|c| CheckerInfo {
                kind: c.kind.to_string(),
                target: c.target,
                up: c.up,
                last_result: c.last_result.map(str::to_string),
                last_check_unix_ms: c.last_check_unix_ms,
                failure: c.failure.clone(),
                local_errors: c.local_errors,
                last_local_error: c.last_local_error.clone(),
            })
            .collect(),
    }
}

/// Backends of every service (or of `only`).
pub fn backends(
    stats: &Stats,
    only: Option<(SocketAddr, Proto)>,
    extras: Option<&Extras>,
) -> Vec<BackendInfo> {
    let mut out = Vec::new();
    for s in &stats.services {
        if only.is_some_and(|o| o != (s.vip, s.proto)) {
            continue;
        }
        let name = service_name(s.vip, proto_name(s.proto));
        let conf = extras.and_then(|e| {
            e.configured
                .iter()
                .find(|c| c.vip == s.vip && c.proto == s.proto)
        });
        let svc_health = extras.and_then(|e| e.health).and_then(|h| {
            h.services
                .iter()
                .find(|hs| hs.vip == s.vip && hs.proto == s.proto)
        });
        let lookup = |addr: SocketAddr| {
            let configured_weight = conf.and_then(|c| {
                c.backends
                    .iter()
                    .chain(c.sorry.iter())
                    .find(|b| b.addr == addr)
                    .map(|b| b.weight)
            });
            let over = extras.and_then(|e| e.overrides.get(&(s.vip, s.proto, addr)));
            // Without checkers there is no health to show.
            let health = svc_health
                .and_then(|h| h.backends.iter().find(|b| b.addr == addr))
                .filter(|b| !b.checkers.is_empty())
                .map(health_info);
            (configured_weight, over, health)
        };
        for b in &s.backends {
            let (configured_weight, override_, health) = lookup(b.addr);
            out.push(BackendInfo {
                service: name.clone(),
                address: b.addr.ip(),
                port: b.addr.port(),
                weight: b.weight,
                configured_weight,
                override_,
                mac: b.mac.map(|m| m.to_string()),
                ready: b.ready,
                sorry: b.sorry,
                active_conns: b.active,
                inactive_conns: b.inactive,
                packets: b.packets,
                bytes: b.bytes,
                new_conns: b.new_conns,
                health,
            });
        }
        // Disabled backends are out of the data plane: listed from the
        // configuration so the operator still sees them.
        if let (Some(e), Some(c)) = (extras, conf) {
            for cb in c.backends.iter().chain(c.sorry.iter()) {
                if s.backends.iter().any(|b| b.addr == cb.addr) {
                    continue;
                }
                if e.overrides.get(&(s.vip, s.proto, cb.addr)) != Some(OverrideInfo::Disable) {
                    continue;
                }
                let (configured_weight, override_, health) = lookup(cb.addr);
                out.push(BackendInfo {
                    service: name.clone(),
                    address: cb.addr.ip(),
                    port: cb.addr.port(),
                    weight: 0,
                    configured_weight,
                    override_,
                    mac: None,
                    ready: false,
                    sorry: c.sorry.as_ref().is_some_and(|so| so.addr == cb.addr),
                    active_conns: 0,
                    inactive_conns: 0,
                    packets: 0,
                    bytes: 0,
                    new_conns: 0,
                    health,
                });
            }
        }
    }
    out
}

/// Connection sync's status as `lbctl sync` and the metrics show it: the
/// counters of losses flattened into one map by reason.
pub fn sync(s: &crate::connsync::SyncStatus) -> super::protocol::SyncInfo {
    let c = &s.counters;
    let mut dropped = std::collections::BTreeMap::new();
    let mut put = |k: String, v: u64| {
        *dropped.entry(k).or_insert(0) += v;
    };
    put("unknown_service".into(), c.skipped_unknown_service);
    put("unknown_backend".into(), c.skipped_unknown_backend);
    put("not_persistent".into(), c.skipped_not_persistent);
    put("other_syncid".into(), c.bad_syncid);
    put("not_receiving".into(), c.ignored_messages);
    put(
        "report_unknown_service".into(),
        c.unreported_unknown_service,
    );
    put(
        "report_unknown_backend".into(),
        c.unreported_unknown_backend,
    );
    put("ring_full".into(), c.ring_drops + s.ring_drops);
    put("send_error".into(), c.send_errors);
    put("write_error".into(), s.write_errors);
    for (k, v) in &c.decode_errors {
        put(format!("message_{k}"), *v);
    }
    for (k, v) in &c.skipped_records {
        put(format!("record_{k}"), *v);
    }
    let role = match s.role {
        crate::connsync::core::Role::Master => "master",
        crate::connsync::core::Role::Backup => "backup",
        crate::connsync::core::Role::Both => "both",
    };
    super::protocol::SyncInfo {
        role: role.into(),
        interface: s.settings.interface.clone(),
        vrrp_instance: s.settings.vrrp_instance.clone(),
        syncid: s.settings.syncid,
        group: s.settings.group,
        port: s.settings.port,
        ttl: s.settings.ttl,
        maxlen: s.settings.send_maxlen,
        sent_messages: c.sent_messages,
        sent_records: c.sent_records,
        received_messages: c.received_messages,
        received_records: c.received_records,
        written: c.written,
        dropped,
        error: s.error.clone(),
    }
}
