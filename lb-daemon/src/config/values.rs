//! Value readers shared by all sections. Each reports a malformed value as
//! an error at the value's own position, saying what is allowed, and returns
//! `None` so the caller keeps its default and goes on.

use std::net::IpAddr;
use std::time::Duration;

use super::diag::Sink;
use super::model::ScriptUser;
use super::tree::{Stmt, Word};

/// The single value of `st`; an error if absent, a warning for extras
/// (keepalived ignores them, which hides mistakes such as two statements
/// written on one line).
pub(crate) fn one_arg<'s>(sink: &mut Sink, st: &'s Stmt) -> Option<&'s Word> {
    let Some(w) = st.arg(0) else {
        sink.error(st.loc(), format!("`{}` needs a value", st.keyword()));
        return None;
    };
    warn_extra(sink, st, 1);
    Some(w)
}

/// Warns about arguments past the first `used` ones.
pub(crate) fn warn_extra(sink: &mut Sink, st: &Stmt, used: usize) {
    if let Some(extra) = st.args().get(used) {
        sink.warn(
            &extra.loc,
            format!(
                "unexpected `{}` after `{}`: extra values are ignored",
                extra.text,
                st.keyword()
            ),
        );
    }
}

/// The error for a value out of its allowed set.
pub(crate) fn bad_value(sink: &mut Sink, st: &Stmt, w: &Word, allowed: &str) {
    sink.error(
        &w.loc,
        format!("invalid `{}` value `{}`: {allowed}", st.keyword(), w.text),
    );
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = parse_u64(digits)? as i128;
    i64::try_from(if neg { -v } else { v }).ok()
}

/// Integer word within `[min, max]`.
pub(crate) fn uint_word(sink: &mut Sink, st: &Stmt, w: &Word, min: u64, max: u64) -> Option<u64> {
    match parse_u64(&w.text) {
        Some(v) if (min..=max).contains(&v) => Some(v),
        _ => {
            bad_value(
                sink,
                st,
                w,
                &format!("expected an integer from {min} to {max}"),
            );
            None
        }
    }
}

pub(crate) fn int_word(sink: &mut Sink, st: &Stmt, w: &Word, min: i64, max: i64) -> Option<i64> {
    match parse_i64(&w.text) {
        Some(v) if (min..=max).contains(&v) => Some(v),
        _ => {
            bad_value(
                sink,
                st,
                w,
                &format!("expected an integer from {min} to {max}"),
            );
            None
        }
    }
}

/// `KEYWORD N` with N an integer in `[min, max]`.
pub(crate) fn uint_arg(sink: &mut Sink, st: &Stmt, min: u64, max: u64) -> Option<u64> {
    let w = one_arg(sink, st)?;
    uint_word(sink, st, w, min, max)
}

pub(crate) fn u32_arg(sink: &mut Sink, st: &Stmt, min: u32, max: u32) -> Option<u32> {
    uint_arg(sink, st, min.into(), max.into()).and_then(|v| u32::try_from(v).ok())
}

/// Seconds with an optional fraction (`1`, `0.05`), at most `decimals`
/// fractional digits, as keepalived reads timers.
pub(crate) fn parse_secs(s: &str, decimals: usize) -> Option<Duration> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let int_ok = !int.is_empty() || !frac.is_empty();
    if !int_ok
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > decimals.min(9)
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    // Keep far from overflow in later arithmetic; no real timer is this long.
    if secs > u64::from(u32::MAX) {
        return None;
    }
    Some(Duration::new(secs, nanos))
}

/// A duration word within `[min, max]`.
pub(crate) fn secs_word(
    sink: &mut Sink,
    st: &Stmt,
    w: &Word,
    decimals: usize,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    match parse_secs(&w.text, decimals) {
        Some(d) if d >= min && d <= max => Some(d),
        _ => {
            let unit = match decimals {
                0 => "a whole number of seconds".to_string(),
                n => format!("seconds with up to {n} decimals"),
            };
            bad_value(
                sink,
                st,
                w,
                &format!(
                    "expected {unit} from {} to {}",
                    super::model::fmt_duration(min),
                    super::model::fmt_duration(max)
                ),
            );
            None
        }
    }
}

/// `KEYWORD SECONDS`.
pub(crate) fn secs_arg(
    sink: &mut Sink,
    st: &Stmt,
    decimals: usize,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let w = one_arg(sink, st)?;
    secs_word(sink, st, w, decimals, min, max)
}

/// Longest timer accepted anywhere (keepalived caps timers well below this).
pub(crate) const MAX_TIMER: Duration = Duration::from_secs(u32::MAX as u64 / 1000);

