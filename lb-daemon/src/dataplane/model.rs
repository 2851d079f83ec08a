//! A userspace reference model of the schedulers, written from IPVS's rules
//! rather than from the BPF code, so differential tests can drive the real
//! program with many flows and compare every pick.
//!
//! The tables (wrr ring, sh buckets, Maglev) come from `schedule`, whose own
//! tests check them against IPVS's sequences; the model decides how a flow
//! is looked up in them, and keeps lc/wlc's connection counts.

use std::collections::HashMap;

use lb_common::{conn_state, mh_hash, sh_bucket};

use super::Algo;

/// One backend as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelBackend {
    pub id: u32,
    pub weight: u32,
}

/// A service: its algorithm, flags, backends and table.
#[derive(Debug, Clone)]
pub struct ModelService {
    pub algo: Algo,
    pub hash_port: bool,
    pub fallback: bool,
    /// Configuration order.
    pub backends: Vec<ModelBackend>,
    /// The ring / bucket table / Maglev table / candidate list.
    pub table: Vec<u32>,
    cursor: u64,
    /// Per backend: (active, inactive).
    counts: HashMap<u32, (u64, u64)>,
}

impl ModelService {
    pub fn new(
        algo: Algo,
        hash_port: bool,
        fallback: bool,
        backends: Vec<ModelBackend>,
        table: Vec<u32>,
    ) -> Self {
        Self {
            algo,
            hash_port,
            fallback,
            backends,
            table,
            cursor: 0,
            counts: HashMap::new(),
        }
    }

    fn weight(&self, id: u32) -> u32 {
        self.backends
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.weight)
            .unwrap_or(0)
    }

    /// The backend IPVS's rule gives a new flow from `src:sport` (network
    /// order words and port, as the maps hold them).
    pub fn pick(&mut self, src: &[u32; 4], sport: u16) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        let port = if self.hash_port { sport } else { 0 };
        match self.algo {
            Algo::Rr | Algo::Wrr => {
                let id = self.table[(self.cursor % self.table.len() as u64) as usize];
                self.cursor += 1;
                (self.weight(id) > 0).then_some(id)
            }
            Algo::Sh => self.hashed(sh_bucket(src, port) as usize),
            Algo::Mh => {
                let b = mh_hash(src, port) as usize % self.table.len();
                self.hashed(b)
            }
            Algo::Lc | Algo::Wlc => self.least(),
        }
    }

    fn hashed(&self, bucket: usize) -> Option<u32> {
        let len = self.table.len();
        let id = self.table[bucket % len];
        if self.weight(id) > 0 {
            return Some(id);
        }
        if !self.fallback {
            return None;
        }
        (1..len.min(256))
            .map(|i| self.table[(bucket + i) % len])
            .find(|&id| self.weight(id) > 0)
    }

    fn overhead(&self, id: u32) -> u64 {
        let (a, i) = self.counts.get(&id).copied().unwrap_or_default();
        (a << 8) + i
    }

    fn least(&self) -> Option<u32> {
        let live: Vec<u32> = self
            .table
            .iter()
            .copied()
            .filter(|&id| self.weight(id) > 0)
            .collect();
        let mut best: Option<u32> = None;
        for id in live {
            let better = match best {
                None => true,
                Some(b) if self.algo == Algo::Wlc => {
                    // IPVS: loh * dest->weight > doh * least->weight.
                    self.overhead(b) * u64::from(self.weight(id))
                        > self.overhead(id) * u64::from(self.weight(b))
                }
                Some(b) => self.overhead(id) < self.overhead(b),
            };
            if better {
                best = Some(id);
            }
        }
        best
    }

    /// A connection to `id` entered `state` (from none or from `from`).
    pub fn transition(&mut self, id: u32, from: Option<u8>, to: u8) {
        let e = self.counts.entry(id).or_default();
        if let Some(f) = from {
            if conn_state::is_active(f) {
                e.0 -= 1;
            } else {
                e.1 -= 1;
            }
        }
        if conn_state::is_active(to) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: u32, weight: u32) -> ModelBackend {
        ModelBackend { id, weight }
    }

    #[test]
    fn lc_prefers_fewer_connections_and_wlc_weighs_them() {
        let mut lc = ModelService::new(Algo::Lc, false, false, vec![b(1, 1), b(2, 5)], vec![1, 2]);
        assert_eq!(lc.pick(&[0; 4], 0), Some(1), "ties go to the first");
        lc.transition(1, None, conn_state::SYN);
        assert_eq!(lc.pick(&[0; 4], 0), Some(2));
        let mut wlc =
            ModelService::new(Algo::Wlc, false, false, vec![b(1, 1), b(2, 5)], vec![1, 2]);
        for _ in 0..4 {
            wlc.transition(2, None, conn_state::SYN);
        }
        wlc.transition(1, None, conn_state::SYN);
        // 1/1 > 4/5: the heavier backend still wins.
        assert_eq!(wlc.pick(&[0; 4], 0), Some(2));
        // An established connection weighs 256 inactive ones.
        wlc.transition(2, Some(conn_state::SYN), conn_state::ESTABLISHED);
        assert_eq!(wlc.pick(&[0; 4], 0), Some(1));
    }
}
