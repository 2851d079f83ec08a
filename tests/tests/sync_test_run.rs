//! Connection sync into and out of the real program.
//!
//! In: IPVS sync messages, decoded and mapped by the sync core, written into
//! the connection table through the data plane's sync module; the program
//! then forwards the synced flows' packets (no SYN) to the backends the
//! master chose, not where its own scheduler would send them.
//!
//! Out: with reporting on, the program reports new connections and state
//! changes through `SYNC_EVENTS`, read with lbd's own reader; with it off,
//! nothing; a full ring counts what it loses. Needs root (CAP_BPF), as
//! BPF_PROG_TEST_RUN.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use lb_daemon::{
    connsync::{
        core::{Action, Core, Params, Role},
        packet::{flags, state, MessageBuilder, SyncConn},
    },
    dataplane::{
        addr_words,
        bpf::{sync_events, SyncEvents, XdpDataplane},
        BackendSpec, Dataplane, Mode, Persistence, Proto, ServiceSpec, Timeouts,
    },
    net::MacAddr,
};
use lb_tests::{frames, testrun::run};

use lb_common::{conn_state, stat, FlowKey, SyncEvent, MODE_DR, SYNC_RING_BYTES};

const XDP_TX: u32 = 3;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const MACS: [[u8; 6]; 3] = [
    [0x02, 0, 0, 0, 0, 0x11],
    [0x02, 0, 0, 0, 0, 0x12],
    [0x02, 0, 0, 0, 0, 0x13],
];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 10);
const SYNCID: u8 = 7;

fn backend(i: usize) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(10, 9, 0, 11 + i as u8).into(), 80)
}

/// rr over three backends on VIP:80, persistent (a /24) if asked.
fn dataplane(persistent: bool) -> XdpDataplane {
    dataplane_in(persistent, Mode::Dr)
}

fn dataplane_in(persistent: bool, mode: Mode) -> XdpDataplane {
    let object = lb_daemon::bpf_object::embedded().expect("built with `cargo xtask test`");
    let mut dp = XdpDataplane::load(object).expect("load the XDP object (are we root?)");
    dp.set_interface_mac(1, MacAddr(LB_MAC)).unwrap();
    let mut spec = ServiceSpec::new(
        SocketAddr::new(VIP.into(), 80),
        Proto::Tcp,
        (0..3)
            .map(|i| BackendSpec {
                mac: Some(MacAddr(MACS[i])),
                ..BackendSpec::new(backend(i), 1)
            })
            .collect(),
    );
    spec.mode = mode;
    if persistent {
        spec.persistence = Some(Persistence {
            timeout_secs: 300,
            mask: "255.255.255.0".parse().unwrap(),
        });
    }
    dp.apply(&[spec]).unwrap();
    dp
}

