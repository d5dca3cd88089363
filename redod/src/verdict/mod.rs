//! Verdicts: "this target was found up to date, and nothing it was decided from has changed
//! since", kept across sessions while the file watcher can vouch for every input.
//!
//! A full out-of-date check of a target reads its state file, its own stat, its ifcreate
//! candidates, the stat (and maybe the hash) of every dependency, and asks whether each
//! dependency is a source. With the watcher on, each of those answers is already in memory, but
//! asking them all is still ~5 µs per target: most of a large no-op build. A verdict replaces
//! the whole walk with one lookup.
//!
//! Invariants (why a held verdict is always the answer a full check would give):
//!
//! * A verdict is recorded only after a full check found the target up to date, only when the
//!   filesystem vouched for every answer that check used ([`crate::fs::Fs::vouches_stat`],
//!   [`crate::fs::Fs::vouches_name`]: it is still the filesystem's answer now, and any later
//!   change will be reported as an event), and
//!   only when every dependency that is itself a target holds a verdict too.
//! * Every event on a path drops the verdicts of the targets that read it
//!   ([`Verdicts::changed`]), and then, transitively, of every target that depends on those: a
//!   target whose dependency may now be out of date is never answered from memory. Paths are
//!   indexed by a 64-bit hash; a collision only drops more than needed.
//! * Events that cannot be tied to one path (queue overflow, a directory created, removed or
//!   moved, the watcher turned off) drop everything ([`Verdicts::clear`]).
//! * A change handled while a check ran may concern something the check had already read:
//!   the generation counter moves with every change handled, and a verdict is not recorded
//!   when it moved since the check began (the caller reads [`Verdicts::generation`] before it
//!   reads anything). A change made but not yet handled is handled before the next request
//!   (see [`crate::watch`]), after the verdict is in the index, so it drops it.
//! * A verdict is kept with the trust mode it was decided under and holds only for that mode.
//!
//! **Batches.** A `.do` such as `all.do` asks for the same long list of targets in every
//! build. When every target of such a nested `redo-ifchange` held a verdict, the dependency
//! records it produced are kept too, keyed by a BLAKE3 of everything they were computed from
//! (the asking target's directory, the `.do`'s directory, the trust mode, the names as given),
//! and they are dropped as soon as any member's verdict is: the index treats a batch as one
//! more reader of each member. The next identical request is then answered with one lookup.

use crate::fastmap::{HashMap, HashSet};
use crate::fs::{Hash, Meta};
use crate::ood::Trust;
use crate::ood::observed::{Observed, key};
use crate::store::recfile::Dep;
use crate::store::snapshot::VerdictEntry;
use crate::sync::lock;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Verdict {
    target: OsString,
    meta: Meta,
    /// The target's content hash, when its own record has it for exactly `meta`.
    hash: Option<Hash>,
    trust: Trust,
}

/// The key of a batch: BLAKE3 of what its records were computed from.
pub type BatchKey = [u8; 32];

struct Batch {
    key: BatchKey,
    /// Keys of the member targets, sorted.
    members: Box<[u64]>,
    records: Arc<[Dep]>,
}

/// The key of the batch of a nested request from a job of target directory `dir` whose `.do`
/// runs in `cwd`, naming `names` (as sent): everything its dependency records are computed
/// from.
pub fn batch_key(dir: &Path, cwd: &Path, trust: Trust, names: &[u8]) -> BatchKey {
    let mut h = blake3::Hasher::new();
    for part in [dir.as_os_str().as_bytes(), cwd.as_os_str().as_bytes()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(&[trust as u8]);
    h.update(names);
    *h.finalize().as_bytes()
}

/// A batch's id in the readers index (a collision only drops more than needed).
fn batch_id(key: &BatchKey) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_le_bytes(b)
}

#[derive(Default)]
struct Inner {
    /// Moves with every change handled.
    generation: u64,
    /// By the key of the target's path.
    held: HashMap<u64, Verdict>,
    /// By [`batch_id`].
    batches: HashMap<u64, Batch>,
    /// Input key → readers: which verdicts (by target key) and batches (by id) read which
    /// path or member. Kept lazily: a dropped verdict is not taken out of its other inputs'
    /// sets (an input's change drops all of its readers at once, and takes its set); an entry
    /// left there can only make a later change drop a verdict that no longer reads that input,
    /// never keep one that does. Sets, so that a verdict recorded again is not counted twice.
    readers: HashMap<u64, Readers>,
}

