//! The real XDP object driven with BPF_PROG_TEST_RUN: what it does with each
//! kind of frame, byte for byte. Needs root (CAP_BPF).
//!
//! The kernel runs test-run frames as if received on loopback (ifindex 1 of
//! the caller's namespace), so the load balancer's interface MAC is recorded
//! for ifindex 1.

use std::net::{Ipv4Addr, SocketAddr};

use aya::programs::{TestRun, TestRunOptions};
use lb_daemon::{
    dataplane::{bpf::XdpDataplane, BackendSpec, Dataplane, Proto, ServiceSpec},
    net::MacAddr,
};
use lb_tests::{
    frames::{self, ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6},
    testrun::{check_cases, run, Case},
};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const B1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const B2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 10);

fn spec(proto: Proto, port: u16, macs: &[Option<[u8; 6]>]) -> ServiceSpec {
    ServiceSpec::new(
        SocketAddr::new(VIP.into(), port),
        proto,
        macs.iter()
            .enumerate()
            .map(|(i, mac)| BackendSpec {
                addr: SocketAddr::new(Ipv4Addr::new(10, 9, 0, 11 + i as u8).into(), port),
                weight: 1,
                mac: mac.map(MacAddr),
                via: None,
                removed: false,
            })
            .collect(),
    )
}

/// A data plane with TCP and UDP services on VIP:80 and VIP:53, two backends.
fn dataplane() -> XdpDataplane {
    let object = lb_daemon::bpf_object::embedded().expect("built with `cargo xtask test`");
    let mut dp = XdpDataplane::load(object).expect("load the XDP object (are we root?)");
    dp.set_interface_mac(1, MacAddr(LB_MAC)).unwrap();
    dp.apply(&[
        spec(Proto::Tcp, 80, &[Some(B1_MAC), Some(B2_MAC)]),
        spec(Proto::Udp, 53, &[Some(B1_MAC), Some(B2_MAC)]),
    ])
    .unwrap();
    dp
}

fn syn(sport: u16) -> Vec<u8> {
    frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, sport, 80, 0x02)
}

/// A broadcast ARP frame (its contents do not matter: it is not IP).
fn arp() -> Vec<u8> {
    frames::ethernet([0xff; 6], CLIENT_MAC, ETH_P_ARP, &[0u8; 28])
}

/// The frame with its MACs replaced: all DR may change.
fn with_macs(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

#[test]
fn tcp_syn_to_vip_goes_to_a_backend_with_only_macs_rewritten() {
    let mut dp = dataplane();
    let frame = syn(40000);
    let (action, out) = run(&mut dp, &frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, with_macs(&frame, B1_MAC, LB_MAC));
}

#[test]
fn udp_datagram_to_vip_goes_to_a_backend_with_only_macs_rewritten() {
    let mut dp = dataplane();
    let frame = frames::udp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 53, b"query");
    let (action, out) = run(&mut dp, &frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, with_macs(&frame, B1_MAC, LB_MAC));
}

#[test]
fn round_robin_alternates_backends_across_new_flows() {
    let mut dp = dataplane();
    let picks: Vec<[u8; 6]> = (0..10)
        .map(|i| {
            let (action, out) = run(&mut dp, &syn(41000 + i));
            assert_eq!(action, XDP_TX);
            out[0..6].try_into().unwrap()
        })
        .collect();
    let expected: Vec<[u8; 6]> = (0..10)
        .map(|i| if i % 2 == 0 { B1_MAC } else { B2_MAC })
        .collect();
    assert_eq!(picks, expected);
}

#[test]
fn a_flow_keeps_its_backend_while_other_flows_are_scheduled() {
    let mut dp = dataplane();
    let (_, first) = run(&mut dp, &syn(42000));
    for i in 0..5 {
        // A new flow in between moves the rr cursor...
        run(&mut dp, &syn(43000 + i));
        // ...but the established flow stays where it is.
        let ack = frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, 42000, 80, 0x10);
        let (action, out) = run(&mut dp, &ack);
        assert_eq!(action, XDP_TX);
        assert_eq!(out[0..6], first[0..6], "packet {i} of the flow moved");
    }
}

#[test]
fn weight_zero_backend_gets_no_new_flows() {
    let mut dp = dataplane();
    let mut s = spec(Proto::Tcp, 80, &[Some(B1_MAC), Some(B2_MAC)]);
    s.backends[0].weight = 0;
    dp.apply(&[s]).unwrap();
    for i in 0..6 {
        let (action, out) = run(&mut dp, &syn(44000 + i));
        assert_eq!(action, XDP_TX);
        assert_eq!(out[0..6], B2_MAC);
    }
}

