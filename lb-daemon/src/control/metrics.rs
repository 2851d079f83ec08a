//! Prometheus metrics (OpenMetrics text) on `--metrics-addr`: per service
//! and backend packets, bytes, connections, weights and health; the data
//! plane's global counters (drops, passes, table full, ...); build info; and
//! the VRRP families (empty until VRRP runs). Everything is read at scrape
//! time from the same sources as lbctl.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tracing::debug;

use super::hub::Hub;
use super::limits::{METRICS_READ, WRITE_TIMEOUT};
use super::protocol::{unix_ms, ProtoName, VrrpInstance};
use crate::dataplane::Stats;
use crate::health::Snapshot;

/// Everything one scrape shows, gathered before encoding.
#[derive(Debug, Default)]
pub struct Scrape {
    pub stats: Option<Stats>,
    pub health: Option<Snapshot>,
    pub vrrp: Vec<VrrpInstance>,
    pub sync: Option<super::protocol::SyncInfo>,
    pub started_unix_ms: u64,
    pub config_loaded_unix_ms: Option<u64>,
    pub last_reload_ok: Option<bool>,
    /// (listener, open connections, refused connections).
    pub listeners: Vec<(&'static str, usize, u64)>,
}

pub async fn gather(hub: &Hub) -> Scrape {
    let stats = hub.dataplane().and_then(|d| d.view.stats().ok());
    let health = hub.health_snapshot().await;
    let state = hub.state();
    Scrape {
        stats,
        health,
        vrrp: hub.vrrp_instances(),
        sync: hub.sync_info(),
        started_unix_ms: unix_ms(hub.started),
        config_loaded_unix_ms: state.config_loaded.map(unix_ms),
        last_reload_ok: state.last_reload.as_ref().map(|r| r.ok),
        listeners: hub.listeners.figures(),
    }
}

/// The scrape as OpenMetrics text.
pub fn render(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector(Arc::new(scrape))));
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct ScrapeCollector(Arc<Scrape>);

type Labels = Vec<(&'static str, String)>;

/// One family: its samples by label set.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }
    fn add(&mut self, labels: Labels, v: impl Into<Sample>) {
        self.samples.push((labels, v.into().0));
    }
    fn encode(self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, v) in &self.samples {
            let mut fam = m.encode_family(labels)?;
            encode_value(&mut fam, self.kind, *v)?;
        }
        Ok(())
    }
}

/// Counters are u64 and gauges small: f64 holds them exactly enough.
struct Sample(f64);
impl From<u64> for Sample {
    fn from(v: u64) -> Self {
        Sample(v as f64)
    }
}
impl From<u32> for Sample {
    fn from(v: u32) -> Self {
        Sample(f64::from(v))
    }
}
impl From<f64> for Sample {
    fn from(v: f64) -> Self {
        Sample(v)
    }
}
impl From<bool> for Sample {
    fn from(v: bool) -> Self {
        Sample(if v { 1.0 } else { 0.0 })
    }
}

fn encode_value(m: &mut MetricEncoder, kind: MetricType, v: f64) -> Result<(), std::fmt::Error> {
    match kind {
        MetricType::Counter => {
            if v.fract() == 0.0 && v >= 0.0 {
                m.encode_counter::<NoLabelSet, _, u64>(&(v as u64), None)
            } else {
                m.encode_counter::<NoLabelSet, _, f64>(&v, None)
            }
        }
        _ => {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                m.encode_gauge(&(v as i64))
            } else {
                m.encode_gauge(&v)
            }
        }
    }
}

