//! Reading a file: keywords and aliases, values, syntax errors, unknown
//! keywords, and how diagnostics are collected and displayed.

use super::*;

#[test]
fn minimal_virtual_server_gets_keepalived_defaults() {
    let c = clean(
        "global_defs {\n  router_id LB1\n}\nvirtual_server 10.0.0.10 80 {\n  real_server 10.0.1.1 80 {\n  }\n}\n",
    );
    assert_eq!(c.global_defs.router_id.as_deref(), Some("LB1"));
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.target, VsTarget::Addr(sa("10.0.0.10:80")));
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.lb_algo, Scheduler::Wlc);
    assert_eq!(vs.lb_kind, LbKind::Nat);
    assert_eq!(vs.delay_loop, Duration::from_secs(60));
    assert_eq!(vs.persistence_timeout, None);
    assert_eq!((vs.location.line, vs.location.col), (4, 1));
    let rs = &vs.real_servers[0];
    assert_eq!(rs.addr, sa("10.0.1.1:80"));
    assert_eq!(rs.weight, 1);
    assert!(!rs.inhibit_on_failure);
    assert_eq!((rs.location.line, rs.location.col), (5, 3));
}

#[test]
fn keywords_aliases_and_values() {
    let c = clean(
        r#"virtual_server 192.168.1.1 443 {
    delay_loop 10
    lvs_sched rr
    lvs_method DR
    protocol udp
    persistence_timeout 50
    real_server 192.168.2.1 443 { weight 3 }
    real_server 192.168.2.2 443
    {
        weight 0
        inhibit_on_failure
    }
}
virtual_server 192.168.1.2 80 {
    lb_algo sh
    sh-port
    lb_kind TUN
    persistence_timeout
}
"#,
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.delay_loop, Duration::from_secs(10));
    assert_eq!(vs.lb_algo, Scheduler::Rr);
    assert_eq!(vs.lb_kind, LbKind::Dr);
    assert_eq!(vs.protocol, Protocol::Udp);
    assert_eq!(vs.persistence_timeout, Some(Duration::from_secs(50)));
    assert_eq!(vs.real_servers[0].weight, 3);
    assert_eq!(vs.real_servers[0].lb_kind, LbKind::Dr);
    assert_eq!(vs.real_servers[1].weight, 0);
    assert!(vs.real_servers[1].inhibit_on_failure);
    let vs = &c.virtual_servers[1];
    assert_eq!(vs.lb_algo, Scheduler::Sh);
    assert!(vs.sched_flags.sh_port);
    assert_eq!(vs.lb_kind, LbKind::Tun);
    assert_eq!(vs.persistence_timeout, Some(Duration::from_secs(360)));
}

#[test]
fn comments_quotes_and_ipv6() {
    let c = clean(
        "! keepalived style\n# hash style\nvirtual_server 2001:db8::10 80 { # trailing\n  lb_algo wrr ! also trailing\n  real_server \"2001:db8::1\" 8080 {\n  }\n}\n",
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.target, VsTarget::Addr(sa("[2001:db8::10]:80")));
    assert_eq!(vs.lb_algo, Scheduler::Wrr);
    assert_eq!(vs.real_servers[0].addr, sa("[2001:db8::1]:8080"));
}

#[test]
fn malformed_addresses_and_ports_are_errors_at_the_value() {
    assert_eq!(
        diags(
            "virtual_server 10.0.0.256 80 {\n  real_server 10.1.2 80 {\n  }\n  real_server 10.0.0.1 99999\n  real_server 10.0.0.2 http\n}\n"
        ),
        [
            "t.conf:1:16: error: invalid virtual server address `10.0.0.256`: expected an IPv4 or IPv6 address",
            "t.conf:2:15: error: invalid real server address `10.1.2`: expected an IPv4 or IPv6 address",
            "t.conf:4:24: error: invalid real server port `99999`: expected an integer from 0 to 65535",
            "t.conf:5:24: error: invalid real server port `http`: expected an integer from 0 to 65535",
        ]
    );
}