#[test]
fn backend_without_mac_gets_no_traffic_and_the_kernel_gets_the_frame() {
    let mut dp = dataplane();
    // Only backend unresolved: nothing may be sent to a zero MAC.
    dp.apply(&[spec(Proto::Tcp, 80, &[None])]).unwrap();
    let frame = syn(45000);
    assert_eq!(run(&mut dp, &frame), (XDP_PASS, frame.clone()));
    // One resolved, one not: every new flow goes to the resolved one.
    dp.apply(&[spec(Proto::Tcp, 80, &[None, Some(B2_MAC)])])
        .unwrap();
    for i in 0..4 {
        let (action, out) = run(&mut dp, &syn(45100 + i));
        assert_eq!(action, XDP_TX);
        assert_eq!(out[0..6], B2_MAC);
    }
}

/// A row: `frame` goes back to the kernel (XDP_PASS) byte for byte.
fn passes(what: impl Into<String>, frame: Vec<u8>) -> Case {
    Case::untouched(what, XDP_PASS, frame)
}

fn check(dp: &mut XdpDataplane, cases: &[Case]) {
    check_cases(cases, |frame| run(dp, frame));
}

#[test]
fn traffic_that_is_not_for_a_vip_passes_untouched() {
    let other = Ipv4Addr::new(10, 9, 0, 2);
    // An IPv6 TCP header with zero addresses: no IPv6 service exists.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    v6.extend_from_slice(&[0u8; 32]);
    v6.extend_from_slice(&[0u8; 20]);
    let icmp_echo = frames::ipv4(CLIENT, VIP, 1, &[8, 0, 0, 0, 0, 0, 0, 0]);
    check(
        &mut dataplane(),
        &[
            passes(
                "TCP to a non-VIP address",
                frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, other, 40000, 80, 0x02),
            ),
            passes(
                "TCP to the VIP on another port",
                frames::tcp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, 40000, 443, 0x02),
            ),
            passes(
                "UDP to the TCP service's port",
                frames::udp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 80, b"x"),
            ),
            passes("ARP", arp()),
            // For a VIP, but addressed to another machine's MAC (a switch
            // flooding a frame meant for the VRRP master): not forwarded here.
            passes(
                "VIP frame for another MAC",
                frames::edited(syn(40001), |f| {
                    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99])
                }),
            ),
            passes(
                "IPv6",
                frames::ethernet(LB_MAC, CLIENT_MAC, ETH_P_IPV6, &v6),
            ),
            passes(
                "ICMP to the VIP",
                frames::ethernet(LB_MAC, CLIENT_MAC, ETH_P_IPV4, &icmp_echo),
            ),
        ],
    );
}

#[test]
fn truncated_frames_pass_untouched() {
    let mut dp = dataplane();
    let full = syn(46000);
    // Cut right after Ethernet, inside IPv4, and inside TCP (after the ports).
    let cuts: Vec<Case> = [14, 14 + 10, 14 + 20 + 10]
        .into_iter()
        .map(|cut| passes(format!("cut at {cut} bytes"), full[..cut].to_vec()))
        .collect();
    check(&mut dp, &cuts);
    // Shorter than an Ethernet header: the kernel refuses such a frame
    // before any program runs (as drivers drop runts).
    let mut out = vec![0u8; 64];
    let opts = TestRunOptions {
        data_in: Some(&full[..10]),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    };
    assert!(dp.program().unwrap().test_run(opts).is_err());
}

#[test]
fn ip_header_that_lies_about_its_length_passes_untouched() {
    check(
        &mut dataplane(),
        // total length 30: the TCP header would end outside the datagram.
        &[passes(
            "IPv4 total length shorter than the headers",
            frames::edited(syn(46500), |f| {
                f[16..18].copy_from_slice(&30u16.to_be_bytes())
            }),
        )],
    );
}

#[test]
fn fragments_and_ip_options_pass_untouched() {
    check(
        &mut dataplane(),
        &[
            // More fragments.
            passes(
                "first fragment",
                frames::edited(syn(47000), |f| f[20] |= 0x20),
            ),
            // Offset 128 bytes.
            passes(
                "non-first fragment",
                frames::edited(syn(47001), |f| {
                    f[20..22].copy_from_slice(&0x0010u16.to_be_bytes())
                }),
            ),
            // IHL 6: one word of options.
            passes(
                "IPv4 with options",
                frames::edited(syn(47002), |f| f[14] = 0x46),
            ),
        ],
    );
}