fn proto(p: crate::dataplane::Proto) -> String {
    match super::views::proto_name(p) {
        ProtoName::Tcp => "tcp".into(),
        ProtoName::Udp => "udp".into(),
    }
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &*self.0;
        {
            let mut m =
                enc.encode_descriptor("lb_build", "lbd's version", None, MetricType::Info)?;
            m.encode_info(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])?;
        }
        let mut start = Family::new(
            "lb_start_time_seconds",
            "When lbd started (Unix time)",
            MetricType::Gauge,
        );
        start.add(vec![], s.started_unix_ms as f64 / 1000.0);
        start.encode(&mut enc)?;
        let mut loaded = Family::new(
            "lb_config_loaded_time_seconds",
            "When the running configuration was loaded (Unix time)",
            MetricType::Gauge,
        );
        if let Some(t) = s.config_loaded_unix_ms {
            loaded.add(vec![], t as f64 / 1000.0);
        }
        loaded.encode(&mut enc)?;
        let mut reload_ok = Family::new(
            "lb_config_last_reload_successful",
            "Whether the last reload was accepted (1) or refused (0)",
            MetricType::Gauge,
        );
        if let Some(ok) = s.last_reload_ok {
            reload_ok.add(vec![], ok);
        }
        reload_ok.encode(&mut enc)?;
        let mut lc = Family::new(
            "lb_listener_connections",
            "Open connections to lbd's listeners (control socket, metrics)",
            MetricType::Gauge,
        );
        let mut lr = Family::new(
            "lb_listener_refused",
            "Connections closed at once because the listener was at its cap",
            MetricType::Counter,
        );
        for (name, open, refused) in &s.listeners {
            lc.add(vec![("listener", name.to_string())], *open as u64);
            lr.add(vec![("listener", name.to_string())], *refused);
        }
        lc.encode(&mut enc)?;
        lr.encode(&mut enc)?;

        // Data plane: global counters.
        let mut gp = Family::new(
            "lb_dataplane_packets",
            "Packets by data plane event (xdp_drop, xdp_pass, xdp_tx, conn_insert_failed = connection table full, ...)",
            MetricType::Counter,
        );
        let mut gb = Family::new(
            "lb_dataplane_bytes",
            "Bytes by data plane event",
            MetricType::Counter,
        );
        // Services and backends.
        let mut sp = Family::new(
            "lb_service_packets",
            "Packets to the service",
            MetricType::Counter,
        );
        let mut sb = Family::new(
            "lb_service_bytes",
            "Bytes to the service",
            MetricType::Counter,
        );
        let mut sn = Family::new(
            "lb_service_connections",
            "New connections scheduled",
            MetricType::Counter,
        );
        let mut sa = Family::new(
            "lb_service_active_connections",
            "Established connections",
            MetricType::Gauge,
        );
        let mut si = Family::new(
            "lb_service_inactive_connections",
            "Other connections (SYN, FIN, UDP)",
            MetricType::Gauge,
        );
        let mut bp = Family::new(
            "lb_backend_packets",
            "Packets sent to the backend",
            MetricType::Counter,
        );
        let mut bb = Family::new(
            "lb_backend_bytes",
            "Bytes sent to the backend",
            MetricType::Counter,
        );
        let mut bn = Family::new(
            "lb_backend_connections",
            "New connections scheduled to the backend",
            MetricType::Counter,
        );
        let mut ba = Family::new(
            "lb_backend_active_connections",
            "Established connections",
            MetricType::Gauge,
        );
        let mut bi = Family::new(
            "lb_backend_inactive_connections",
            "Other connections (SYN, FIN, UDP)",
            MetricType::Gauge,
        );
        let mut bw = Family::new(
            "lb_backend_weight",
            "Weight in the data plane (0: no new connections)",
            MetricType::Gauge,
        );
        let mut br = Family::new(
            "lb_backend_ready",
            "In the data plane and sendable to",
            MetricType::Gauge,
        );
        let mut bh = Family::new(
            "lb_backend_health_up",
            "Health checks say up (1) or down (0); absent without checkers",
            MetricType::Gauge,
        );
        let mut bl_err = Family::new(
            "lb_backend_health_local_errors",
            "Checks that could not run for a local reason (never a failure)",
            MetricType::Counter,
        );
        if let Some(stats) = &s.stats {
            for (name, packets, bytes) in &stats.global {
                gp.add(vec![("event", name.clone())], *packets);
                gb.add(vec![("event", name.clone())], *bytes);
            }
            for svc in &stats.services {
                let l = || {
                    vec![
                        ("vip", svc.vip.ip().to_string()),
                        ("port", svc.vip.port().to_string()),
                        ("proto", proto(svc.proto)),
                    ]
                };
                sp.add(l(), svc.packets);
                sb.add(l(), svc.bytes);
                sn.add(l(), svc.new_conns);
                sa.add(l(), svc.backends.iter().map(|b| b.active).sum::<u64>());
                si.add(l(), svc.backends.iter().map(|b| b.inactive).sum::<u64>());
                let health = s.health.as_ref().and_then(|h| {
                    h.services
                        .iter()
                        .find(|hs| hs.vip == svc.vip && hs.proto == svc.proto)
                });
                for b in &svc.backends {
                    let bl = || {
                        let mut v = l();
                        v.push(("backend", b.addr.to_string()));
                        v
                    };
                    bp.add(bl(), b.packets);
                    bb.add(bl(), b.bytes);
                    bn.add(bl(), b.new_conns);
                    ba.add(bl(), b.active);
                    bi.add(bl(), b.inactive);
                    bw.add(bl(), b.weight);
                    br.add(bl(), b.ready);
                    if let Some(hb) =
                        health.and_then(|h| h.backends.iter().find(|x| x.addr == b.addr))
                    {
                        bh.add(bl(), hb.up);
                        bl_err.add(
                            bl(),
                            hb.checkers.iter().map(|c| c.local_errors).sum::<u64>(),
                        );
                    }
                }
            }
        }
        for f in [
            gp, gb, sp, sb, sn, sa, si, bp, bb, bn, ba, bi, bw, br, bh, bl_err,
        ] {
            f.encode(&mut enc)?;
        }

        // VRRP.
        let mut vs = Family::new(
            "lb_vrrp_state",
            "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT)",
            MetricType::Gauge,
        );
        let mut vp = Family::new("lb_vrrp_priority", "Configured priority", MetricType::Gauge);
        let mut ve = Family::new(
            "lb_vrrp_effective_priority",
            "Priority after trackers",
            MetricType::Gauge,
        );
        let mut vt = Family::new("lb_vrrp_transitions", "State changes", MetricType::Counter);
        let mut vas = Family::new("lb_vrrp_adverts_sent", "Adverts sent", MetricType::Counter);
        let mut var = Family::new(
            "lb_vrrp_adverts_received",
            "Valid adverts received",
            MetricType::Counter,
        );
        let mut vad = Family::new(
            "lb_vrrp_adverts_dropped",
            "Adverts dropped",
            MetricType::Counter,
        );
        for i in &s.vrrp {
            let l = || vec![("instance", i.name.clone())];
            for st in ["INIT", "BACKUP", "MASTER", "FAULT"] {
                let mut sl = l();
                sl.push(("state", st.to_string()));
                vs.add(sl, i.state == st);
            }
            vp.add(l(), u32::from(i.priority));
            ve.add(l(), u32::from(i.effective_priority));
            vt.add(l(), i.transitions);
            vas.add(l(), i.adverts_sent);
            var.add(l(), i.adverts_received);
            vad.add(l(), i.adverts_dropped);
        }
        for f in [vs, vp, ve, vt, vas, var, vad] {
            f.encode(&mut enc)?;
        }
        sync_families(s.sync.as_ref(), &mut enc)
    }
}

