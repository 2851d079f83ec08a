//! The real XDP object under BPF_PROG_TEST_RUN, for every scheduler, mode
//! and address family, and differential tests against the reference model.
//! Needs root. Each test runs in a namespace of its own (see `FibNet`), so
//! NAT and TUN find their next hop in a FIB the test controls.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use lb_common::conn_state;
use lb_daemon::{
    dataplane::{
        addr_words,
        bpf::XdpDataplane,
        model::{ModelBackend, ModelService},
        Algo, BackendSpec, Dataplane, Mode, Persistence, Proto, ServiceSpec, Timeouts,
    },
    net::{Interface, MacAddr},
};
use lb_tests::{
    fibnet::{FibNet, V0_ADDR4, V0_ADDR6, V0_MAC},
    frames,
    testrun::{check_cases, run, run_tc, Case},
};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;
const ALGOS: [Algo; 6] = [Algo::Rr, Algo::Wrr, Algo::Lc, Algo::Wlc, Algo::Sh, Algo::Mh];

fn backend_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, 0x11 + i as u8]
}

/// Addresses of one family: (vip, client, backends).
fn addrs(v6: bool, n: usize) -> (IpAddr, IpAddr, Vec<IpAddr>) {
    if v6 {
        (
            "fd09::100".parse().unwrap(),
            "fd09::10".parse().unwrap(),
            (0..n)
                .map(|i| format!("fd09::{:x}", 0x11 + i).parse().unwrap())
                .collect(),
        )
    } else {
        (
            "10.9.0.100".parse().unwrap(),
            "10.9.0.10".parse().unwrap(),
            (0..n)
                .map(|i| format!("10.9.0.{}", 11 + i).parse().unwrap())
                .collect(),
        )
    }
}

fn spec(algo: Algo, mode: Mode, v6: bool, weights: &[u32], port: u16) -> ServiceSpec {
    let (vip, _, backends) = addrs(v6, weights.len());
    let mut s = ServiceSpec::new(
        SocketAddr::new(vip, 80),
        Proto::Tcp,
        backends
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (ip, w))| BackendSpec {
                addr: SocketAddr::new(*ip, port),
                weight: *w,
                mac: Some(MacAddr(backend_mac(i))),
                via: None,
                removed: false,
            })
            .collect(),
    );
    s.algo = algo;
    s.mode = mode;
    s
}

/// Runs `f` with a loaded data plane inside a fresh FIB namespace.
fn with_dataplane<T: Send + 'static>(
    n_backends: usize,
    f: impl FnOnce(&mut XdpDataplane, u32) -> T + Send + 'static,
) -> T {
    let mut neigh = Vec::new();
    for v6 in [false, true] {
        let (_, client, backends) = addrs(v6, n_backends);
        neigh.push((client, CLIENT_MAC));
        for (i, b) in backends.iter().enumerate() {
            neigh.push((*b, backend_mac(i)));
        }
    }
    let net = FibNet::new(&neigh).expect("fib namespace");
    let v0 = net.v0;
    net.ns
        .enter(move || {
            let mut dp = lb_tests::testrun::fib_dataplane(LB_MAC, v0)?;
            Ok(f(&mut dp, v0))
        })
        .expect("test in namespace")
}

fn packet(v6: bool, sport: u16, flags: u8) -> Vec<u8> {
    let (vip, client, _) = addrs(v6, 1);
    frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, sport, 80, flags)
}

/// Which backend (index) a forwarded frame went to, after checking that
/// the frame is exactly what `mode` must make of `input`.
fn check_forwarded(
    mode: Mode,
    v6: bool,
    input: &[u8],
    action: u32,
    out: &[u8],
    port: u16,
) -> usize {
    let (_, _, backends) = addrs(v6, 8);
    let i = (0..8)
        .find(|&i| out[0..6] == backend_mac(i))
        .unwrap_or_else(|| {
            panic!(
                "{mode} v6={v6}: not sent to a backend MAC: {:02x?}",
                &out[0..6]
            )
        });
    match mode {
        Mode::Dr => {
            assert_eq!(action, XDP_TX, "DR action");
            assert_eq!(out[6..12], LB_MAC);
            assert_eq!(out[12..], input[12..], "DR changed more than MACs");
        }
        Mode::Nat => {
            assert_eq!(action, XDP_REDIRECT, "NAT action");
            assert_eq!(out[6..12], V0_MAC);
            assert_eq!(out.len(), input.len());
            let (src, dst, l4, _) = frames::ip_fields(out, 14, v6);
            let (isrc, _, _, _) = frames::ip_fields(input, 14, v6);
            assert_eq!(src, isrc, "NAT kept the client");
            assert_eq!(dst, backends[i], "NAT destination");
            assert_eq!(u16::from_be_bytes([out[l4 + 2], out[l4 + 3]]), port);
            assert!(frames::checksums_ok(out), "NAT checksums");
        }
        Mode::Tun => {
            assert_eq!(action, XDP_REDIRECT, "TUN action");
            assert_eq!(out[6..12], V0_MAC);
            let outer = if v6 { 40 } else { 20 };
            assert_eq!(out.len(), input.len() + outer);
            assert_eq!(
                out[14 + outer..],
                input[14..],
                "TUN changed the inner packet"
            );
            let (src, dst, _, proto) = frames::ip_fields(out, 14, v6);
            let tun_src: IpAddr = if v6 { V0_ADDR6 } else { V0_ADDR4 }.parse().unwrap();
            assert_eq!((src, dst), (tun_src, backends[i]), "outer addresses");
            assert_eq!(proto, if v6 { 41 } else { 4 }, "outer protocol");
            if !v6 {
                assert_eq!(frames::checksum(&out[14..34], 0), 0, "outer IPv4 checksum");
            }
        }
    }
    i
}

