//! `static_ipaddress` and `static_routes` lines.

use super::*;

#[test]
fn static_addresses_and_routes() {
    let c = clean("static_ipaddress {\n 192.168.0.1/24 dev eth0\n}\nstatic_routes {\n 10.0.0.0/8 via 192.168.0.254 dev eth0 metric 10 table 5\n unreachable 10.9.0.0/16\n default gw 192.168.0.1\n}\n");
    assert_eq!(c.static_ipaddress[0].prefix_len, 24);
    let r = &c.static_routes;
    assert_eq!(r[0].via, Some("192.168.0.254".parse().unwrap()));
    assert_eq!(r[0].metric, Some(10));
    assert_eq!(r[0].table.as_deref(), Some("5"));
    assert_eq!(r[1].route_type.as_deref(), Some("unreachable"));
    assert_eq!(r[2].prefix_len, 0);
    let c = clean("static_routes {\n src 10.0.0.1 10.1.0.0/16 via 10.0.0.254\n}\n");
    assert_eq!(c.static_routes[0].src, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(c.static_routes[0].prefix_len, 16);
    let c = clean("static_routes {\n default via 2001:db8::1\n}\n");
    assert_eq!(
        c.static_routes[0].dest,
        "::".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        diags("static_routes {\n 10.0.0.0/8 via 2001:db8::1\n}\n"),
        ["t.conf:2:2: error: route to 10.0.0.0 via 2001:db8::1 mixes IPv4 and IPv6"]
    );
    assert_eq!(
        diags("static_routes {\n 10.0.0.0/8 vai 1.2.3.4\n 10.1.0.0/16 via\n}\n"),
        [
            "t.conf:2:13: warning: unknown option `vai` in `static_routes` is ignored; did you mean `via`?",
            "t.conf:3:14: error: `via` needs a value",
        ]
    );
}
