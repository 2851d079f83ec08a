use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_common::conn_state;

use super::*;
use crate::connsync::directory::{Directory, LocalService};
use crate::connsync::packet::{self, flags, state, SyncConn};
use crate::dataplane::{Algo, Mode, Persistence, Proto, Timeouts};

const TCP: u8 = 6;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn service(id: u32, vip: &str, algo: Algo, persist: bool) -> LocalService {
    LocalService {
        id,
        proto: Proto::Tcp,
        vip: sa(vip),
        mode: Mode::Dr,
        algo,
        persistence: persist.then(|| Persistence {
            timeout_secs: 300,
            mask: "255.255.255.0".parse().unwrap(),
        }),
        backends: HashMap::from([(sa("10.0.1.1:80"), 7), (sa("10.0.1.2:80"), 8)]),
    }
}

fn dir() -> Directory {
    Directory::new([
        service(1, "192.0.2.1:80", Algo::Rr, false),
        service(2, "192.0.2.2:80", Algo::Wlc, true),
    ])
}

fn core(role: Role, maxlen: usize) -> Core {
    Core::new(
        Params {
            syncid: 5,
            send_maxlen: maxlen,
            timeouts: Timeouts::default(),
        },
        role,
    )
}

fn report(service: u32, vip: &str, client_port: u16) -> Report {
    Report {
        protocol: TCP,
        client: SocketAddr::new("198.51.100.9".parse().unwrap(), client_port),
        vip: sa(vip),
        dest: sa("10.0.1.2:80"),
        service,
        state: conn_state::ESTABLISHED,
    }
}

fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_report_waits_at_most_a_second_then_leaves_as_ipvs_records() {
    let (d, t0) = (dir(), Instant::now());
    let mut c = core(Role::Master, 1472);
    assert!(c
        .report(&report(1, "192.0.2.1:80", 40000), &d, t0)
        .is_empty());
    assert_eq!(c.deadline(), Some(t0 + FLUSH_AFTER));
    assert!(c.tick(t0 + Duration::from_millis(999)).is_empty());
    let out = sent(&c.tick(t0 + FLUSH_AFTER));
    assert_eq!(out.len(), 1);
    let m = packet::decode(&out[0], 5).unwrap();
    assert_eq!(m.conns.len(), 1);
    let r = &m.conns[0];
    assert_eq!(
        (r.protocol, r.state, r.timeout),
        (TCP, state::TCP_ESTABLISHED, 900)
    );
    assert_eq!(r.forward(), flags::DROUTE);
    assert_eq!((r.vip, r.dest), (sa("192.0.2.1:80"), sa("10.0.1.2:80")));
    assert_eq!(c.deadline(), None);
    assert_eq!(
        (c.counters().sent_messages, c.counters().sent_records),
        (1, 1)
    );
}

#[test]
fn records_fill_a_message_up_to_maxlen() {
    let (d, t0) = (dir(), Instant::now());
    // Header (8) and three 36-byte IPv4 records.
    let mut c = core(Role::Master, 8 + 3 * 36);
    let mut out = Vec::new();
    for p in 0..7 {
        out.extend(sent(&c.report(
            &report(1, "192.0.2.1:80", 40000 + p),
            &d,
            t0,
        )));
    }
    assert_eq!(out.len(), 2, "two full messages left at once");
    for m in &out {
        assert!(m.len() <= 8 + 3 * 36);
        assert_eq!(packet::decode(m, 5).unwrap().conns.len(), 3);
    }
    let last = sent(&c.tick(t0 + FLUSH_AFTER));
    assert_eq!(packet::decode(&last[0], 5).unwrap().conns.len(), 1);
    assert_eq!(c.counters().sent_records, 7);
}

#[test]
fn a_persistent_service_also_sends_its_template() {
    let (d, t0) = (dir(), Instant::now());
    let mut c = core(Role::Master, 1472);
    c.report(&report(2, "192.0.2.2:80", 40000), &d, t0);
    let out = sent(&c.tick(t0 + FLUSH_AFTER));
    let m = packet::decode(&out[0], 5).unwrap();
    assert_eq!(m.conns.len(), 2);
    let t = &m.conns[1];
    assert!(t.is_template());
    assert_eq!(t.client, sa("198.51.100.0:0"), "masked, no client port");
    assert_eq!(t.timeout, 300);
}

#[test]
fn the_role_follows_vrrp_and_a_master_stepping_down_sends_first() {
    let (d, t0) = (dir(), Instant::now());
    let mut c = core(Role::Backup, 1472);
    assert_eq!(c.start(), vec![Action::Report(false)]);
    assert!(c.report(&report(1, "192.0.2.1:80", 1), &d, t0).is_empty());
    assert_eq!(c.deadline(), None, "a backup sends nothing");
    assert_eq!(c.set_role(Role::Master), vec![Action::Report(true)]);
    c.report(&report(1, "192.0.2.1:80", 1), &d, t0);
    let out = c.set_role(Role::Backup);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(out.last(), Some(&Action::Report(false)));
    assert!(Role::Both.sends() && Role::Both.receives());
}

