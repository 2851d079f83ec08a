//! Turns a service's backends and weights into the ring of backend ids the
//! data plane walks for new flows. The BPF side only indexes the ring.

use lb_common::SH_TAB_SIZE;

/// Longest rr/wrr ring: a wrr cycle longer than this is scaled down.
pub const MAX_RING: u32 = 4096;

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
        .take(MAX_RING as usize)
        .collect()
}

/// wrr: IPVS's interleaved weighted round robin, one whole cycle of it.
///
/// IPVS keeps a current weight `cw` that starts at the maximum weight (less
/// gcd − 1), walks the backends in order picking each one whose weight is at
/// least `cw`, and lowers `cw` by the gcd of the weights after every pass.
/// That repeats every Σweight / gcd picks, so the cycle is the ring. When the
/// cycle is longer than a service's `MAX_RING` slots the weights are
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
    if len > u64::from(MAX_RING) {
        let budget = u64::from(MAX_RING) - live.len() as u64;
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

/// sh: IPVS's 256 buckets. Backends take turns in configuration order, each
/// holding `weight` consecutive buckets (at least one: a weight-0 backend
/// keeps its bucket but is unavailable at lookup, as in IPVS).
pub fn source_hash_table(candidates: &[Candidate]) -> Vec<u32> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut table = Vec::with_capacity(SH_TAB_SIZE as usize);
    let mut i = 0usize;
    let mut held = 0u32;
    while table.len() < SH_TAB_SIZE as usize {
        let c = candidates[i];
        table.push(c.id);
        held += 1;
        if held >= c.weight {
            i = (i + 1) % candidates.len();
            held = 0;
        }
    }
    table
}

/// Maglev table sizes: primes, each about twice the one before.
const MAGLEV_SIZES: [u32; 12] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287,
];

/// The Maglev table size for `backends` backends: the smallest listed prime
/// with at least 100 slots per backend. It depends on the backend count
/// alone, never on the service's earlier sizes, so that every balancer
/// behind ECMP (and every restart) builds the same table from the same
/// backends; a count that stays within one size moves about 1/N of clients
/// per change, crossing a size reshuffles them (on every node alike).
pub fn maglev_size(backends: usize) -> u32 {
    let need = 100 * backends.max(1) as u64;
    MAGLEV_SIZES
        .iter()
        .copied()
        .find(|&m| u64::from(m) >= need)
        .unwrap_or(MAGLEV_SIZES[MAGLEV_SIZES.len() - 1])
}

/// Stable hash of a backend for its Maglev permutation (addresses and port
/// in network order, as in the maps), so every balancer and every restart
/// builds the same table from the same backends.
pub fn backend_hash(addr: &[u32; 4], port: u16, seed: u32) -> u32 {
    let mut h = seed ^ 0x9e37_79b9;
    for w in addr.iter().chain(std::iter::once(&u32::from(port))) {
        h ^= w
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// A backend for Maglev: its id, weight and permutation hashes.
#[derive(Debug, Clone, Copy)]
pub struct MaglevBackend {
    pub id: u32,
    pub weight: u32,
    pub offset_hash: u32,
    pub skip_hash: u32,
}

/// mh: the Maglev lookup table of prime size `m`. Each backend walks its own
/// permutation of the slots (offset, offset + skip, ...) and claims the next
/// free one; per round a backend claims weight / gcd(weights) slots, so
/// slots are shared in proportion to weight. Weight-0 backends take none.
pub fn maglev_table(backends: &[MaglevBackend], m: u32) -> Vec<u32> {
    let live: Vec<&MaglevBackend> = backends.iter().filter(|b| b.weight > 0).collect();
    if live.is_empty() {
        return Vec::new();
    }
    let g = live.iter().fold(0, |g, b| gcd(g, b.weight));
    let m64 = u64::from(m);
    let offsets: Vec<u64> = live
        .iter()
        .map(|b| u64::from(b.offset_hash) % m64)
        .collect();
    let skips: Vec<u64> = live
        .iter()
        .map(|b| u64::from(b.skip_hash) % (m64 - 1) + 1)
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0u32;
    'rounds: loop {
        for (i, b) in live.iter().enumerate() {
            for _ in 0..b.weight / g {
                // Each permutation visits every slot once (m is prime), so
                // this finds a free slot while any remains.
                let slot = loop {
                    let c = ((offsets[i] + next[i] * skips[i]) % m64) as usize;
                    next[i] += 1;
                    if table[c] == u32::MAX {
                        break c;
                    }
                };
                table[slot] = b.id;
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
    }
    table
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
        assert!(ring.len() <= MAX_RING as usize, "{}", ring.len());
        let count = |id| ring.iter().filter(|&&x| x == id).count() as f64;
        assert!(count(2) >= 1.0);
        let ratio = count(1) / count(0);
        assert!((2.8..=3.2).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn sh_table_gives_each_backend_weight_buckets_in_turn() {
        let t = source_hash_table(&[c(7, 2), c(8, 1), c(9, 0)]);
        assert_eq!(t.len(), 256);
        assert_eq!(&t[..8], &[7, 7, 8, 9, 7, 7, 8, 9]);
    }

    fn mb(id: u32, weight: u32) -> MaglevBackend {
        let addr = [id.to_be(), 0, 0, 0];
        MaglevBackend {
            id,
            weight,
            offset_hash: backend_hash(&addr, 80, 1),
            skip_hash: backend_hash(&addr, 80, 2),
        }
    }

    #[test]
    fn maglev_shares_slots_by_weight_and_moves_few_on_change() {
        let m = maglev_size(10);
        assert_eq!(m, 1021);
        let ten: Vec<_> = (0..10).map(|i| mb(i, 1)).collect();
        let t10 = maglev_table(&ten, m);
        assert!(t10.iter().all(|&id| id < 10));
        for id in 0..10 {
            let n = t10.iter().filter(|&&x| x == id).count() as f64;
            assert!(
                (n - m as f64 / 10.0).abs() <= m as f64 / 10.0 * 0.1,
                "{id}: {n}"
            );
        }
        // At the same size, an eleventh moves about 1/11 of slots.
        let eleven: Vec<_> = (0..11).map(|i| mb(i, 1)).collect();
        let t11 = maglev_table(&eleven, m);
        let moved = t10.iter().zip(&t11).filter(|(a, b)| a != b).count() as f64 / m as f64;
        assert!(moved < 1.0 / 11.0 * 1.6, "moved {moved}");
        // Weights: 1:3.
        let w = maglev_table(&[mb(1, 1), mb(2, 3)], 1021);
        let ones = w.iter().filter(|&&x| x == 1).count() as f64;
        assert!((ones / 1021.0 - 0.25).abs() < 0.02, "{ones}");
        assert!(maglev_table(&[mb(1, 0)], 251).is_empty());
    }

    #[test]
    fn rr_skips_weight_zero_and_keeps_order() {
        assert_eq!(round_robin(&[c(4, 1), c(7, 0), c(2, 5)]), vec![4, 2]);
        assert!(round_robin(&[c(1, 0)]).is_empty());
    }
}
