//! Tests of the whole pipeline: exact diagnostics (message and position)
//! and model values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// All diagnostics of `text` read as `t.conf`, as displayed.
fn diags(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("t.conf")) {
        Ok(l) => l.warnings.iter().map(|d| d.to_string()).collect(),
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

/// The config of `text`, which must load (warnings allowed).
fn ok(text: &str) -> Loaded {
    match parse_str(text, Path::new("t.conf")) {
        Ok(l) => l,
        Err(d) => panic!("unexpected errors:\n{d}"),
    }
}

/// The config of `text`, which must load without any diagnostic.
fn clean(text: &str) -> Config {
    let l = ok(text);
    assert!(
        l.warnings.is_empty(),
        "unexpected warnings: {:?}",
        l.warnings
    );
    l.config
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A scratch directory for include tests.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lb-config-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ------------------------------------------------------------ stage 1 basics

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

// ------------------------------------------------------------------ includes

#[test]
fn include_glob_relative_to_including_file() {
    let d = tmpdir("glob");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("main.conf"),
        "global_defs {\n  router_id A\n}\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/b.conf"),
        "virtual_server 10.0.0.2 80 {\n  real_server 10.0.1.2 80\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "virtual_server 10.0.0.1 80 {\n  include ../rs.inc\n}\n",
    )
    .unwrap();
    std::fs::write(d.join("rs.inc"), "real_server 10.0.1.1 80 { weight 5 }\n").unwrap();
    let l = load(&d.join("main.conf")).unwrap();
    let vs = &l.config.virtual_servers;
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0].target, VsTarget::Addr(sa("10.0.0.1:80")));
    assert_eq!(vs[0].real_servers[0].weight, 5);
    assert_eq!(
        vs[0].real_servers[0].location.file,
        d.join("conf.d/../rs.inc")
    );
    assert_eq!(vs[1].target, VsTarget::Addr(sa("10.0.0.2:80")));
    assert!(l.warnings.is_empty());
}

#[test]
fn include_errors_missing_and_cycle_and_inner_file_positions() {
    let d = tmpdir("cycle");
    std::fs::write(d.join("a.conf"), "include b.conf\ninclude missing.conf\n").unwrap();
    std::fs::write(
        d.join("b.conf"),
        "\n  include a.conf\nvirtual_server 10.0.0.300 80 {\n}\n",
    )
    .unwrap();
    let err = load(&d.join("a.conf")).unwrap_err();
    let a = d.join("a.conf");
    let b = d.join("b.conf");
    let got: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        [
            format!(
                "{}:2:9: error: included file `{}` does not exist",
                a.display(),
                d.join("missing.conf").display()
            ),
            format!(
                "{}:2:11: error: include cycle: `{}` is already being read",
                b.display(),
                d.join("a.conf").display()
            ),
            format!(
                "{}:3:16: error: invalid virtual server address `10.0.0.300`: expected an IPv4 or IPv6 address",
                b.display()
            ),
        ]
    );
}

#[test]
fn load_reports_unreadable_file() {
    let err = load(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].to_string().starts_with(
        "/nonexistent/keepalived.conf:1:1: error: cannot read `/nonexistent/keepalived.conf`: "
    ));
}

#[test]
fn empty_glob_is_a_warning() {
    let d = tmpdir("emptyglob");
    let l = parse_str("include conf.d/*.conf\n", &d.join("main.conf")).unwrap();
    assert_eq!(
        l.warnings[0].message,
        format!(
            "include pattern `{}` matches no file",
            d.join("conf.d/*.conf").display()
        )
    );
}

// ------------------------------------------------------------------ VRRP