fn record(vip: &str, dest: &str, st: u16, fl: u32) -> SyncConn {
    SyncConn {
        protocol: TCP,
        flags: fl,
        state: st,
        client: sa("198.51.100.9:40000"),
        vip: sa(vip),
        dest: sa(dest),
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

fn message(syncid: u8, recs: &[SyncConn]) -> Vec<u8> {
    let mut b = packet::MessageBuilder::new(syncid, 1472);
    for r in recs {
        b.push(r).unwrap();
    }
    b.finish()
}

#[test]
fn received_records_map_to_local_ids_or_are_skipped_by_reason() {
    let d = dir();
    let mut c = core(Role::Backup, 1472);
    let msg = message(
        5,
        &[
            record(
                "192.0.2.1:80",
                "10.0.1.1:80",
                state::TCP_ESTABLISHED,
                flags::DROUTE,
            ),
            record(
                "192.0.2.9:80",
                "10.0.1.1:80",
                state::TCP_ESTABLISHED,
                flags::DROUTE,
            ),
            record(
                "192.0.2.1:80",
                "10.0.9.9:80",
                state::TCP_ESTABLISHED,
                flags::DROUTE,
            ),
            record(
                "192.0.2.2:80",
                "10.0.1.2:80",
                state::TCP_FIN_WAIT,
                flags::DROUTE,
            ),
            record(
                "192.0.2.2:80",
                "10.0.1.2:80",
                0,
                flags::DROUTE | flags::TEMPLATE,
            ),
            record(
                "192.0.2.1:80",
                "10.0.1.1:80",
                0,
                flags::DROUTE | flags::TEMPLATE,
            ),
        ],
    );
    let out = c.receive(&msg, &d);
    let [Action::Write(entries)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        entries,
        &vec![
            Entry::Conn {
                protocol: TCP,
                client: sa("198.51.100.9:40000"),
                vip: sa("192.0.2.1:80"),
                dest: sa("10.0.1.1:80"),
                service: 1,
                backend: 7,
                state: conn_state::ESTABLISHED,
                mode: Mode::Dr,
                counted: false,
            },
            Entry::Conn {
                protocol: TCP,
                client: sa("198.51.100.9:40000"),
                vip: sa("192.0.2.2:80"),
                dest: sa("10.0.1.2:80"),
                service: 2,
                backend: 8,
                state: conn_state::FIN,
                mode: Mode::Dr,
                counted: true,
            },
            Entry::Persist {
                client: "198.51.100.0".parse::<IpAddr>().unwrap(),
                service: 2,
                backend: 8,
            },
        ]
    );
    let k = c.counters();
    assert_eq!(
        (k.received_messages, k.received_records, k.written),
        (1, 6, 3)
    );
    assert_eq!(k.skipped_unknown_service, 1);
    assert_eq!(k.skipped_unknown_backend, 1);
    assert_eq!(k.skipped_not_persistent, 1);
}

#[test]
fn bad_datagrams_are_counted_by_kind_and_write_nothing() {
    let d = dir();
    let mut c = core(Role::Backup, 1472);
    let good = message(
        5,
        &[record(
            "192.0.2.1:80",
            "10.0.1.1:80",
            state::TCP_ESTABLISHED,
            flags::DROUTE,
        )],
    );
    assert!(c.receive(&message(6, &[]), &d).is_empty());
    assert!(c.receive(&good[..good.len() - 1], &d).is_empty());
    assert!(c.receive(&[0, 5], &d).is_empty());
    let k = c.counters();
    assert_eq!(k.bad_syncid, 1);
    assert_eq!(k.decode_errors.get("size_mismatch"), Some(&1));
    assert_eq!(k.decode_errors.get("too_short"), Some(&1));
    assert_eq!(k.written, 0);
    // A master does not apply what it hears.
    let mut m = core(Role::Master, 1472);
    assert!(m.receive(&good, &d).is_empty());
    assert_eq!(m.counters().ignored_messages, 1);
}

#[test]
fn states_map_both_ways() {
    for s in [
        conn_state::SYN,
        conn_state::ESTABLISHED,
        conn_state::FIN,
        conn_state::CLOSE,
    ] {
        assert_eq!(local_state(TCP, ipvs_state(TCP, s)), s);
    }
    assert_eq!(local_state(17, state::UDP_NORMAL), conn_state::UDP);
    assert_eq!(local_state(TCP, state::TCP_TIME_WAIT), conn_state::FIN);
}
