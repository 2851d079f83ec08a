//! A vrrp_instance's `authentication { auth_type ... auth_pass ... }`.

use super::instance::InstBuild;
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, kw, Keyword};
use crate::config::model::AuthType;
use crate::config::tree::Stmt;
use crate::config::values::{bad_value, one_arg};

/// keepalived's VRRP_AUTH_LEN: longer passwords are truncated.
pub(crate) const AUTH_PASS_MAX: usize = 8;

#[derive(Default)]
struct AuthBuild {
    auth_type: Option<AuthType>,
    auth_pass: Option<String>,
}

static AUTH_KEYWORDS: &[Keyword<AuthBuild>] = &[
    kw("auth_type", |s, st, a| {
        if super::instance::bare_is_fatal(s, st) {
            return;
        }
        let Some(w) = one_arg(s, st) else { return };
        match w.text.as_str() {
            "PASS" => a.auth_type = Some(AuthType::Pass),
            "AH" => a.auth_type = Some(AuthType::Ah),
            _ => bad_value(s, st, w, "expected PASS or AH"),
        }
    }),
    kw("auth_pass", |s, st, a| {
        if super::instance::bare_is_fatal(s, st) {
            return;
        }
        let Some(w) = one_arg(s, st) else { return };
        let mut pass = w.text.clone();
        if pass.len() > AUTH_PASS_MAX {
            s.warn(
                &w.loc,
                format!(
                    "`auth_pass` is longer than {AUTH_PASS_MAX} characters: only `{}` is used, as keepalived truncates it",
                    truncate_bytes(&pass, AUTH_PASS_MAX)
                ),
            );
            pass = truncate_bytes(&pass, AUTH_PASS_MAX).to_string();
        }
        a.auth_pass = Some(pass);
    }),
];

/// The longest prefix of `s` of at most `n` bytes ending on a char boundary.
fn truncate_bytes(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(super) fn authentication(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            "`authentication` needs a `{ auth_type ... auth_pass ... }` block",
        );
        return;
    }
    let mut a = AuthBuild::default();
    dispatch(sink, st.children(), AUTH_KEYWORDS, &mut a, "authentication");
    b.auth_type = a.auth_type.or(b.auth_type);
    b.auth_pass = a.auth_pass.or(b.auth_pass.take());
    b.auth_loc = Some(st.loc().clone());
}
