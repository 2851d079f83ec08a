//! The pure parts: configuration → what IPVS should hold → operations.

use std::collections::BTreeSet;

use super::attrs::{fwd, svc_flag, Dest, Key, Service, IPPROTO_TCP, IPPROTO_UDP};
use super::*;
use crate::dataplane::{BackendSpec, IpvsOptions, Persistence, Proto, ServiceSpec};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn spec(vip: &str, backends: &[(&str, u32)]) -> ServiceSpec {
    let mut s = ServiceSpec::new(
        sa(vip),
        Proto::Tcp,
        backends
            .iter()
            .map(|(a, w)| BackendSpec::new(sa(a), *w))
            .collect(),
    );
    s.mode = Mode::Nat;
    s
}

fn current(w: &Wanted) -> (Service, Vec<Dest>) {
    (
        w.svc.clone(),
        w.dests.iter().map(|d| d.dest.clone()).collect(),
    )
}

fn keys(specs: &[&ServiceSpec]) -> BTreeSet<Key> {
    specs.iter().map(|s| key_of(s)).collect()
}

#[test]
fn keepalived_mapping_of_a_service() {
    let mut s = spec("10.0.0.1:80", &[("10.0.0.11:80", 3)]);
    s.algo = Algo::Sh;
    s.hash_port = true;
    s.fallback = true;
    s.mode = Mode::Dr;
    s.persistence = Some(Persistence {
        timeout_secs: 600,
        mask: "255.255.255.0".parse().unwrap(),
    });
    let w = wanted(&s);
    assert_eq!(
        w.svc.key,
        Key::Addr {
            protocol: IPPROTO_TCP,
            vip: sa("10.0.0.1:80")
        }
    );
    assert_eq!(w.svc.sched, "sh");
    assert_eq!(
        w.svc.flags,
        svc_flag::PERSISTENT | svc_flag::SCHED_PORT | svc_flag::SCHED_FALLBACK
    );
    assert_eq!(
        (w.svc.timeout, w.svc.netmask.to_ne_bytes()),
        (600, [255, 255, 255, 0])
    );
    assert_eq!(w.dests.len(), 1);
    assert_eq!(w.dests[0].dest.fwd, fwd::DROUTE);
    assert_eq!(w.dests[0].dest.weight, 3);
}

#[test]
fn ipv6_netmask_is_a_prefix_length_even_without_persistence() {
    let mut s = spec("[2001:db8::1]:443", &[("[2001:db8::11]:443", 1)]);
    assert_eq!(
        wanted(&s).svc.netmask,
        128,
        "the kernel wants 1..128 for IPv6"
    );
    s.persistence = Some(Persistence {
        timeout_secs: 360,
        mask: "ffff:ffff:ffff:ffff::".parse().unwrap(),
    });
    assert_eq!(wanted(&s).svc.netmask, 64);
    assert_eq!(wanted(&spec("10.0.0.1:80", &[])).svc.netmask, u32::MAX);
}

#[test]
fn ipvs_only_schedulers_flags_ops_and_fwmark() {
    let mut s = spec("0.0.0.0:0", &[("10.0.0.11:0", 1)]);
    s.proto = Proto::Udp;
    s.ipvs = IpvsOptions {
        sched: "lblcr".into(),
        sched_flags: svc_flag::SCHED3,
        one_packet: true,
        fwmark: Some(42),
        sorry_inhibit: false,
    };
    let w = wanted(&s);
    assert_eq!(
        w.svc.key,
        Key::Fwmark {
            af: attrs::AF_INET,
            mark: 42
        }
    );
    assert_eq!(w.svc.sched, "lblcr");
    assert_eq!(w.svc.flags, svc_flag::SCHED3 | svc_flag::ONEPACKET);
    // The UDP service of an address keys on its protocol.
    s.ipvs.fwmark = None;
    s.vip = sa("10.0.0.1:53");
    assert_eq!(
        wanted(&s).svc.key,
        Key::Addr {
            protocol: IPPROTO_UDP,
            vip: sa("10.0.0.1:53")
        }
    );
}

#[test]
fn down_backend_is_deleted_unless_inhibited() {
    let mut s = spec("10.0.0.1:80", &[("10.0.0.11:80", 1), ("10.0.0.12:80", 1)]);
    let before = wanted(&s);
    // Down without inhibit_on_failure: health sets weight 0 and removed.
    s.backends[0].weight = 0;
    s.backends[0].removed = true;
    let ops = diff(&[current(&before)], &[wanted(&s)], &keys(&[&s]));
    assert_eq!(ops, vec![Op::DelDest(before.svc.key, sa("10.0.0.11:80"))]);
    // With inhibit_on_failure: weight 0, kept.
    s.backends[0].removed = false;
    let ops = diff(&[current(&before)], &[wanted(&s)], &keys(&[&s]));
    let [Op::EditDest(_, d)] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    assert_eq!((d.dest.addr, d.dest.weight), (sa("10.0.0.11:80"), 0));
}