#[test]
fn vrrp_instance_values_and_defaults() {
    let c = clean(
        r#"global_defs {
    vrrp_garp_master_delay 3
}
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 3
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    virtual_ipaddress {
        10.0.0.1
        10.0.0.2/24 brd 10.0.0.255 dev eth1 scope link label eth1:1
    }
    track_interface {
        eth1
        eth2 weight -10
    }
    track_script {
        chk weight 20 reverse
    }
    unicast_src_ip 10.0.0.5
    unicast_peer {
        10.0.0.6
        10.0.0.7 min_ttl 1 max_ttl 64
    }
    garp_master_repeat 2
    notify_master "/bin/echo master now"
    notify /usr/bin/logger -t vrrp
}
"#,
    );
    let i = &c.vrrp_instances[0];
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.state, VrrpState::Master);
    assert_eq!(i.interface.as_deref(), Some("eth0"));
    assert_eq!(i.virtual_router_id, 51);
    assert_eq!(i.priority, 150);
    assert_eq!(i.advert_int, Duration::from_secs(3));
    assert_eq!(i.version, 2);
    assert!(i.preempt);
    assert_eq!(
        i.authentication,
        Some(Authentication {
            auth_type: AuthType::Pass,
            auth_pass: "1234".into()
        })
    );
    assert_eq!(i.virtual_ipaddress[0].prefix_len, 32);
    let v = &i.virtual_ipaddress[1];
    assert_eq!(v.prefix_len, 24);
    assert_eq!(v.broadcast, Some("10.0.0.255".parse().unwrap()));
    assert_eq!(v.dev.as_deref(), Some("eth1"));
    assert_eq!(v.scope.as_deref(), Some("link"));
    assert_eq!(v.label.as_deref(), Some("eth1:1"));
    assert_eq!(i.track_interface[1].weight, Some(-10));
    assert_eq!(i.track_script[0].weight, Some(20));
    assert!(i.track_script[0].reverse);
    assert_eq!(i.unicast_peer.len(), 2);
    assert_eq!(i.unicast_peer[1].max_ttl, Some(64));
    assert_eq!(i.garp_master_delay, Duration::from_secs(3));
    assert_eq!(i.garp_master_repeat, 2);
    assert_eq!(i.notify.master.as_deref(), Some("/bin/echo master now"));
    assert_eq!(i.notify.notify.as_deref(), Some("/usr/bin/logger -t vrrp"));
    assert!(i.accept);
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.interval, Duration::from_secs(1));
    assert_eq!(s.timeout, Duration::from_secs(1));
    assert_eq!((s.rise, s.fall, s.weight), (1, 1, 0));
}

#[test]
fn priority_and_state_derive_each_other() {
    let c = clean(
        "vrrp_instance A {\n interface e\n virtual_router_id 1\n state MASTER\n}\nvrrp_instance B {\n interface e\n virtual_router_id 2\n priority 255\n}\nvrrp_instance C {\n interface e\n virtual_router_id 3\n}\n",
    );
    let i = &c.vrrp_instances;
    assert_eq!((i[0].state, i[0].priority), (VrrpState::Master, 255));
    assert_eq!((i[1].state, i[1].priority), (VrrpState::Master, 255));
    assert_eq!((i[2].state, i[2].priority), (VrrpState::Backup, 100));
}

#[test]
fn vrrp_value_errors() {
    assert_eq!(
        diags(
            "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 0\n  priority 300\n  state master\n  advert_int 0\n  version 4\n  virtual_ipaddress {\n    10.0.0.256/24\n    10.0.0.1/33\n    10.0.0.2 scope nowhere-ish\n  }\n  unicast_peer {\n    10.1.2\n  }\n}\n"
        ),
        [
            "t.conf:1:1: error: vrrp_instance `VI_1` needs a `virtual_router_id` (1 to 255)",
            "t.conf:3:21: error: invalid `virtual_router_id` value `0`: expected an integer from 1 to 255",
            "t.conf:4:12: error: invalid `priority` value `300`: expected an integer from 1 to 255",
            "t.conf:5:9: error: invalid `state` value `master`: expected MASTER or BACKUP",
            "t.conf:6:14: error: invalid `advert_int` value `0`: expected seconds with up to 2 decimals from 0.01s to 255s",
            "t.conf:7:11: error: invalid `version` value `4`: expected an integer from 2 to 3",
            "t.conf:9:5: error: invalid address `10.0.0.256/24`: expected an IPv4 or IPv6 address, optionally with /PREFIX",
            "t.conf:10:5: error: invalid prefix length in address `10.0.0.1/33`: expected an integer from 0 to 32",
            "t.conf:11:20: error: invalid scope `nowhere-ish`: expected global, site, link, host, nowhere or a number from 0 to 255",
            "t.conf:14:5: error: invalid unicast peer `10.1.2`: expected an IPv4 or IPv6 address",
        ]
    );
}

