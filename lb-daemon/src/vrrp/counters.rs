//! Per-instance statistics, much like keepalived's `vrrp_stats`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::reason::DropReason;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Adverts we asked to be sent, priority 0 included.
    pub adverts_sent: u64,
    /// Adverts that passed every check.
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// Every state change, startup and shutdown included.
    pub transitions: u64,
    /// Adverts dropped, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
}

impl Counters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    pub fn total_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_insert(0) += 1;
    }
}
