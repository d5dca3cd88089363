//! Out-of-date decisions (docs/BEHAVIOUR.md §11), as pure logic over [`Fs`].
//!
//! A target is up to date when its `.rec` exists and parses, the target file exists (or the
//! target was committed without output after a `redo-stamp`: its stamp is then its content),
//! no ifcreate dependency exists, it has no `always` record (the session layer builds those
//! once per session), and every ifchange dependency is unchanged: same size, and either the
//! same inode data under the trust mode or the same BLAKE3 (for a stamped dependency without
//! output, the same stamp). A dependency that is itself a target, present or deleted, is first
//! brought up to date (the caller does that when [`Walk::next`] returns [`Step::Visit`]) and
//! *then* compared: a dependency rebuilt to identical content leaves its dependants alone
//! (early cutoff).

use crate::fs::paths;
use crate::fs::{Fs, Hash, Kind, Meta, Stamp};
use crate::store::cache::{Hashes, Loaded, RecCache};
use crate::store::layout::rec_path;
use crate::store::recfile::{self, Dep, Rec};
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) mod observed;

pub(crate) use observed::Observed;

/// `REDO_INODE_TRUST`: which inode data allows skipping the content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Trust {
    /// Size and content only.
    None,
    /// Same size, inode and ctime ⇒ unchanged (the default).
    #[default]
    Ctime,
    /// Same size, inode and mtime ⇒ unchanged.
    Mtime,
}

impl Trust {
    /// Its number in a snapshot ([`crate::store::snapshot`]).
    pub fn to_byte(self) -> u8 {
        match self {
            Trust::None => 0,
            Trust::Ctime => 1,
            Trust::Mtime => 2,
        }
    }

    pub fn from_byte(b: u8) -> Option<Trust> {
        match b {
            0 => Some(Trust::None),
            1 => Some(Trust::Ctime),
            2 => Some(Trust::Mtime),
            _ => None,
        }
    }
}

/// goredo's `Inode.Equals`: the file is "the same" as when recorded.
pub fn same_file(now: &Stamp, then: &Stamp, trust: Trust) -> bool {
    if now.size != then.size || now.ino != then.ino {
        return false;
    }
    match trust {
        Trust::None => true,
        Trust::Ctime => now.ctime_sec == then.ctime_sec && now.ctime_nsec == then.ctime_nsec,
        Trust::Mtime => now.mtime_sec == then.mtime_sec && now.mtime_nsec == then.mtime_nsec,
    }
}

/// Why a target is out of date; shown with `-d`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    NoState,
    Corrupt(String),
    Missing,
    Created(PathBuf),
    Always,
    DepMissing(PathBuf),
    DepChanged(PathBuf),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoState => write!(f, "no state file"),
            Reason::Corrupt(e) => write!(f, "state file unreadable ({e})"),
            Reason::Missing => write!(f, "target does not exist"),
            Reason::Created(p) => write!(f, "{} now exists (ifcreate)", paths::show(p)),
            Reason::Always => write!(f, "always"),
            Reason::DepMissing(p) => write!(f, "{} does not exist", paths::show(p)),
            Reason::DepChanged(p) => write!(f, "{} changed", paths::show(p)),
        }
    }
}

/// Everything a decision needs besides the state file itself.
///
/// Nothing here remembers an answer for the rest of a build: every request asks the
/// filesystem again (goredo's rule: a `.do` may change a source, or remove a directory, and
/// then ask for a target that reads it). What makes that cheap is the filesystem itself: with
/// the file watcher, [`Fs`] answers stats and listings from memory.
pub struct Checker<'a> {
    pub fs: &'a dyn Fs,
    pub hashes: &'a Hashes,
    pub trust: Trust,
    /// Parsed state files, for the stamps of dependencies without output (none: read them).
    pub recs: Option<&'a RecCache>,
}