fn record(client_port: u16, dest: SocketAddr, flags: u32, st: u16) -> SyncConn {
    SyncConn {
        protocol: 6,
        flags,
        state: st,
        client: SocketAddr::new(CLIENT.into(), client_port),
        vip: SocketAddr::new(VIP.into(), 80),
        dest,
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

/// Hears `records` as one sync message on a backup and writes what the
/// core makes of them.
fn hear(dp: &mut XdpDataplane, records: &[SyncConn]) {
    let mut b = MessageBuilder::new(SYNCID, 1472);
    for r in records {
        b.push(r).unwrap();
    }
    let mut core = Core::new(
        Params {
            syncid: SYNCID,
            send_maxlen: 1472,
            timeouts: Timeouts::default(),
        },
        Role::Backup,
    );
    let dir = dp.sync_directory();
    for a in core.receive(&b.finish(), &dir) {
        if let Action::Write(entries) = a {
            dp.write_synced(&entries).unwrap();
        }
    }
    assert_eq!(core.counters().written as usize, records.len());
}

fn dest_mac(dp: &mut XdpDataplane, sport: u16, tcp_flags: u8) -> [u8; 6] {
    let f = frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, sport, 80, tcp_flags);
    let (action, out) = run(dp, &f);
    assert_eq!(action, XDP_TX);
    out[0..6].try_into().unwrap()
}

#[test]
fn synced_connections_keep_the_masters_backend() {
    let mut dp = dataplane(false);
    // The master put every one of six flows on the third backend.
    let recs: Vec<SyncConn> = (0..6)
        .map(|i| record(50000 + i, backend(2), flags::DROUTE, state::TCP_ESTABLISHED))
        .collect();
    hear(&mut dp, &recs);
    for i in 0..6 {
        assert_eq!(
            dest_mac(&mut dp, 50000 + i, 0x10),
            MACS[2],
            "flow {i} moved"
        );
    }
    // A flow that was not synced is scheduled anew: rr's first pick.
    assert_eq!(dest_mac(&mut dp, 51000, 0x10), MACS[0]);
    let conns = dp.connections(100).unwrap();
    assert!(
        conns.iter().any(|c| c.client.port() == 50000
            && c.backend == backend(2)
            && c.state == "ESTABLISHED"),
        "{conns:?}"
    );
}

#[test]
fn a_synced_template_keeps_a_persistent_client_on_its_backend() {
    let mut dp = dataplane(true);
    hear(
        &mut dp,
        &[record(
            0,
            backend(1),
            flags::DROUTE | flags::TEMPLATE,
            state::TEMPLATE_NONE,
        )],
    );
    // New connections (SYN) of the client go where the template says,
    // where rr alone would start with the first backend.
    for i in 0..3 {
        assert_eq!(dest_mac(&mut dp, 52000 + i, 0x02), MACS[1]);
    }
}

#[test]
fn a_synced_nat_connection_brings_its_reverse_entry() {
    let mut dp = dataplane_in(false, Mode::Nat);
    let client = SocketAddr::new(CLIENT.into(), 53000);
    assert_eq!(dp.nat_reverse(6, backend(2), client).unwrap(), None);
    hear(
        &mut dp,
        &[record(
            53000,
            backend(2),
            flags::MASQ,
            state::TCP_ESTABLISHED,
        )],
    );
    assert_eq!(
        dp.nat_reverse(6, backend(2), client).unwrap(),
        Some(SocketAddr::new(VIP.into(), 80)),
        "the backend's replies find their VIP"
    );
}

/// Every event waiting in the ring, in order.
fn drained(events: &mut SyncEvents) -> Vec<SyncEvent> {
    let mut out = Vec::new();
    while events.drain(|ev| out.push(ev)) > 0 {}
    out
}

fn flow(sport: u16) -> FlowKey {
    let (src, family) = addr_words(IpAddr::V4(CLIENT));
    FlowKey {
        src,
        dst: addr_words(IpAddr::V4(VIP)).0,
        sport: sport.to_be(),
        dport: 80u16.to_be(),
        proto: 6,
        family,
        _pad: [0; 2],
    }
}

/// Sends a TCP packet of the client's flow from `sport`.
fn send(dp: &mut XdpDataplane, sport: u16, tcp_flags: u8) {
    let f = frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, sport, 80, tcp_flags);
    assert_eq!(run(dp, &f).0, XDP_TX);
}