#[test]
fn counters_follow_the_packets() {
    let mut dp = dataplane();
    let frame = syn(48000);
    for _ in 0..3 {
        assert_eq!(run(&mut dp, &frame).0, XDP_TX);
    }
    let arp = arp();
    run(&mut dp, &arp);
    let stats = dp.stats().unwrap();
    let get = |name: &str| {
        stats
            .global
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, p, b)| (*p, *b))
            .unwrap()
    };
    assert_eq!(get("xdp_tx"), (3, 3 * frame.len() as u64));
    assert_eq!(get("xdp_pass"), (1, arp.len() as u64));
    assert_eq!(get("new_conns").0, 1);
    let tcp = stats
        .services
        .iter()
        .find(|s| s.proto == Proto::Tcp)
        .unwrap();
    assert_eq!((tcp.packets, tcp.bytes), (3, 3 * frame.len() as u64));
}

#[test]
fn removed_service_passes_to_the_kernel() {
    let mut dp = dataplane();
    let frame = syn(49000);
    assert_eq!(run(&mut dp, &frame).0, XDP_TX);
    dp.apply(&[]).unwrap();
    check(&mut dp, &[passes("flow of a removed service", frame)]);
}

/// Rows of frames whose TCP or UDP header does not fit the packet: each
/// goes to the kernel untouched and gets no connection entry.
#[test]
fn malformed_l4_headers_pass_untouched_and_get_no_connection() {
    let mut dp = dataplane();
    let udp = |sport| frames::udp4_frame(LB_MAC, CLIENT_MAC, CLIENT, VIP, sport, 53, b"query");
    // Offsets: IPv4 at 14, TCP/UDP at 34; UDP length at 38, TCP data
    // offset at 46; IPv4 total length at 16.
    let udp_len = |sport, len: u16| {
        frames::edited(udp(sport), |f| {
            f[38..40].copy_from_slice(&len.to_be_bytes())
        })
    };
    let tcp_off = |sport, words: u8| frames::edited(syn(sport), |f| f[46] = words << 4);
    let rows = [
        passes("UDP length 0", udp_len(50000, 0)),
        passes("UDP length 7", udp_len(50001, 7)),
        passes("UDP length past the packet", udp_len(50002, 8 + 5 + 1)),
        passes("UDP length 65535", udp_len(50003, 65535)),
        passes("TCP data offset 0", tcp_off(50004, 0)),
        passes("TCP data offset 4", tcp_off(50005, 4)),
        passes(
            "TCP data offset past the segment (6 words in 5)",
            tcp_off(50006, 6),
        ),
        passes("TCP data offset 15", tcp_off(50007, 15)),
        passes(
            "IPv4 length past the frame",
            frames::edited(syn(50008), |f| {
                f[16..18].copy_from_slice(&100u16.to_be_bytes())
            }),
        ),
    ];
    check(&mut dp, &rows);
    assert_eq!(counter(&dp, "new_conns"), 0);
    assert!(dp.connections(100).unwrap().is_empty());

    // The well-formed ones still balance: a UDP length shorter than its
    // packet is legal (the rest is padding), as are TCP options.
    assert_eq!(run(&mut dp, &udp_len(50010, 8 + 2)).0, XDP_TX);
    assert_eq!(run(&mut dp, &udp(50011)).0, XDP_TX);
    assert_eq!(run(&mut dp, &syn(50012)).0, XDP_TX);
    assert_eq!(counter(&dp, "new_conns"), 3);
}

/// Packets counted by the global counter `name`.
fn counter(dp: &XdpDataplane, name: &str) -> u64 {
    dp.stats()
        .unwrap()
        .global
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, p, _)| *p)
        .unwrap()
}

/// A frame with three VLAN tags is not parsed (one or two tags are, see
/// xdp_matrix): it goes to the kernel untouched, not balanced.
#[test]
fn three_vlan_tags_pass_untouched() {
    let mut dp = dataplane();
    let tagged = |frame: Vec<u8>, tags: &[(u16, u16)]| {
        let mut f = frame[..12].to_vec();
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&frame[12..]);
        f
    };
    let rows = [passes(
        "three tags",
        tagged(syn(51002), &[(0x88a8, 30), (0x8100, 20), (0x8100, 10)]),
    )];
    check(&mut dp, &rows);
    assert_eq!(counter(&dp, "new_conns"), 0);
    assert!(dp.connections(100).unwrap().is_empty());
}