impl Checker<'_> {
    /// A source: a file that exists and that redo has no record of building (no state file).
    /// Sources are compared, never built, even when a `.do` could build them: redo never
    /// overwrites a file it did not write (goredo 1.x would rebuild one with its own `.do`; a
    /// `default*.do` never made one a target). Its requester warns when it has its own `.do`
    /// ([`Checker::own_do`]).
    pub fn is_source(&self, abs: &Path, now: Option<&Meta>) -> io::Result<bool> {
        if now.is_none() {
            return Ok(false);
        }
        let Some((dir, name)) = paths::split(abs) else {
            return Ok(false);
        };
        // No `.redo` directory (one listing lookup with the watcher): no state file either.
        Ok(!self.fs.has_build_name(dir, OsStr::new(".redo"))?
            || !self.fs.exists(&rec_path(dir, name))?)
    }

    /// Whether the file `abs` has a `.do` of its own (`NAME.do` beside it).
    pub fn own_do(&self, abs: &Path) -> io::Result<bool> {
        let Some((dir, name)) = paths::split(abs) else {
            return Ok(false);
        };
        let mut own_do = name.to_os_string();
        own_do.push(".do");
        self.fs.has_build_name(dir, &own_do)
    }

    /// The stat of a dependency, as the filesystem answers it now.
    pub fn stat(&self, abs: &Path) -> io::Result<Option<Meta>> {
        self.fs.stat(abs)
    }

    /// Whether an ifcreate dependency exists. Candidate `.do` files (the usual ifcreate
    /// records) are answered from the directory's listing when the filesystem keeps one.
    fn exists(&self, abs: &Path) -> io::Result<bool> {
        if let Some((dir, name)) = paths::split(abs) {
            if name.as_bytes().ends_with(b".do") {
                return self.fs.has_build_name(dir, name);
            }
        }
        self.fs.exists(abs)
    }

    /// Whether the filesystem vouches that `abs` does not exist, as [`Checker::exists`] found.
    fn absence_vouched(&self, abs: &Path) -> bool {
        if let Some((dir, name)) = paths::split(abs) {
            if name.as_bytes().ends_with(b".do") {
                return self.fs.vouches_name(dir, name, false);
            }
        }
        self.fs.vouches_stat(abs, None)
    }

    /// Whether the filesystem vouches, as of now, for what made a file of `dir` a source
    /// (see [`Checker::is_source`]): no state file (`rec`).
    fn source_vouched(&self, dir: &Path, rec: &Path) -> bool {
        self.fs.vouches_name(dir, OsStr::new(".redo"), false) || self.fs.vouches_stat(rec, None)
    }

    /// Whether a file that does not exist is a target (own `.do` or state file): it can be
    /// built back, so it is visited and then compared, never "missing" at once.
    pub fn buildable(&self, abs: &Path) -> io::Result<bool> {
        let Some((dir, name)) = paths::split(abs) else {
            return Ok(false);
        };
        let mut own_do = name.to_os_string();
        own_do.push(".do");
        Ok(self.exists(&dir.join(own_do))? || self.fs.exists(&rec_path(dir, name))?)
    }

    /// The stamp target `abs` stands for while it has no file ([`Rec::phony_stamp`]), from its
    /// state as it is now. A state file that is missing or does not parse has none.
    pub fn phony_stamp(&self, abs: &Path) -> io::Result<Option<Hash>> {
        let Some((dir, name)) = paths::split(abs) else {
            return Ok(None);
        };
        let path = rec_path(dir, name);
        let rec = match self.recs {
            Some(recs) => match recs.load(self.fs, &path)? {
                Loaded::Ok(r) => r,
                Loaded::Missing | Loaded::Corrupt(_) => return Ok(None),
            },
            None => match self.fs.read(&path)?.map(|b| recfile::parse(&b)) {
                Some(Ok(r)) => Arc::new(r),
                _ => return Ok(None),
            },
        };
        Ok(rec.phony_stamp(name.as_bytes()).copied())
    }

    /// Current BLAKE3 of a file whose stat is `stamp`.
    pub fn hash(&self, abs: &Path, stamp: &Stamp) -> io::Result<Hash> {
        self.hashes
            .hash(self.fs, abs, stamp, self.trust != Trust::None)
    }

    /// Whether a file recorded as (`stamp`, `hash`) differs now (`now` = its current stat).
    pub fn changed(
        &self,
        abs: &Path,
        now: Option<&Meta>,
        stamp: &Stamp,
        hash: Option<&Hash>,
    ) -> io::Result<bool> {
        let Some(now) = now else {
            return Ok(true);
        };
        if now.stamp.size != stamp.size {
            return Ok(true);
        }
        if self.trust != Trust::None && same_file(&now.stamp, stamp, self.trust) {
            return Ok(false);
        }
        let Some(recorded) = hash else {
            return Ok(true);
        };
        if now.kind == Kind::Link {
            return Ok(self.fs.hash_link(abs)? != *recorded);
        }
        Ok(self.hash(abs, &now.stamp)? != *recorded)
    }
}