#[test]
fn vrrp_typos_suggest_the_keyword() {
    let l = ok("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 9\n  advert_intt 2\n  priorty 50\n  priority 60\n}\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:4:3: warning: unknown keyword `advert_intt` in `vrrp_instance` is ignored; did you mean `advert_int`?",
            "t.conf:5:3: warning: unknown keyword `priorty` in `vrrp_instance` is ignored; did you mean `priority`?",
        ]
    );
    assert_eq!(l.config.vrrp_instances[0].priority, 60);
}

#[test]
fn advert_int_units_follow_the_version() {
    let l = ok("vrrp_instance A {\n interface e\n virtual_router_id 1\n version 3\n advert_int 0.05\n}\nvrrp_instance B {\n interface e\n virtual_router_id 2\n advert_int 1.5\n}\n");
    let i = &l.config.vrrp_instances;
    assert_eq!(i[0].advert_int, Duration::from_millis(50));
    assert_eq!(i[1].advert_int, Duration::from_secs(2));
    assert_eq!(
        l.warnings[0].to_string(),
        "t.conf:10:2: warning: `advert_int` must be whole seconds with VRRP version 2: 1.5s is rounded to 2s"
    );
    assert_eq!(
        diags("vrrp_instance A {\n interface e\n virtual_router_id 1\n advert_int 0.005\n}\n"),
        ["t.conf:4:13: error: invalid `advert_int` value `0.005`: expected seconds with up to 2 decimals from 0.01s to 255s"]
    );
}

#[test]
fn ipv6_vips_imply_version_3() {
    let c = clean("vrrp_instance A {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n");
    assert_eq!(c.vrrp_instances[0].version, 3);
    assert_eq!(c.vrrp_instances[0].virtual_ipaddress[0].prefix_len, 64);
}

#[test]
fn vrrp_cross_checks() {
    assert_eq!(
        diags(
            r#"vrrp_instance A {
  interface eth0
  virtual_router_id 5
  state MASTER
  nopreempt
  track_script {
    chk_missing
  }
  authentication {
    auth_type PASS
    auth_pass 123456789
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 5
}
vrrp_instance C {
  interface eth1
  virtual_router_id 5
}
vrrp_sync_group G {
  group {
    A C
    NOPE
  }
}
"#
        ),
        [
            "t.conf:5:3: warning: `nopreempt` has no effect with `state MASTER` (vrrp_instance `A`): use `state BACKUP` on every node",
            "t.conf:7:5: error: vrrp_instance `A` tracks vrrp_script `chk_missing`, which is not defined",
            "t.conf:11:15: warning: `auth_pass` is longer than 8 characters: only `12345678` is used, as keepalived truncates it",
            "t.conf:14:1: error: vrrp_instance `B` uses virtual_router_id 5 on interface `eth0`, already used by vrrp_instance `A` at t.conf:1:1",
            "t.conf:22:1: error: vrrp_sync_group `G` names vrrp_instance `NOPE`, which is not defined",
        ]
    );
}

#[test]
fn sync_group_and_script_model() {
    let c = clean("vrrp_script s {\n script /bin/check\n interval 0.5\n timeout 3\n weight -20\n rise 3\n fall 4\n user nobody\n init_fail\n}\nvrrp_instance A {\n interface e\n virtual_router_id 1\n track_script {\n  s\n }\n}\nvrrp_sync_group G {\n group {\n  A\n }\n notify_backup \"/x y\"\n notify_stop /z\n}\n");
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.script, "/bin/check");
    assert_eq!(s.interval, Duration::from_millis(500));
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!((s.weight, s.rise, s.fall, s.init_fail), (-20, 3, 4, true));
    assert_eq!(s.user.as_ref().map(|u| u.user.as_str()), Some("nobody"));
    let g = &c.vrrp_sync_groups[0];
    assert_eq!(g.group, ["A"]);
    assert_eq!(g.notify.backup.as_deref(), Some("/x y"));
    assert_eq!(g.notify.stop.as_deref(), Some("/z"));
}