/// NAT and TUN backends with their next hop resolved by the daemon (sent
/// straight there) rather than found in the FIB per packet.
fn with_next_hop(mut s: ServiceSpec, v0: u32) -> ServiceSpec {
    for b in &mut s.backends {
        b.via = Some(v0);
    }
    s
}

#[test]
fn every_scheduler_forwards_in_every_mode_and_family() {
    with_dataplane(4, |dp, v0| {
        for (mode, cached) in [
            (Mode::Dr, false),
            (Mode::Nat, false),
            (Mode::Nat, true),
            (Mode::Tun, false),
            (Mode::Tun, true),
        ] {
            for v6 in [false, true] {
                for algo in ALGOS {
                    let port = if mode == Mode::Nat { 8080 } else { 80 };
                    let mut s = spec(algo, mode, v6, &[1, 2, 3, 4], port);
                    if cached {
                        s = with_next_hop(s, v0);
                    }
                    dp.apply(&[s]).unwrap();
                    let what = format!("{algo} {mode} v6={v6} next hop cached: {cached}");
                    let syn = packet(v6, 30000, SYN);
                    let (action, out) = run(dp, &syn);
                    let first = check_forwarded(mode, v6, &syn, action, &out, port);
                    // More new flows, then the first flow again: it stays.
                    for p in 1..5 {
                        run(dp, &packet(v6, 30000 + p, SYN));
                    }
                    let ack = packet(v6, 30000, ACK);
                    let (action, out) = run(dp, &ack);
                    let again = check_forwarded(mode, v6, &ack, action, &out, port);
                    assert_eq!(first, again, "{what}: established flow moved");
                    check_cases(&not_for_the_service(v6, &what), |f| run(dp, f));
                    dp.apply(&[]).unwrap();
                }
            }
        }
    });
}

/// Rows: a SYN to another address (`non-VIP`) and to the VIP on port 81
/// (`other port`), which leave untouched with XDP_PASS while the test's
/// service on VIP:80 is installed.
fn not_for_the_service(v6: bool, what: &str) -> Vec<Case> {
    let (vip, client, _) = addrs(v6, 1);
    let other = if v6 { "fd09::99" } else { "10.9.0.99" }.parse().unwrap();
    vec![
        Case::untouched(
            format!("{what}: non-VIP"),
            XDP_PASS,
            frames::tcp_frame(LB_MAC, CLIENT_MAC, client, other, 1, 80, SYN),
        ),
        Case::untouched(
            format!("{what}: other port"),
            XDP_PASS,
            frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, 1, 81, SYN),
        ),
    ]
}

/// Backend `i` (real-server port 8080) answers the client's port
/// `client_port` with a SYN-ACK: it must leave rewritten back to VIP:80,
/// towards the client, with its checksums right.
fn check_nat_reply(dp: &mut XdpDataplane, v6: bool, i: usize, client_port: u16) {
    let (vip, client, backends) = addrs(v6, i + 1);
    let reply = frames::tcp_frame(
        LB_MAC,
        backend_mac(i),
        backends[i],
        client,
        8080,
        client_port,
        SYN | ACK,
    );
    let (action, out) = run(dp, &reply);
    let what = format!("v6={v6} client port {client_port}");
    assert_eq!(action, XDP_REDIRECT, "{what}: reply not rewritten");
    assert_eq!(out[0..6], CLIENT_MAC, "{what}");
    let (src, dst, l4, _) = frames::ip_fields(&out, 14, v6);
    assert_eq!((src, dst), (vip, client), "{what}");
    assert_eq!(u16::from_be_bytes([out[l4], out[l4 + 1]]), 80, "{what}");
    assert!(frames::checksums_ok(&out), "{what}: reply checksums");
}

#[test]
fn nat_replies_are_rewritten_back_to_the_vip() {
    with_dataplane(2, |dp, _| {
        for v6 in [false, true] {
            dp.apply(&[spec(Algo::Rr, Mode::Nat, v6, &[1, 1], 8080)])
                .unwrap();
            let (_, client, backends) = addrs(v6, 2);
            let (action, out) = run(dp, &packet(v6, 40000, SYN));
            let i = check_forwarded(Mode::Nat, v6, &packet(v6, 40000, SYN), action, &out, 8080);
            // The backend answers the client from its own address and port.
            check_nat_reply(dp, v6, i, 40000);
            // A reply of no NAT flow is left alone.
            let stray = frames::tcp_frame(
                LB_MAC,
                backend_mac(i),
                backends[i],
                client,
                8080,
                40001,
                ACK,
            );
            assert_eq!(run(dp, &stray), (XDP_PASS, stray.clone()));
            dp.apply(&[]).unwrap();
        }
    });
}