/// Connection sync (`lvs_sync_daemon`); the families exist when it is off.
fn sync_families(
    sync: Option<&super::protocol::SyncInfo>,
    enc: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut role = Family::new(
        "lb_sync_role",
        "1 for connection sync's current role (master sends, backup receives, both)",
        MetricType::Gauge,
    );
    let mut messages = Family::new(
        "lb_sync_messages",
        "Sync messages sent and received",
        MetricType::Counter,
    );
    let mut records = Family::new(
        "lb_sync_records",
        "Connection records sent and received",
        MetricType::Counter,
    );
    let mut written = Family::new(
        "lb_sync_written",
        "Synced entries written into the connection table",
        MetricType::Counter,
    );
    let mut dropped = Family::new(
        "lb_sync_dropped",
        "Sync messages, records and reports lost or refused, by reason",
        MetricType::Counter,
    );
    if let Some(s) = sync {
        for r in ["master", "backup", "both"] {
            role.add(vec![("role", r.to_string())], s.role == r);
        }
        let dir = |d: &str| vec![("direction", d.to_string())];
        messages.add(dir("sent"), s.sent_messages);
        messages.add(dir("received"), s.received_messages);
        records.add(dir("sent"), s.sent_records);
        records.add(dir("received"), s.received_records);
        written.add(Vec::new(), s.written);
        for (reason, n) in &s.dropped {
            dropped.add(vec![("reason", reason.clone())], *n);
        }
    }
    for f in [role, messages, records, written, dropped] {
        f.encode(enc)?;
    }
    Ok(())
}