#[test]
fn script_weight_range_and_options() {
    assert_eq!(
        diags("vrrp_script s {\n script /bin/x\n weight 300\n}\nvrrp_script t {\n script /bin/x\n weight 3 backwards\n}\nvrrp_script u {\n interval 2\n}\n"),
        [
            "t.conf:3:9: error: invalid `weight` value `300`: expected an integer from -253 to 253",
            "t.conf:7:11: error: unexpected `backwards` after the weight: only `reverse` may follow",
            "t.conf:9:1: error: vrrp_script `u` has no `script` to run",
        ]
    );
}

// ------------------------------------------------------------------ global_defs

#[test]
fn global_defs_values_and_mail_warning() {
    let l = ok("global_defs {\n router_id R\n vrrp_version 3\n vrrp_strict\n vrrp_garp_interval 0.001\n vrrp_startup_delay 2.5\n smtp_server 10.0.0.1\n smtp_connect_timeout 10\n script_user lb lbgroup\n enable_script_security\n}\n");
    let g = &l.config.global_defs;
    assert_eq!(g.vrrp_version, 3);
    assert!(g.vrrp_strict && g.enable_script_security);
    assert_eq!(g.vrrp_garp_interval, Duration::from_millis(1));
    assert_eq!(g.vrrp_startup_delay, Duration::from_millis(2500));
    assert_eq!(g.smtp_server.as_ref().map(|s| s.port), Some(25));
    assert_eq!(g.smtp_connect_timeout, Duration::from_secs(10));
    assert_eq!(
        g.script_user.as_ref().and_then(|u| u.group.as_deref()),
        Some("lbgroup")
    );
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        ["t.conf:7:2: warning: e-mail settings are kept but no e-mail is sent: mail notification is not implemented"]
    );
}

#[test]
fn global_defs_feed_instance_defaults() {
    let c = clean("vrrp_instance A {\n virtual_router_id 1\n}\nglobal_defs {\n vrrp_version 3\n vrrp_garp_master_repeat 9\n default_interface bond0\n vrrp_strict\n}\n");
    let i = &c.vrrp_instances[0];
    assert_eq!(i.version, 3);
    assert_eq!(i.garp_master_repeat, 9);
    assert_eq!(i.interface.as_deref(), Some("bond0"));
    assert!(!i.accept, "vrrp_strict makes no_accept the default");
}

#[test]
fn unsupported_parts_warn_once_each_and_load() {
    let l = ok("global_defs {\n lvs_sync_daemon eth0 VI_1\n}\nvrrp_track_process p {\n process nginx\n}\nvrrp_instance A {\n interface e\n virtual_router_id 1\n use_vmac\n}\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:2:2: warning: `lvs_sync_daemon` is not supported yet and is ignored",
            "t.conf:4:1: warning: `vrrp_track_process` is not supported yet and is ignored",
            "t.conf:10:2: warning: `use_vmac` is not supported yet and is ignored",
        ]
    );
}

// ------------------------------------------------------------------ checkers

#[test]
fn checker_timings_cascade_like_keepalived() {
    let c = clean(
        r#"virtual_server 10.0.0.1 80 {
    delay_loop 20
    connect_timeout 7
    retry 4
    real_server 10.0.0.2 80 {
        delay_before_retry 9
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
            connect_timeout 1
            delay_loop 2
        }
        MISC_CHECK {
            misc_path /bin/true
        }
    }
    real_server 10.0.0.3 80 {
        DNS_CHECK {
            retry 1
        }
        HTTP_GET {
            url {
                path /
            }
        }
    }
}
virtual_server 10.0.0.9 80 {
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}
"#,
    );
    let rs = &c.virtual_servers[0].real_servers;
    let tcp = &rs[0].checkers[0];
    assert_eq!(tcp.kind, CheckerKind::Tcp);
    assert_eq!(tcp.delay_loop, Duration::from_secs(20));
    assert_eq!(tcp.connect_timeout, Duration::from_secs(7));
    assert_eq!(tcp.retry, 4);
    assert_eq!(tcp.delay_before_retry, Duration::from_secs(9));
    assert_eq!(tcp.warmup, Duration::from_secs(20));
    let http = &rs[0].checkers[1];
    assert_eq!(http.connect_timeout, Duration::from_secs(1));
    assert_eq!(http.delay_loop, Duration::from_secs(2));
    assert_eq!(http.warmup, Duration::from_secs(2));
    let dns = &rs[1].checkers[0];
    assert_eq!(dns.retry, 1);
    assert_eq!(
        dns.delay_before_retry,
        Duration::from_secs(20),
        "DNS waits delay_loop"
    );
    let http = &rs[1].checkers[1];
    assert_eq!(
        http.delay_before_retry,
        Duration::from_secs(3),
        "HTTP default is 3s"
    );
    // Nothing set anywhere: keepalived's own defaults.
    let rs = &c.virtual_servers[1].real_servers[0];
    let (tcp, misc) = (&rs.checkers[0], &rs.checkers[1]);
    assert_eq!(tcp.connect_timeout, Duration::from_secs(5));
    assert_eq!((tcp.retry, misc.retry), (1, 0));
    assert_eq!(tcp.delay_before_retry, Duration::from_secs(1));
    assert_eq!(tcp.delay_loop, Duration::from_secs(60));
}