fn global(dp: &XdpDataplane, name: &str) -> u64 {
    let stats = dp.stats().unwrap();
    stats
        .global
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

/// With reporting on: a SYN reports the new connection (its flow as it
/// arrives, service, backend, state, mode); the ACK completing the
/// handshake, a FIN and a RST report their state changes; packets that
/// change nothing report nothing. Each event becomes the sync core's report
/// with the backend's address.
#[test]
fn reports_follow_a_connection_through_its_states() {
    let mut dp = dataplane(false);
    let mut events = dp.sync_events().unwrap();
    dp.set_reporting(true).unwrap();
    let dir = dp.sync_directory();
    let svc = dir.service(6, SocketAddr::new(VIP.into(), 80)).unwrap();
    let first = svc.backends[&backend(0)];

    send(&mut dp, 54000, SYN);
    let evs = drained(&mut events);
    assert_eq!(
        evs,
        [SyncEvent {
            flow: flow(54000),
            service: svc.id,
            backend: first,
            state: conn_state::SYN,
            mode: MODE_DR,
            _pad: [0; 2],
        }]
    );
    let r = sync_events::report(&evs[0], |id| dir.backend_addr(id)).unwrap();
    assert_eq!(r.client, SocketAddr::new(CLIENT.into(), 54000));
    assert_eq!(r.vip, SocketAddr::new(VIP.into(), 80));
    assert_eq!(r.dest, backend(0));

    let states = |evs: Vec<SyncEvent>| -> Vec<(u16, u8)> {
        evs.iter()
            .map(|e| (u16::from_be(e.flow.sport), e.state))
            .collect()
    };
    send(&mut dp, 54000, ACK);
    assert_eq!(
        states(drained(&mut events)),
        [(54000, conn_state::ESTABLISHED)]
    );
    for _ in 0..3 {
        send(&mut dp, 54000, ACK);
    }
    assert_eq!(states(drained(&mut events)), [], "data changes nothing");
    send(&mut dp, 54000, FIN_ACK);
    assert_eq!(states(drained(&mut events)), [(54000, conn_state::FIN)]);
    send(&mut dp, 54000, RST);
    assert_eq!(states(drained(&mut events)), [(54000, conn_state::CLOSE)]);

    // A connection picked up mid-stream (no SYN) is reported as it starts.
    send(&mut dp, 54001, ACK);
    assert_eq!(
        states(drained(&mut events)),
        [(54001, conn_state::ESTABLISHED)]
    );
    assert_eq!(events.malformed(), 0);
    assert_eq!(global(&dp, stat::NAMES[stat::SYNC_DROPS as usize]), 0);
}

/// With reporting off (the state after every load) the program writes
/// nothing, and turning it off again stops the reports.
#[test]
fn with_reporting_off_nothing_is_written() {
    let mut dp = dataplane(false);
    let mut events = dp.sync_events().unwrap();
    assert!(!dp.reporting());
    for (sport, flags) in [(55000, SYN), (55000, ACK), (55000, FIN_ACK), (55001, ACK)] {
        send(&mut dp, sport, flags);
    }
    assert_eq!(drained(&mut events), []);

    dp.set_reporting(true).unwrap();
    send(&mut dp, 55002, SYN);
    assert_eq!(drained(&mut events).len(), 1);
    dp.set_reporting(false).unwrap();
    send(&mut dp, 55002, ACK);
    send(&mut dp, 55003, SYN);
    assert_eq!(drained(&mut events), []);
}

/// A ring nobody reads fills up: each report that finds no room is counted
/// (`sync_drops`), the ones before it are all there, and once the reader
/// has caught up reports flow again.
#[test]
fn a_full_ring_counts_what_it_loses() {
    let mut dp = dataplane(false);
    let mut events = dp.sync_events().unwrap();
    dp.set_reporting(true).unwrap();
    // An event takes 64 bytes of the ring (its 8-byte header, rounded up);
    // the kernel keeps the producer strictly less than a ring ahead, so the
    // last 64 bytes stay free.
    let room = (SYNC_RING_BYTES / 64) as usize - 1;
    let sent = room + 100;
    for i in 0..sent {
        // Distinct flows: clients 10.9.1.x, ports from 1024.
        let client = Ipv4Addr::new(10, 9, 1 + (i / 60000) as u8, 10);
        let sport = 1024 + (i % 60000) as u16;
        let f = frames::tcp4_frame(LB_MAC, CLIENT_MAC, client, VIP, sport, 80, SYN);
        assert_eq!(run(&mut dp, &f).0, XDP_TX);
    }
    let drops = global(&dp, stat::NAMES[stat::SYNC_DROPS as usize]);
    assert_eq!(drops, (sent - room) as u64);
    let mut n = 0;
    let mut last = None;
    while events.drain(|ev| {
        n += 1;
        last = Some(ev);
    }) > 0
    {}
    assert_eq!(n, room, "the ring's worth, in order");
    let last = last.unwrap();
    assert_eq!(
        u16::from_be(last.flow.sport),
        1024 + (room % 60000) as u16 - 1
    );

    send(&mut dp, 56000, SYN);
    assert_eq!(drained(&mut events).len(), 1, "room again");
}

/// The reader wakes when the program writes (tokio, on the ring's
/// descriptor), as the sync task waits for it.
#[test]
fn the_reader_wakes_when_a_report_arrives() {
    let mut dp = dataplane(false);
    let mut events = dp.sync_events().unwrap();
    dp.set_reporting(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Nothing yet: the wait times out.
        let idle =
            tokio::time::timeout(std::time::Duration::from_millis(50), events.readable()).await;
        assert!(idle.is_err(), "woke with nothing written");
        send(&mut dp, 57000, SYN);
        tokio::time::timeout(std::time::Duration::from_secs(5), events.readable())
            .await
            .expect("woken by the report")
            .unwrap();
    });
    assert_eq!(drained(&mut events).len(), 1);
}

