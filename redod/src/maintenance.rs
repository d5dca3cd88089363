//! `redo-cleanup` and `redo-depfix` (docs/BEHAVIOUR.md §16): the two commands that change redo's state
//! without building. Both are refused while the daemon runs a build, whose temporaries, locks
//! and state files they would pull from under it.

use crate::fs::paths;
use crate::fs::umask::UmaskGate;
use crate::fs::{Fs, Kind};
use crate::ood;
use crate::query::Graph;
use crate::store::Error;
use crate::store::cache::{Hashes, Loaded, RecCache};
use crate::store::durable;
use crate::store::recfile::{Dep, Rec};
use redo_proto::CleanupWhat;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `redo-cleanup` removes of one entry, by where it is and its name.
fn doomed(what: &[CleanupWhat], in_redo_dir: bool, name: &[u8]) -> bool {
    let has = |w| what.contains(&w);
    let full = has(CleanupWhat::Full);
    if name.starts_with(b".redo.") {
        return has(CleanupWhat::Tmp) || full;
    }
    if !in_redo_dir {
        return false;
    }
    if full {
        // The marker that makes this directory a project top is the user's, not state.
        return name != b"top";
    }
    (has(CleanupWhat::Log) && (name.ends_with(b".log") || name.ends_with(b".log-rec")))
        || (has(CleanupWhat::Lock) && name.ends_with(b".lock"))
}

/// What `redo-cleanup` did.
#[derive(Default)]
pub struct Cleaned {
    /// Removed (or, on a dry run, to be removed), sorted.
    pub removed: Vec<PathBuf>,
    /// Built files `full` left in place because they were changed since redo built them.
    pub kept: Vec<PathBuf>,
}

/// With `full`, the file a state file describes goes too, so that the next build rebuilds it
/// instead of taking a stale output for a source: but only when it is exactly what redo built
/// (same size, inode and ctime, or same content). A file changed since is the user's.
fn built_output(rec_path: &Path) -> Option<(PathBuf, bool)> {
    let name = rec_path.file_name()?.as_bytes().strip_suffix(b".rec")?;
    let target = rec_path.parent()?.parent()?.join(OsStr::from_bytes(name));
    let rec = crate::store::recfile::parse(&fs::read(rec_path).ok()?).ok()?;
    let (stamp, hash) = rec.own(name)?;
    let now = fs::metadata(&target).ok()?;
    let now_stamp = crate::fs::Meta::from_std(&now).stamp;
    let unchanged = ood::same_file(&now_stamp, stamp, ood::Trust::Ctime)
        || hash.is_some_and(|h| crate::fs::hash_file(&target).is_ok_and(|now| now == *h));
    Some((target, unchanged))
}

/// Removes (or with `dry_run` only lists) redo's files beneath `root`. Symlinks are never
/// followed.
pub fn cleanup(root: &Path, what: &[CleanupWhat], dry_run: bool) -> Result<Cleaned, Error> {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, in_redo)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if dir != root => {
                tracing::debug!("skipping {}: {e}", dir.display());
                continue;
            }
            Err(e) => return Err(Error::io("read", &dir)(e)),
        };
        for e in entries {
            let e = e.map_err(Error::io("read", &dir))?;
            let path = e.path();
            let ft = e.file_type().map_err(Error::io("stat", &path))?;
            let name = e.file_name();
            if doomed(what, in_redo, name.as_bytes()) {
                if in_redo && what.contains(&CleanupWhat::Full) && ft.is_file() {
                    match built_output(&path) {
                        Some((out, true)) => {
                            if !dry_run {
                                fs::remove_file(&out).map_err(Error::io("remove", &out))?;
                            }
                            removed.push(out);
                        }
                        Some((out, false)) => kept.push(out),
                        None => {}
                    }
                }
                if !dry_run {
                    let r = if ft.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    r.map_err(Error::io("remove", &path))?;
                }
                removed.push(path);
            } else if ft.is_dir() && !in_redo {
                stack.push((path, name == ".redo"));
            }
        }
        // `full`: a .redo directory left empty goes too.
        if in_redo
            && what.contains(&CleanupWhat::Full)
            && !dry_run
            && fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none())
        {
            let _ = fs::remove_dir(&dir);
        }
    }
    removed.sort_by(|a, b| paths::bytes(a).cmp(paths::bytes(b)));
    kept.sort_by(|a, b| paths::bytes(a).cmp(paths::bytes(b)));
    Ok(Cleaned { removed, kept })
}

