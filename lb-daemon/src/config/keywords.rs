//! Keyword tables: each block kind has one table of `(name, aliases,
//! action)`; dispatch, alias handling, "not supported yet" warnings and the
//! "did you mean" suggestions for typos all read the same table, so adding a
//! keyword is one table line plus its handler.

use super::diag::Sink;
use super::tree::Stmt;

/// Reads one statement into the block being built.
pub(crate) type Handler<T> = fn(&mut Sink, &Stmt, &mut T);

pub(crate) enum Action<T> {
    Handle(Handler<T>),
    /// Read by a later pass of the block's builder (sub-blocks that need the
    /// enclosing block's settings first, such as `real_server`).
    Later,
    /// A keepalived keyword that is accepted but not acted on: one warning.
    Unsupported,
}

pub(crate) struct Keyword<T: 'static> {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub action: Action<T>,
}

/// Table line for a handled keyword.
pub(crate) const fn kw<T>(name: &'static str, h: Handler<T>) -> Keyword<T> {
    Keyword {
        name,
        aliases: &[],
        action: Action::Handle(h),
    }
}

/// Table line for a keyword with aliases.
pub(crate) const fn kw_alias<T>(
    name: &'static str,
    aliases: &'static [&'static str],
    h: Handler<T>,
) -> Keyword<T> {
    Keyword {
        name,
        aliases,
        action: Action::Handle(h),
    }
}

/// Table line for a keyword read in a later pass.
pub(crate) const fn later<T>(name: &'static str) -> Keyword<T> {
    Keyword {
        name,
        aliases: &[],
        action: Action::Later,
    }
}

/// Table line for a known keepalived keyword that is not acted on.
pub(crate) const fn unsupported<T>(name: &'static str) -> Keyword<T> {
    Keyword {
        name,
        aliases: &[],
        action: Action::Unsupported,
    }
}

pub(crate) fn lookup<'t, T>(table: &'t [Keyword<T>], name: &str) -> Option<&'t Keyword<T>> {
    table
        .iter()
        .find(|k| k.name == name || k.aliases.contains(&name))
}

/// Runs the handlers of `table` over `stmts`. `block` names the enclosing
/// block in messages (`vrrp_instance`, `real_server`...).
pub(crate) fn dispatch<T>(
    sink: &mut Sink,
    stmts: &[Stmt],
    table: &[Keyword<T>],
    target: &mut T,
    block: &str,
) {
    dispatch_multi(sink, stmts, &[table], target, block);
}

/// Like [`dispatch`] over several tables searched in order (a block kind's
/// own keywords, then keywords shared by several block kinds).
pub(crate) fn dispatch_multi<T>(
    sink: &mut Sink,
    stmts: &[Stmt],
    tables: &[&[Keyword<T>]],
    target: &mut T,
    block: &str,
) {
    for st in stmts {
        match tables.iter().find_map(|t| lookup(t, st.keyword())) {
            Some(k) => match k.action {
                Action::Handle(h) => h(sink, st, target),
                Action::Later => {}
                Action::Unsupported => sink.warn(
                    st.loc(),
                    format!("`{}` is not supported yet and is ignored", st.keyword()),
                ),
            },
            None => {
                let names = tables.iter().flat_map(|t| {
                    t.iter()
                        .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
                });
                unknown_keyword(sink, st, names, block);
            }
        }
    }
}

/// Warns about a keyword no table knows, suggesting the closest known one.
pub(crate) fn unknown_keyword<'a>(
    sink: &mut Sink,
    st: &Stmt,
    known: impl Iterator<Item = &'a str>,
    block: &str,
) {
    let name = st.keyword();
    // What keepalived's preprocessor left alone gets a precise message
    // rather than a misleading "did you mean".
    if name.starts_with('$') {
        sink.warn(
            st.loc(),
            format!("`{name}` is not defined by a `$NAME=value` line before it (no blank may come before `=`); the line is ignored"),
        );
        return;
    }
    if name.starts_with('@') {
        sink.warn(
            st.loc(),
            format!(
                "`{name}`: a conditional applies only at the start of a line; the line is ignored"
            ),
        );
        return;
    }
    // An empty block name is the top level of the file.
    let place = if block.is_empty() {
        "at top level".to_string()
    } else {
        format!("in `{block}`")
    };
    let msg = match suggest(name, known) {
        Some(s) => format!("unknown keyword `{name}` {place} is ignored; did you mean `{s}`?"),
        None => format!("unknown keyword `{name}` {place} is ignored"),
    };
    sink.warn(st.loc(), msg);
}

/// The closest candidate within a small edit distance, if any.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = distance(&lower, &c.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and transpositions of neighbours (the usual typos) each cost one.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("priorty", "priority"), 1);
        assert_eq!(distance("advert_intt", "advert_int"), 1);
        assert_eq!(distance("wieght", "weight"), 1);
        assert_eq!(distance("lb_algo", "lb_kind"), 4);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let c = ["priority", "preempt_delay", "advert_int", "state"];
        assert_eq!(suggest("priorty", c.iter().copied()), Some("priority"));
        assert_eq!(suggest("STATE", c.iter().copied()), Some("state"));
        assert_eq!(suggest("banana", c.iter().copied()), None);
    }
}
