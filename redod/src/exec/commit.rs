//! Putting a job's output in place durably: a file, a symlink, a directory, or nothing;
//! through a [`Disk`], whose every step the unit tests fail in turn (`commit/tests.rs`).

use super::*;
use crate::fs::Disk;

/// What a `.do` produced, as [`conclude`] found it.
pub(super) enum Output {
    /// Nothing: the target is phony.
    Nothing,
    /// Its stdout, captured outside the target's directory ([`durable::capture`]), and its
    /// size; or an output fetched from the shared cache into such a capture, `executable` or
    /// not.
    Captured {
        file: File,
        size: u64,
        executable: bool,
    },
    /// `$3`: a file, a symbolic link or a directory, as stat'ed once the `.do` exited.
    Arg3(PathBuf, Meta),
    /// A directory it made at `$1` itself.
    DirInPlace,
}

/// The blocking tail of a successful job.
pub(super) struct Commit {
    pub(super) dir: PathBuf,
    pub(super) name: OsString,
    pub(super) output: Output,
    /// What is at the target's path now (`None`: nothing), as stat'ed once the `.do` exited.
    pub(super) target_kind: Option<Kind>,
    /// Where a stdout output is written out, beside the target (a journaled temp name).
    pub(super) stdout_tmp: PathBuf,
    pub(super) prev_hash: Option<Hash>,
    pub(super) sync: bool,
    pub(super) umask: u32,
    pub(super) rec_path: PathBuf,
    pub(super) build: String,
    pub(super) deps: Records,
    /// The state file as it is before the commit.
    pub(super) prev: Option<Arc<Rec>>,
    /// The state file's temporary, made while the `.do` ran (see [`durable::RecTemp`]).
    pub(super) rec_temp: Option<durable::RecTemp>,
}

/// What a commit writes through, and with which umask.
pub(super) struct Through<'a> {
    pub(super) disk: &'a dyn Disk,
    pub(super) gate: &'a UmaskGate,
}

pub(super) struct Committed {
    pub(super) rec: Arc<Rec>,
    /// The new state file's stat; `None` when the old one was left as it was.
    pub(super) rec_stamp: Option<Stamp>,
    pub(super) target: Option<(Stamp, Hash)>,
    pub(super) kept_same: bool,
}

impl Commit {
    /// Runs the commit where it costs least: a commit that syncs waits for the disk (often
    /// milliseconds), and a large output takes a while to hash and copy, so those run on the
    /// blocking pool and the daemon goes on serving; a small one without fsync
    /// (`REDO_NO_SYNC`) is a few system calls on data in the page cache, cheaper than the two
    /// thread hand-offs of the pool.
    pub(super) async fn run_async(
        self,
        disk: &Arc<dyn Disk>,
        engine: &Arc<Engine>,
    ) -> Result<Committed, Error> {
        const SMALL: u64 = 1 << 20;
        let size = match &self.output {
            Output::Captured { size, .. } => *size,
            Output::Arg3(_, m) if m.kind == Kind::File => m.stamp.size,
            // A directory or a link: no content to hash (a directory is synced only with fsync).
            Output::Arg3(..) | Output::Nothing | Output::DirInPlace => 0,
        };
        if !self.sync && size <= SMALL {
            return self.run(&Through {
                disk: &**disk,
                gate: engine.umask(),
            });
        }
        let (disk, eng) = (disk.clone(), engine.clone());
        tokio::task::spawn_blocking(move || {
            self.run(&Through {
                disk: &*disk,
                gate: eng.umask(),
            })
        })
        .await
        .map_err(Error::Commit)?
    }

