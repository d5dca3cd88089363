//! Entry lookups started ahead of need ([`super::RemoteCache::prefetch`]): at `-j1` (and for
//! `redo`'s forced targets) the targets of a request are built strictly one after another, so the next target's lookup,
//! asked while the current target's `.do` runs, is answered by the time that target wants it,
//! and the server's round trip leaves the build's critical path.
//!
//! A prefetched answer is what the cache held when it was asked, at most [`FRESH`] before it
//! is used: a hit is still matched against the checkout as it is then and its output verified
//! by SHA-256, so an old answer can only be a miss that a fresh one would not have been (the
//! same as another builder uploading just after a lookup). Answers nobody takes are dropped
//! (at most [`KEPT`] are pending), uncounted: a prefetch that turned out not to be needed is
//! not a miss.

use super::error::CacheError;
use super::format::Trace;
use super::key::ActionKey;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What reading an entry gave: its traces, no entry (`None`), or why it failed.
pub(super) type Answer = Result<Option<Vec<Trace>>, CacheError>;

/// Lookups pending or answered and not yet taken: a request asks for one next target at a
/// time, so a handful covers a few requests at `-j1` side by side.
pub const KEPT: usize = 8;
/// How old a prefetched answer may be when it is taken.
pub const FRESH: Duration = Duration::from_secs(10);

struct Pending {
    key: ActionKey,
    asked: Instant,
    answer: oneshot::Receiver<Answer>,
}

#[derive(Default)]
pub(super) struct Prefetches {
    pending: Mutex<VecDeque<Pending>>,
}

impl Prefetches {
    /// Registers a lookup of `key` asked at `asked`, unless one is pending already: the
    /// sender to answer it, or `None` (nothing to ask).
    pub(super) fn ask(&self, key: ActionKey, asked: Instant) -> Option<oneshot::Sender<Answer>> {
        let mut p = self.pending.lock().ok()?;
        if p.iter().any(|q| q.key == key) {
            return None;
        }
        if p.len() >= KEPT {
            p.pop_front();
        }
        let (tx, answer) = oneshot::channel();
        p.push_back(Pending { key, asked, answer });
        Some(tx)
    }

    /// The pending lookup of `key`, if one was asked at most [`FRESH`] before `now`; an older
    /// one is dropped.
    pub(super) fn take(&self, key: &ActionKey, now: Instant) -> Option<oneshot::Receiver<Answer>> {
        let mut p = self.pending.lock().ok()?;
        let i = p.iter().position(|q| q.key == *key)?;
        let q = p.remove(i)?;
        (now.saturating_duration_since(q.asked) <= FRESH).then_some(q.answer)
    }
}

#[cfg(test)]
mod tests;