/// One step of deciding whether a target is out of date.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    UpToDate,
    OutOfDate(Reason),
    /// This dependency is a target: bring it up to date, then call [`Walk::next`] again, which
    /// compares it with what was recorded.
    Visit(PathBuf),
}

/// Walks the state of target `dir/name` one dependency at a time.
pub struct Walk<'r> {
    rec: &'r Rec,
    dir: &'r Path,
    name: &'r OsStr,
    next_dep: usize,
    prelude_done: bool,
    visiting: bool,
    /// The target's own stat, taken once (`None` inside: it does not exist).
    target: Option<Option<Meta>>,
    /// What the decision read, when asked for ([`Walk::observing`]).
    observed: Option<Observed>,
}

impl<'r> Walk<'r> {
    pub fn new(rec: &'r Rec, dir: &'r Path, name: &'r OsStr) -> Walk<'r> {
        Walk {
            rec,
            dir,
            name,
            next_dep: 0,
            prelude_done: false,
            visiting: false,
            target: None,
            observed: None,
        }
    }

    /// Also collect what the decision reads, for a [`crate::verdict`].
    pub fn observing(mut self) -> Walk<'r> {
        self.observed = Some(Observed::default());
        self
    }

    /// What was read (after [`Step::UpToDate`]), if observing.
    pub fn take_observed(&mut self) -> Option<Observed> {
        self.observed.take()
    }

    /// The target's stat, once the walk has taken it, and its content hash when its own
    /// record vouches for exactly that stat.
    pub fn target_now(&self) -> Option<(Meta, Option<Hash>)> {
        // A link target's stat is the link's, not what its dependants compare.
        let meta = self.target.flatten().filter(|m| m.kind != Kind::Link)?;
        let hash = match self.rec.own(self.name.as_bytes()) {
            Some((stamp, hash)) if *stamp == meta.stamp => hash.copied(),
            _ => None,
        };
        Some((meta, hash))
    }

    fn saw(&mut self, path: &Path, vouched: bool) {
        if let Some(o) = &mut self.observed {
            o.inputs.push(observed::key(path));
            o.vouched &= vouched;
        }
    }

    /// The target's stat as the walk took it (`None`: not yet; `Some(None)`: it does not
    /// exist), to be handed to a later walk of the same state ([`Walk::with_target_meta`]).
    pub fn target_meta(&self) -> Option<Option<Meta>> {
        self.target
    }

