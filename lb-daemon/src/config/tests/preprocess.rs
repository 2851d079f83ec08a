//! keepalived's preprocessor through the whole pipeline: `@ID` lines,
//! `$NAME` definitions (also across includes, in reading order) and `~SEQ`.

use super::*;

/// One file, two hosts: what each runs.
const PAIR: &str = "$VRID=51
$PEER_VIPS=virtual_ipaddress { \\
  192.0.2.10/24 \\
}
vrrp_instance VI_1 {
@lb1  state MASTER
@^lb1 state BACKUP
@lb1  priority 150
@lb2  priority 100
  interface eth0
  virtual_router_id $VRID
  $PEER_VIPS
}
";

fn with_id(text: &str, id: Option<&str>) -> Result<Loaded, Diagnostics> {
    parse_str_with_id(text, Path::new("t.conf"), Mode::Check, id)
}

#[test]
fn conditional_lines_and_definitions_configure_each_host() {
    let lb1 = with_id(PAIR, Some("lb1")).unwrap();
    assert!(lb1.warnings.is_empty(), "{:?}", lb1.warnings);
    let i = &lb1.config.vrrp_instances[0];
    assert_eq!(
        (i.state, i.priority, i.virtual_router_id),
        (VrrpState::Master, 150, 51)
    );
    assert_eq!(i.virtual_ipaddress.len(), 1);
    let lb2 = with_id(PAIR, Some("lb2")).unwrap();
    let i = &lb2.config.vrrp_instances[0];
    assert_eq!((i.state, i.priority), (VrrpState::Backup, 100));
    // No id matching any line: only `@^lb1` lines apply.
    let other = with_id(PAIR, Some("lb3")).unwrap();
    assert_eq!(other.config.vrrp_instances[0].state, VrrpState::Backup);
}

#[test]
fn definitions_in_an_include_apply_to_the_lines_after_it() {
    let d = tmpdir("pp-include");
    std::fs::write(d.join("defs.inc"), "$VIP=192.0.2.20\n$RS=real_server\n").unwrap();
    std::fs::write(
        d.join("main.conf"),
        "include defs.inc\nvirtual_server $VIP 80 {\n  $RS 10.0.1.1 80\n}\n",
    )
    .unwrap();
    let l = load(&d.join("main.conf")).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let vs = &l.config.virtual_servers[0];
    assert_eq!(vs.target, VsTarget::Addr(sa("192.0.2.20:80")));
    assert_eq!(vs.real_servers.len(), 1);
}

#[test]
fn seq_writes_real_servers() {
    let text = "virtual_server 192.0.2.1 80 {\n  ~SEQ(n, 1, 3) real_server 10.0.1.$n 80\n}\n";
    let l = clean(text);
    let rs: Vec<String> = l.virtual_servers[0]
        .real_servers
        .iter()
        .map(|r| r.addr.to_string())
        .collect();
    assert_eq!(rs, ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"]);
}

#[test]
fn substituted_values_are_located_at_the_dollar() {
    let text = "$PRIO=300\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  priority $PRIO\n}\n";
    let d = diags(text);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("t.conf:5:12: error:"), "{d:?}");
}

#[test]
fn an_undefined_name_stays_as_written_and_is_reported_where_it_is() {
    let d = diags("$UNDEFINED_BLOCK\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("t.conf:1:1: "), "{d:?}");
}
