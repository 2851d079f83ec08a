//! Turns a service's backends and weights into the ring of backend ids the
//! data plane walks for new flows. The BPF side only indexes the ring.

use lb_common::MAX_SCHEDULE;

/// One candidate: its backend id and weight (0 = takes no new flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: u32,
    pub weight: u32,
}

/// rr: every backend that can take new flows, once, in configuration order.
pub fn round_robin(candidates: &[Candidate]) -> Vec<u32> {
    candidates
        .iter()
        .filter(|c| c.weight > 0)
        .map(|c| c.id)
        .take(MAX_SCHEDULE as usize)
        .collect()
}

/// wrr: IPVS's interleaved weighted round robin, one whole cycle of it.
///
/// IPVS keeps a current weight `cw` that starts at the maximum weight (less
/// gcd − 1), walks the backends in order picking each one whose weight is at
/// least `cw`, and lowers `cw` by the gcd of the weights after every pass.
/// That repeats every Σweight / gcd picks, so the cycle is the ring. When the
/// cycle is longer than a service's `MAX_SCHEDULE` slots the weights are
/// scaled down in proportion first (every live backend keeps weight ≥ 1).
pub fn weighted_round_robin(candidates: &[Candidate]) -> Vec<u32> {
    let mut live: Vec<Candidate> = candidates
        .iter()
        .copied()
        .filter(|c| c.weight > 0)
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    let cycle = |live: &[Candidate]| {
        let g = live.iter().fold(0, |g, c| gcd(g, c.weight));
        live.iter().map(|c| u64::from(c.weight / g)).sum::<u64>()
    };
    let len = cycle(&live);
    if len > u64::from(MAX_SCHEDULE) {
        let budget = u64::from(MAX_SCHEDULE) - live.len() as u64;
        for c in &mut live {
            // Each backend keeps 1 slot plus its share of the rest.
            c.weight = 1 + (u64::from(c.weight) * budget / len.max(1)) as u32;
        }
    }
    let gcd_w = live.iter().fold(0, |g, c| gcd(g, c.weight));
    let max_w = live.iter().map(|c| c.weight).max().unwrap_or(0);
    let top = (max_w - (gcd_w - 1)) as i64;
    let picks = cycle(&live) as usize;
    let mut ring = Vec::with_capacity(picks);
    let mut cw = top;
    let mut i = 0usize;
    while ring.len() < picks {
        if i64::from(live[i].weight) >= cw {
            ring.push(live[i].id);
        }
        i += 1;
        if i == live.len() {
            i = 0;
            cw -= i64::from(gcd_w);
            if cw <= 0 {
                cw = top;
            }
        }
    }
    ring
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u32, weight: u32) -> Candidate {
        Candidate { id, weight }
    }

    #[test]
    fn wrr_interleaves_like_ipvs() {
        // Weights 1:3: one new connection in four to the first.
        assert_eq!(weighted_round_robin(&[c(0, 1), c(1, 3)]), vec![1, 1, 0, 1]);
        // 4:3:2 (IPVS sequence: a a b a b c a b c).
        assert_eq!(
            weighted_round_robin(&[c(10, 4), c(11, 3), c(12, 2)]),
            vec![10, 10, 11, 10, 11, 12, 10, 11, 12]
        );
        // Common factors are divided out: 2:2 is a plain alternation.
        assert_eq!(weighted_round_robin(&[c(0, 2), c(1, 2)]), vec![0, 1]);
        assert_eq!(weighted_round_robin(&[c(0, 0), c(1, 5)]), vec![1]);
        assert!(weighted_round_robin(&[c(0, 0)]).is_empty());
    }

    #[test]
    fn wrr_cycle_longer_than_the_ring_is_scaled() {
        let ring = weighted_round_robin(&[c(0, 1000), c(1, 3000), c(2, 1)]);
        assert!(ring.len() <= MAX_SCHEDULE as usize, "{}", ring.len());
        let count = |id| ring.iter().filter(|&&x| x == id).count() as f64;
        assert!(count(2) >= 1.0);
        let ratio = count(1) / count(0);
        assert!((2.8..=3.2).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn rr_skips_weight_zero_and_keeps_order() {
        assert_eq!(round_robin(&[c(4, 1), c(7, 0), c(2, 5)]), vec![4, 2]);
        assert!(round_robin(&[c(1, 0)]).is_empty());
    }
}
