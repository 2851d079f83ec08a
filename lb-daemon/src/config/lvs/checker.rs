//! Health checker blocks inside `real_server`: TCP_CHECK, HTTP_GET,
//! SSL_GET, MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK.

use std::net::IpAddr;
use std::time::Duration;

use super::{cascade_keyword, CheckDefaults};
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, dispatch_multi, kw, kw_alias, unsupported, Keyword};
use crate::config::model::{
    Checker, CheckerKind, DnsCheck, HttpCheck, MiscCheck, SmtpCheck, SmtpHost, UdpCheck, Url,
};
use crate::config::tree::Stmt;
use crate::config::values::{
    bad_value, flag_arg, ip_arg, one_arg, parse_u64, port_arg, script_arg, secs_arg, string_arg,
    u32_arg, user_arg, MAX_TIMER,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Http,
    Ssl,
    Misc,
    Smtp,
    Dns,
    Udp,
}

pub(crate) fn kind_of(keyword: &str) -> Option<Kind> {
    Some(match keyword {
        "TCP_CHECK" => Kind::Tcp,
        "HTTP_GET" => Kind::Http,
        "SSL_GET" => Kind::Ssl,
        "MISC_CHECK" => Kind::Misc,
        "SMTP_CHECK" => Kind::Smtp,
        "DNS_CHECK" => Kind::Dns,
        "UDP_CHECK" => Kind::Udp,
        _ => return None,
    })
}

/// DNS query types keepalived's DNS_CHECK can send.
const DNS_TYPES: [&str; 9] = [
    "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
];

/// Connection settings, shared by every checker and SMTP `host` blocks.
#[derive(Debug, Default)]
struct Conn {
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bindto: Option<IpAddr>,
    bind_port: Option<u16>,
    bind_if: Option<String>,
    fwmark: Option<u32>,
    connect_timeout: Option<Duration>,
}

fn conn_keyword(sink: &mut Sink, st: &Stmt, c: &mut Conn) {
    match st.keyword() {
        "connect_ip" => c.connect_ip = ip_arg(sink, st).or(c.connect_ip),
        "connect_port" => c.connect_port = port_arg(sink, st).or(c.connect_port),
        "bindto" => c.bindto = ip_arg(sink, st).or(c.bindto),
        "bind_port" => c.bind_port = port_arg(sink, st).or(c.bind_port),
        "bind_if" => c.bind_if = string_arg(sink, st).or(c.bind_if.take()),
        "fwmark" => c.fwmark = u32_arg(sink, st, 0, u32::MAX).or(c.fwmark),
        "connect_timeout" => {
            if let Some(d) = secs_arg(sink, st, 6, Duration::from_micros(1), MAX_TIMER) {
                c.connect_timeout = Some(d);
            }
        }
        _ => {}
    }
}

struct CkBuild {
    kind: CheckerKind,
    conn: Conn,
    d: CheckDefaults,
}

fn common_conn(s: &mut Sink, st: &Stmt, b: &mut CkBuild) {
    conn_keyword(s, st, &mut b.conn);
}

fn common_cascade(s: &mut Sink, st: &Stmt, b: &mut CkBuild) {
    cascade_keyword(s, st, &mut b.d);
}

/// Keywords of every checker that opens a connection.
static CONN_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("connect_ip", common_conn),
    kw("connect_port", common_conn),
    kw("bindto", common_conn),
    kw("bind_port", common_conn),
    kw("bind_if", common_conn),
    kw("fwmark", common_conn),
    kw("connect_timeout", common_conn),
];

/// Keywords of every checker.
static COMMON_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw_alias("retry", &["nb_get_retry"], common_cascade),
    kw("delay_before_retry", common_cascade),
    kw("warmup", common_cascade),
    kw("delay_loop", common_cascade),
    kw("alpha", common_cascade),
    unsupported("log_all_failures"),
];

static NO_KEYWORDS: &[Keyword<CkBuild>] = &[];

fn http(b: &mut CkBuild) -> Option<&mut HttpCheck> {
    match &mut b.kind {
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => Some(h),
        _ => None,
    }
}