/// Everything `redo-depfix` needs.
pub struct Depfix<'a> {
    pub fs: &'a dyn Fs,
    /// Where the state files are rewritten: the disk `fs` reads.
    pub disk: &'a dyn crate::fs::Disk,
    pub recs: &'a RecCache,
    pub hashes: &'a Hashes,
    pub gate: &'a UmaskGate,
    pub umask: u32,
    pub sync: bool,
}

impl Depfix<'_> {
    /// Re-records the inode data of every ifchange dependency (the targets' own records
    /// included) whose content still has the recorded hash, in every state file beneath
    /// `root`. Files whose content changed keep their old record: they stay out of date.
    /// Returns the state files rewritten.
    pub fn run(&self, root: &Path) -> Result<Vec<PathBuf>, Error> {
        let graph = Graph {
            fs: self.fs,
            recs: self.recs,
            hashes: self.hashes,
            trust: ood::Trust::None,
            attempts: None,
        };
        let targets = graph.known_targets(root).map_err(Error::io("read", root))?;
        let mut rewritten = Vec::new();
        for t in targets {
            let Some((dir, name)) = paths::split(&t) else {
                continue;
            };
            let rec_path = crate::store::layout::rec_path(dir, name);
            let rec = match self
                .recs
                .load(self.fs, &rec_path)
                .map_err(Error::io("read", &rec_path))?
            {
                Loaded::Ok(r) => r,
                // Nothing trustworthy to fix in a damaged file; the next build rebuilds it.
                Loaded::Corrupt(_) | Loaded::Missing => continue,
            };
            let Some(fixed) = self.fix(dir, &rec)? else {
                continue;
            };
            let new_stamp = durable::write_rec(
                self.disk, &rec_path, &fixed, self.sync, self.gate, self.umask,
            )?;
            self.recs
                .store(rec_path.clone(), new_stamp, Arc::new(fixed));
            rewritten.push(rec_path);
        }
        Ok(rewritten)
    }

    /// `rec` (of a target in `dir`) with the inode data of its unchanged dependencies
    /// re-recorded; `None` when nothing needs fixing.
    pub fn fix(&self, dir: &Path, rec: &Rec) -> Result<Option<Rec>, Error> {
        let mut fixed = rec.clone();
        let mut changed = false;
        for d in &mut fixed.deps {
            let Dep::Ifchange {
                target,
                stamp,
                hash: Some(hash),
            } = d
            else {
                continue;
            };
            let abs = paths::resolve(dir, OsStr::from_bytes(target));
            let Some(now) = self.fs.stat(&abs).map_err(Error::io("stat", &abs))? else {
                continue;
            };
            if now.kind != Kind::File || now.stamp == *stamp {
                continue;
            }
            match self.fs.hash(&abs) {
                Ok(h) if h == *hash => {
                    *stamp = now.stamp;
                    self.hashes.store(abs, now.stamp, h);
                    changed = true;
                }
                Ok(_) => {}
                Err(e) => return Err(Error::io("read", &abs)(e)),
            }
        }
        Ok(changed.then_some(fixed))
    }
}

/// For messages: why a maintenance command must wait.
pub fn busy_message(jobs: usize, flights: usize) -> Option<String> {
    (jobs + flights > 0).then(|| format!("a build is running ({jobs} jobs, {flights} targets in progress); try again when it is done"))
}

#[cfg(test)]
mod tests;