#[test]
fn http_and_other_checker_details() {
    let c = clean(
        r#"virtual_server 10.0.0.1 80 {
    virtualhost vs.example
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                path /a
                digest ABCDEF0123456789abcdef0123456789
                status_code 200 301-302
            }
            connect_ip 10.0.0.20
            connect_port 8080
            bindto 10.0.0.1
            bind_port 9999
        }
        SSL_GET {
            url {
                path /b
                virtualhost url.example
            }
            virtualhost ck.example
        }
        SMTP_CHECK {
        }
        UDP_CHECK {
            payload 0x00FF
        }
        DNS_CHECK {
            type aaaa
            name example.org
        }
    }
}
"#,
    );
    let ck = &c.virtual_servers[0].real_servers[0].checkers;
    let CheckerKind::Http(h) = &ck[0].kind else {
        panic!("{:?}", ck[0].kind)
    };
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("abcdef0123456789abcdef0123456789")
    );
    assert_eq!(h.urls[0].status_code, [(200, 200), (301, 302)]);
    assert_eq!(h.virtualhost.as_deref(), Some("vs.example"));
    assert_eq!(ck[0].connect_port, Some(8080));
    assert_eq!(ck[0].bind_port, Some(9999));
    let CheckerKind::Ssl(s) = &ck[1].kind else {
        panic!()
    };
    assert_eq!(s.virtualhost.as_deref(), Some("ck.example"));
    assert_eq!(s.urls[0].virtualhost.as_deref(), Some("url.example"));
    let CheckerKind::Smtp(m) = &ck[2].kind else {
        panic!()
    };
    assert_eq!(m.helo_name, "smtpchecker.keepalived.org");
    let CheckerKind::Udp(u) = &ck[3].kind else {
        panic!()
    };
    assert_eq!(u.payload.as_deref(), Some("00ff"));
    let CheckerKind::Dns(d) = &ck[4].kind else {
        panic!()
    };
    assert_eq!((d.qtype.as_str(), d.name.as_str()), ("AAAA", "example.org"));
}

#[test]
fn checker_errors() {
    assert_eq!(
        diags(
            r#"virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                digest xyz
                status_code 99 200-100
            }
            connect_port 70000
            connect_ip 10.0.0
        }
        MISC_CHECK {
            misc_timeout 3
        }
        DNS_CHECK {
            type BOGUS
        }
        TCP_CHECK {
            conect_timeout 3
        }
    }
}
"#
        ),
        [
            "t.conf:3:9: warning: `HTTP_GET` has no `url` block: it has nothing to check",
            "t.conf:4:13: error: `url` needs a `path`",
            "t.conf:5:24: error: invalid `digest` value `xyz`: expected an MD5 digest of 32 hex digits",
            "t.conf:6:29: error: invalid `status_code` value `99`: expected HTTP status codes from 100 to 599, singly or as ranges like 200-299",
            "t.conf:6:32: error: invalid `status_code` value `200-100`: expected HTTP status codes from 100 to 599, singly or as ranges like 200-299",
            "t.conf:8:26: error: invalid `connect_port` value `70000`: expected an integer from 0 to 65535",
            "t.conf:9:24: error: invalid `connect_ip` value `10.0.0`: expected an IPv4 or IPv6 address",
            "t.conf:11:9: error: `MISC_CHECK` needs a `misc_path` script",
            "t.conf:15:18: error: invalid `type` value `BOGUS`: expected one of A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY",
            "t.conf:18:13: warning: unknown keyword `conect_timeout` in `TCP_CHECK` is ignored; did you mean `connect_timeout`?",
        ]
    );
}

