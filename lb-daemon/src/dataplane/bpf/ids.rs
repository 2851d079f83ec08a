//! Service and backend ids: the indexes of their map slots.

use std::collections::HashSet;

use crate::dataplane::DataplaneError;

/// Allocates small integer ids in turn, wrapping around: a released id is
/// handed out again only after every other free id has been, so a flow
/// still pointing at a removed service or backend practically never finds
/// a new one under the same id (and released ids wait at least one round).
#[derive(Debug)]
pub(super) struct Ids {
    cursor: u32,
    max: u32,
    in_use: HashSet<u32>,
    retiring: Vec<u32>,
    what: &'static str,
}

impl Ids {
    pub(super) fn new(max: u32, what: &'static str) -> Self {
        Self {
            cursor: 0,
            max,
            in_use: HashSet::new(),
            retiring: Vec::new(),
            what,
        }
    }

    pub(super) fn take(&mut self) -> Result<u32, DataplaneError> {
        if self.in_use.len() + self.retiring.len() >= self.max as usize {
            return Err(DataplaneError::Capacity {
                what: self.what,
                max: self.max,
            });
        }
        loop {
            let id = self.cursor;
            self.cursor = (self.cursor + 1) % self.max;
            if !self.in_use.contains(&id) && !self.retiring.contains(&id) {
                self.in_use.insert(id);
                return Ok(id);
            }
        }
    }

    /// Marks an id found in use in pinned maps.
    pub(super) fn claim(&mut self, id: u32) {
        self.in_use.insert(id);
        self.cursor = self.cursor.max((id + 1) % self.max);
    }

    pub(super) fn release(&mut self, id: u32) {
        if self.in_use.remove(&id) {
            self.retiring.push(id);
        }
    }

    /// A new round of installs: the ids released in the last one are free.
    pub(super) fn next_round(&mut self) {
        self.retiring.clear();
    }
}
