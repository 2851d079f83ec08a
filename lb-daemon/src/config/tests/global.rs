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
    let l = ok("global_defs {\n lvs_flush\n}\nvrrp_track_process p {\n process nginx\n}\nvrrp_instance A {\n interface e\n virtual_router_id 1\n use_vmac\n}\n");
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:2:2: warning: `lvs_flush` is not supported yet and is ignored",
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

/// The config of `text`, read without a diagnostic.
fn sync_ok(text: &str) -> Config {
    let l = ok(text);
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert!(w.is_empty(), "{w:?}");
    l.config
}

#[test]
fn lvs_sync_daemon_reads_keepalived_options_with_the_kernel_defaults() {
    let c = sync_ok("global_defs {\n lvs_sync_daemon eth1 VI_1\n}\nvrrp_instance VI_1 {\n interface e\n virtual_router_id 7\n}\n");
    let d = c.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(d.interface, "eth1");
    assert_eq!(d.vrrp_instance.as_deref(), Some("VI_1"));
    assert_eq!(
        (d.syncid, d.maxlen, d.port, d.ttl),
        (None, None, 8848, 1),
        "id defaults later to the instance's VRID, maxlen to the MTU's"
    );
    assert_eq!(d.group, "224.0.0.81".parse::<std::net::IpAddr>().unwrap());

    let c = sync_ok("global_defs {\n lvs_sync_daemon eth1 ttl 3 group ff02::8:8 id 9 port 9000 maxlen 1400 inst VI_1\n}\nvrrp_instance VI_1 {\n interface e\n virtual_router_id 7\n}\n");
    let d = c.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(d.vrrp_instance.as_deref(), Some("VI_1"));
    assert_eq!(
        (d.syncid, d.maxlen, d.port, d.ttl),
        (Some(9), Some(1400), 9000, 3)
    );
    assert!(d.group.is_ipv6());

    // lbd's extension: no instance, send and receive all the time.
    let c = sync_ok("global_defs {\n lvs_sync_daemon eth1 id 4\n}\n");
    let d = c.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!((d.vrrp_instance.as_deref(), d.syncid), (None, Some(4)));
    // Shown in the dump, as the other globals.
    let dump = crate::config::dump::dump_json(&c);
    assert!(dump.contains("\"lvs_sync_daemon\""), "{dump}");
    assert!(dump.contains("\"interface\": \"eth1\""), "{dump}");
}

#[test]
fn lvs_sync_daemon_old_positional_id_warns() {
    let l = ok("global_defs {\n lvs_sync_daemon eth1 VI_1 12\n}\nvrrp_instance VI_1 {\n interface e\n virtual_router_id 7\n}\n");
    assert_eq!(
        l.config
            .global_defs
            .lvs_sync_daemon
            .as_ref()
            .unwrap()
            .syncid,
        Some(12)
    );
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        ["t.conf:2:28: warning: write the sync id as `id N`: the bare form is kept for old configurations"]
    );
}

#[test]
fn lvs_sync_daemon_bad_values_are_located_errors() {
    for (text, want) in [
        (
            "global_defs {\n lvs_sync_daemon eth1 id 256\n}\n",
            "t.conf:2:26: error: invalid `lvs_sync_daemon` value `256`: expected an integer from 0 to 255",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 ttl 0\n}\n",
            "t.conf:2:27: error: invalid `lvs_sync_daemon` value `0`: expected an integer from 1 to 255",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 port 70000\n}\n",
            "t.conf:2:28: error: invalid `lvs_sync_daemon` value `70000`: expected an integer from 1 to 65535",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 maxlen 65508\n}\n",
            "t.conf:2:30: error: invalid `lvs_sync_daemon` value `65508`: expected an integer from 1 to 65507",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 group 10.0.0.1\n}\n",
            "t.conf:2:29: error: invalid `lvs_sync_daemon` value `10.0.0.1`: expected a multicast address",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 ttl\n}\n",
            "t.conf:2:23: error: `lvs_sync_daemon ttl` needs a value",
        ),
        (
            "global_defs {\n lvs_sync_daemon\n}\n",
            "t.conf:2:2: error: `lvs_sync_daemon` needs an interface",
        ),
        (
            "global_defs {\n lvs_sync_daemon eth1 VI_9\n}\n",
            "t.conf:2:2: error: lvs_sync_daemon names vrrp_instance `VI_9`, which is not defined",
        ),
    ] {
        let err = parse_str(text, Path::new("t.conf")).unwrap_err();
        assert_eq!(err.to_string(), want, "{text}");
    }
}

#[test]
fn notify_fifos_are_read() {
    let l =
        ok("global_defs {\n  notify_fifo /run/k.fifo root\n  vrrp_notify_fifo /run/v.fifo\n}\n");
    let g = &l.config.global_defs;
    assert_eq!(g.notify_fifo.as_deref(), Some(Path::new("/run/k.fifo")));
    assert_eq!(
        g.vrrp_notify_fifo.as_deref(),
        Some(Path::new("/run/v.fifo"))
    );
    let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        ["t.conf:2:27: warning: the FIFO's owner is not applied: lbd creates it as its own user"]
    );
}
