//! Address and route lines, shared by `static_ipaddress`/`static_routes`
//! and a vrrp_instance's `virtual_ipaddress[_excluded]`/`virtual_routes`.
//! Each line of such a block is one entry: the first word is the address or
//! route, the rest are `option value` pairs in any order.

use std::net::IpAddr;

use super::diag::Sink;
use super::keywords::suggest;
use super::model::{IpAddress, Route};
use super::tree::{Stmt, Word};
use super::values::{parse_u64, prefix_word};

/// Named scopes as in iproute2's rt_scopes.
const SCOPES: [&str; 5] = ["global", "site", "link", "host", "nowhere"];

/// Route types accepted before the destination.
const ROUTE_TYPES: [&str; 6] = [
    "unicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "local",
];

/// Lines of an address block.
pub(crate) fn address_block(sink: &mut Sink, st: &Stmt) -> Vec<IpAddress> {
    lines(sink, st)
        .filter_map(|line| address_line(sink, st.keyword(), line))
        .collect()
}

/// Lines of a route block.
pub(crate) fn route_block(sink: &mut Sink, st: &Stmt) -> Vec<Route> {
    lines(sink, st)
        .filter_map(|line| route_line(sink, st.keyword(), line))
        .collect()
}

fn lines<'s>(sink: &mut Sink, st: &'s Stmt) -> impl Iterator<Item = &'s Stmt> {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            format!("`{}` needs a `{{ ... }}` block", st.keyword()),
        );
    }
    super::values::warn_extra(sink, st, 0);
    for line in st.children() {
        if let Some(b) = &line.block {
            sink.error(&b.open, format!("unexpected block in `{}`", st.keyword()));
        }
    }
    st.children().iter()
}

/// Value following option word `i`, or an error at the option.
fn option_value<'a>(sink: &mut Sink, words: &'a [Word], i: usize) -> Option<&'a Word> {
    let v = words.get(i + 1);
    if v.is_none() {
        sink.error(&words[i].loc, format!("`{}` needs a value", words[i].text));
    }
    v
}

fn ip_value(sink: &mut Sink, opt: &str, w: &Word) -> Option<IpAddr> {
    match w.text.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            sink.error(
                &w.loc,
                format!(
                    "invalid `{opt}` address `{}`: expected an IPv4 or IPv6 address",
                    w.text
                ),
            );
            None
        }
    }
}

fn scope_value(sink: &mut Sink, w: &Word) -> Option<String> {
    if SCOPES.contains(&w.text.as_str()) || parse_u64(&w.text).is_some_and(|v| v <= 255) {
        Some(w.text.clone())
    } else {
        sink.error(
            &w.loc,
            format!(
                "invalid scope `{}`: expected {} or a number from 0 to 255",
                w.text,
                SCOPES.join(", ")
            ),
        );
        None
    }
}

fn unknown_option(sink: &mut Sink, block: &str, w: &Word, known: &[&str]) {
    let msg = match suggest(&w.text, known.iter().copied()) {
        Some(s) => format!(
            "unknown option `{}` in `{block}` is ignored; did you mean `{s}`?",
            w.text
        ),
        None => format!("unknown option `{}` in `{block}` is ignored", w.text),
    };
    sink.warn(&w.loc, msg);
}

/// Most options take a value: after an unknown option, also pass over the
/// next word unless it is itself an option, so one typo gives one warning.
fn skip_unknown_value(words: &[Word], i: usize, known: &[&str]) -> usize {
    match words.get(i + 1) {
        Some(next) if !known.contains(&next.text.as_str()) => 1,
        _ => 0,
    }
}

const ADDRESS_OPTIONS: [&str; 8] = [
    "brd",
    "broadcast",
    "dev",
    "scope",
    "label",
    "peer",
    "no_track",
    "preferred_lft",
];

