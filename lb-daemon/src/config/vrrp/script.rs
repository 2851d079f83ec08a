//! `vrrp_script NAME { script ... interval ... weight ... }`.

use std::time::Duration;

use super::{named_block, weight_words};
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, kw, Keyword};
use crate::config::model::VrrpScript;
use crate::config::tree::Stmt;
use crate::config::values::{script_arg, secs_arg, u32_arg, user_arg, warn_extra, MAX_TIMER};

static SCRIPT_KEYWORDS: &[Keyword<VrrpScript>] = &[
    kw("script", |s, st, v| {
        if let Some(c) = script_arg(s, st) {
            v.script = c;
        }
    }),
    kw("interval", |s, st, v| {
        if let Some(d) = secs_arg(s, st, 3, Duration::from_millis(1), MAX_TIMER) {
            v.interval = d;
        }
    }),
    kw("timeout", |s, st, v| {
        if let Some(d) = secs_arg(s, st, 3, Duration::from_millis(1), MAX_TIMER) {
            v.timeout = d;
        }
    }),
    kw("weight", |s, st, v| {
        if let Some((w, rev)) = weight_words(s, st, st.args()) {
            v.weight = w;
            v.weight_reverse = rev;
        }
    }),
    kw("rise", |s, st, v| {
        v.rise = u32_arg(s, st, 1, i32::MAX as u32).unwrap_or(v.rise)
    }),
    kw("fall", |s, st, v| {
        v.fall = u32_arg(s, st, 1, i32::MAX as u32).unwrap_or(v.fall)
    }),
    kw("user", |s, st, v| v.user = user_arg(s, st)),
    kw("init_fail", |s, st, v| {
        warn_extra(s, st, 0);
        v.init_fail = true;
    }),
];

pub(crate) fn build_script(sink: &mut Sink, st: &Stmt) -> Option<VrrpScript> {
    let name = named_block(sink, st)?;
    let mut v = VrrpScript {
        name,
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        user: None,
        init_fail: false,
        location: st.loc().clone(),
    };
    dispatch(sink, st.children(), SCRIPT_KEYWORDS, &mut v, "vrrp_script");
    if v.script.is_empty() {
        sink.error(
            st.loc(),
            format!("vrrp_script `{}` has no `script` to run", v.name),
        );
        return None;
    }
    // keepalived waits one interval when no timeout is given.
    if v.timeout.is_zero() {
        v.timeout = v.interval;
    }
    Some(v)
}