// ------------------------------------------------------------ other LVS parts

#[test]
fn virtual_server_groups_and_targets() {
    let c = clean("virtual_server_group G {\n 10.0.0.1 80\n 10.0.0.5-9 443\n 2001:db8::1-1f 80\n fwmark 3\n}\nvirtual_server group G {\n}\nvirtual_server fwmark 12 {\n}\n");
    let g = &c.virtual_server_groups[0];
    assert_eq!(g.entries[0], VsgEntry::Addr(sa("10.0.0.1:80")));
    assert_eq!(
        g.entries[1],
        VsgEntry::Range {
            first: "10.0.0.5".parse().unwrap(),
            last: "10.0.0.9".parse().unwrap(),
            port: 443
        }
    );
    assert_eq!(
        g.entries[2],
        VsgEntry::Range {
            first: "2001:db8::1".parse().unwrap(),
            last: "2001:db8::1f".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(g.entries[3], VsgEntry::Fwmark(3));
    assert_eq!(c.virtual_servers[0].target, VsTarget::Group("G".into()));
    assert_eq!(c.virtual_servers[1].target, VsTarget::Fwmark(12));
}

#[test]
fn lvs_cross_checks_and_group_errors() {
    assert_eq!(
        diags("virtual_server_group G {\n 10.0.0.9-3 80\n fwmark x\n}\nvirtual_server group H {\n}\nvirtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 80 {\n protocol UDP\n}\n"),
        [
            "t.conf:2:2: error: invalid address range `10.0.0.9-3`: the last byte must be from 9 to 255",
            "t.conf:3:9: error: invalid firewall mark `x`: expected an integer from 0 to 4294967295",
            "t.conf:5:1: error: virtual_server names virtual_server_group `H`, which is not defined",
            "t.conf:9:1: error: duplicate virtual_server `10.0.0.1:80` (TCP) (first defined at t.conf:7:1)",
        ]
    );
}

#[test]
fn sched_flag_mismatch_warns() {
    let l = ok("virtual_server 10.0.0.1 80 {\n lb_algo rr\n sh-port\n ops\n}\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:3:2: warning: `sh-port` has no effect with scheduler `rr`: it applies to `sh` only",
            "t.conf:4:2: warning: `ops` (one-packet scheduling) applies to UDP only and is ignored",
        ]
    );
}

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

// ------------------------------------------------------------ golden corpus

/// `tests/configs` of the repository, from lb-daemon or from a scratch
/// crate building this module out of tree.
fn fixture_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs");
    if beside.is_dir() {
        return beside;
    }
    match std::env::var_os("LB_REPO_ROOT") {
        Some(root) => Path::new(&root).join("tests/configs"),
        None => PathBuf::from("/work/main/tests/configs"),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("tests/configs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    v
}

#[test]
fn golden_corpus_matches() {
    let bless = std::env::var_os("LB_BLESS").is_some_and(|v| v == "1");
    let files = fixtures();
    assert!(files.len() >= 5, "corpus missing: {files:?}");
    let mut failures = Vec::new();
    for conf in files {
        let loaded = match load(&conf) {
            Ok(l) => l,
            Err(d) => panic!("{} does not load:\n{d}", conf.display()),
        };
        let json = dump_json(&loaded.config);
        let golden = conf.with_extension("json");
        if bless {
            std::fs::write(&golden, &json).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == json => {}
            Ok(_) => failures.push(format!(
                "{} differs from {}",
                conf.display(),
                golden.display()
            )),
            Err(e) => failures.push(format!("{}: {e} (run with LB_BLESS=1)", golden.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_warnings_are_the_expected_ones() {
    // Realistic files should load with no surprise warnings; only the mail
    // notice is expected.
    for conf in fixtures() {
        let l = load(&conf).unwrap();
        for w in &l.warnings {
            assert!(
                w.message.contains("no e-mail is sent"),
                "unexpected warning: {w}"
            );
        }
    }
}

// ------------------------------------------------------------ robustness

/// A tiny deterministic generator: no external crates for fuzz-ish tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn never_panics_on_truncated_or_garbled_input() {
    const NOISE: [&str; 12] = [
        "{",
        "}",
        "\"",
        "#",
        "!",
        "\\",
        "\n",
        " ",
        "-",
        "/",
        "\u{e9}",
        "999999999999999999999",
    ];
    let mut rng = Lcg(0x5eed);
    for conf in fixtures() {
        let text = std::fs::read_to_string(&conf).unwrap();
        let chars: Vec<char> = text.chars().collect();
        // Every truncation point (by steps, to keep the test fast).
        for cut in (0..chars.len()).step_by(7) {
            let t: String = chars[..cut].iter().collect();
            let _ = parse_str(&t, &conf);
        }
        // Lines dropped one at a time.
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let t: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            let _ = parse_str(&t.join("\n"), &conf);
        }
        // Random replacements and insertions.
        for _ in 0..300 {
            let mut c = chars.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(c.len());
                let noise: Vec<char> = NOISE[rng.below(NOISE.len())].chars().collect();
                if rng.below(2) == 0 && at < c.len() {
                    c.splice(at..at + 1, noise);
                } else {
                    c.splice(at..at, noise);
                }
            }
            let t: String = c.into_iter().collect();
            let _ = parse_str(&t, &conf);
        }
    }
    // Degenerate inputs.
    for t in [
        "",
        "{",
        "}",
        "\"",
        "{{{{",
        "}}}}",
        "a {",
        "include",
        "include {",
        "\\",
        "x \\",
    ] {
        let _ = parse_str(t, Path::new("t.conf"));
    }
}

#[test]
fn preprocessor_lines_are_flagged() {
    assert_eq!(
        diags("$VIP=10.0.0.1\n@lb1 global_defs {\n}\n"),
        [
            "t.conf:1:1: warning: parameter definitions and substitution (`$NAME`) are not supported yet; the line is ignored",
            "t.conf:2:1: warning: conditional lines (`@ID`) are not supported yet; the line is ignored",
        ]
    );
}

#[test]
fn diagnostics_are_a_std_error() {
    let err: Box<dyn std::error::Error> =
        Box::new(parse_str("}\n", Path::new("x.conf")).unwrap_err());
    assert_eq!(
        err.to_string(),
        "x.conf:1:1: error: unexpected `}`: no block is open here"
    );
}

#[test]
fn lvs_timeouts_are_read_in_any_order_and_bad_ones_located() {
    let c = clean("global_defs {\n lvs_timeouts udp 30 tcp 7200\n}\n");
    assert_eq!(
        c.global_defs.lvs_timeouts,
        super::LvsTimeouts {
            tcp: Some(7200),
            tcpfin: None,
            udp: Some(30)
        }
    );
    let err = parse_str(
        "global_defs {\n lvs_timeouts tcp 0 fin 3\n}\n",
        Path::new("t.conf"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.conf:2:19: error: invalid `lvs_timeouts` value `0`: expected seconds, at least 1"
    );
}

#[test]
fn ssl_block_gives_the_ca_and_warns_about_client_certificates() {
    let l = ok("SSL {\n ca /etc/lb/ca.pem\n certificate /etc/lb/c.pem\n}\n");
    assert_eq!(
        l.config.ssl.as_ref().unwrap().ca.as_deref(),
        Some(Path::new("/etc/lb/ca.pem"))
    );
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0]
        .to_string()
        .starts_with("t.conf:1:1: warning: SSL client certificates"));
}

#[test]
fn lb_dataplane_picks_the_tier_and_refuses_others() {
    let c = clean("global_defs {\n lb_dataplane ipvs\n}\n");
    assert_eq!(c.global_defs.lb_dataplane, Some(super::DataplaneTier::Ipvs));
    let err = parse_str(
        "global_defs {\n lb_dataplane dpdk\n}\n",
        Path::new("t.conf"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.conf:2:15: error: invalid `lb_dataplane` value `dpdk`: expected auto, xdp, tc or ipvs"
    );
}
