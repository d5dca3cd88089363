//! Build sessions and the one-build-per-target rule.
//!
//! * A **session** is one top-level request and everything it causes. It has a build UUID and
//!   a token pool. A target *built* in a session is up to date for the rest of it while its
//!   state file and its output still stand as committed (goredo's "`Build` is this run"; which
//!   is why `redo-always` runs once per session). Everything else is checked again at every
//!   request, as goredo does: a `.do` may change a source, or remove a directory of targets,
//!   and then ask for a target that reads it. A check of an unchanged target is one lookup
//!   when a verdict vouches for it ([`crate::verdict`]).
//! * A **flight** is "bring this target up to date", in progress. There is at most one per
//!   target in the whole daemon: a second request for the same target, from the same session or
//!   another terminal, joins it as a **waiter** and gets its result. A flight runs as its own
//!   task; when its last waiter goes away (Ctrl-C), it is cancelled, which kills its `.do`.
//! * A waiter is a client connection or another flight (a target whose check or whose `.do`
//!   needs this one). "Flight A waits for flight B" edges form the wait-for graph; an edge that
//!   would close a cycle is refused with an error naming the cycle instead of deadlocking.
//!   A flight's text goes to the nearest clients up this graph (a nested client counts when
//!   its stderr is redirected), its JSON events to the top-level ones (`Audience`).
//! * A **job** is a flight whose `.do` is running. Clients started by that `.do` name it
//!   (`REDO_JOB`) to record dependencies into it and to lend its token while they wait.
//!
//! The engine's API, for the request handlers above it and for `exec`: sessions
//! ([`Engine::new_session`]), bringing targets up to date ([`Engine::bring`],
//! [`Engine::ensure`]) with what is known of them ([`Want`]), jobs (registered by the
//! executor, found by nested requests: [`Engine::job`]) and recording into them
//! ([`Engine::record_into`]), the views the listings read, and the numbers of
//! `--daemon-status`. Its state is private. It runs `.do` files and reaches the shared cache
//! only through the [`Executor`] it is given, and a job's process only through its
//! [`JobProcess`]: it never spawns, signals or writes a file itself.

use crate::fastmap::{HashMap, PathMap, PathSet};
use crate::fs::paths::{self, show};
use crate::fs::umask::UmaskGate;
use crate::fs::{Fs, Hash, Meta};
use crate::insight::Recorder;
use crate::jobserver::{Token, Tokens};
use crate::ood::{self, Checker, Reason, Step, Walk};
use crate::output::{BuildEvent, TargetEvent};
use crate::output::{Msg, Sink, Style, secs};
use crate::settings::{Env, Settings};
use crate::store::cache::{Hashes, Loaded, RecCache};
use crate::store::recfile::{Dep, Rec, Records};
use crate::sync::lock;
use crate::verdict::Verdicts;
use crate::watch::Watcher;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

mod check;
mod flight;
mod job;
mod progress;
mod record;
mod session;
mod snapshot;
mod waits;
mod want;

#[cfg(test)]
mod tests;

pub(crate) use check::{Known, Now, Reported, not_ours_warning};
pub(crate) use flight::{Flight, Origin, Waiter};
#[cfg(test)]
pub(crate) use job::NoProcess;
pub(crate) use job::{Job, JobHandle, JobProcess};
pub(crate) use progress::{LastBuild, RunningDo, targets_key};
pub(crate) use record::Batch;
pub(crate) use session::Session;
use waits::{Attach, Tables, wait_landed};
pub(crate) use want::Want;

/// How a flight ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    Built,
    /// Already reported to the flight's clients.
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn ok(self) -> bool {
        matches!(self, Outcome::UpToDate | Outcome::Built)
    }
}

/// A job that ran to a successful commit, or a target left alone.
pub enum Ran {
    /// `do_rel`: the `.do` relative to the target's directory, when a `default*.do` (shown in
    /// the completion line); `do_path`: the `.do`, absolute (for events).
    ///
    /// `cached`: the output came from the shared cache ([`crate::remote`]), no `.do` ran.
    Built {
        took: Duration,
        do_rel: Option<PathBuf>,
        do_path: PathBuf,
        cached: bool,
    },
    /// Not rebuilt, and that is a success: externally modified (with a warning), or built by
    /// another process holding its lock in this session.
    Kept,
}

/// Why a target failed. Printed once, by the flight, as
/// `err  <target>[ (<do>)][ (<secs>)]: <cause>`.
#[derive(Debug)]
pub struct JobError {
    /// What went wrong, as the executor typed it (`exec`'s error): the engine only shows it.
    pub cause: Box<dyn std::error::Error + Send + Sync>,
    pub took: Option<Duration>,
    pub do_rel: Option<PathBuf>,
    /// The `.do`, absolute, once found.
    pub do_path: Option<PathBuf>,
    /// The `.do`'s exit status, when it exited with one other than 0.
    pub exit_code: Option<i32>,
}

