//! End to end in network namespaces: a client, lbd with XDP on the load
//! balancer, two LVS-DR backends, real HTTP. Needs root.

use std::collections::BTreeMap;

use lb_tests::{
    capture::{self, Capture},
    lab::{self, DrLab},
};

const REQUESTS: usize = 20;

fn requests_are_spread_and_replies_bypass_the_balancer(xdp_mode: &str) {
    let mut lab = DrLab::new().expect("lab");
    let config = lb_tests::repo_root().join("examples/keepalived-dr.conf");
    lab.start_lbd(&config, xdp_mode).expect("lbd ready");
    assert!(
        lab.lb_xdp_attached().unwrap(),
        "XDP not attached to lb's eth0"
    );

    let capture = Capture::start(&lab.client.ns, "eth0").expect("capture on the client");
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..REQUESTS {
        let body = lab
            .get_vip()
            .unwrap_or_else(|e| panic!("request {i}: {e:#}\nlbd log:\n{}", lab.lbd_log()));
        *answers.entry(body).or_default() += 1;
    }
    let frames = capture.finish().unwrap();

    let expected: BTreeMap<String, usize> = [
        ("b1".to_string(), REQUESTS / 2),
        ("b2".to_string(), REQUESTS / 2),
    ]
    .into();
    assert_eq!(answers, expected, "lbd log:\n{}", lab.lbd_log());

    // Every reply from the VIP reached the client straight from a backend's
    // MAC, never through the load balancer.
    let replies: Vec<[u8; 6]> = frames
        .iter()
        .filter_map(|f| capture::tcp4_source(f))
        .filter(|(_, src, port)| *src == lab::VIP && *port == 80)
        .map(|(mac, _, _)| mac)
        .collect();
    assert!(
        replies.len() >= REQUESTS,
        "only {} reply frames seen",
        replies.len()
    );
    let backend_macs = lab::BACKENDS.map(lab::mac_of);
    for mac in &replies {
        assert!(
            backend_macs.contains(mac),
            "reply from {mac:02x?}, not a backend"
        );
    }

    // A clean stop detaches the program.
    let status = lab.stop_lbd().unwrap();
    assert!(status.success(), "lbd exit: {status}\n{}", lab.lbd_log());
    assert!(
        !lab.lb_xdp_attached().unwrap(),
        "XDP left attached after lbd stopped"
    );
}

#[test]
fn dr_round_robin_native_xdp() {
    requests_are_spread_and_replies_bypass_the_balancer("native");
}

#[test]
fn dr_round_robin_skb_xdp() {
    requests_are_spread_and_replies_bypass_the_balancer("skb");
}
