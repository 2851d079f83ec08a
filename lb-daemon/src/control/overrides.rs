//! Operators' overrides of backends (lbctl set-weight, drain, disable),
//! applied on top of the configuration and the health checks until the next
//! reload.
//!
//! - set-weight W: the backend's weight is W while its checkers say it is
//!   up; a failing backend still takes no new connections.
//! - drain: weight 0; established connections finish on it.
//! - disable: the backend leaves its service in the data plane; its
//!   established flows are scheduled anew on the others.

use std::{collections::HashMap, net::SocketAddr};

use super::protocol::OverrideInfo;
use crate::dataplane::{Proto, ServiceSpec};

/// (VIP, protocol, backend).
pub type Key = (SocketAddr, Proto, SocketAddr);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    map: HashMap<Key, OverrideInfo>,
}

impl Overrides {
    pub fn get(&self, key: &Key) -> Option<OverrideInfo> {
        self.map.get(key).copied()
    }

    /// Sets (`Some`) or clears (`None`) the override of a backend; returns
    /// the previous one.
    pub fn set(&mut self, key: Key, value: Option<OverrideInfo>) -> Option<OverrideInfo> {
        match value {
            Some(v) => self.map.insert(key, v),
            None => self.map.remove(&key),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) -> usize {
        let n = self.map.len();
        self.map.clear();
        n
    }

    /// Applies the overrides to `specs` (weights already set by the health
    /// checks); `configured` is the plan from the configuration, to tell a
    /// backend the checkers took down from one configured with weight 0.
    pub fn apply(&self, specs: &mut [ServiceSpec], configured: &[ServiceSpec]) {
        if self.map.is_empty() {
            return;
        }
        for spec in specs {
            let conf = configured
                .iter()
                .find(|c| c.vip == spec.vip && c.proto == spec.proto);
            let key = |addr| (spec.vip, spec.proto, addr);
            let mut disabled = Vec::new();
            for b in &mut spec.backends {
                match self.map.get(&key(b.addr)) {
                    None => {}
                    Some(OverrideInfo::Drain) => b.weight = 0,
                    Some(OverrideInfo::Disable) => disabled.push(b.addr),
                    Some(OverrideInfo::SetWeight { weight }) => {
                        let configured_weight = conf
                            .and_then(|c| c.backends.iter().find(|cb| cb.addr == b.addr))
                            .map_or(0, |cb| cb.weight);
                        // Down (or out of the pool for quorum): stays out.
                        let health_took_out = b.weight == 0 && configured_weight > 0;
                        if !health_took_out {
                            b.weight = *weight;
                        }
                    }
                }
            }
            spec.backends.retain(|b| !disabled.contains(&b.addr));
            if let Some(s) = &spec.sorry {
                match self.map.get(&key(s.addr)) {
                    Some(OverrideInfo::Disable) => spec.sorry = None,
                    Some(OverrideInfo::Drain) => {
                        if let Some(s) = spec.sorry.as_mut() {
                            s.weight = 0;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::BackendSpec;

    fn spec(weights: &[(u8, u32)]) -> ServiceSpec {
        ServiceSpec::new(
            "10.0.0.1:80".parse().unwrap(),
            Proto::Tcp,
            weights
                .iter()
                .map(|(last, w)| BackendSpec::new(format!("10.0.0.{last}:80").parse().unwrap(), *w))
                .collect(),
        )
    }

    fn key(last: u8) -> Key {
        (
            "10.0.0.1:80".parse().unwrap(),
            Proto::Tcp,
            format!("10.0.0.{last}:80").parse().unwrap(),
        )
    }

    #[test]
    fn overrides_weigh_drain_and_disable_but_never_revive_a_failed_backend() {
        let configured = vec![spec(&[(11, 1), (12, 1), (13, 1), (14, 2)])];
        // Health: .13 is down.
        let mut specs = vec![spec(&[(11, 1), (12, 1), (13, 0), (14, 2)])];
        let mut o = Overrides::default();
        o.set(key(11), Some(OverrideInfo::SetWeight { weight: 5 }));
        o.set(key(12), Some(OverrideInfo::Drain));
        o.set(key(13), Some(OverrideInfo::SetWeight { weight: 7 }));
        o.set(key(14), Some(OverrideInfo::Disable));
        o.apply(&mut specs, &configured);
        let got: Vec<_> = specs[0]
            .backends
            .iter()
            .map(|b| (b.addr.ip().to_string(), b.weight))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.11".to_string(), 5),
                ("10.0.0.12".to_string(), 0),
                ("10.0.0.13".to_string(), 0)
            ]
        );
        // Enable: cleared.
        assert_eq!(o.set(key(14), None), Some(OverrideInfo::Disable));
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn set_weight_lifts_a_backend_configured_with_weight_zero() {
        let configured = vec![spec(&[(11, 0)])];
        let mut specs = configured.clone();
        let mut o = Overrides::default();
        o.set(key(11), Some(OverrideInfo::SetWeight { weight: 3 }));
        o.apply(&mut specs, &configured);
        assert_eq!(specs[0].backends[0].weight, 3);
    }
}