/// Serves `GET /metrics` (HTTP/1.x, one request per connection).
pub async fn serve(listener: TcpListener, hub: Arc<Hub>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // Past the cap: a short 503 if the socket buffer takes it, and the
        // connection closed at once.
        let Some(slot) = hub.listeners.metrics.admit() else {
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        };
        let hub = hub.clone();
        tokio::spawn(async move {
            if let Err(e) = http(stream, &hub).await {
                debug!(%peer, "metrics connection: {e}");
            }
            drop(slot);
        });
    }
}

async fn http(mut stream: TcpStream, hub: &Hub) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(METRICS_READ, read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timeout"))??;
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body) = if method != "GET" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        )
    } else if path == "/metrics" || path.starts_with("/metrics?") {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(gather(hub).await),
        )
    } else if path == "/" {
        ("200 OK", "text/plain", "lbd: metrics at /metrics\n".into())
    } else {
        ("404 Not Found", "text/plain", "not found\n".into())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A client that does not read is cut off: the page is freed with it.
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timeout"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{BackendStats, Proto, ServiceStats};

    #[test]
    fn families_render_with_labels_and_vrrp_families_exist_when_empty() {
        let stats = Stats {
            global: vec![("xdp_drop".into(), 3, 300)],
            services: vec![ServiceStats {
                vip: "10.0.0.1:80".parse().unwrap(),
                fwmark: None,
                proto: Proto::Tcp,
                algo: None,
                mode: None,
                packets: 10,
                bytes: 1000,
                new_conns: 2,
                backends: vec![BackendStats {
                    addr: "10.0.0.11:80".parse().unwrap(),
                    weight: 3,
                    mac: None,
                    ready: true,
                    sorry: false,
                    active: 1,
                    inactive: 0,
                    packets: 10,
                    bytes: 1000,
                    new_conns: 2,
                }],
            }],
        };
        let text = render(Scrape {
            stats: Some(stats),
            ..Default::default()
        });
        assert!(text.contains("lb_build_info{version=\""), "{text}");
        assert!(
            text.contains("lb_dataplane_packets_total{event=\"xdp_drop\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("lb_backend_packets_total{vip=\"10.0.0.1\",port=\"80\",proto=\"tcp\",backend=\"10.0.0.11:80\"} 10"),
            "{text}"
        );
        assert!(text.contains("lb_backend_weight{vip=\"10.0.0.1\",port=\"80\",proto=\"tcp\",backend=\"10.0.0.11:80\"} 3"), "{text}");
        assert!(text.contains("# TYPE lb_vrrp_state gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn sync_families_show_the_role_and_drops_by_reason() {
        let empty = render(Scrape::default());
        assert!(empty.contains("# TYPE lb_sync_dropped counter"), "{empty}");
        let info = crate::control::protocol::SyncInfo {
            role: "backup".into(),
            interface: "eth1".into(),
            vrrp_instance: Some("VI_1".into()),
            syncid: 7,
            group: "224.0.0.81".parse().unwrap(),
            port: 8848,
            ttl: 1,
            maxlen: 1472,
            sent_messages: 0,
            sent_records: 0,
            received_messages: 4,
            received_records: 9,
            written: 7,
            dropped: [("unknown_backend".to_string(), 2)].into_iter().collect(),
            error: None,
        };
        let text = render(Scrape {
            sync: Some(info),
            ..Default::default()
        });
        for want in [
            "lb_sync_role{role=\"backup\"} 1",
            "lb_sync_role{role=\"master\"} 0",
            "lb_sync_messages_total{direction=\"received\"} 4",
            "lb_sync_records_total{direction=\"received\"} 9",
            "lb_sync_written_total{} 7",
            "lb_sync_dropped_total{reason=\"unknown_backend\"} 2",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }
}