#[test]
fn a_nat_reply_whose_client_port_hashes_like_a_vip_is_still_rewritten() {
    with_dataplane(1, |dp, _| {
        for v6 in [false, true] {
            dp.apply(&[spec(Algo::Rr, Mode::Nat, v6, &[1], 8080)])
                .unwrap();
            let (vip, client, _) = addrs(v6, 1);
            // A client port whose (client, port) lands in the VIP's slot of
            // the prefilter, so the reply looks like VIP traffic at first.
            let slot = |ip: IpAddr, port: u16| {
                lb_common::vip_filter_index(&addr_words(ip).0, port.to_be())
            };
            let port = (1024..=u16::MAX)
                .find(|&p| slot(client, p) == slot(vip, 80))
                .expect("a colliding client port");
            let syn = frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, port, 80, SYN);
            let (action, out) = run(dp, &syn);
            check_forwarded(Mode::Nat, v6, &syn, action, &out, 8080);
            check_nat_reply(dp, v6, 0, port);
            dp.apply(&[]).unwrap();
        }
    });
}

/// Services whose (address, port) hash to one prefilter slot: the program
/// finds each by address (SERVICES), and once one leaves, the other by its
/// slot again; a service rewritten in place keeps taking new flows by its
/// latest settings (the daemon alternates its two slots).
#[test]
fn services_sharing_a_prefilter_slot_each_get_their_own_flows() {
    with_dataplane(3, |dp, _| {
        for v6 in [false, true] {
            let (vip, client, backends) = addrs(v6, 3);
            let slot = |port: u16| lb_common::vip_filter_index(&addr_words(vip).0, port.to_be());
            let other = (81..=u16::MAX)
                .find(|&p| slot(p) == slot(80))
                .expect("a port sharing the prefilter slot of port 80");
            // Service `port` sends everything to backend `to`.
            let service = |port: u16, to: usize| {
                let mut s = spec(Algo::Rr, Mode::Dr, v6, &[1], 80);
                s.vip = SocketAddr::new(vip, port);
                s.backends[0].addr = SocketAddr::new(backends[to], 80);
                s.backends[0].mac = Some(MacAddr(backend_mac(to)));
                s
            };
            let mut sport = 20_000u16;
            let mut send = |dp: &mut XdpDataplane, port: u16| {
                sport += 1;
                let syn = frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, sport, port, SYN);
                let (action, out) = run(dp, &syn);
                let to = (action == XDP_TX)
                    .then(|| (0..3).find(|&i| out[0..6] == backend_mac(i)))
                    .flatten();
                (action, to)
            };
            dp.apply(&[service(80, 0), service(other, 1)]).unwrap();
            assert_eq!(
                send(dp, 80),
                (XDP_TX, Some(0)),
                "v6={v6}: port 80, slot shared"
            );
            assert_eq!(
                send(dp, other),
                (XDP_TX, Some(1)),
                "v6={v6}: port {other}, slot shared"
            );
            dp.apply(&[service(other, 1)]).unwrap();
            assert_eq!(send(dp, 80).0, XDP_PASS, "v6={v6}: port 80 after it left");
            assert_eq!(
                send(dp, other),
                (XDP_TX, Some(1)),
                "v6={v6}: port {other} alone"
            );
            for to in [2, 1, 2] {
                dp.apply(&[service(other, to)]).unwrap();
                assert_eq!(
                    send(dp, other),
                    (XDP_TX, Some(to)),
                    "v6={v6}: rewritten to {to}"
                );
            }
            dp.apply(&[]).unwrap();
            assert_eq!(
                send(dp, other).0,
                XDP_PASS,
                "v6={v6}: port {other} after it left"
            );
        }
    });
}

#[test]
fn tun_packet_too_big_once_wrapped_goes_to_the_stack_unchanged() {
    with_dataplane(1, |dp, v0| {
        dp.set_interface(&Interface {
            name: "v0".into(),
            index: v0,
            mac: MacAddr(V0_MAC),
            mtu: 50,
        })
        .unwrap();
        dp.apply(&[with_next_hop(
            spec(Algo::Rr, Mode::Tun, false, &[1], 80),
            v0,
        )])
        .unwrap();
        // 40 bytes of IP + 20 of outer header > 50.
        let row = Case::untouched("TUN over MTU 50", XDP_PASS, packet(false, 41000, SYN));
        check_cases(&[row], |f| run(dp, f));
        let too_big = dp
            .stats()
            .unwrap()
            .global
            .iter()
            .find(|g| g.0 == "too_big")
            .unwrap()
            .1;
        assert_eq!(too_big, 1);
    });
}