/// A live connection is reported again when its timestamp (refreshed at
/// most once a second) crosses a multiple of the sync period, half the
/// shortest idle timeout: here timeouts of 2 s make the period 1 s, so a
/// packet more than a second after the last refresh always crosses one.
#[test]
fn a_long_lived_connection_is_reported_again_each_sync_period() {
    let mut dp = dataplane(false);
    dp.set_timeouts(Timeouts {
        tcp: 2,
        tcpfin: 2,
        udp: 2,
    })
    .unwrap();
    let mut events = dp.sync_events().unwrap();
    dp.set_reporting(true).unwrap();
    send(&mut dp, 58000, SYN);
    send(&mut dp, 58000, ACK);
    assert_eq!(drained(&mut events).len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    send(&mut dp, 58000, ACK);
    send(&mut dp, 58000, ACK);
    let evs = drained(&mut events);
    assert_eq!(
        evs.iter()
            .map(|e| (u16::from_be(e.flow.sport), e.state))
            .collect::<Vec<_>>(),
        [(58000, conn_state::ESTABLISHED)],
        "one refresh report, then nothing until the next period"
    );
}

/// IPv6 and UDP flows are reported alike: the flow as it arrived (an IPv6
/// flow's four address words), a UDP flow once as it starts (its state
/// never changes after).
#[test]
fn ipv6_and_udp_flows_are_reported() {
    let object = lb_daemon::bpf_object::embedded().expect("built with `cargo xtask test`");
    let mut dp = XdpDataplane::load(object).expect("load the XDP object (are we root?)");
    dp.set_interface_mac(1, MacAddr(LB_MAC)).unwrap();
    let vip6: std::net::Ipv6Addr = "fd09::100".parse().unwrap();
    let client6: std::net::Ipv6Addr = "fd09::10".parse().unwrap();
    let backend6 = SocketAddr::new("fd09::11".parse().unwrap(), 80);
    let dns = SocketAddr::new(Ipv4Addr::new(10, 9, 0, 21).into(), 53);
    let with_mac = |addr| BackendSpec {
        mac: Some(MacAddr(MACS[0])),
        ..BackendSpec::new(addr, 1)
    };
    dp.apply(&[
        ServiceSpec::new(
            SocketAddr::new(vip6.into(), 80),
            Proto::Tcp,
            vec![with_mac(backend6)],
        ),
        ServiceSpec::new(
            SocketAddr::new(VIP.into(), 53),
            Proto::Udp,
            vec![with_mac(dns)],
        ),
    ])
    .unwrap();
    let mut events = dp.sync_events().unwrap();
    dp.set_reporting(true).unwrap();
    let dir = dp.sync_directory();

    let syn6 = frames::tcp_frame(
        LB_MAC,
        CLIENT_MAC,
        client6.into(),
        vip6.into(),
        59000,
        80,
        SYN,
    );
    assert_eq!(run(&mut dp, &syn6).0, XDP_TX);
    let evs = drained(&mut events);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].flow.family, lb_common::AF_INET6);
    let r = sync_events::report(&evs[0], |id| dir.backend_addr(id)).unwrap();
    assert_eq!(
        (r.client, r.vip, r.dest, r.state),
        (
            SocketAddr::new(client6.into(), 59000),
            SocketAddr::new(vip6.into(), 80),
            backend6,
            conn_state::SYN
        )
    );

    let udp = frames::udp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, 59001, 53, b"query");
    for _ in 0..3 {
        assert_eq!(run(&mut dp, &udp).0, XDP_TX);
    }
    let evs = drained(&mut events);
    assert_eq!(evs.len(), 1, "once, as it starts");
    let r = sync_events::report(&evs[0], |id| dir.backend_addr(id)).unwrap();
    assert_eq!(
        (r.protocol, r.client, r.dest, r.state),
        (
            lb_common::IPPROTO_UDP,
            SocketAddr::new(CLIENT.into(), 59001),
            dns,
            conn_state::UDP
        )
    );
}
