//! The checkers of a real server: timings cascading from the virtual and
//! real server, each checker's own keywords, and their errors.

use super::*;

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