#[test]
fn nat_keeps_a_zero_udp_checksum_zero() {
    with_dataplane(1, |dp, _| {
        let mut s = spec(Algo::Rr, Mode::Nat, false, &[1], 5353);
        s.proto = Proto::Udp;
        s.vip.set_port(53);
        dp.apply(&[s]).unwrap();
        let (vip, client, backends) = addrs(false, 1);
        let (IpAddr::V4(c), IpAddr::V4(v)) = (client, vip) else {
            unreachable!()
        };
        let mut udp = frames::udp(c, v, 5000, 53, b"query");
        udp[6..8].copy_from_slice(&[0, 0]);
        let f = frames::ethernet(
            LB_MAC,
            CLIENT_MAC,
            frames::ETH_P_IPV4,
            &frames::ipv4(c, v, 17, &udp),
        );
        let (action, out) = run(dp, &f);
        assert_eq!(action, XDP_REDIRECT);
        let (_, dst, l4, _) = frames::ip_fields(&out, 14, false);
        assert_eq!(dst, backends[0]);
        assert_eq!(
            out[l4 + 6..l4 + 8],
            [0, 0],
            "zero UDP checksum must stay zero"
        );
        assert!(frames::checksums_ok(&out));
        // With a checksum, it is updated and verifies.
        let f = frames::udp4_frame(LB_MAC, CLIENT_MAC, c, v, 5001, 53, b"query");
        let (_, out) = run(dp, &f);
        assert_ne!(out[l4 + 6..l4 + 8], [0, 0]);
        assert!(frames::checksums_ok(&out));
    });
}

/// Random flows through the real program and the reference model; every
/// pick must agree. TCP states move lc/wlc's counts the same way in both.
fn differential(algo: Algo, hash_port: bool, fallback: bool, weights: &'static [u32]) {
    with_dataplane(weights.len(), move |dp, _| {
        let mut s = spec(algo, Mode::Dr, false, weights, 80);
        s.hash_port = hash_port;
        s.fallback = fallback;
        dp.apply(&[s.clone()]).unwrap();
        let (table, ids) = dp.installed_table(s.vip, s.proto).unwrap();
        let backends: Vec<ModelBackend> = s
            .backends
            .iter()
            .map(|b| ModelBackend {
                id: ids[&b.addr],
                weight: b.weight,
            })
            .collect();
        let by_mac: HashMap<[u8; 6], u32> = s
            .backends
            .iter()
            .map(|b| (b.mac.unwrap().0, ids[&b.addr]))
            .collect();
        let mut model = ModelService::new(algo, hash_port, fallback, backends, table);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let vip: IpAddr = "10.9.0.100".parse().unwrap();
        // (client, port, backend id, state) of flows still open.
        let mut open: Vec<(IpAddr, u16, u32, u8)> = Vec::new();
        for n in 0..3000 {
            let r = next();
            if !open.is_empty() && r % 3 == 0 {
                // Move an open flow on: ACK (handshake done), FIN or RST.
                let k = (r >> 8) as usize % open.len();
                let (client, port, id, state) = open[k];
                let (flags, to) = match (r >> 40) % 3 {
                    0 if state == conn_state::SYN => (ACK, conn_state::ESTABLISHED),
                    1 => (FIN_ACK, conn_state::FIN),
                    _ => (RST, conn_state::CLOSE),
                };
                let f = frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, port, 80, flags);
                let (action, out) = run(dp, &f);
                assert_eq!(action, XDP_TX);
                assert_eq!(
                    by_mac[&<[u8; 6]>::try_from(&out[0..6]).unwrap()],
                    id,
                    "flow {n} moved"
                );
                if to != state && !(state == conn_state::CLOSE && to == conn_state::FIN) {
                    model.transition(id, Some(state), to);
                    open[k].3 = to;
                }
                if to != conn_state::ESTABLISHED {
                    open.swap_remove(k);
                }
                continue;
            }
            // A new flow from a random client.
            let client: IpAddr = format!("10.{}.{}.{}", r >> 56, (r >> 48) as u8, (r >> 40) as u8)
                .parse()
                .unwrap();
            let port = 1024 + (r >> 16) as u16 % 60000;
            let (src, _) = addr_words(client);
            let want = model.pick(&src, port.to_be());
            let f = frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, port, 80, SYN);
            let (action, out) = run(dp, &f);
            match want {
                None => assert_eq!(action, XDP_PASS, "{algo}: flow {n}: model has no backend"),
                Some(id) => {
                    assert_eq!(action, XDP_TX, "{algo}: flow {n}");
                    let got = by_mac[&<[u8; 6]>::try_from(&out[0..6]).unwrap()];
                    assert_eq!(got, id, "{algo}: flow {n} from {client}:{port}");
                    model.transition(id, None, conn_state::SYN);
                    open.push((client, port, id, conn_state::SYN));
                }
            }
        }
    });
}

#[test]
fn differential_rr() {
    differential(Algo::Rr, false, false, &[1, 1, 0, 1]);
}

#[test]
fn differential_wrr() {
    differential(Algo::Wrr, false, false, &[1, 3, 2, 4]);
}

#[test]
fn differential_lc() {
    differential(Algo::Lc, false, false, &[1, 3, 0, 4]);
}

#[test]
fn differential_wlc() {
    differential(Algo::Wlc, false, false, &[1, 3, 2, 4]);
}

#[test]
fn differential_sh() {
    differential(Algo::Sh, false, false, &[1, 3, 0, 4]);
}

#[test]
fn differential_sh_port_fallback() {
    differential(Algo::Sh, true, true, &[1, 3, 0, 4]);
}

#[test]
fn differential_mh() {
    differential(Algo::Mh, false, false, &[1, 3, 2, 4]);
}

#[test]
fn differential_mh_port() {
    differential(Algo::Mh, true, false, &[2, 2, 1, 1]);
}

