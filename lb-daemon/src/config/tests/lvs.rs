//! `virtual_server_group`, virtual server targets, LVS cross-checks and
//! scheduler flags.

use super::*;

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
            "t.conf:5:1: error: virtual_server names virtual_server_group `H`, which is not defined: the virtual_server is ignored",
            "t.conf:9:1: error: duplicate virtual_server `10.0.0.1:80` (TCP) (first defined at t.conf:7:1): this one is ignored",
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