impl JobError {
    /// A failure before any `.do` was found.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError {
            cause: Box::new(cause),
            took: None,
            do_rel: None,
            do_path: None,
            exit_code: None,
        }
    }
}

/// Runs the `.do` of a flight's target and commits the result. The daemon's executor spawns
/// processes and holds the shared caches (`exec::Processes`, wired in by `daemon`: the engine
/// knows only this trait); the engine's unit tests use a scripted one over an in-memory
/// filesystem, so every orchestration decision is tested without disk or processes.
pub trait Executor: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        flight: &'a Arc<Flight>,
    ) -> BoxFuture<'a, Result<Ran, JobError>>;

    /// `target` is likely to be built next, after the one now being brought up to date (a
    /// request building its targets one after another, [`Want::then`]): what its build will
    /// ask for (its entry in the shared cache) may be asked for now. Nothing by default.
    fn prefetch(&self, _engine: &Engine, _session: &Session, _origin: &Origin, _target: &Path) {}
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct Engine {
    /// The disk (or the in-memory tree of the unit tests).
    fs: Arc<dyn Fs>,
    /// The file-change accelerator, when running; sessions use `watched` then.
    watcher: Option<Arc<Watcher>>,
    watched: Option<Arc<dyn Fs>>,
    /// Up-to-date verdicts ([`crate::verdict`]): the watcher's, or a unit test's.
    verdicts: Option<Arc<Verdicts>>,
    exec: Arc<dyn Executor>,
    recs: RecCache,
    hashes: Hashes,
    umask: UmaskGate,
    /// The daemon's socket, exported to every `.do`.
    socket: PathBuf,
    /// The runtime directory: sessions' jobserver FIFOs.
    rundir: Option<PathBuf>,
    tables: Mutex<Tables>,
    ids: AtomicU64,
    /// What the last attempt of a target that failed (or was stopped) had declared: its `.do`
    /// lookup and nested requests. `--watch` watches these too, so that fixing a target that
    /// never built triggers a round. Only failed targets are here: a commit removes its own.
    attempts: Mutex<HashMap<PathBuf, Vec<Dep>>>,
    /// What the last build of each set of targets did, for the status line's estimates.
    last_builds: progress::LastBuilds,
}

impl Engine {
    pub fn new(
        fs: Arc<dyn Fs>,
        exec: Arc<dyn Executor>,
        socket: PathBuf,
        rundir: Option<PathBuf>,
        umask: u32,
    ) -> Arc<Engine> {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        // Job ids start at a random point so that a REDO_JOB left over from another daemon
        // instance does not name a job of this one.
        let start = u64::from_le_bytes(seed) >> 16;
        Arc::new(Engine {
            fs,
            watcher: None,
            watched: None,
            verdicts: None,
            exec,
            recs: RecCache::default(),
            hashes: Hashes::default(),
            attempts: Mutex::default(),
            last_builds: Default::default(),
            umask: UmaskGate::new(umask),
            socket,
            rundir,
            tables: Mutex::new(Tables::default()),
            ids: AtomicU64::new(start),
        })
    }

    /// The same engine with the file-change accelerator on (built before it is shared).
    pub fn with_watcher(mut self: Arc<Self>, watcher: Arc<Watcher>) -> Arc<Self> {
        if let Some(e) = Arc::get_mut(&mut self) {
            e.watched = Some(Arc::new(crate::watch::WatchedFs::new(watcher.clone())));
            let verdicts = Arc::new(Verdicts::default());
            watcher.listen(verdicts.clone());
            e.verdicts = Some(verdicts);
            e.watcher = Some(watcher);
        }
        self
    }

    /// Verdicts without a watcher: for an in-memory filesystem that vouches for itself, whose
    /// test reports its changes to them.
    #[cfg(test)]
    pub fn with_verdicts(mut self: Arc<Self>, verdicts: Arc<Verdicts>) -> Arc<Self> {
        if let Some(e) = Arc::get_mut(&mut self) {
            e.verdicts = Some(verdicts);
        }
        self
    }

    /// A new top-level request's session: its filesystem (the watcher's, synced, unless the
    /// request turned it off), the verdicts it may use, `tokens`, and the recorder its flights
    /// feed when the request asked for `--timings` or `--trace`.
    pub(crate) fn new_session(
        &self,
        settings: &Settings,
        tokens: Tokens,
        insight: Option<Arc<Recorder>>,
    ) -> Arc<Session> {
        let (fs, watched) = match self.synced(settings) {
            Some(w) => (w.clone(), true),
            None => (self.fs.clone(), false),
        };
        // Only a session that syncs with the watcher before it reads anything may use its
        // verdicts (or any session of an engine without a watcher: a unit test's).
        let verdicts = match (&self.watcher, watched) {
            (Some(_), false) => None,
            _ => self.verdicts.clone(),
        };
        let mut session = Session::new(tokens, fs, watched, verdicts);
        session.insight = insight;
        Arc::new(session)
    }

