//! What the daemon remembers between builds: parsed `.rec` files and content hashes.
//!
//! Both are keyed by path and validated by the file's current stat, so a stale entry is never
//! used: a `.rec` is re-read when its size, inode, ctime or mtime differ from when it was
//! parsed; a hash is reused only for the exact same inode data. This is what makes a no-op
//! build read almost nothing: one `stat` per file instead of a read and a parse.

use crate::fastmap::{PathMap, key, key_of};
use crate::fs::{Fs, Hash, Stamp};
use crate::store::recfile::{self, ParseError, Rec};
use crate::sync::lock;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub enum Loaded {
    Missing,
    Ok(Arc<Rec>),
    Corrupt(ParseError),
}

#[derive(Default)]
pub struct RecCache {
    map: Mutex<PathMap<(Stamp, Arc<Rec>)>>,
}

impl RecCache {
    /// The parsed state file at `path`, from memory when the file is unchanged on disk.
    pub fn load(&self, fs: &dyn Fs, path: &Path) -> io::Result<Loaded> {
        let Some(meta) = fs.stat(path)? else {
            lock(&self.map).remove(path.as_os_str());
            return Ok(Loaded::Missing);
        };
        if let Some((stamp, rec)) = lock(&self.map).get(path.as_os_str()) {
            if *stamp == meta.stamp {
                return Ok(Loaded::Ok(rec.clone()));
            }
        }
        let Some(bytes) = fs.read(path)? else {
            return Ok(Loaded::Missing);
        };
        match recfile::parse(&bytes) {
            Ok(rec) => {
                let rec = Arc::new(rec);
                lock(&self.map).insert(key(path), (meta.stamp, rec.clone()));
                Ok(Loaded::Ok(rec))
            }
            Err(e) => {
                lock(&self.map).remove(path.as_os_str());
                Ok(Loaded::Corrupt(e))
            }
        }
    }

    /// Remembers a state file the daemon has just committed, with its stat after the rename.
    pub fn store(&self, path: PathBuf, stamp: Stamp, rec: Arc<Rec>) {
        lock(&self.map).insert(key_of(path), (stamp, rec));
    }

    pub fn forget(&self, path: &Path) {
        lock(&self.map).remove(path.as_os_str());
    }

    /// A copy of every entry, for a snapshot ([`crate::store::snapshot`]).
    pub fn entries(&self) -> Vec<crate::store::snapshot::RecEntry> {
        lock(&self.map)
            .iter()
            .map(|(p, (s, r))| (PathBuf::from(p), *s, r.clone()))
            .collect()
    }

    /// Takes entries read from a snapshot, keeping those already here. Each is used, like any
    /// other, only while its file's stat is the one it carries.
    pub fn absorb(&self, entries: Vec<crate::store::snapshot::RecEntry>) {
        let mut map = lock(&self.map);
        map.reserve(entries.len());
        for (p, s, r) in entries {
            map.entry(key_of(p)).or_insert((s, r));
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Content hashes by path and exact inode data.
#[derive(Default)]
pub struct Hashes {
    map: Mutex<PathMap<(Stamp, Hash)>>,
}

impl Hashes {
    /// BLAKE3 of `path`, whose current stat is `stamp`. With `reuse` false (trust mode `none`)
    /// the file is always read: that mode promises to trust nothing but content.
    pub fn hash(&self, fs: &dyn Fs, path: &Path, stamp: &Stamp, reuse: bool) -> io::Result<Hash> {
        if reuse {
            if let Some((s, h)) = lock(&self.map).get(path.as_os_str()) {
                if s == stamp {
                    return Ok(*h);
                }
            }
        }
        let h = fs.hash(path)?;
        lock(&self.map).insert(key(path), (*stamp, h));
        Ok(h)
    }

    /// Remembers the hash of a file the daemon has just written.
    pub fn store(&self, path: PathBuf, stamp: Stamp, hash: Hash) {
        lock(&self.map).insert(key_of(path), (stamp, hash));
    }

    /// A copy of every entry, for a snapshot ([`crate::store::snapshot`]).
    pub fn entries(&self) -> Vec<crate::store::snapshot::HashEntry> {
        lock(&self.map)
            .iter()
            .map(|(p, (s, h))| (PathBuf::from(p), *s, *h))
            .collect()
    }

    /// Takes entries read from a snapshot, keeping those already here (see
    /// [`RecCache::absorb`]).
    pub fn absorb(&self, entries: Vec<crate::store::snapshot::HashEntry>) {
        let mut map = lock(&self.map);
        map.reserve(entries.len());
        for (p, s, h) in entries {
            map.entry(key_of(p)).or_insert((s, h));
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