    /// The new state in the state file's temporary: the one made while the `.do` ran, when
    /// there is one.
    fn begin_rec<'d>(
        &mut self,
        rec: &Rec,
        to: &Through<'d>,
    ) -> Result<durable::RecWriter<'d>, Error> {
        durable::RecWriter::begin_in(
            to.disk,
            self.rec_temp.as_mut(),
            &self.rec_path,
            rec,
            self.sync,
            to.gate,
            self.umask,
        )
        .map_err(Into::into)
    }

    /// Installs the output and the new state. With output, the order is: the new state in
    /// the state file's temporary (the pending record, durable when syncing), the target
    /// (renamed, or its times set when the content is the same), the state file (the
    /// temporary rewritten with the target's final stat and renamed over it). A state
    /// directory that cannot be written therefore fails before the old target is touched, and
    /// a crash between the two renames leaves a pending record that identifies the new target
    /// as ours ([`durable::interrupted_commit`]).
    /// One function: the order of the writes (output temp, `.rec` temp with its pending record,
    /// rename, rename) is the crash guarantee, and reads best in one place.
    pub(super) fn run(mut self, to: &Through<'_>) -> Result<Committed, Error> {
        let disk = to.disk;
        let target = self.dir.join(&self.name);
        let out = match std::mem::replace(&mut self.output, Output::Nothing) {
            Output::Nothing => return self.phony(&target, to),
            Output::DirInPlace => return self.directory(&target, None, to),
            Output::Arg3(p, m) if m.kind == Kind::Dir => {
                return self.directory(&target, Some(p), to);
            }
            Output::Arg3(p, m) => Ok((p, m)),
            Output::Captured {
                file, executable, ..
            } => Err((file, executable)),
        };
        let target_is_file = self.target_kind == Some(Kind::File);
        let mut out_stamp = None;
        let (out, hash, kept_same) = match out {
            Ok((p, m)) => {
                let hash = match m.kind {
                    Kind::Link => disk.hash_link(&p),
                    _ => disk.hash(&p),
                }
                .map_err(Error::io("read", &p))?;
                let kept = m.kind == Kind::File && target_is_file && self.prev_hash == Some(hash);
                out_stamp = Some(m.stamp);
                (Some(p), hash, kept)
            }
            Err((capture, executable)) => {
                let hash =
                    durable::hash_capture(&capture).map_err(|source| Error::CaptureRead {
                        of: show(&target),
                        source,
                    })?;
                if target_is_file && self.prev_hash == Some(hash) {
                    // Same content: nothing to write out.
                    (None, hash, true)
                } else {
                    let tmp = &self.stdout_tmp;
                    durable::copy_capture(disk, &capture, tmp, executable, to.gate, self.umask)?;
                    (Some(self.stdout_tmp.clone()), hash, false)
                }
            }
        };
        // The target's own record, with the output's stat for now (a rename changes its ctime).
        let mut deps = std::mem::take(&mut self.deps).into_vec();
        deps.push(Dep::Ifchange {
            target: self.name.as_bytes().to_vec(),
            stamp: match out_stamp {
                Some(st) => st,
                None => stamp_of(disk, out.as_deref().unwrap_or(&target))?,
            },
            hash: Some(hash),
        });
        let mut rec = Rec {
            build: std::mem::take(&mut self.build),
            deps,
        };
        let writer = self.begin_rec(&rec, to)?;
        let install = || -> Result<(), Error> {
            match &out {
                Some(out) if !kept_same => {
                    // A link has no content of its own to sync: its directory's fsync is it.
                    let is_file = || {
                        let m = disk.lstat(out);
                        m.is_ok_and(|m| m.is_some_and(|m| m.kind == Kind::File))
                    };
                    if self.sync && is_file() {
                        disk.sync_path(out).map_err(Error::io("fsync", out))?;
                    }
                    // A file or a link (a directory went to `directory`) over what the
                    // target was when the `.do` exited.
                    let target_dir = self.target_kind.map(|k| k == Kind::Dir);
                    durable::replace_known(disk, out, false, &target, target_dir)?;
                }
                _ => {
                    // Same content: keep the old file, so dependants see nothing new.
                    if let Some(out) = &out {
                        let _ = disk.remove_file(out);
                    }
                    disk.set_times_now(&target)
                        .map_err(Error::io("set the times of", &target))?;
                }
            }
            Ok(())
        };
        if let Err(e) = install() {
            // Nothing was installed: the old state stands.
            writer.abandon();
            return Err(e);
        }
        // Installed: should anything fail from here on, the pending record stays, and proves
        // the new target ours.
        if self.sync {
            fsync_dir(disk, &self.dir)?;
        }
        let stamp = stamp_of(disk, &target)?;
        if let Some(Dep::Ifchange { stamp: own, .. }) = rec.deps.last_mut() {
            *own = stamp;
        }
        // Should this fail, the pending record stays: the new target is still known as ours.
        let rec_stamp = writer.finish(Some(&rec))?;
        Ok(Committed {
            rec: kept(rec),
            rec_stamp: Some(rec_stamp),
            target: Some((stamp, hash)),
            kept_same,
        })
    }

    /// No output: no target. An old file is removed; the target is phony now.
    pub(super) fn phony(mut self, target: &Path, to: &Through<'_>) -> Result<Committed, Error> {
        let had_target = match to.disk.remove_file(target) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            // Left in place, it would be a file the state does not claim.
            Err(e) => return Err(Error::io("remove", target)(e)),
        };
        if had_target && self.sync {
            // Gone for good before the state says there is no file: a crash must not bring
            // back a file the state does not claim, which the next build would take for the
            // user's.
            fsync_dir(to.disk, &self.dir)?;
        }
        let phony = Dep::Ifcreate {
            target: self.name.as_bytes().to_vec(),
        };
        // A phony target (`all`) runs in every build: when it declared exactly what its
        // state already says, only the `Build` line would change, which matters to nobody
        // outside this session (the daemon knows what it built), so the state file is
        // left alone instead of rewriting (and re-reading) a large one each time.
        let unchanged = |p: &Rec| {
            p.deps
                .split_last()
                .is_some_and(|(last, rest)| *last == phony && self.deps.same_as(rest))
        };
        if let Some(prev) = self.prev.take().filter(|p| !had_target && unchanged(p)) {
            return Ok(Committed {
                rec: prev,
                rec_stamp: None,
                target: None,
                kept_same: false,
            });
        }
        let mut deps = std::mem::take(&mut self.deps).into_vec();
        deps.push(phony);
        let rec = Rec {
            build: std::mem::take(&mut self.build),
            deps,
        };
        let rec_stamp = self.begin_rec(&rec, to)?.finish_or_abandon()?;
        Ok(Committed {
            rec: kept(rec),
            rec_stamp: Some(rec_stamp),
            target: None,
            kept_same: false,
        })
    }

    /// A directory target: made at `$3` (`from`, put in the target's place) or at `$1`. Its
    /// state has no record of its own: a directory's stat changes with every entry made in
    /// it, so it is up to date when its dependencies are (and rebuilt when it is missing),
    /// never "externally modified"; and a hash of a tree would cost a walk of it per check.
    pub(super) fn directory(
        mut self,
        target: &Path,
        from: Option<PathBuf>,
        to: &Through<'_>,
    ) -> Result<Committed, Error> {
        let disk = to.disk;
        let rec = Rec {
            build: std::mem::take(&mut self.build),
            deps: std::mem::take(&mut self.deps).into_vec(),
        };
        if self.sync {
            durable::sync_tree(disk, from.as_deref().unwrap_or(target))?;
        }
        let writer = self.begin_rec(&rec, to)?;
        if let Some(from) = &from {
            if let Err(e) = durable::replace(disk, from, target) {
                writer.abandon();
                return Err(e.into());
            }
        }
        if self.sync {
            if let Err(e) = fsync_dir(disk, &self.dir) {
                writer.abandon();
                return Err(e.into());
            }
        }
        let rec_stamp = writer.finish_or_abandon()?;
        Ok(Committed {
            rec: kept(rec),
            rec_stamp: Some(rec_stamp),
            target: None,
            kept_same: false,
        })
    }
}

/// A committed state as the daemon keeps it (in its cache of parsed state files, for as long
/// as it lives): without the spare capacity its records were gathered with.
fn kept(mut rec: Rec) -> Arc<Rec> {
    rec.deps.shrink_to_fit();
    Arc::new(rec)
}

#[cfg(test)]
mod tests;
