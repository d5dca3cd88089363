//! The engine's memory across daemons ([`crate::store::snapshot`]): parsed state files and
//! hashes (each used only while its file's stat is unchanged), and what the file watcher
//! vouched for with the verdicts decided from it (taken back only as far as the disk confirms
//! it: see `watch::saved`). With them, the first build of a daemon just started is answered as
//! the hundredth is: a no-op from verdicts, not a full check of every target.

use super::*;
use crate::store::snapshot::{self, Contents};

/// What a restore took back, for the daemon's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub recs: usize,
    pub hashes: usize,
    /// Verdicts taken back, before those that read something changed were dropped.
    pub verdicts: usize,
    /// Paths whose stat or presence differs from what was saved.
    pub changed: usize,
}

impl Engine {
    /// Takes back what a snapshot holds. Must run before any request is served. The parsed
    /// state files are decoded only when the verdicts could not be taken back: a no-op answered
    /// by verdicts reads none, and one target found out of date reads its own from the disk.
    pub fn restore(&self, mut loaded: snapshot::Loaded) -> Restored {
        let mut r = Restored::default();
        let recs = std::mem::take(&mut loaded.recs);
        r.recs = recs.len();
        self.recs.absorb(recs);
        let restored = match (&self.watcher, &self.verdicts) {
            (Some(watcher), Some(verdicts)) => {
                let since = verdicts.generation();
                // Only the stats a verdict was decided from are worth taking again: each costs a
                // system call, and a cold start of a large project is mostly these.
                let inputs: crate::fastmap::HashSet<u64> = loaded
                    .verdicts
                    .iter()
                    .flat_map(|v| v.inputs.iter().copied())
                    .collect();
                let mut stats = std::mem::take(&mut loaded.stats);
                for g in &mut stats {
                    g.entries
                        .retain(|(p, _)| inputs.contains(&crate::ood::observed::key(p)));
                }
                stats.retain(|g| !g.entries.is_empty());
                let listings = std::mem::take(&mut loaded.listings);
                let saved = std::mem::take(&mut loaded.verdicts);
                let n = saved.len();
                let w = watcher.restore(stats, listings);
                let v = w.is_some() && verdicts.restore(saved, since);
                match w {
                    Some(changed) if v => {
                        r.verdicts = n;
                        r.changed = changed.len();
                        for p in &changed {
                            verdicts.changed(p);
                        }
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        // Without the verdicts, every target is checked: its parsed state file spares reading
        // and parsing it.
        if !restored {
            if let Ok((recs, hashes)) = loaded.state(|_| true) {
                r.recs += recs.len();
                r.hashes = hashes.len();
                self.recs.absorb(recs);
                self.hashes.absorb(hashes);
            }
        }
        r
    }

    /// What a snapshot keeps of this engine.
    pub fn export(&self) -> Contents {
        let (stats, listings) = match &self.watcher {
            Some(w) => w.export(),
            None => Default::default(),
        };
        Contents {
            recs: self.recs.entries(),
            hashes: self.hashes.entries(),
            stats,
            listings,
            verdicts: self
                .verdicts
                .as_ref()
                .map(|v| v.export())
                .unwrap_or_default(),
        }
    }
}