#[test]
fn bad_scheduler_lists_the_allowed_ones() {
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n  lb_algo foo\n}\n"),
        ["t.conf:2:11: error: invalid `lb_algo` value `foo`: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos"]
    );
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n  lb_kind FOO\n  protocol ICMP\n}\n"),
        [
            "t.conf:2:11: error: invalid `lb_kind` value `FOO`: expected NAT, DR or TUN",
            "t.conf:3:12: error: invalid `protocol` value `ICMP`: expected TCP, UDP or SCTP",
        ]
    );
}

#[test]
fn unbalanced_braces_point_at_the_brace() {
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 1\n}\n"),
        ["t.conf:1:28: error: unclosed `{`: the block of `virtual_server` is never closed with `}`"]
    );
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n}\n}\n"),
        ["t.conf:3:1: error: unexpected `}`: no block is open here"]
    );
}

#[test]
fn duplicate_real_server() {
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80\n  real_server 10.0.0.2 80\n  real_server 10.0.0.2 81\n}\n"),
        ["t.conf:3:3: error: duplicate real server `10.0.0.2:80` in virtual server `10.0.0.1:80` (first defined at t.conf:2:3)"]
    );
}

#[test]
fn unknown_keywords_warn_with_suggestion_and_block_goes_on() {
    let l = ok("virtual_server 10.0.0.1 80 {\n  lb_algoo rr\n  delay_lop 5\n  frobnicate 1\n  real_server 10.0.0.2 80 {\n    wieght 4\n  }\n  lb_kind DR\n}\nvirtual_servr 1.1.1.1 80 {\n}\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:2:3: warning: unknown keyword `lb_algoo` in `virtual_server` is ignored; did you mean `lb_algo`?",
            "t.conf:3:3: warning: unknown keyword `delay_lop` in `virtual_server` is ignored; did you mean `delay_loop`?",
            "t.conf:4:3: warning: unknown keyword `frobnicate` in `virtual_server` is ignored",
            "t.conf:6:5: warning: unknown keyword `wieght` in `real_server` is ignored; did you mean `weight`?",
            "t.conf:10:1: warning: unknown keyword `virtual_servr` at top level is ignored; did you mean `virtual_server`?",
        ]
    );
    assert_eq!(l.config.virtual_servers[0].lb_kind, LbKind::Dr);
    assert_eq!(l.warnings[0].severity, Severity::Warning);
}

#[test]
fn errors_are_all_collected_and_displayed_one_per_line() {
    let err = parse_str(
        "virtual_server 10.0.0.1 80 {\n  lb_algo foo\n  delay_loop abc\n}\nvirtual_server 1.2.3 80 {\n}\n",
        Path::new("t.conf"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.conf:2:11: error: invalid `lb_algo` value `foo`: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos\n\
         t.conf:3:14: error: invalid `delay_loop` value `abc`: expected seconds with up to 6 decimals from 0.000001s to 4294967s\n\
         t.conf:5:16: error: invalid virtual server address `1.2.3`: expected an IPv4 or IPv6 address"
    );
    assert_eq!(err.errors().count(), 3);
}

#[test]
fn several_statements_per_line_through_braces() {
    let c = clean("virtual_server 10.0.0.1 80 { lb_algo rr\nreal_server 10.0.0.2 80 { weight 7 } real_server 10.0.0.3 80 { weight 8 } }\n");
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.lb_algo, Scheduler::Rr);
    assert_eq!(vs.real_servers.len(), 2);
    assert_eq!(vs.real_servers[1].weight, 8);
}

#[test]
fn missing_value_and_extra_values() {
    assert_eq!(
        diags("virtual_server 10.0.0.1 80 {\n  delay_loop\n  lb_algo rr wrr\n}\n"),
        [
            "t.conf:2:3: error: `delay_loop` needs a value",
            "t.conf:3:14: warning: unexpected `wrr` after `lb_algo`: extra values are ignored",
        ]
    );
}
