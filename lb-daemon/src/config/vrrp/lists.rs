//! A vrrp_instance's list blocks, one entry a line: `track_interface`,
//! `track_script` and `unicast_peer`.

use super::instance::InstBuild;
use super::weight_words;
use crate::config::diag::Sink;
use crate::config::model::{TrackInterface, TrackScript, UnicastPeer};
use crate::config::tree::Stmt;
use crate::config::values::{uint_word, warn_extra};

/// `track_interface { IF [weight W [reverse]] ... }`.
pub(super) fn track_interface(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let name = line.words[0].text.clone();
        let (weight, reverse) = line_weight(sink, line);
        b.i().track_interface.push(TrackInterface {
            name,
            weight,
            reverse,
        });
    }
}

/// `track_script { NAME [weight W [reverse]] ... }`.
pub(super) fn track_script(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let name = line.words[0].text.clone();
        let (weight, reverse) = line_weight(sink, line);
        b.i().track_script.push(TrackScript {
            name,
            weight,
            reverse,
            location: line.loc().clone(),
        });
    }
}

/// The optional `weight W [reverse]` after a tracked object's name.
fn line_weight(sink: &mut Sink, line: &Stmt) -> (Option<i32>, bool) {
    match line.arg(0) {
        None => (None, false),
        Some(w) if w.text == "weight" => match weight_words(sink, line, &line.words[2..]) {
            Some((w, r)) => (Some(w), r),
            None => (None, false),
        },
        Some(w) => {
            sink.warn(
                &w.loc,
                format!(
                    "unexpected `{}`: only `weight W [reverse]` may follow the name",
                    w.text
                ),
            );
            (None, false)
        }
    }
}

/// `unicast_peer { IP [min_ttl N] [max_ttl N] ... }`.
pub(super) fn unicast_peer(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let w = &line.words[0];
        let Ok(addr) = w.text.parse() else {
            sink.error(
                &w.loc,
                format!(
                    "invalid unicast peer `{}`: expected an IPv4 or IPv6 address",
                    w.text
                ),
            );
            continue;
        };
        let mut peer = UnicastPeer {
            addr,
            min_ttl: None,
            max_ttl: None,
        };
        let mut i = 1;
        while i < line.words.len() {
            let opt = &line.words[i];
            match opt.text.as_str() {
                "min_ttl" | "max_ttl" => {
                    let Some(v) = line.words.get(i + 1) else {
                        sink.error(&opt.loc, format!("`{}` needs a value", opt.text));
                        break;
                    };
                    let ttl = uint_word(sink, line, v, 0, 255).map(|t| t as u8);
                    if opt.text == "min_ttl" {
                        peer.min_ttl = ttl;
                    } else {
                        peer.max_ttl = ttl;
                    }
                    i += 2;
                }
                _ => {
                    sink.warn(
                        &opt.loc,
                        format!("unknown option `{}` in `unicast_peer` is ignored", opt.text),
                    );
                    i += 1;
                }
            }
        }
        b.i().unicast_peer.push(peer);
    }
}

/// The lines of a list block, complaining about a missing block or nested
/// blocks.
fn block_lines<'s>(sink: &mut Sink, st: &'s Stmt) -> &'s [Stmt] {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            format!("`{}` needs a `{{ ... }}` block", st.keyword()),
        );
    }
    warn_extra(sink, st, 0);
    for line in st.children() {
        if let Some(b) = &line.block {
            sink.error(&b.open, format!("unexpected block in `{}`", st.keyword()));
        }
    }
    st.children()
}