#[test]
fn backend_back_up_is_added_again() {
    let mut s = spec("10.0.0.1:80", &[("10.0.0.11:80", 1), ("10.0.0.12:80", 2)]);
    let all = wanted(&s);
    s.backends[1].weight = 0;
    s.backends[1].removed = true;
    let without = wanted(&s);
    s.backends[1].weight = 2;
    s.backends[1].removed = false;
    let ops = diff(&[current(&without)], &[wanted(&s)], &keys(&[&s]));
    assert_eq!(ops, vec![Op::AddDest(all.svc.key, all.dests[1].clone())]);
}

#[test]
fn sorry_server_serves_only_while_no_real_server_can() {
    let mut s = spec("10.0.0.1:80", &[("10.0.0.11:80", 1)]);
    s.sorry = Some(BackendSpec::new(sa("10.0.0.99:80"), 1));
    let w = wanted(&s);
    assert_eq!(w.dests.len(), 1, "real server serving: no sorry server");
    // Quorum lost: health zeroes (and here removes) the real server.
    s.backends[0].weight = 0;
    s.backends[0].removed = true;
    let lost = wanted(&s);
    assert_eq!(lost.dests.len(), 1);
    assert!(lost.dests[0].sorry);
    assert_eq!(
        (lost.dests[0].dest.addr, lost.dests[0].dest.weight),
        (sa("10.0.0.99:80"), 1)
    );
    let ops = diff(&[current(&w)], std::slice::from_ref(&lost), &keys(&[&s]));
    assert_eq!(
        ops,
        vec![
            Op::AddDest(w.svc.key, lost.dests[0].clone()),
            Op::DelDest(w.svc.key, sa("10.0.0.11:80")),
        ],
        "the sorry server comes in before the last real server goes"
    );
    // sorry_server_inhibit: present with weight 0 while real servers serve.
    s.backends[0].weight = 1;
    s.backends[0].removed = false;
    s.ipvs.sorry_inhibit = true;
    let w = wanted(&s);
    assert_eq!(w.dests.len(), 2);
    assert_eq!(w.dests[1].dest.weight, 0);
}

#[test]
fn unchanged_state_needs_no_operation() {
    let a = spec("10.0.0.1:80", &[("10.0.0.11:80", 1)]);
    let b = spec("[2001:db8::1]:80", &[("[2001:db8::11]:80", 1)]);
    let cur = vec![current(&wanted(&a)), current(&wanted(&b))];
    assert!(diff(&cur, &[wanted(&a), wanted(&b)], &keys(&[&a, &b])).is_empty());
}

#[test]
fn kernel_flags_and_unused_timeout_do_not_count_as_changes() {
    let a = spec("10.0.0.1:80", &[]);
    let mut have = current(&wanted(&a));
    have.0.flags |= svc_flag::HASHED;
    have.0.timeout = 300; // not persistent: irrelevant
    have.0.netmask = 0;
    assert!(diff(&[have], &[wanted(&a)], &BTreeSet::new()).is_empty());
}

#[test]
fn reload_changes_only_what_differs() {
    let old = spec("10.0.0.1:80", &[("10.0.0.11:80", 1), ("10.0.0.12:80", 1)]);
    let gone = spec("10.0.0.2:80", &[("10.0.0.21:80", 1)]);
    let mut new = old.clone();
    new.algo = Algo::Wrr;
    new.backends[1].weight = 5;
    new.backends.remove(0);
    new.backends.push(BackendSpec::new(sa("10.0.0.13:80"), 1));
    let added = spec("10.0.0.3:80", &[("10.0.0.31:80", 1)]);
    let cur = vec![current(&wanted(&old)), current(&wanted(&gone))];
    let ops = diff(&cur, &[wanted(&new), wanted(&added)], &keys(&[&old, &gone]));
    let k = key_of(&old);
    let wn = wanted(&new);
    let wa = wanted(&added);
    assert_eq!(
        ops,
        vec![
            Op::DelService(key_of(&gone)),
            Op::EditService(wn.svc.clone()),
            Op::EditDest(k, wn.dests[0].clone()),
            Op::AddDest(k, wn.dests[1].clone()),
            Op::DelDest(k, sa("10.0.0.11:80")),
            Op::AddService(wa.svc.clone()),
            Op::AddDest(key_of(&added), wa.dests[0].clone()),
        ]
    );
}

