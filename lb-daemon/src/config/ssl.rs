//! The top-level `SSL { ... }` block.

use std::path::PathBuf;

use super::diag::Sink;
use super::keywords::{dispatch, kw, Keyword};
use super::model::SslDefs;
use super::tree::Stmt;
use super::values::string_arg;

static KEYWORDS: &[Keyword<SslDefs>] = &[
    kw("ca", |s, st, d| d.ca = string_arg(s, st).map(PathBuf::from)),
    kw("certificate", |s, st, d| {
        d.certificate = string_arg(s, st).map(PathBuf::from)
    }),
    kw("key", |s, st, d| {
        d.key = string_arg(s, st).map(PathBuf::from)
    }),
    kw("password", |s, st, d| d.password = string_arg(s, st)),
];

pub(crate) fn build(sink: &mut Sink, st: &Stmt) -> Option<SslDefs> {
    if st.block.is_none() {
        sink.error(st.loc(), "`SSL` needs a `{ ... }` block");
        return None;
    }
    let mut d = SslDefs::default();
    dispatch(sink, st.children(), KEYWORDS, &mut d, "SSL");
    if d.certificate.is_some() || d.key.is_some() {
        sink.warn(
            st.loc(),
            "SSL client certificates (`certificate`, `key`) are not supported yet and are ignored; `ca` is used",
        );
    }
    Some(d)
}