static HTTP_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("url", |s, st, b| {
        if let Some(u) = url(s, st) {
            if let Some(h) = http(b) {
                h.urls.push(u);
            }
        }
    }),
    kw("virtualhost", |s, st, b| {
        let v = string_arg(s, st);
        if let Some(h) = http(b) {
            h.virtualhost = v;
        }
    }),
    kw("http_protocol", |s, st, b| {
        let Some(w) = one_arg(s, st) else { return };
        let v = match w.text.as_str() {
            "1.0" | "1.1" | "1.0C" | "1.0c" => w.text.to_ascii_uppercase(),
            _ => {
                bad_value(s, st, w, "expected 1.0, 1.0C or 1.1");
                return;
            }
        };
        if let Some(h) = http(b) {
            h.http_protocol = Some(v);
        }
    }),
    kw("enable_sni", |s, st, b| {
        let v = flag_arg(s, st);
        if let Some(h) = http(b) {
            h.enable_sni = v.unwrap_or(h.enable_sni);
        }
    }),
    unsupported("sni_name"),
    unsupported("fast_recovery"),
    unsupported("tls_compliant"),
];

static MISC_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("misc_path", |s, st, b| {
        let v = script_arg(s, st);
        if let CheckerKind::Misc(m) = &mut b.kind {
            if let Some(v) = v {
                m.misc_path = v;
            }
        }
    }),
    kw("misc_timeout", |s, st, b| {
        let v = secs_arg(s, st, 6, Duration::from_micros(1), MAX_TIMER);
        if let CheckerKind::Misc(m) = &mut b.kind {
            m.misc_timeout = v.or(m.misc_timeout);
        }
    }),
    kw("misc_dynamic", |s, st, b| {
        let v = flag_arg(s, st);
        if let CheckerKind::Misc(m) = &mut b.kind {
            m.misc_dynamic = v.unwrap_or(m.misc_dynamic);
        }
    }),
    kw("user", |s, st, b| {
        let v = user_arg(s, st);
        if let CheckerKind::Misc(m) = &mut b.kind {
            m.user = v.or(m.user.take());
        }
    }),
];

static SMTP_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("helo_name", |s, st, b| {
        let v = string_arg(s, st);
        if let (CheckerKind::Smtp(m), Some(v)) = (&mut b.kind, v) {
            m.helo_name = v;
        }
    }),
    kw("host", |s, st, b| {
        let h = smtp_host(s, st);
        if let CheckerKind::Smtp(m) = &mut b.kind {
            m.hosts.push(h);
        }
    }),
];

static DNS_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("type", |s, st, b| {
        let Some(w) = one_arg(s, st) else { return };
        let t = w.text.to_ascii_uppercase();
        if !DNS_TYPES.contains(&t.as_str()) {
            bad_value(
                s,
                st,
                w,
                &format!("expected one of {}", DNS_TYPES.join(", ")),
            );
            return;
        }
        if let CheckerKind::Dns(d) = &mut b.kind {
            d.qtype = t;
        }
    }),
    kw("name", |s, st, b| {
        let v = string_arg(s, st);
        if let (CheckerKind::Dns(d), Some(v)) = (&mut b.kind, v) {
            d.name = v;
        }
    }),
];

static UDP_KEYWORDS: &[Keyword<CkBuild>] = &[
    kw("payload", |s, st, b| {
        let v = hex_arg(s, st);
        if let CheckerKind::Udp(u) = &mut b.kind {
            u.payload = v.or(u.payload.take());
        }
    }),
    kw("require_reply", |s, st, b| {
        // The optional reply pattern is not modelled; requiring a reply is.
        if st.arg(0).is_some() {
            s.warn(
                &st.words[1].loc,
                "a reply pattern for `require_reply` is not supported yet and is ignored",
            );
        }
        if let CheckerKind::Udp(u) = &mut b.kind {
            u.require_reply = true;
        }
    }),
    kw("min_reply_length", |s, st, b| {
        let v = u32_arg(s, st, 0, u32::MAX);
        if let CheckerKind::Udp(u) = &mut b.kind {
            u.min_reply_length = v.or(u.min_reply_length);
        }
    }),
    kw("max_reply_length", |s, st, b| {
        let v = u32_arg(s, st, 0, u32::MAX);
        if let CheckerKind::Udp(u) = &mut b.kind {
            u.max_reply_length = v.or(u.max_reply_length);
        }
    }),
];

