//! Counters for `redo --daemon-status`, and the one warning per build about errors.
//!
//! Errors never fail a build and are usually many at once (a server down fails every
//! lookup), so they are counted, and [`Stats::take_warning`] folds those since its last call
//! into one line for the build's end.

use super::error::CacheError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    uploads: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    errors: AtomicU64,
    /// Errors since the last warning, and the last one's message.
    unreported: Mutex<(u64, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub hits: u64,
    pub misses: u64,
    pub uploads: u64,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub errors: u64,
}

fn size(n: u64) -> String {
    match n {
        n if n >= 10 << 30 => format!("{} GiB", n >> 30),
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

impl Stats {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn uploaded(&self) {
        self.uploads.fetch_add(1, Relaxed);
    }
    pub(crate) fn down(&self, n: u64) {
        self.bytes_down.fetch_add(n, Relaxed);
    }
    pub(crate) fn up(&self, n: u64) {
        self.bytes_up.fetch_add(n, Relaxed);
    }

    pub(crate) fn error(&self, e: &CacheError) {
        tracing::debug!("remote cache: {e}");
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut u) = self.unreported.lock() {
            u.0 += 1;
            u.1 = e.to_string();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            uploads: self.uploads.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            bytes_up: self.bytes_up.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }

    /// `remote cache: 3 hits, 1 miss, 2 uploads, 12 KiB down, 40 B up, 0 errors`.
    pub fn stats_line(&self) -> String {
        let s = self.snapshot();
        let n = |k: u64, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        format!(
            "remote cache: {}, {}, {}, {} down, {} up, {}",
            n(s.hits, "hit", "hits"),
            n(s.misses, "miss", "misses"),
            n(s.uploads, "upload", "uploads"),
            size(s.bytes_down),
            size(s.bytes_up),
            n(s.errors, "error", "errors"),
        )
    }

    /// One line about the errors since the last call, `None` when there were none.
    pub fn take_warning(&self) -> Option<String> {
        let mut u = self.unreported.lock().ok()?;
        let (n, last) = std::mem::take(&mut *u);
        // What happened, and what the build did about it: each target the cache could not
        // serve was built here.
        match n {
            0 => None,
            1 => Some(format!(
                "shared cache not used, targets built here instead: {last}"
            )),
            n => Some(format!(
                "shared cache not used, targets built here instead ({n} errors; the last: {last})"
            )),
        }
    }
}

#[cfg(test)]
mod tests;
