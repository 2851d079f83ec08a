//! `vrrp_instance`, `vrrp_script` and `vrrp_sync_group`: values, defaults
//! derived from each other and from global_defs, errors and cross-checks.

use super::*;

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
            "t.conf:5:9: error: invalid `state` value `master`: expected MASTER or BACKUP; BACKUP is used",
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
            "t.conf:7:5: error: vrrp_instance `A` tracks vrrp_script `chk_missing`, which is not defined: the line is ignored",
            "t.conf:11:15: warning: `auth_pass` is longer than 8 characters: only `12345678` is used, as keepalived truncates it",
            "t.conf:14:1: error: vrrp_instance `B` uses virtual_router_id 5 on interface `eth0`, already used by vrrp_instance `A` at t.conf:1:1",
            "t.conf:22:1: error: vrrp_sync_group `G` names vrrp_instance `NOPE`, which is not defined: the name is ignored",
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