/// Builds a checker; `parent` holds the real server's settings already
/// resolved over the virtual server's.
pub(crate) fn build(
    sink: &mut Sink,
    st: &Stmt,
    kind: Kind,
    parent: &CheckDefaults,
) -> Option<Checker> {
    crate::config::values::warn_extra(sink, st, 0);
    let model_kind = match kind {
        Kind::Tcp => CheckerKind::Tcp,
        Kind::Http => CheckerKind::Http(HttpCheck::default()),
        Kind::Ssl => CheckerKind::Ssl(HttpCheck::default()),
        Kind::Misc => CheckerKind::Misc(MiscCheck {
            misc_path: String::new(),
            misc_timeout: None,
            misc_dynamic: false,
            user: None,
        }),
        Kind::Smtp => CheckerKind::Smtp(SmtpCheck {
            helo_name: "smtpchecker.keepalived.org".to_string(),
            hosts: Vec::new(),
        }),
        Kind::Dns => CheckerKind::Dns(DnsCheck {
            qtype: "SOA".to_string(),
            name: String::new(),
        }),
        Kind::Udp => CheckerKind::Udp(UdpCheck::default()),
    };
    let mut b = CkBuild {
        kind: model_kind,
        conn: Conn::default(),
        d: CheckDefaults::default(),
    };
    let specific = match kind {
        Kind::Tcp => NO_KEYWORDS,
        Kind::Http | Kind::Ssl => HTTP_KEYWORDS,
        Kind::Misc => MISC_KEYWORDS,
        Kind::Smtp => SMTP_KEYWORDS,
        Kind::Dns => DNS_KEYWORDS,
        Kind::Udp => UDP_KEYWORDS,
    };
    // MISC_CHECK runs a script: it has no connection to configure.
    let conn = if kind == Kind::Misc {
        NO_KEYWORDS
    } else {
        CONN_KEYWORDS
    };
    dispatch_multi(
        sink,
        st.children(),
        &[specific, conn, COMMON_KEYWORDS],
        &mut b,
        st.keyword(),
    );

    // keepalived's per-checker fallbacks when nothing up the chain is set.
    let d = b.d.over(parent);
    let delay_loop = d.delay_loop.unwrap_or(Duration::from_secs(60));
    let default_retry = match kind {
        Kind::Misc => 0,
        Kind::Dns => 3,
        _ => 1,
    };
    let default_dbr = match kind {
        Kind::Http | Kind::Ssl => Duration::from_secs(3),
        Kind::Dns => delay_loop,
        _ => Duration::from_secs(1),
    };

    match &mut b.kind {
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
            if h.urls.is_empty() {
                sink.warn(
                    st.loc(),
                    format!(
                        "`{}` has no `url` block: it has nothing to check",
                        st.keyword()
                    ),
                );
            }
            // keepalived's virtualhost cascade: checker, real server,
            // virtual server.
            if h.virtualhost.is_none() {
                h.virtualhost = d.virtualhost.clone();
            }
        }
        CheckerKind::Misc(m) if m.misc_path.is_empty() => {
            sink.error(st.loc(), "`MISC_CHECK` needs a `misc_path` script");
            return None;
        }
        CheckerKind::Udp(u) => {
            if let (Some(min), Some(max)) = (u.min_reply_length, u.max_reply_length) {
                if min > max {
                    sink.error(
                        st.loc(),
                        format!("`min_reply_length` {min} is above `max_reply_length` {max}"),
                    );
                }
            }
        }
        _ => {}
    }

    Some(Checker {
        kind: b.kind,
        connect_ip: b.conn.connect_ip,
        connect_port: b.conn.connect_port,
        bindto: b.conn.bindto,
        bind_port: b.conn.bind_port,
        bind_if: b.conn.bind_if,
        fwmark: b.conn.fwmark,
        connect_timeout: b
            .conn
            .connect_timeout
            .or(d.connect_timeout)
            .unwrap_or(Duration::from_secs(5)),
        retry: d.retry.unwrap_or(default_retry),
        delay_before_retry: d.delay_before_retry.unwrap_or(default_dbr),
        warmup: d.warmup.unwrap_or(delay_loop),
        delay_loop,
        alpha: d.alpha.unwrap_or(false),
        location: st.loc().clone(),
    })
}