#[test]
fn services_already_in_ipvs_are_adopted_and_others_left_alone() {
    let mine = spec("10.0.0.1:80", &[("10.0.0.11:80", 2)]);
    let mut theirs_mine = current(&wanted(&mine));
    // Someone (an earlier lbd, an operator) made it with rr and weight 1,
    // plus a stray destination.
    theirs_mine.0.sched = "rr".into();
    theirs_mine.1[0].weight = 1;
    theirs_mine
        .1
        .push(Dest::new(sa("10.0.0.66:80"), fwd::MASQ, 1));
    let foreign = current(&wanted(&spec("10.9.9.9:80", &[("10.9.9.10:80", 1)])));
    let mut w = wanted(&mine);
    w.svc.sched = "wlc".into();
    let ops = diff(&[theirs_mine, foreign], &[w.clone()], &BTreeSet::new());
    let k = key_of(&mine);
    assert_eq!(
        ops,
        vec![
            Op::EditService(w.svc.clone()),
            Op::EditDest(k, w.dests[0].clone()),
            Op::DelDest(k, sa("10.0.0.66:80")),
        ],
        "no AddService (no duplicate), nothing done to the foreign service"
    );
}

#[test]
fn errors_name_the_service_and_the_field() {
    let mut s = spec("10.0.0.1:80", &[("10.0.0.11:80", 1)]);
    s.ipvs.sched = "twos".into();
    let w = wanted(&s);
    let msg = explain(
        &Op::AddService(w.svc.clone()),
        &GenlError::Kernel(libc::ENOENT),
    );
    assert!(msg.contains("10.0.0.1:80/tcp"), "{msg}");
    assert!(msg.contains("lb_algo twos"), "{msg}");
    assert!(msg.contains("ip_vs_twos"), "{msg}");
    assert!(msg.ends_with("[ENOENT]"), "{msg}");
    let msg = explain(
        &Op::AddDest(w.svc.key, w.dests[0].clone()),
        &GenlError::Kernel(libc::EPERM),
    );
    assert!(msg.contains("real_server 10.0.0.11:80"), "{msg}");
    assert!(msg.contains("CAP_NET_ADMIN"), "{msg}");
    let msg = explain(&Op::AddService(w.svc), &GenlError::Kernel(libc::EEXIST));
    assert!(msg.contains("already in IPVS"), "{msg}");
}

#[test]
fn ipvs_tables_become_stats_with_connection_counts() {
    let mut v4 = spec("10.0.0.1:80", &[("10.0.0.11:80", 3), ("10.0.0.12:80", 0)]);
    v4.sorry = Some(BackendSpec::new(sa("10.0.0.99:80"), 1));
    v4.ipvs.sorry_inhibit = true;
    let w = wanted(&v4);
    let (mut svc, mut dests) = current(&w);
    svc.stats.conns = 9;
    svc.stats.inpkts = 100;
    svc.stats.outpkts = 80;
    svc.stats.inbytes = 1000;
    svc.stats.outbytes = 800;
    dests[0].active = 5;
    dests[0].inactive = 1;
    dests[0].stats.conns = 9;
    dests[0].stats.inpkts = 100;
    dests[0].stats.outpkts = 80;
    let mut mark = spec("10.0.0.2:0", &[("10.0.0.21:0", 1)]);
    mark.ipvs.fwmark = Some(7);
    let sctp = Service {
        key: Key::Addr {
            protocol: 132,
            vip: sa("10.0.0.3:9"),
        },
        ..w.svc.clone()
    };
    let sorry: SorryServers = [(w.svc.key, sa("10.0.0.99:80"))].into_iter().collect();
    let stats = stats_of(
        vec![(svc, dests), current(&wanted(&mark)), (sctp, Vec::new())],
        &sorry,
    );
    assert_eq!(stats.services.len(), 2, "SCTP is not shown");
    let s = &stats.services[0];
    assert_eq!(
        (s.vip, s.proto, s.fwmark),
        (sa("10.0.0.1:80"), Proto::Tcp, None)
    );
    assert_eq!((s.algo, s.mode), (Some(Algo::Rr), Some(Mode::Nat)));
    assert_eq!((s.packets, s.bytes, s.new_conns), (180, 1800, 9));
    let b: Vec<_> = s
        .backends
        .iter()
        .map(|b| {
            (
                b.addr, b.weight, b.ready, b.sorry, b.active, b.inactive, b.packets,
            )
        })
        .collect();
    assert_eq!(
        b,
        vec![
            (sa("10.0.0.11:80"), 3, true, false, 5, 1, 180),
            (sa("10.0.0.12:80"), 0, false, false, 0, 0, 0),
            (sa("10.0.0.99:80"), 0, false, true, 0, 0, 0),
        ]
    );
    let m = &stats.services[1];
    assert_eq!((m.vip, m.fwmark), (sa("0.0.0.0:0"), Some(7)));
    assert_eq!(
        stats.global,
        vec![("in".to_string(), 100, 1000), ("out".to_string(), 80, 800)]
    );
}
