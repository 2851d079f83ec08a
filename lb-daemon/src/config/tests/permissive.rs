//! Start and reload modes: each file here is one keepalived 2.2.7 runs
//! (checked with `keepalived -t` and its SIGUSR1 data dump in a namespace),
//! doing something definite with the bad part; lbd does the same on start,
//! `lbd -t` (Check) still fails, and a reload refuses only broken shapes.

use super::*;

const BASE: &str = "vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass 1111
  }
  virtual_ipaddress {
    192.0.2.10/24
  }
}
virtual_server 192.0.2.10 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 192.0.2.20 80 {
    weight 1
  }
}
";

fn load(text: &str, mode: Mode) -> Result<Loaded, Diagnostics> {
    parse_str_for(text, Path::new("t.conf"), mode)
}

/// `text` fails the check, starts and reloads; the config it runs.
fn runs(text: &str) -> Config {
    assert!(load(text, Mode::Check).is_err(), "lbd -t must fail");
    assert!(load(text, Mode::Reload).is_ok(), "a reload must take it");
    let l = load(text, Mode::Start).expect("a start must take it");
    assert!(l.warnings.iter().any(Diagnostic::is_error));
    l.config
}

fn inst(c: &Config) -> &VrrpInstance {
    &c.vrrp_instances[0]
}

#[test]
fn misspelt_auth_pass_runs_without_authentication() {
    let c = runs(&BASE.replace("auth_pass 1111", "auth_pas 1111"));
    assert_eq!(inst(&c).authentication, None);
    assert_eq!(inst(&c).priority, 100);
}

#[test]
fn bad_values_fall_back_as_keepalived_does() {
    let c = runs(&BASE.replace("lb_algo rr", "lb_algo wrrr"));
    assert_eq!(c.virtual_servers[0].lb_algo, Scheduler::Wlc);
    let c = runs(&BASE.replace("state MASTER", "state master"));
    assert_eq!(inst(&c).state, VrrpState::Backup);
    // keepalived uses 100, not the 255 `state MASTER` implies.
    let c = runs(&BASE.replace("priority 100", "priority 300"));
    assert_eq!(inst(&c).priority, 100);
    let c = runs(&BASE.replace("advert_int 1", "advert_int abc"));
    assert_eq!(inst(&c).advert_int, Duration::from_secs(1));
    let c = runs(&BASE.replace("192.0.2.10/24", "192.0.2.300/24"));
    assert!(inst(&c).virtual_ipaddress.is_empty());
    let c = runs(&BASE.replace("real_server 192.0.2.20 80", "real_server 192.0.2.300 80"));
    assert!(c.virtual_servers[0].real_servers.is_empty());
}

#[test]
fn dangling_references_and_duplicates_are_dropped() {
    let dup = format!("{BASE}{}", &BASE[..BASE.find("virtual_server").unwrap()]);
    let c = runs(&dup.replacen("priority 100", "priority 90", 1));
    assert_eq!(c.vrrp_instances.len(), 1);
    assert_eq!(inst(&c).priority, 90, "the first one is kept");
    let c = runs(&BASE.replace(
        "advert_int 1",
        "advert_int 1\n  track_script {\n    chk_x\n  }",
    ));
    assert!(inst(&c).track_script.is_empty());
    let c = runs(&format!(
        "{BASE}vrrp_sync_group G {{\n group {{\n VI_1\n VI_9\n }}\n}}\n"
    ));
    assert_eq!(c.vrrp_sync_groups[0].group, ["VI_1"]);
}

#[test]
fn structural_errors_start_but_are_refused_on_reload() {
    for text in [format!("{BASE}}}\n"), BASE[..BASE.len() - 2].to_string()] {
        assert!(load(&text, Mode::Check).is_err());
        let err = load(&text, Mode::Reload).expect_err("reload refuses");
        assert!(err.0.iter().any(|d| d.kind == ErrorKind::Structural));
        let c = load(&text, Mode::Start).expect("start runs it").config;
        assert_eq!(c.vrrp_instances.len(), 1);
        assert_eq!(c.virtual_servers.len(), 1);
    }
}

#[test]
fn binary_garbage_and_missing_include_are_structural() {
    let dir = tmpdir("permissive");
    let f = dir.join("k.conf");
    let mut bytes = BASE.as_bytes().to_vec();
    bytes.extend_from_slice(b"\n\x00\xff\xfe garbage\n");
    std::fs::write(&f, &bytes).unwrap();
    let err = load_for(&f, Mode::Reload).expect_err("reload refuses");
    assert!(err.to_string().contains("binary data"), "{err}");
    assert!(load_for(&f, Mode::Start).is_ok());
    std::fs::write(&f, format!("{BASE}include nope.conf\n")).unwrap();
    assert!(load_for(&f, Mode::Reload).is_err());
    assert_eq!(
        load_for(&f, Mode::Start)
            .unwrap()
            .config
            .vrrp_instances
            .len(),
        1
    );
    // keepalived does not start without its main file.
    assert!(load_for(&dir.join("missing.conf"), Mode::Start).is_err());
}

#[test]
fn what_keepalived_refuses_lbd_refuses() {
    for text in [
        BASE.replace("  virtual_router_id 51\n", ""),
        BASE.replace("  interface eth0\n", ""),
        format!(
            "{BASE}{}",
            BASE[..BASE.find("virtual_server").unwrap()].replace("VI_1", "VI_2")
        ),
    ] {
        let err = load(&text, Mode::Start).expect_err("start refuses");
        assert!(err.0.iter().any(|d| d.kind == ErrorKind::Fatal), "{err}");
    }
}
