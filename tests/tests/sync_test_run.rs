//! Connection sync into the real program: IPVS sync messages, decoded and
//! mapped by the sync core, written into the connection table through the
//! data plane's sync module; the program then forwards the synced flows'
//! packets (no SYN) to the backends the master chose, not where its own
//! scheduler would send them. Needs root (CAP_BPF), as BPF_PROG_TEST_RUN.

use std::net::{Ipv4Addr, SocketAddr};

use lb_daemon::{
    connsync::{
        core::{Action, Core, Params, Role},
        packet::{flags, state, MessageBuilder, SyncConn},
    },
    dataplane::{
        bpf::XdpDataplane, BackendSpec, Dataplane, Mode, Persistence, Proto, ServiceSpec, Timeouts,
    },
    net::MacAddr,
};
use lb_tests::{frames, testrun::run};

const XDP_TX: u32 = 3;
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
