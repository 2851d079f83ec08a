//! `global_defs` (and the instance defaults it feeds), the top-level `SSL`
//! block, `lb_dataplane` and the parts lbd does not support.

use super::*;

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

#[test]
fn lb_announce_keywords_set_the_table_warm_up_and_drain() {
    let c = clean(
        "global_defs {\n lb_announce_table 100\n lb_announce_warmup 30\n lb_announce_drain 2.5\n}\n",
    );
    let a = c.global_defs.lb_announce;
    assert_eq!(a.table, Some(100));
    assert_eq!(a.warmup, std::time::Duration::from_secs(30));
    assert_eq!(a.drain, std::time::Duration::from_millis(2500));
    let d = clean("global_defs {\n router_id x\n}\n")
        .global_defs
        .lb_announce;
    assert_eq!(d.table, None);
    let err = parse_str(
        "global_defs {\n lb_announce_table 254\n}\n",
        Path::new("t.conf"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.conf:2:20: error: invalid `lb_announce_table` value `254`: expected a table of its own (1-252 or above 255; not default, main or local)"
    );
}