    /// The watcher's filesystem, synced with every change made so far, when it runs and
    /// `settings` do not turn it off.
    fn synced(&self, settings: &Settings) -> Option<&Arc<dyn Fs>> {
        match (&self.watched, &self.watcher) {
            (Some(w), Some(watcher)) if !settings.no_watch && watcher.enabled() => {
                watcher.sync();
                Some(w)
            }
            _ => None,
        }
    }

    /// Handles every change made so far before `session` reads anything more (see
    /// [`crate::watch`]): when a nested request arrives, and when a `.do` exits, since what
    /// that process changed is then only queued.
    pub fn sync_watcher(&self, session: &Session) {
        if let (true, Some(w)) = (session.watched, &self.watcher) {
            w.sync();
        }
    }

    /// The daemon wrote (or created, or removed) `path`: what the watcher knows of it is
    /// stale. Its event comes later; the next check in this very request must not wait for it.
    pub fn wrote(&self, path: &Path) {
        if let Some(w) = &self.watcher {
            w.forget(path);
        }
    }

    /// The file-change accelerator, when it runs (`--watch`, `--daemon-watch`).
    pub(crate) fn watcher(&self) -> Option<&Arc<Watcher>> {
        self.watcher.as_ref()
    }

    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Running jobs and flights: the daemon is busy while either is non-zero.
    pub fn activity(&self) -> (usize, usize) {
        let t = lock(&self.tables);
        (t.jobs.len(), t.flights.len())
    }

    /// The plain disk (or the unit tests' tree), never the watcher's memory: what the
    /// listings and the maintenance commands read.
    pub(crate) fn fs(&self) -> &dyn Fs {
        &*self.fs
    }

    /// Parsed state files, kept across builds.
    pub(crate) fn recs(&self) -> &RecCache {
        &self.recs
    }

    /// Content hashes, kept across builds.
    pub(crate) fn hashes(&self) -> &Hashes {
        &self.hashes
    }

    /// The gate every file and process the daemon makes for a request goes through, with
    /// that request's umask.
    pub(crate) fn umask(&self) -> &UmaskGate {
        &self.umask
    }

    /// The daemon's socket, exported to every `.do`.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The runtime directory, where sessions make their jobserver FIFOs.
    pub(crate) fn rundir(&self) -> Option<&Path> {
        self.rundir.as_deref()
    }

    /// What the last attempts of the targets that failed declared (see `attempts`).
    pub(crate) fn attempts(&self) -> HashMap<PathBuf, Vec<Dep>> {
        lock(&self.attempts).clone()
    }

    /// `target` landed (committed, built or fetched): what an earlier failed attempt
    /// declared no longer matters.
    pub(crate) fn landed(&self, target: &Path) {
        lock(&self.attempts).remove(target);
    }

    pub(crate) fn checker<'a>(&'a self, session: &'a Session, settings: &Settings) -> Checker<'a> {
        Checker {
            fs: &*session.fs,
            recs: Some(&self.recs),
            hashes: &self.hashes,
            trust: settings.trust,
        }
    }

    /// A read-only view for the listing commands and `--watch`'s inputs: through the
    /// watcher's memory, synced first (as a session's), unless the request turned it off. A
    /// watch round's end gathers the inputs of every target: from memory, not a stat each.
    pub(crate) fn graph(&self, settings: &Settings) -> crate::query::Graph<'_> {
        let fs = match self.synced(settings) {
            Some(w) => &**w,
            None => &*self.fs,
        };
        crate::query::Graph {
            fs,
            recs: &self.recs,
            hashes: &self.hashes,
            trust: settings.trust,
            attempts: None,
        }
    }

    /// Kills every running `.do`'s process group: the daemon is going away and no `.do` may
    /// outlive it unsupervised.
    pub fn kill_all(&self) {
        for job in lock(&self.tables).jobs.values() {
            job.process.kill();
        }
    }

    /// Numbers for `redo --daemon-status`.
    pub fn stats(&self) -> String {
        let watch = self
            .watcher
            .as_ref()
            .map(|w| w.stats_line(self.verdicts.as_ref().map_or((0, 0), |v| v.stats())))
            .unwrap_or_else(|| "file watcher: none\n".into());
        let t = lock(&self.tables);
        format!(
            "running jobs: {}\ntargets in flight: {}\ncached state files: {}\ncached hashes: {}\n",
            t.jobs.len(),
            t.flights.len(),
            self.recs.len(),
            self.hashes.len()
        ) + &watch
    }
}
