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

use crate::fastmap::{HashMap, PathMap, PathSet};
use crate::fs::paths::{self, show};
use crate::fs::umask::UmaskGate;
use crate::fs::{Fs, Hash, Meta};
use crate::jobserver::{Token, Tokens};
use crate::ood::{self, Checker, Reason, Step, Walk};
use crate::output::{BuildEvent, TargetEvent};
use crate::output::{Msg, Sink, Style, secs};
use crate::settings::{Env, Settings};
use crate::store::cache::{Hashes, Loaded, RecCache};
use crate::store::recfile::{Dep, Rec, Records};
use crate::sync::lock;
use crate::verdict::Verdicts;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

mod check;
mod flight;
mod job;
mod session;
mod waits;

#[cfg(test)]
mod tests;

pub(crate) use check::Want;
pub(crate) use check::not_ours_warning;
pub(crate) use check::{Known, Reported};
pub(crate) use flight::{Flight, Origin, Waiter};
pub(crate) use job::{Job, JobHandle, RelayState};
pub(crate) use session::Session;
use waits::{Attach, Tables, wait_landed};

/// The journal of running jobs, in the runtime directory (see [`crate::store::orphans`]).
pub const JOURNAL: &str = "jobs.journal";

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

/// Why a target failed. Printed once, by the flight, as `err  <target>[ (<do>)][ (<secs>)]: <msg>`.
#[derive(Debug)]
pub struct JobError {
    pub msg: String,
    pub took: Option<Duration>,
    pub do_rel: Option<PathBuf>,
    /// The `.do`, absolute, once found.
    pub do_path: Option<PathBuf>,
    /// The `.do`'s exit status, when it exited with one other than 0.
    pub exit_code: Option<i32>,
}

/// Runs the `.do` of a flight's target and commits the result. The daemon's executor spawns
/// processes (`exec::Processes`, wired in by `daemon`: the engine knows only this trait); the engine's unit tests use a scripted one over an
/// in-memory filesystem, so every orchestration decision is tested without disk or processes.
pub trait Executor: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        flight: &'a Arc<Flight>,
    ) -> BoxFuture<'a, Result<Ran, JobError>>;
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct Engine {
    /// The disk (or the in-memory tree of the unit tests).
    pub fs: Arc<dyn Fs>,
    /// The file-change accelerator, when running; sessions use `watched` then.
    pub watcher: Option<Arc<crate::watch::Watcher>>,
    pub(crate) watched: Option<Arc<dyn Fs>>,
    /// Up-to-date verdicts ([`crate::verdict`]): the watcher's, or a unit test's.
    pub(crate) verdicts: Option<Arc<Verdicts>>,
    pub(crate) exec: Arc<dyn Executor>,
    pub recs: RecCache,
    pub hashes: Hashes,
    pub umask: UmaskGate,
    /// The daemon's socket, exported to every `.do`.
    pub socket: PathBuf,
    /// The runtime directory: sessions' jobserver FIFOs, the registry of running jobs.
    pub(crate) rundir: Option<PathBuf>,
    /// Serialises spawning: while a `.do` is spawned, its session's jobserver descriptors are
    /// made inheritable, and no other spawn may see them.
    pub spawn_lock: Mutex<()>,
    pub(crate) tables: Mutex<Tables>,
    pub(crate) ids: AtomicU64,
    /// What the last attempt of a target that failed (or was stopped) had declared: its `.do`
    /// lookup and nested requests. `--watch` watches these too, so that fixing a target that
    /// never built triggers a round. Only failed targets are here: a commit removes its own.
    pub(crate) attempts: Mutex<HashMap<PathBuf, Vec<Dep>>>,
    /// How each `.do` seen is run, with the stat it was read at ([`crate::exec`]).
    pub(crate) interpreters: Mutex<HashMap<PathBuf, (crate::fs::Stamp, crate::exec::How)>>,
    pub(crate) registry: std::sync::OnceLock<Arc<crate::store::orphans::Registry>>,
    /// The shared build caches requests asked for (`REDO_CACHE`), one client per distinct
    /// configuration, so connections and counters outlive a build.
    pub caches: crate::remote::Caches,
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
            interpreters: Mutex::default(),
            registry: std::sync::OnceLock::new(),
            caches: crate::remote::Caches::default(),
            umask: UmaskGate::new(umask),
            socket,
            rundir,
            spawn_lock: Mutex::new(()),
            tables: Mutex::new(Tables::default()),
            ids: AtomicU64::new(start),
        })
    }

    /// The same engine with the file-change accelerator on (built before it is shared).
    pub fn with_watcher(mut self: Arc<Self>, watcher: Arc<crate::watch::Watcher>) -> Arc<Self> {
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

    /// The verdicts a session may use: only one that syncs with the watcher before it reads
    /// anything (or any session of an engine without a watcher, i.e. a unit test's).
    pub(crate) fn session_verdicts(&self, watched: bool) -> Option<Arc<Verdicts>> {
        match (&self.watcher, watched) {
            (Some(_), false) => None,
            _ => self.verdicts.clone(),
        }
    }

    /// A new session's view of the filesystem, synced with the watcher when it is used.
    pub(crate) fn session_fs(&self, settings: &Settings) -> (Arc<dyn Fs>, bool) {
        match (&self.watched, &self.watcher) {
            (Some(w), Some(watcher)) if !settings.no_watch && watcher.enabled() => {
                watcher.sync();
                (w.clone(), true)
            }
            _ => (self.fs.clone(), false),
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

    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Running jobs and flights: the daemon is busy while either is non-zero.
    pub fn activity(&self) -> (usize, usize) {
        let t = lock(&self.tables);
        (t.jobs.len(), t.flights.len())
    }

    /// Where running jobs are written down for the next daemon, should this one be killed
    /// (see [`crate::store::orphans`]); none in the unit tests.
    pub fn registry(&self) -> Option<&Arc<crate::store::orphans::Registry>> {
        self.registry.get()
    }

    /// Set once, at start-up, after the previous daemon's journal was swept.
    pub fn set_registry(&self, registry: Arc<crate::store::orphans::Registry>) {
        let _ = self.registry.set(registry);
    }

    pub(crate) fn checker<'a>(&'a self, session: &'a Session, settings: &Settings) -> Checker<'a> {
        Checker {
            fs: &*session.fs,
            recs: Some(&self.recs),
            hashes: &self.hashes,
            trust: settings.trust,
        }
    }

    /// SIGKILLs the process group of every running `.do`: the daemon is going away and no
    /// `.do` may outlive it unsupervised.
    pub fn kill_all(&self) {
        for job in lock(&self.tables).jobs.values() {
            let pgid = job.pgid.load(Ordering::Relaxed);
            if pgid > 0 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
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
            + &self
                .caches
                .stats_lines()
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
    }
}
