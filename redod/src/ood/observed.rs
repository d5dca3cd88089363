//! What one out-of-date check read, for a verdict ([`crate::verdict`]) that may keep its
//! answer while the watcher vouches that none of it changed. It lives here, with the walk that
//! collects it, so that the decision depends on nothing above it.

use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The index key of a path (clean and absolute: byte equality is path equality).
pub fn key(path: &Path) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7265_646f).hash_one(path.as_os_str().as_bytes())
}

/// What a full check read, collected by [`super::Walk::observing`].
#[derive(Debug)]
pub struct Observed {
    /// Keys of every path whose state the decision depends on.
    pub inputs: Vec<u64>,
    /// Dependencies that are targets: the verdict holds only while theirs do.
    pub targets: Vec<PathBuf>,
    /// Whether the filesystem vouched for every input.
    pub vouched: bool,
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            inputs: Vec::new(),
            targets: Vec::new(),
            vouched: true,
        }
    }
}