pub(crate) fn ip_word(sink: &mut Sink, st: &Stmt, w: &Word) -> Option<IpAddr> {
    match w.text.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            bad_value(sink, st, w, "expected an IPv4 or IPv6 address");
            None
        }
    }
}

pub(crate) fn ip_arg(sink: &mut Sink, st: &Stmt) -> Option<IpAddr> {
    let w = one_arg(sink, st)?;
    ip_word(sink, st, w)
}

pub(crate) fn port_word(sink: &mut Sink, what: &str, w: &Word) -> Option<u16> {
    match parse_u64(&w.text).and_then(|v| u16::try_from(v).ok()) {
        Some(p) => Some(p),
        None => {
            sink.error(
                &w.loc,
                format!(
                    "invalid {what} `{}`: expected an integer from 0 to 65535",
                    w.text
                ),
            );
            None
        }
    }
}

pub(crate) fn port_arg(sink: &mut Sink, st: &Stmt) -> Option<u16> {
    let w = one_arg(sink, st)?;
    port_word(sink, &format!("`{}` value", st.keyword()), w)
}

/// A plain string value.
pub(crate) fn string_arg(sink: &mut Sink, st: &Stmt) -> Option<String> {
    one_arg(sink, st).map(|w| w.text.clone())
}

/// A script command: a quoted string, or the rest of the line joined with
/// blanks (keepalived accepts both forms).
pub(crate) fn script_arg(sink: &mut Sink, st: &Stmt) -> Option<String> {
    if st.args().is_empty() {
        sink.error(st.loc(), format!("`{}` needs a script", st.keyword()));
        return None;
    }
    let parts: Vec<String> = st
        .args()
        .iter()
        .map(|w| {
            // Re-quote words that were quoted and hold blanks, so the command
            // still splits the way the operator wrote it.
            if w.quoted && st.args().len() > 1 && w.text.contains([' ', '\t']) {
                format!("\"{}\"", w.text)
            } else {
                w.text.clone()
            }
        })
        .collect();
    Some(parts.join(" "))
}

/// A flag keyword: alone it means true; keepalived also accepts an explicit
/// `true/false`, `yes/no`, `on/off`.
pub(crate) fn flag_arg(sink: &mut Sink, st: &Stmt) -> Option<bool> {
    let Some(w) = st.arg(0) else {
        return Some(true);
    };
    warn_extra(sink, st, 1);
    match w.text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => {
            bad_value(
                sink,
                st,
                w,
                "expected true/false, yes/no or on/off (or nothing)",
            );
            None
        }
    }
}

/// `user USER [GROUP]` as used by `script_user`, `vrrp_script` and
/// `MISC_CHECK`.
pub(crate) fn user_arg(sink: &mut Sink, st: &Stmt) -> Option<ScriptUser> {
    let Some(user) = st.arg(0) else {
        sink.error(st.loc(), format!("`{}` needs a user name", st.keyword()));
        return None;
    };
    warn_extra(sink, st, 2);
    Some(ScriptUser {
        user: user.text.clone(),
        group: st.arg(1).map(|w| w.text.clone()),
    })
}

/// `ADDR[/PREFIX]`, the prefix defaulting to the full address length.
pub(crate) fn prefix_word(sink: &mut Sink, what: &str, w: &Word) -> Option<(IpAddr, u8)> {
    let (a, p) = match w.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (w.text.as_str(), None),
    };
    let Ok(addr) = a.parse::<IpAddr>() else {
        sink.error(
            &w.loc,
            format!(
                "invalid {what} `{}`: expected an IPv4 or IPv6 address, optionally with /PREFIX",
                w.text
            ),
        );
        return None;
    };
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let len = match p {
        None => max,
        Some(p) => match parse_u64(p) {
            Some(v) if v <= u64::from(max) => v as u8,
            _ => {
                sink.error(
                    &w.loc,
                    format!(
                        "invalid prefix length in {what} `{}`: expected an integer from 0 to {max}",
                        w.text
                    ),
                );
                return None;
            }
        },
    };
    Some((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("1", 6), Some(Duration::from_secs(1)));
        assert_eq!(parse_secs("0.05", 6), Some(Duration::from_millis(50)));
        assert_eq!(parse_secs(".5", 6), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("1.", 6), None);
        assert_eq!(parse_secs("1.5", 0), None);
        assert_eq!(parse_secs("-1", 6), None);
        assert_eq!(parse_secs("", 6), None);
        assert_eq!(parse_secs(".", 6), None);
        assert_eq!(parse_secs("1e3", 6), None);
        assert_eq!(parse_secs("99999999999999999999", 6), None);
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("+7"), None);
        assert_eq!(parse_i64("-253"), Some(-253));
        assert_eq!(parse_i64("+3"), Some(3));
        assert_eq!(parse_i64("--3"), None);
    }
}
