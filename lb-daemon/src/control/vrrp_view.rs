//! The VRRP runtime's status board as the control API shows it.

use std::{collections::HashMap, sync::Arc};

use super::{hub::VrrpStatus, protocol::VrrpInstance, protocol::VrrpTransition};
use crate::{config::Config, vrrp::StatusBoard};

pub struct VrrpView {
    board: StatusBoard,
    /// Instance → its virtual addresses, from the configuration.
    vips: HashMap<String, Vec<String>>,
}

impl VrrpView {
    pub fn new(board: StatusBoard, config: &Config) -> Arc<Self> {
        let vips = config
            .vrrp_instances
            .iter()
            .map(|i| {
                let v = i
                    .virtual_ipaddress
                    .iter()
                    .map(|a| format!("{}/{}", a.addr, a.prefix_len))
                    .collect();
                (i.name.clone(), v)
            })
            .collect();
        Arc::new(Self { board, vips })
    }
}

impl VrrpStatus for VrrpView {
    fn instances(&self) -> Vec<VrrpInstance> {
        self.board
            .snapshot()
            .into_iter()
            .map(|s| VrrpInstance {
                vips: self.vips.get(&s.name).cloned().unwrap_or_default(),
                name: s.name,
                sync_group: s.group,
                interface: s.interface,
                vrid: s.vrid,
                state: s.state.as_str().to_string(),
                priority: s.priority,
                effective_priority: s.effective_priority,
                address: s.address,
                master: s.master,
                last_transition: s.last_transition.map(|t| VrrpTransition {
                    from: t.from.as_str().to_string(),
                    to: t.to.as_str().to_string(),
                    reason: format!("{:?}", t.reason),
                    at_unix_ms: (t.at * 1000.0) as u64,
                }),
                adverts_sent: s.counters.adverts_sent,
                adverts_received: s.counters.adverts_received,
                adverts_dropped: s.counters.dropped.values().sum(),
                transitions: s.counters.transitions,
                error: s.error,
            })
            .collect()
    }
}