#[test]
fn maglev_moves_about_one_nth_of_clients_when_a_backend_leaves_or_joins() {
    with_dataplane(10, |dp, _| {
        let mut s = spec(Algo::Mh, Mode::Dr, false, &[1; 10], 80);
        let clients: Vec<IpAddr> = (0..4000u32)
            .map(|i| IpAddr::from([10, 200 + (i >> 16) as u8, (i >> 8) as u8, i as u8]))
            .collect();
        let vip: IpAddr = "10.9.0.100".parse().unwrap();
        let mut port = 2000u16;
        let mut map = |dp: &mut XdpDataplane| -> Vec<[u8; 6]> {
            clients
                .iter()
                .map(|c| {
                    port = port.wrapping_add(1);
                    let (a, out) = run(
                        dp,
                        &frames::tcp_frame(LB_MAC, CLIENT_MAC, *c, vip, port, 80, SYN),
                    );
                    assert_eq!(a, XDP_TX);
                    out[0..6].try_into().unwrap()
                })
                .collect()
        };
        dp.apply(&[s.clone()]).unwrap();
        let ten = map(dp);
        let removed = s.backends.remove(3);
        dp.apply(&[s.clone()]).unwrap();
        let nine = map(dp);
        let moved = ten.iter().zip(&nine).filter(|(a, b)| a != b).count() as f64 / 4000.0;
        let on_removed =
            ten.iter().filter(|m| **m == removed.mac.unwrap().0).count() as f64 / 4000.0;
        println!(
            "remove 1 of 10: {:.1}% moved ({:.1}% were on it)",
            moved * 100.0,
            on_removed * 100.0
        );
        assert!(ten
            .iter()
            .zip(&nine)
            .all(|(a, b)| a == b || *a == removed.mac.unwrap().0 || moved < 0.15));
        assert!(moved < 0.15, "removing 1 of 10 moved {moved}");
        s.backends.insert(3, removed);
        dp.apply(&[s]).unwrap();
        let back = map(dp);
        let moved_back = nine.iter().zip(&back).filter(|(a, b)| a != b).count() as f64 / 4000.0;
        println!("add 1 to 9: {:.1}% moved", moved_back * 100.0);
        assert!(moved_back < 0.15, "adding 1 to 9 moved {moved_back}");
        let same = ten.iter().zip(&back).filter(|(a, b)| a == b).count();
        assert_eq!(same, 4000, "the same backends give the same table");
    });
}

#[test]
fn persistence_keeps_a_client_on_its_backend_across_connections() {
    with_dataplane(3, |dp, _| {
        let mut s = spec(Algo::Rr, Mode::Dr, false, &[1, 1, 1], 80);
        s.persistence = Some(Persistence {
            timeout_secs: 300,
            mask: "255.255.255.0".parse().unwrap(),
        });
        dp.apply(&[s]).unwrap();
        let vip: IpAddr = "10.9.0.100".parse().unwrap();
        let pick = |dp: &mut XdpDataplane, client: &str, port: u16| {
            let f = frames::tcp_frame(
                LB_MAC,
                CLIENT_MAC,
                client.parse().unwrap(),
                vip,
                port,
                80,
                SYN,
            );
            let (a, out) = run(dp, &f);
            assert_eq!(a, XDP_TX);
            <[u8; 6]>::try_from(&out[0..6]).unwrap()
        };
        let first = pick(dp, "10.50.1.7", 1000);
        for p in 1..6 {
            // Same client, new connections; and its /24 neighbour too.
            assert_eq!(pick(dp, "10.50.1.7", 1000 + p), first);
            assert_eq!(pick(dp, "10.50.1.99", 2000 + p), first);
        }
        // Another /24 is scheduled on (rr moves to the next backend).
        assert_ne!(pick(dp, "10.50.2.7", 1000), first);
    });
}

#[test]
fn sorry_server_takes_new_flows_when_no_backend_can() {
    with_dataplane(3, |dp, _| {
        let mut s = spec(Algo::Wlc, Mode::Dr, false, &[0, 0], 80);
        s.sorry = Some(BackendSpec {
            addr: "10.9.0.13:80".parse().unwrap(),
            weight: 1,
            mac: Some(MacAddr(backend_mac(2))),
            via: None,
            removed: false,
        });
        dp.apply(&[s.clone()]).unwrap();
        let (a, out) = run(dp, &packet(false, 50000, SYN));
        assert_eq!((a, &out[0..6]), (XDP_TX, &backend_mac(2)[..]));
        // A backend comes back: new flows go to it, not the sorry server.
        s.backends[1].weight = 1;
        dp.apply(&[s]).unwrap();
        let (_, out) = run(dp, &packet(false, 50001, SYN));
        assert_eq!(out[0..6], backend_mac(1));
    });
}

