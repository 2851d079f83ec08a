//! `vrrp_script`, `vrrp_sync_group` and `vrrp_instance`, one file per block;
//! here the pieces they share: block headers, tracking weights and notify
//! scripts.
//!
//! - `vrrp_script` in [`script`], `vrrp_sync_group` in [`sync_group`];
//! - `vrrp_instance` in [`instance`], with defaults resolved from
//!   global_defs; its `authentication` block is in [`auth`], its list
//!   blocks (`track_interface`, `track_script`, `unicast_peer`) in [`lists`].

mod auth;
mod instance;
mod lists;
mod script;
mod sync_group;

pub(crate) use instance::build_instance;
pub(crate) use script::build_script;
pub(crate) use sync_group::build_sync_group;

use super::diag::Sink;
use super::model::Notify;
use super::tree::{Stmt, Word};
use super::values::{int_word, script_arg, warn_extra};

/// Tracking weights keepalived accepts.
const WEIGHT_MIN: i64 = -253;
const WEIGHT_MAX: i64 = 253;

/// `NAME { ... }` headers: the name, with a block required.
fn named_block(sink: &mut Sink, st: &Stmt) -> Option<String> {
    let name = match st.arg(0) {
        Some(w) => {
            warn_extra(sink, st, 1);
            Some(w.text.clone())
        }
        None => {
            sink.error(st.loc(), format!("`{}` needs a name", st.keyword()));
            None
        }
    };
    if st.block.is_none() {
        sink.error(
            st.loc(),
            format!("`{}` needs a `{{ ... }}` block", st.keyword()),
        );
        return None;
    }
    name
}

/// `weight W [reverse]` from `words` (the words after `weight`).
fn weight_words(sink: &mut Sink, st: &Stmt, words: &[Word]) -> Option<(i32, bool)> {
    let Some(w) = words.first() else {
        sink.error(st.loc(), "`weight` needs a value");
        return None;
    };
    let weight = int_word(sink, st, w, WEIGHT_MIN, WEIGHT_MAX)? as i32;
    let reverse = match words.get(1) {
        None => false,
        Some(r) if r.text == "reverse" => true,
        Some(r) => {
            sink.error(
                &r.loc,
                format!(
                    "unexpected `{}` after the weight: only `reverse` may follow",
                    r.text
                ),
            );
            false
        }
    };
    if let Some(extra) = words.get(2) {
        sink.warn(
            &extra.loc,
            format!("unexpected `{}`: extra values are ignored", extra.text),
        );
    }
    Some((weight, reverse))
}

fn notify_handler<T>(get: fn(&mut T) -> &mut Notify) -> impl Fn(&mut Sink, &Stmt, &mut T) {
    move |s, st, t| {
        let v = script_arg(s, st);
        let n = get(t);
        let slot = match st.keyword() {
            "notify_master" => &mut n.master,
            "notify_backup" => &mut n.backup,
            "notify_fault" => &mut n.fault,
            "notify_stop" => &mut n.stop,
            _ => &mut n.notify,
        };
        if v.is_some() {
            *slot = v;
        }
    }
}