/// The readers of one input: most inputs (a target's own path, its state file, its source)
/// have one, a few (a `default.o.do`) thousands.
enum Readers {
    One(u64),
    Many(HashSet<u64>),
}

impl Readers {
    fn add(&mut self, reader: u64) {
        match self {
            Readers::One(r) if *r == reader => {}
            Readers::One(r) => {
                let mut set = HashSet::default();
                set.insert(*r);
                set.insert(reader);
                *self = Readers::Many(set);
            }
            Readers::Many(set) => {
                set.insert(reader);
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            Readers::One(r) => Box::new(std::iter::once(*r)),
            Readers::Many(set) => Box::new(set.iter().copied()),
        }
    }
}

impl Inner {
    /// The verdict on `path` (its key, and its path checked: keys may collide).
    fn verdict_on(&self, path: &Path) -> Option<&Verdict> {
        self.held
            .get(&key(path))
            .filter(|v| v.target.as_bytes() == path.as_os_str().as_bytes())
    }

    fn drop_verdict(&mut self, target: u64) -> bool {
        self.held.remove(&target).is_some()
    }

    fn drop_batch(&mut self, id: u64) {
        self.batches.remove(&id);
    }

    fn read_by(&mut self, input: u64, reader: u64) {
        match self.readers.get_mut(&input) {
            Some(r) => r.add(reader),
            None => {
                self.readers.insert(input, Readers::One(reader));
            }
        }
    }
}

#[derive(Default)]
pub struct Verdicts {
    inner: Mutex<Inner>,
    hits: AtomicUsize,
}

impl Verdicts {
    /// Read before a check reads anything; given back to [`Verdicts::record`].
    pub fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    /// The target's stat (and content hash, when known) if it holds a verdict for `trust`.
    pub fn holds(&self, target: &Path, trust: Trust) -> Option<(Meta, Option<Hash>)> {
        let inner = lock(&self.inner);
        let v = inner.verdict_on(target).filter(|v| v.trust == trust)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some((v.meta, v.hash))
    }

    /// A full check found `target` (whose stat is `meta`, content `hash`) up to date, having
    /// read `seen`. Returns whether the verdict was kept.
    pub fn record(
        &self,
        target: &Path,
        (meta, hash): (Meta, Option<Hash>),
        trust: Trust,
        seen: Observed,
        since: u64,
    ) -> bool {
        if !seen.vouched {
            return false;
        }
        let mut inner = lock(&self.inner);
        if inner.generation != since {
            return false;
        }
        let all_held = seen
            .targets
            .iter()
            .all(|t| inner.verdict_on(t).is_some_and(|v| v.trust == trust));
        if !all_held {
            return false;
        }
        let k = key(target);
        inner.drop_verdict(k);
        let mut inputs = seen.inputs;
        // A verdict reads its own target and its dependency targets' paths: their changes (and
        // their verdicts being dropped) reach it.
        inputs.push(k);
        inputs.extend(seen.targets.iter().map(|t| key(t)));
        inputs.sort_unstable();
        inputs.dedup();
        for i in &inputs {
            inner.read_by(*i, k);
        }
        inner.held.insert(
            k,
            Verdict {
                target: target.as_os_str().to_os_string(),
                meta,
                hash,
                trust,
            },
        );
        true
    }

    /// `path` changed: drop the verdicts that read it, and theirs that depend on them.
    pub fn changed(&self, path: &Path) {
        let mut inner = lock(&self.inner);
        inner.generation += 1;
        if inner.held.is_empty() {
            return;
        }
        let mut work = vec![key(path)];
        while let Some(k) = work.pop() {
            let Some(readers) = inner.readers.remove(&k) else {
                continue;
            };
            for t in readers.iter() {
                inner.drop_batch(t);
                if inner.drop_verdict(t) {
                    work.push(t);
                }
            }
        }
    }