#[test]
fn icmp_errors_about_a_flow_reach_its_backend() {
    with_dataplane(2, |dp, _| {
        for (v6, mode) in [(false, Mode::Dr), (true, Mode::Dr), (false, Mode::Tun)] {
            dp.apply(&[spec(Algo::Rr, mode, v6, &[1, 1], 80)]).unwrap();
            let (vip, client, _) = addrs(v6, 2);
            // Two flows: the second lands on the second backend.
            run(dp, &packet(v6, 60000, SYN));
            let (a, out) = run(dp, &packet(v6, 60001, SYN));
            let i = check_forwarded(mode, v6, &packet(v6, 60001, SYN), a, &out, 80);
            // A router on the way back says the backend's reply was too big.
            let quoted = frames::tcp_frame([0; 6], [0; 6], vip, client, 80, 60001, ACK);
            let f = icmp_error_to_vip(v6, &quoted);
            let (a, out) = run(dp, &f);
            assert_ne!(a, XDP_PASS, "v6={v6} {mode}: ICMP error not forwarded");
            assert_eq!(
                out[0..6],
                backend_mac(i),
                "v6={v6} {mode}: to the flow's backend"
            );
            dp.apply(&[]).unwrap();
        }
    });
}

/// An ICMP error from a router on the client's side, about `quoted` (a
/// packet that left as the VIP), addressed to the VIP.
fn icmp_error_to_vip(v6: bool, quoted: &[u8]) -> Vec<u8> {
    let (vip, _, _) = addrs(v6, 1);
    let router = if v6 { "fd09::fe" } else { "10.9.0.254" };
    icmp_error_frame(router.parse().unwrap(), vip, CLIENT_MAC, quoted)
}

/// An ICMP error (IPv4: fragmentation needed; IPv6: packet too big; MTU
/// 1500) from `from` to `to`, about `quoted` (a frame), arriving from
/// `src_mac`.
fn icmp_error_frame(from: IpAddr, to: IpAddr, src_mac: [u8; 6], quoted: &[u8]) -> Vec<u8> {
    match (from, to) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            let mut m = vec![3, 4, 0, 0, 0, 0, 0x05, 0xdc];
            m.extend_from_slice(&quoted[14..]);
            let c = frames::checksum(&m, 0);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            frames::ethernet(
                LB_MAC,
                src_mac,
                frames::ETH_P_IPV4,
                &frames::ipv4(from, to, 1, &m),
            )
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0xdc];
            m.extend_from_slice(&quoted[14..]);
            let sum = frames::pseudo_sum_ip(from.into(), to.into(), 58, m.len());
            let c = frames::checksum(&m, sum);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            frames::ethernet(
                LB_MAC,
                src_mac,
                frames::ETH_P_IPV6,
                &frames::ipv6(from, to, 58, &m),
            )
        }
        _ => panic!("one family: {from} → {to}"),
    }
}

/// The outer IPv4 (if any) and ICMP/ICMPv6 checksums of a forwarded error.
fn check_icmp_checksums(out: &[u8], v6: bool, what: &str) {
    let (src, dst, l4, proto) = frames::ip_fields(out, 14, v6);
    if !v6 {
        assert_eq!(
            frames::checksum(&out[14..34], 0),
            0,
            "{what}: outer IPv4 checksum"
        );
    }
    let initial = if v6 {
        frames::pseudo_sum_ip(src, dst, proto, out.len() - l4)
    } else {
        0
    };
    assert_eq!(
        frames::checksum(&out[l4..], initial),
        0,
        "{what}: ICMP checksum"
    );
}

/// A NAT packet on its way to the backend was too big for a router there:
/// the error goes on to the client as about the packet the client sent
/// (from the VIP, quoting client → VIP:80), as IPVS does.
#[test]
fn nat_icmp_errors_from_the_backend_side_reach_the_client() {
    with_dataplane(2, |dp, _| {
        for v6 in [false, true] {
            dp.apply(&[spec(Algo::Rr, Mode::Nat, v6, &[1, 1], 8080)])
                .unwrap();
            let (vip, client, backends) = addrs(v6, 2);
            let syn = packet(v6, 62002, SYN);
            let (a, out) = run(dp, &syn);
            let i = check_forwarded(Mode::Nat, v6, &syn, a, &out, 8080);
            // What the backend's side saw: client:62002 → backend:8080.
            let quoted = frames::tcp_frame([0; 6], [0; 6], client, backends[i], 62002, 8080, SYN);
            let router: IpAddr = if v6 { "fd09::fd" } else { "10.9.0.253" }.parse().unwrap();
            let error = icmp_error_frame(router, client, backend_mac(i), &quoted);
            let (a, out) = run(dp, &error);
            let what = format!("v6={v6}");
            assert_eq!(a, XDP_REDIRECT, "{what}: ICMP error not forwarded");
            assert_eq!(out[0..6], CLIENT_MAC, "{what}: to the client");
            let (src, dst, l4, _) = frames::ip_fields(&out, 14, v6);
            assert_eq!((src, dst), (vip, client), "{what}: outer addresses");
            check_icmp_checksums(&out, v6, &what);
            // The quote is what the client sent, its TCP checksum aside.
            let mut sent = frames::tcp_frame([0; 6], [0; 6], client, vip, 62002, 80, SYN);
            let tcp_check = 14 + if v6 { 40 } else { 20 } + 16;
            sent[tcp_check..tcp_check + 2].copy_from_slice(&quoted[tcp_check..tcp_check + 2]);
            assert_eq!(out[l4 + 8..], sent[14..], "{what}: the quoted packet");
            // An error about a flow the balancer does not hold: untouched.
            let stray = frames::tcp_frame([0; 6], [0; 6], client, backends[i], 62003, 8080, SYN);
            let error = icmp_error_frame(router, client, backend_mac(i), &stray);
            let (a, out) = run(dp, &error);
            assert_eq!((a, out), (XDP_PASS, error), "{what}: unknown flow");
            dp.apply(&[]).unwrap();
        }
    });
}