struct UrlBuild {
    path: Option<String>,
    digest: Option<String>,
    status: Vec<(u16, u16)>,
    virtualhost: Option<String>,
}

static URL_KEYWORDS: &[Keyword<UrlBuild>] = &[
    kw("path", |s, st, u| {
        u.path = string_arg(s, st).or(u.path.take())
    }),
    kw("digest", |s, st, u| {
        let Some(w) = one_arg(s, st) else { return };
        if w.text.len() == 32 && w.text.bytes().all(|c| c.is_ascii_hexdigit()) {
            u.digest = Some(w.text.to_ascii_lowercase());
        } else {
            bad_value(s, st, w, "expected an MD5 digest of 32 hex digits");
        }
    }),
    kw("status_code", status_code),
    kw("virtualhost", |s, st, u| {
        u.virtualhost = string_arg(s, st).or(u.virtualhost.take())
    }),
    unsupported("regex"),
    unsupported("regex_no_match"),
    unsupported("regex_options"),
    unsupported("regex_min_offset"),
    unsupported("regex_max_offset"),
    unsupported("regex_stack"),
    unsupported("tls_compliant"),
];

fn url(sink: &mut Sink, st: &Stmt) -> Option<Url> {
    if st.block.is_none() {
        sink.error(st.loc(), "`url` needs a `{ path ... }` block");
        return None;
    }
    let mut u = UrlBuild {
        path: None,
        digest: None,
        status: Vec::new(),
        virtualhost: None,
    };
    dispatch(sink, st.children(), URL_KEYWORDS, &mut u, "url");
    let Some(path) = u.path else {
        sink.error(st.loc(), "`url` needs a `path`");
        return None;
    };
    Some(Url {
        path,
        digest: u.digest,
        status_code: u.status,
        virtualhost: u.virtualhost,
        location: st.loc().clone(),
    })
}

/// `status_code N|N-M ...`, codes from 100 to 599.
fn status_code(sink: &mut Sink, st: &Stmt, u: &mut UrlBuild) {
    if st.args().is_empty() {
        one_arg(sink, st);
        return;
    }
    for w in st.args() {
        let (a, b) = w.text.split_once('-').unwrap_or((&w.text, &w.text));
        let code = |t: &str| {
            parse_u64(t)
                .filter(|c| (100..=599).contains(c))
                .map(|c| c as u16)
        };
        match (code(a), code(b)) {
            (Some(lo), Some(hi)) if lo <= hi => u.status.push((lo, hi)),
            _ => bad_value(
                sink,
                st,
                w,
                "expected HTTP status codes from 100 to 599, singly or as ranges like 200-299",
            ),
        }
    }
}

static SMTP_HOST_KEYWORDS: &[Keyword<Conn>] = &[
    kw("connect_ip", conn_keyword),
    kw("connect_port", conn_keyword),
    kw("bindto", conn_keyword),
    kw("bind_port", conn_keyword),
    kw("bind_if", conn_keyword),
    kw("fwmark", conn_keyword),
    kw("connect_timeout", conn_keyword),
];

fn smtp_host(sink: &mut Sink, st: &Stmt) -> SmtpHost {
    if st.block.is_none() {
        sink.error(st.loc(), "`host` needs a `{ connect_ip ... }` block");
    }
    let mut c = Conn::default();
    dispatch(sink, st.children(), SMTP_HOST_KEYWORDS, &mut c, "host");
    SmtpHost {
        connect_ip: c.connect_ip,
        connect_port: c.connect_port,
        bindto: c.bindto,
        bind_port: c.bind_port,
        connect_timeout: c.connect_timeout,
    }
}

/// Hex bytes (blanks allowed between them), kept as lower-case hex text.
fn hex_arg(sink: &mut Sink, st: &Stmt) -> Option<String> {
    if st.args().is_empty() {
        one_arg(sink, st);
        return None;
    }
    let joined: String = st.args().iter().map(|w| w.text.as_str()).collect();
    let hex = joined.strip_prefix("0x").unwrap_or(&joined);
    if hex.is_empty() || hex.len() & 1 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        sink.error(
            &st.words[1].loc,
            format!(
                "invalid `{}` value `{joined}`: expected an even number of hex digits",
                st.keyword()
            ),
        );
        return None;
    }
    Some(hex.to_ascii_lowercase())
}
