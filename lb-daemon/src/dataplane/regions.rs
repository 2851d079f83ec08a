//! Allocation of the shared scheduling area (`SCHEDULE`) among services.
//!
//! A service's table is never rewritten in place: a new region is written
//! and the service is flipped to it in one map update. The old region is
//! released only at the next allocation round, by when no packet that
//! looked the service up before the flip can still be reading it.

/// A region: offset and length, in slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub off: u32,
    pub len: u32,
}

#[derive(Debug)]
pub struct Regions {
    /// Free ranges, sorted by offset, never adjacent.
    free: Vec<Region>,
    /// Released this round; free from the next.
    retiring: Vec<Region>,
}

impl Regions {
    pub fn new(capacity: u32) -> Self {
        Self {
            free: vec![Region {
                off: 0,
                len: capacity,
            }],
            retiring: Vec::new(),
        }
    }

    /// Starts an allocation round: what was released before becomes free.
    pub fn next_round(&mut self) {
        for r in std::mem::take(&mut self.retiring) {
            self.insert_free(r);
        }
    }

    /// First fit.
    pub fn alloc(&mut self, len: u32) -> Option<Region> {
        if len == 0 {
            return Some(Region { off: 0, len: 0 });
        }
        let i = self.free.iter().position(|r| r.len >= len)?;
        let r = self.free[i];
        if r.len == len {
            self.free.remove(i);
        } else {
            self.free[i] = Region {
                off: r.off + len,
                len: r.len - len,
            };
        }
        Some(Region { off: r.off, len })
    }

    /// Marks a region in use (adopting tables found in pinned maps).
    pub fn claim(&mut self, region: Region) -> bool {
        if region.len == 0 {
            return true;
        }
        let Some(i) = self
            .free
            .iter()
            .position(|r| r.off <= region.off && region.off + region.len <= r.off + r.len)
        else {
            return false;
        };
        let r = self.free.remove(i);
        if region.off > r.off {
            self.insert_free(Region {
                off: r.off,
                len: region.off - r.off,
            });
        }
        let end = region.off + region.len;
        if end < r.off + r.len {
            self.insert_free(Region {
                off: end,
                len: r.off + r.len - end,
            });
        }
        true
    }

    /// Releases a region at the end of this round.
    pub fn release(&mut self, region: Region) {
        if region.len > 0 {
            self.retiring.push(region);
        }
    }

    fn insert_free(&mut self, r: Region) {
        let i = self.free.partition_point(|f| f.off < r.off);
        self.free.insert(i, r);
        // Merge with neighbours.
        if i + 1 < self.free.len() && self.free[i].off + self.free[i].len == self.free[i + 1].off {
            self.free[i].len += self.free[i + 1].len;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].off + self.free[i - 1].len == self.free[i].off {
            self.free[i - 1].len += self.free[i].len;
            self.free.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_regions_come_back_only_next_round_and_merge() {
        let mut r = Regions::new(100);
        let a = r.alloc(40).unwrap();
        let b = r.alloc(40).unwrap();
        assert_eq!((a.off, b.off), (0, 40));
        assert!(r.alloc(40).is_none());
        r.release(a);
        assert!(r.alloc(30).is_none(), "reused before the round ended");
        r.next_round();
        r.release(b);
        r.next_round();
        assert_eq!(r.alloc(100).unwrap(), Region { off: 0, len: 100 });
    }

    #[test]
    fn claimed_regions_are_not_handed_out() {
        let mut r = Regions::new(100);
        assert!(r.claim(Region { off: 10, len: 20 }));
        assert!(!r.claim(Region { off: 15, len: 5 }));
        assert_eq!(r.alloc(10).unwrap().off, 0);
        assert_eq!(r.alloc(5).unwrap().off, 30);
    }
}
