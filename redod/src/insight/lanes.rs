//! Job-slot lanes for the timeline: a running target holds one lane from its start to its end,
//! so bars on one lane never overlap. A parent whose `.do` waits in a nested request keeps its
//! lane while its children run on others (it lent its job token back, not its lane), so the
//! lanes in use can exceed `-j`: the concurrency curve, not the lane count, says how many jobs
//! held a token.
//!
//! The lowest free lane is given out first, so a `-j4` build without nesting uses lanes 0–3.

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Lanes {
    /// Lanes below `next` that are free again.
    free: BTreeSet<u32>,
    /// The lowest lane never given out.
    next: u32,
}

impl Lanes {
    /// The lowest free lane, now taken.
    pub fn take(&mut self) -> u32 {
        if let Some(l) = self.free.pop_first() {
            return l;
        }
        let l = self.next;
        self.next = self.next.saturating_add(1);
        l
    }

    /// Gives `lane` back. Giving back a lane that is not taken changes nothing.
    pub fn give_back(&mut self, lane: u32) {
        if lane < self.next {
            self.free.insert(lane);
        }
    }
}

#[cfg(test)]
mod tests;