    /// The target's stat, when the caller already has it.
    pub fn with_target_meta(mut self, meta: Option<Meta>) -> Walk<'r> {
        self.target = Some(meta);
        self
    }

    /// What is decided before any ifchange dependency: the target's own existence, its
    /// ifcreate records, `always`.
    fn prelude(&mut self, c: &Checker) -> io::Result<Option<Step>> {
        let mut meta = match self.target {
            Some(m) => m,
            None => c.fs.stat(&self.dir.join(self.name))?,
        };
        // A target that is a symbolic link is the link (it may point nowhere).
        if meta.is_none_or(|m| m.link) {
            meta = c.fs.lstat(&self.dir.join(self.name))?;
        }
        self.target = Some(meta);
        // No file is "does not exist" (goredo), unless the target was committed without
        // output and stamped: then the stamp is its content, and its dependencies decide.
        if meta.is_none() && self.rec.phony_stamp(self.name.as_bytes()).is_none() {
            return Ok(Some(Step::OutOfDate(Reason::Missing)));
        }
        if self.observed.is_some() {
            let own = self.dir.join(self.name);
            let rec = rec_path(self.dir, self.name);
            // The state file was read after the caller took the verdicts' generation, so
            // any change to it since is caught by that; it must be watched, though.
            let rec_now = c.fs.stat(&rec)?;
            let vouched = c.fs.vouches_stat(&own, meta.as_ref())
                && rec_now.is_some()
                && c.fs.vouches_stat(&rec, rec_now.as_ref());
            self.saw(&own, vouched);
            self.saw(&rec, vouched);
        }
        let rec = self.rec;
        for d in &rec.deps {
            if let Dep::Ifcreate { target } = d {
                let abs = paths::resolve(self.dir, OsStr::from_bytes(target));
                if c.exists(&abs)? {
                    return Ok(Some(Step::OutOfDate(Reason::Created(PathBuf::from(
                        OsStr::from_bytes(target),
                    )))));
                }
                if self.observed.is_some() {
                    self.saw(&abs, c.absence_vouched(&abs));
                }
            }
        }
        if self.rec.always() {
            return Ok(Some(Step::OutOfDate(Reason::Always)));
        }
        Ok(None)
    }

    pub fn next(&mut self, c: &Checker) -> io::Result<Step> {
        if !self.prelude_done {
            self.prelude_done = true;
            if let Some(step) = self.prelude(c)? {
                return Ok(step);
            }
        }
        let rec = self.rec;
        while let Some(dep) = rec.deps.get(self.next_dep) {
            let Dep::Ifchange {
                target,
                stamp,
                hash,
            } = dep
            else {
                self.next_dep += 1;
                continue;
            };
            let rel = || paths::shown_recorded(self.dir, target);
            let abs = paths::resolve(self.dir, OsStr::from_bytes(target));
            let own = target.as_slice() == self.name.as_bytes();
            let visited = std::mem::take(&mut self.visiting);
            let now = match (own, self.target) {
                (true, Some(m)) => m,
                _ => c.stat(&abs)?,
            };
            if !visited && !own {
                // A missing dependency that is a target is built back first, and then
                // compared: rebuilt to the same content (or stamp), it changes nothing.
                let target = match now {
                    None => c.buildable(&abs)?,
                    Some(_) => !c.is_source(&abs, now.as_ref())?,
                };
                if !target && now.is_none() {
                    return Ok(Step::OutOfDate(Reason::DepMissing(rel())));
                }
                if target {
                    self.visiting = true;
                    return Ok(Step::Visit(abs));
                }
            }
            if !own {
                match (recfile::recorded_stamp(stamp, hash.as_ref()), now) {
                    // Recorded as a stamped target without output: its stamp now is the content.
                    (Some(then), None) => {
                        if c.phony_stamp(&abs)?.as_ref() != Some(then) {
                            return Ok(Step::OutOfDate(Reason::DepChanged(rel())));
                        }
                        // What the stamp was read from. (It holds no verdict, having no file,
                        // so neither does this target: pushed to `targets` for that reason.)
                        if let (Some(_), Some((dir, name))) = (&self.observed, paths::split(&abs)) {
                            let rec = rec_path(dir, name);
                            let vouched = c.fs.stat(&rec)?.is_some_and(|m| {
                                c.fs.vouches_stat(&rec, Some(&m)) && c.fs.vouches_stat(&abs, None)
                            });
                            self.saw(&rec, vouched);
                            self.saw(&abs, vouched);
                            if let Some(o) = &mut self.observed {
                                o.targets.push(abs);
                            }
                        }
                        self.next_dep += 1;
                        continue;
                    }
                    (_, None) => return Ok(Step::OutOfDate(Reason::DepMissing(rel()))),
                    // It has a file now: whatever it holds, it is not what the stamp stood for.
                    (Some(_), Some(_)) => return Ok(Step::OutOfDate(Reason::DepChanged(rel()))),
                    (None, Some(_)) => {}
                }
            }
            if c.changed(&abs, now.as_ref(), stamp, hash.as_ref())? {
                return Ok(Step::OutOfDate(Reason::DepChanged(rel())));
            }
            if self.observed.is_some() && !own {
                let vouched = c.fs.vouches_stat(&abs, now.as_ref());
                if visited {
                    self.saw(&abs, vouched);
                    if let Some(o) = &mut self.observed {
                        o.targets.push(abs);
                    }
                } else if let Some((dir, name)) = paths::split(&abs) {
                    let rec = rec_path(dir, name);
                    let source = vouched && c.source_vouched(dir, &rec);
                    self.saw(&rec, source);
                    self.saw(&abs, source);
                } else {
                    self.saw(&abs, false);
                }
            }
            self.next_dep += 1;
        }
        Ok(Step::UpToDate)
    }
}

#[cfg(test)]
mod tests;