/// `ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L] [peer X] [no_track]`.
pub(crate) fn address_line(sink: &mut Sink, block: &str, line: &Stmt) -> Option<IpAddress> {
    let words = &line.words;
    let (addr, prefix_len) = prefix_word(sink, "address", &words[0])?;
    let mut a = IpAddress {
        addr,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        no_track: false,
        location: line.loc().clone(),
    };
    let mut ok = true;
    let mut i = 1;
    while i < words.len() {
        let opt = words[i].text.as_str();
        match opt {
            "no_track" => a.no_track = true,
            "brd" | "broadcast" | "dev" | "scope" | "label" | "peer" | "preferred_lft" => {
                let Some(v) = option_value(sink, words, i) else {
                    ok = false;
                    break;
                };
                match opt {
                    "brd" | "broadcast" => {
                        // `brd +` / `brd -` ask the kernel to compute it.
                        if v.text != "+" && v.text != "-" {
                            a.broadcast = ip_value(sink, opt, v);
                            ok &= a.broadcast.is_some();
                        }
                    }
                    "dev" => a.dev = Some(v.text.clone()),
                    "scope" => {
                        a.scope = scope_value(sink, v);
                        ok &= a.scope.is_some();
                    }
                    "label" => a.label = Some(v.text.clone()),
                    "peer" => {
                        a.peer = ip_value(sink, opt, v);
                        ok &= a.peer.is_some();
                    }
                    _ => sink.warn(
                        &words[i].loc,
                        format!("`{opt}` is not supported yet and is ignored"),
                    ),
                }
                i += 1;
            }
            _ => {
                unknown_option(sink, block, &words[i], &ADDRESS_OPTIONS);
                i += skip_unknown_value(words, i, &ADDRESS_OPTIONS);
            }
        }
        i += 1;
    }
    if a.addr.is_ipv6() && a.scope.is_some() {
        // As keepalived: the kernel picks IPv6 scopes from the address.
        sink.warn(
            line.loc(),
            "`scope` cannot be set on an IPv6 address and is ignored",
        );
        a.scope = None;
    }
    ok.then_some(a)
}

const ROUTE_OPTIONS: [&str; 10] = [
    "src", "via", "gw", "dev", "metric", "table", "scope", "proto", "protocol", "no_track",
];

/// `[TYPE] DEST[/PREFIX]|default [src IP] [via|gw IP] [dev IF] [metric N]
/// [table T] [scope S] [proto P] [no_track]`; as in keepalived, options may
/// also come before the destination (`src 10.0.0.1 10.1.0.0/16 via ...`).
pub(crate) fn route_line(sink: &mut Sink, block: &str, line: &Stmt) -> Option<Route> {
    let words = &line.words;
    let mut r = Route {
        route_type: None,
        dest: IpAddr::from([0, 0, 0, 0]),
        prefix_len: 0,
        src: None,
        via: None,
        dev: None,
        metric: None,
        table: None,
        scope: None,
        protocol: None,
        no_track: false,
        location: line.loc().clone(),
    };
    let mut dest_word: Option<&Word> = None;
    let mut ok = true;
    let mut i = 0;
    while i < words.len() {
        let opt = words[i].text.as_str();
        if opt == "no_track" {
            r.no_track = true;
            i += 1;
            continue;
        }
        if !ROUTE_OPTIONS.contains(&opt) {
            if i == 0 && ROUTE_TYPES.contains(&opt) {
                r.route_type = Some(opt.to_string()).filter(|t| t != "unicast");
            } else if dest_word.is_none() {
                dest_word = Some(&words[i]);
                if opt == "default" {
                    r.prefix_len = 0;
                } else {
                    match prefix_word(sink, "route destination", &words[i]) {
                        Some((d, p)) => (r.dest, r.prefix_len) = (d, p),
                        None => ok = false,
                    }
                }
            } else {
                unknown_option(sink, block, &words[i], &ROUTE_OPTIONS);
                i += skip_unknown_value(words, i, &ROUTE_OPTIONS);
            }
            i += 1;
            continue;
        }
        let Some(v) = option_value(sink, words, i) else {
            ok = false;
            break;
        };
        match opt {
            "src" => {
                r.src = ip_value(sink, opt, v);
                ok &= r.src.is_some();
            }
            "via" | "gw" => {
                r.via = ip_value(sink, opt, v);
                ok &= r.via.is_some();
            }
            "dev" => r.dev = Some(v.text.clone()),
            "metric" => match parse_u64(&v.text).and_then(|m| u32::try_from(m).ok()) {
                Some(m) => r.metric = Some(m),
                None => {
                    sink.error(
                        &v.loc,
                        format!(
                            "invalid `metric` value `{}`: expected an integer from 0 to {}",
                            v.text,
                            u32::MAX
                        ),
                    );
                    ok = false;
                }
            },
            "table" => r.table = Some(v.text.clone()),
            "scope" => {
                r.scope = scope_value(sink, v);
                ok &= r.scope.is_some();
            }
            _ => r.protocol = Some(v.text.clone()),
        }
        i += 2;
    }
    let Some(dest_w) = dest_word else {
        if ok {
            sink.error(line.loc(), "route needs a destination address or `default`");
        }
        return None;
    };
    if dest_w.text == "default" && r.via.is_some_and(|v| v.is_ipv6()) {
        // `default` is family-neutral: the gateway says which one.
        r.dest = IpAddr::from([0u16; 8]);
    }
    for (what, a) in [("via", r.via), ("src", r.src)] {
        if let Some(a) = a {
            if a.is_ipv4() != r.dest.is_ipv4() {
                sink.error(
                    line.loc(),
                    format!("route to {} {what} {a} mixes IPv4 and IPv6", r.dest),
                );
                ok = false;
            }
        }
    }
    ok.then_some(r)
}
