//! `vrrp_sync_group NAME { group { INSTANCE... } notify_* ... }`.

use super::{named_block, notify_handler};
use crate::config::diag::Sink;
use crate::config::keywords::{dispatch, kw, unsupported, Keyword};
use crate::config::model::{Notify, VrrpSyncGroup};
use crate::config::tree::Stmt;
use crate::config::values::flag_arg;

fn group_notify(s: &mut Sink, st: &Stmt, g: &mut VrrpSyncGroup) {
    notify_handler(|g: &mut VrrpSyncGroup| &mut g.notify)(s, st, g)
}

static SYNC_GROUP_KEYWORDS: &[Keyword<VrrpSyncGroup>] = &[
    kw("group", |s, st, g| {
        if st.block.is_none() {
            s.error(
                st.loc(),
                "`group` needs a `{ ... }` block of vrrp_instance names",
            );
            return;
        }
        for line in st.children() {
            g.group.extend(line.words.iter().map(|w| w.text.clone()));
        }
    }),
    kw("notify_master", group_notify),
    kw("notify_backup", group_notify),
    kw("notify_fault", group_notify),
    kw("notify_stop", group_notify),
    kw("notify", group_notify),
    kw("smtp_alert", |s, st, g| {
        g.smtp_alert = flag_arg(s, st).unwrap_or(g.smtp_alert)
    }),
    unsupported("track_interface"),
    unsupported("track_script"),
    unsupported("track_file"),
    unsupported("track_process"),
    unsupported("track_bfd"),
    unsupported("global_tracking"),
    unsupported("sync_group_tracking_weight"),
    unsupported("notify_priority_changes"),
];

pub(crate) fn build_sync_group(sink: &mut Sink, st: &Stmt) -> Option<VrrpSyncGroup> {
    let name = named_block(sink, st)?;
    let mut g = VrrpSyncGroup {
        name,
        group: Vec::new(),
        notify: Notify::default(),
        smtp_alert: false,
        location: st.loc().clone(),
    };
    dispatch(
        sink,
        st.children(),
        SYNC_GROUP_KEYWORDS,
        &mut g,
        "vrrp_sync_group",
    );
    if g.group.is_empty() {
        sink.error(
            st.loc(),
            format!(
                "vrrp_sync_group `{}` has no `group {{ ... }}` of instances",
                g.name
            ),
        );
        return None;
    }
    Some(g)
}
