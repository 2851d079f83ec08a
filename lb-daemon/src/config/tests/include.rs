//! `include`: globs, relative paths, missing files, cycles and the
//! positions of errors inside included files.

use super::*;

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