#[test]
fn nat_icmp_errors_reach_the_backend_as_it_sent_the_reply() {
    with_dataplane(2, |dp, v0| {
        for (v6, cached) in [(false, false), (true, false), (false, true), (true, true)] {
            let what = format!("v6={v6} next hop cached: {cached}");
            let mut s = spec(Algo::Rr, Mode::Nat, v6, &[1, 1], 8080);
            if cached {
                s = with_next_hop(s, v0);
            }
            dp.apply(&[s]).unwrap();
            let (vip, client, backends) = addrs(v6, 2);
            run(dp, &packet(v6, 62000, SYN));
            let syn = packet(v6, 62001, SYN);
            let (a, out) = run(dp, &syn);
            let i = check_forwarded(Mode::Nat, v6, &syn, a, &out, 8080);
            // The reply left as VIP:80 → client; a router says it was too big.
            let quoted = frames::tcp_frame([0; 6], [0; 6], vip, client, 80, 62001, ACK);
            let (a, out) = run(dp, &icmp_error_to_vip(v6, &quoted));
            assert_eq!(a, XDP_REDIRECT, "{what}: ICMP error not forwarded");
            assert_eq!(out[0..6], backend_mac(i), "{what}: to the flow's backend");
            let (src, dst, l4, _) = frames::ip_fields(&out, 14, v6);
            let router: IpAddr = if v6 { "fd09::fe" } else { "10.9.0.254" }.parse().unwrap();
            assert_eq!((src, dst), (router, backends[i]), "{what}: outer addresses");
            check_icmp_checksums(&out, v6, &what);
            // The quote is now what the backend sent: backend:8080 → client,
            // its own TCP checksum aside (left as quoted, as IPVS does).
            let mut sent = frames::tcp_frame([0; 6], [0; 6], backends[i], client, 8080, 62001, ACK);
            let tcp_check = 14 + if v6 { 40 } else { 20 } + 16;
            sent[tcp_check..tcp_check + 2].copy_from_slice(&quoted[tcp_check..tcp_check + 2]);
            assert_eq!(out[l4 + 8..], sent[14..], "{what}: the quoted packet");
            dp.apply(&[]).unwrap();
        }
    });
}

#[test]
fn vlan_tagged_vip_traffic_is_forwarded_with_its_tag() {
    with_dataplane(2, |dp, _| {
        dp.apply(&[spec(Algo::Rr, Mode::Dr, false, &[1, 1], 80)])
            .unwrap();
        let plain = packet(false, 61000, SYN);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&plain[12..]);
        // DR: to the first backend, from the balancer; tag and packet kept.
        let mut forwarded = tagged.clone();
        forwarded[0..6].copy_from_slice(&backend_mac(0));
        forwarded[6..12].copy_from_slice(&LB_MAC);
        let row = Case::new("VLAN 100, DR", tagged, XDP_TX, forwarded);
        check_cases(&[row], |f| run(dp, f));
    });
}

#[test]
fn connection_counts_follow_tcp_states() {
    with_dataplane(1, |dp, _| {
        let s = spec(Algo::Lc, Mode::Dr, false, &[1], 80);
        dp.apply(&[s]).unwrap();
        let counts = |dp: &XdpDataplane| {
            let st = dp.stats().unwrap();
            let b = &st.services[0].backends[0];
            (b.active, b.inactive)
        };
        run(dp, &packet(false, 62000, SYN));
        run(dp, &packet(false, 62001, SYN));
        assert_eq!(counts(dp), (0, 2));
        run(dp, &packet(false, 62000, ACK));
        assert_eq!(counts(dp), (1, 1));
        run(dp, &packet(false, 62000, FIN_ACK));
        assert_eq!(counts(dp), (0, 2));
        // The recount from the table agrees.
        dp.recount_connections().unwrap();
        assert_eq!(counts(dp), (0, 2));
        let conns = dp.connections(10).unwrap();
        assert_eq!(conns.len(), 2);
        assert!(conns
            .iter()
            .any(|c| c.state == "FIN_WAIT" && c.client.port() == 62000));
    });
}