    /// Something changed that cannot be tied to one path: nothing is vouched for any more.
    pub fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.generation += 1;
        inner.held.clear();
        inner.batches.clear();
        inner.readers.clear();
    }

    /// The records of the batch `key`, unless `busy` says one of its members (by key) is
    /// being rebuilt right now.
    pub fn batch(&self, key: &BatchKey, busy: impl Fn(&[u64]) -> bool) -> Option<Arc<[Dep]>> {
        let inner = lock(&self.inner);
        let b = inner
            .batches
            .get(&batch_id(key))
            .filter(|b| b.key == *key)?;
        if busy(&b.members) {
            return None;
        }
        self.hits.fetch_add(b.members.len(), Ordering::Relaxed);
        Some(b.records.clone())
    }

    /// Every member of the batch (target paths) held a verdict and `records` is what
    /// the request recorded. Kept only if those verdicts still hold and nothing changed since
    /// `since`.
    pub fn record_batch(
        &self,
        batch: BatchKey,
        members: &[&Path],
        records: Arc<[Dep]>,
        since: u64,
    ) -> bool {
        let mut inner = lock(&self.inner);
        if inner.generation != since {
            return false;
        }
        if !members.iter().all(|m| inner.verdict_on(m).is_some()) {
            return false;
        }
        let mut keys: Vec<u64> = members.iter().map(|m| key(m)).collect();
        keys.sort_unstable();
        keys.dedup();
        let id = batch_id(&batch);
        inner.drop_batch(id);
        for k in &keys {
            inner.read_by(*k, id);
        }
        inner.batches.insert(
            id,
            Batch {
                key: batch,
                members: keys.into_boxed_slice(),
                records,
            },
        );
        true
    }

    /// Every verdict held, with the keys of what it was decided from, for a snapshot
    /// ([`crate::store::snapshot`]). (An input the lazy index still lists for a verdict that
    /// no longer reads it is saved too: it can only drop the verdict earlier, never keep it.)
    pub fn export(&self) -> Vec<VerdictEntry> {
        let inner = lock(&self.inner);
        let mut inputs: HashMap<u64, Vec<u64>> = HashMap::default();
        for (input, readers) in &inner.readers {
            for r in readers.iter() {
                if inner.held.contains_key(&r) {
                    inputs.entry(r).or_default().push(*input);
                }
            }
        }
        inner
            .held
            .iter()
            .map(|(k, v)| {
                let mut i = inputs.remove(k).unwrap_or_default();
                i.sort_unstable();
                VerdictEntry {
                    target: PathBuf::from(&v.target),
                    meta: v.meta,
                    hash: v.hash,
                    trust: v.trust.to_byte(),
                    inputs: i,
                }
            })
            .collect()
    }

    /// Takes back verdicts a snapshot saved, when nothing changed since `since`. Only for a
    /// watcher that has taken back what they were decided from (see `watch::saved`): the
    /// caller then drops those that read what differs now ([`Verdicts::changed`]).
    pub fn restore(&self, entries: Vec<VerdictEntry>, since: u64) -> bool {
        let mut inner = lock(&self.inner);
        if inner.generation != since {
            return false;
        }
        inner.held.reserve(entries.len());
        let inputs: usize = entries.iter().map(|e| e.inputs.len()).sum();
        inner.readers.reserve(inputs / 2);
        for e in entries {
            let Some(trust) = Trust::from_byte(e.trust) else {
                continue;
            };
            let k = key(&e.target);
            for i in &e.inputs {
                inner.read_by(*i, k);
            }
            inner.held.insert(
                k,
                Verdict {
                    target: e.target.into_os_string(),
                    meta: e.meta,
                    hash: e.hash,
                    trust,
                },
            );
        }
        true
    }

    /// `held hits` for `--daemon-status` (a batch answered counts a hit per member).
    pub fn stats(&self) -> (usize, usize) {
        (
            lock(&self.inner).held.len(),
            self.hits.load(Ordering::Relaxed),
        )
    }
}

impl crate::fs::Listener for Verdicts {
    fn changed(&self, path: &Path) {
        Verdicts::changed(self, path);
    }

    fn all_changed(&self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests;
