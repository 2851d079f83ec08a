use std::net::Ipv4Addr;

use super::*;
use crate::dataplane::ipvs::attrs::{emit_attrs, parse_attrs};

fn params() -> SyncDaemonParams {
    SyncDaemonParams::new("eth1", 7)
}

fn running(state: DaemonState, p: &SyncDaemonParams) -> Daemon {
    // The kernel reports every field, its defaults filled in.
    let mut p = p.clone();
    p.maxlen = p.maxlen.or(Some(1472));
    p.group = p.group.or(Some(Ipv4Addr::new(224, 0, 0, 81).into()));
    p.port = p.port.or(Some(8848));
    p.ttl = p.ttl.or(Some(1));
    Daemon { state, params: p }
}

#[test]
fn roles_follow_vrrp_as_in_keepalived() {
    use DaemonOp::*;
    use DaemonState::*;
    let p = params();
    // Nothing runs: MASTER starts the sender only.
    assert_eq!(plan(&[], Role::Master, &p), vec![Start(Master, p.clone())]);
    // BACKUP → MASTER: the receiver stops before the sender starts.
    let backup = [running(Backup, &p)];
    assert_eq!(
        plan(&backup, Role::Master, &p),
        vec![Stop(Backup), Start(Master, p.clone())]
    );
    let master = [running(Master, &p)];
    assert_eq!(
        plan(&master, Role::Backup, &p),
        vec![Stop(Master), Start(Backup, p.clone())]
    );
    // Already so: nothing to send.
    assert!(plan(&master, Role::Master, &p).is_empty());
    let both = [running(Master, &p), running(Backup, &p)];
    assert!(plan(&both, Role::Both, &p).is_empty());
    assert_eq!(
        plan(&both, Role::None, &p),
        vec![Stop(Backup), Stop(Master)]
    );
    assert_eq!(
        plan(&master, Role::Both, &p),
        vec![Start(Backup, p.clone())]
    );
}

#[test]
fn a_changed_parameter_restarts_only_that_daemon() {
    use DaemonOp::*;
    use DaemonState::*;
    let p = params();
    let both = [running(Master, &p), running(Backup, &p)];
    let mut q = p.clone();
    q.port = Some(9000);
    assert_eq!(
        plan(&both, Role::Both, &q),
        vec![
            Stop(Backup),
            Stop(Master),
            Start(Backup, q.clone()),
            Start(Master, q.clone())
        ]
    );
    // An explicit value equal to the kernel's default is no change.
    q.port = Some(8848);
    q.ttl = Some(1);
    assert!(plan(&both, Role::Both, &q).is_empty());
    let mut other_id = p.clone();
    other_id.syncid = 8;
    assert_eq!(
        plan(&[running(Master, &p)], Role::Master, &other_id),
        vec![Stop(Master), Start(Master, other_id.clone())]
    );
}

#[test]
fn new_daemon_carries_every_given_attribute_with_kernel_types() {
    let mut p = params();
    p.maxlen = Some(1400);
    p.group = Some("239.1.2.3".parse().unwrap());
    p.port = Some(9000);
    p.ttl = Some(3);
    let msg = request(&DaemonOp::Start(DaemonState::Master, p.clone()));
    assert_eq!(msg.cmd, CMD_NEW_DAEMON);
    let inner = parse_attrs(&emit_attrs(&msg.attrs)).unwrap();
    assert_eq!(inner[0].kind, CMD_ATTR_DAEMON);
    let d = inner[0].children().unwrap();
    let raw = |k: u16| match &d.iter().find(|a| a.kind == k).unwrap().value {
        attrs::Value::Bytes(b) => b.clone(),
        attrs::Value::Nested(_) => unreachable!(),
    };
    assert_eq!(raw(daemon_attr::STATE), 1u32.to_ne_bytes());
    assert_eq!(raw(daemon_attr::MCAST_IFN), b"eth1\0");
    assert_eq!(raw(daemon_attr::SYNC_ID), 7u32.to_ne_bytes());
    assert_eq!(raw(daemon_attr::SYNC_MAXLEN), 1400u16.to_ne_bytes());
    // The group in network order, the port in host order (nla_get_u16).
    assert_eq!(raw(daemon_attr::MCAST_GROUP), [239, 1, 2, 3]);
    assert_eq!(raw(daemon_attr::MCAST_PORT), 9000u16.to_ne_bytes());
    assert_eq!(raw(daemon_attr::MCAST_TTL), [3]);
    // A GET_DAEMON reply holds the same nest: it reads back as sent.
    let reply = IpvsMessage {
        cmd: CMD_NEW_DAEMON,
        attrs: inner,
    };
    assert_eq!(
        parse_daemon(&reply).unwrap(),
        Daemon {
            state: DaemonState::Master,
            params: p
        }
    );
    // Defaults are left to the kernel: only the three required attributes.
    let msg = request(&DaemonOp::Start(DaemonState::Backup, params()));
    let d = parse_attrs(&emit_attrs(&msg.attrs)).unwrap()[0]
        .children()
        .unwrap();
    assert_eq!(d.len(), 3);
    let stop = request(&DaemonOp::Stop(DaemonState::Backup));
    assert_eq!(stop.cmd, CMD_DEL_DAEMON);
}

#[test]
fn an_ipv6_group_goes_in_its_own_attribute() {
    let mut p = params();
    p.group = Some("ff02::8848".parse().unwrap());
    let msg = request(&DaemonOp::Start(DaemonState::Backup, p.clone()));
    let reply = IpvsMessage {
        cmd: CMD_NEW_DAEMON,
        attrs: parse_attrs(&emit_attrs(&msg.attrs)).unwrap(),
    };
    let d = reply.attrs[0].children().unwrap();
    assert!(d.iter().any(|a| a.kind == daemon_attr::MCAST_GROUP6));
    assert!(!d.iter().any(|a| a.kind == daemon_attr::MCAST_GROUP));
    assert_eq!(parse_daemon(&reply).unwrap().params, p);
}

#[test]
fn bad_parameters_are_refused_before_the_kernel() {
    let mut p = params();
    p.interface = "a-very-long-ifname".into();
    assert!(matches!(p.validate(), Err(ParamsError::Interface(_))));
    let mut p = params();
    p.group = Some("10.0.0.1".parse().unwrap());
    assert_eq!(
        p.validate(),
        Err(ParamsError::Group("10.0.0.1".parse().unwrap()))
    );
    assert!(params().validate().is_ok());
    // A reply without the state is a located error, not a default.
    let reply = IpvsMessage {
        cmd: CMD_NEW_DAEMON,
        attrs: vec![Attr::nested(
            CMD_ATTR_DAEMON,
            vec![Attr::string(daemon_attr::MCAST_IFN, "eth1")],
        )],
    };
    let reply = IpvsMessage {
        cmd: reply.cmd,
        attrs: parse_attrs(&emit_attrs(&reply.attrs)).unwrap(),
    };
    assert!(parse_daemon(&reply).unwrap_err().contains("state"));
}