/// A SYN on the port of a closed connection (RST or FIN seen) starts a new
/// connection: scheduled anew, its entry taken over (one entry, the new
/// backend, the new state), and the old connection no longer counted.
#[test]
fn a_syn_reusing_a_closed_connections_port_is_scheduled_anew() {
    with_dataplane(2, |dp, _| {
        for (algo, close) in [(Algo::Rr, RST), (Algo::Rr, FIN_ACK), (Algo::Lc, RST)] {
            dp.apply(&[spec(algo, Mode::Dr, false, &[1, 1], 80)])
                .unwrap();
            let (_, first) = run(dp, &packet(false, 61000, SYN));
            run(dp, &packet(false, 61000, ACK));
            run(dp, &packet(false, 61000, close));
            let (action, second) = run(dp, &packet(false, 61000, SYN));
            assert_eq!(action, XDP_TX, "{algo}");
            if algo == Algo::Rr {
                assert_ne!(second[0..6], first[0..6], "rr: the next turn");
            }
            let (_, ack) = run(dp, &packet(false, 61000, ACK));
            assert_eq!(ack[0..6], second[0..6], "{algo}: the new connection stays");
            let conns = dp.connections(10).unwrap();
            assert_eq!(conns.len(), 1, "{algo}: {conns:?}");
            assert_eq!(conns[0].state, "ESTABLISHED", "{algo}");
            let (_, _, backends) = addrs(false, 2);
            let i = (0..2).find(|&i| second[0..6] == backend_mac(i)).unwrap();
            assert_eq!(conns[0].backend.ip(), backends[i], "{algo}");
            if algo == Algo::Lc {
                let st = dp.stats().unwrap();
                let counts: Vec<(u64, u64)> = st.services[0]
                    .backends
                    .iter()
                    .map(|b| (b.active, b.inactive))
                    .collect();
                let total = counts.iter().fold((0, 0), |t, c| (t.0 + c.0, t.1 + c.1));
                assert_eq!(
                    total,
                    (1, 0),
                    "lc counts only the new connection: {counts:?}"
                );
            }
            dp.apply(&[]).unwrap();
        }
    });
}

/// NAT: a new connection on a closed one's port gets its replies rewritten,
/// whether it lands on the same backend (its reverse entry rewritten in
/// place: mh) or another (a new one: rr).
#[test]
fn nat_replies_of_a_connection_reusing_a_port_are_rewritten() {
    with_dataplane(2, |dp, _| {
        for algo in [Algo::Rr, Algo::Mh] {
            for v6 in [false, true] {
                dp.apply(&[spec(algo, Mode::Nat, v6, &[1, 1], 8080)])
                    .unwrap();
                let port = 61100;
                let syn = packet(v6, port, SYN);
                let (a, out) = run(dp, &syn);
                let first = check_forwarded(Mode::Nat, v6, &syn, a, &out, 8080);
                run(dp, &packet(v6, port, RST));
                let (a, out) = run(dp, &syn);
                let second = check_forwarded(Mode::Nat, v6, &syn, a, &out, 8080);
                match algo {
                    Algo::Rr => assert_ne!(first, second, "rr: the next turn"),
                    _ => assert_eq!(first, second, "mh: the same backend"),
                }
                check_nat_reply(dp, v6, second, port);
                dp.apply(&[]).unwrap();
            }
        }
    });
}

#[test]
fn idle_flows_expire_and_are_scheduled_again() {
    with_dataplane(2, |dp, _| {
        dp.set_timeouts(Timeouts {
            tcp: 1,
            tcpfin: 1,
            udp: 1,
        })
        .unwrap();
        dp.apply(&[spec(Algo::Rr, Mode::Dr, false, &[1, 1], 80)])
            .unwrap();
        let (_, first) = run(dp, &packet(false, 63000, SYN));
        let (_, out) = run(dp, &packet(false, 63000, ACK));
        assert_eq!(out[0..6], first[0..6]);
        std::thread::sleep(std::time::Duration::from_millis(2200));
        // Idle past its timeout: the next packet is a new flow (rr's turn).
        let (_, out) = run(dp, &packet(false, 63000, ACK));
        assert_ne!(out[0..6], first[0..6]);
        assert!(dp.connections(10).unwrap().iter().all(|c| c.idle_secs <= 1));
    });
}

/// TC's verdicts.
const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;

#[test]
fn the_tc_program_forwards_like_the_xdp_one() {
    with_dataplane(2, |dp, v0| {
        for (mode, v6) in [
            (Mode::Dr, false),
            (Mode::Dr, true),
            (Mode::Nat, false),
            (Mode::Nat, true),
            (Mode::Tun, false),
            (Mode::Tun, true),
        ] {
            let port = if mode == Mode::Nat { 8080 } else { 80 };
            dp.apply(&[with_next_hop(spec(Algo::Rr, mode, v6, &[1, 1], port), v0)])
                .unwrap();
            let syn = packet(v6, 42000, SYN);
            let (verdict, out) = run_tc(dp, &syn);
            // TC has no XDP_TX: the same interface's egress is a redirect too.
            assert_eq!(verdict, TC_ACT_REDIRECT, "{mode} v6={v6}");
            let xdp_like = if mode == Mode::Dr {
                XDP_TX
            } else {
                XDP_REDIRECT
            };
            let first = check_forwarded(mode, v6, &syn, xdp_like, &out, port);
            let ack = packet(v6, 42000, ACK);
            let (_, out) = run_tc(dp, &ack);
            assert_eq!(check_forwarded(mode, v6, &ack, xdp_like, &out, port), first);
            let (vip, client, _) = addrs(v6, 1);
            let f = frames::tcp_frame(LB_MAC, CLIENT_MAC, client, vip, 1, 81, SYN);
            assert_eq!(
                run_tc(dp, &f),
                (TC_ACT_OK, f.clone()),
                "{mode} v6={v6}: not a VIP port"
            );
            dp.apply(&[]).unwrap();
        }
    });
}
