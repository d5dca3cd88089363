//! Running one `.do` and committing its result (docs/BEHAVIOUR.md §9).
//!
//! Order: a job token taken; the target's lock taken (`store::locks`; `.redo/` made when it is
//! missing); the external-modification guard; the `.do` looked up (missing candidates become
//! ifcreate records); its interpreter chosen (executable: itself; a `#!` line: that; else
//! `sh -e`); the temps journaled and its stdout captured in a memfd (nothing is created beside
//! the target before the run, so the `.do` may remove and re-create the target's directory);
//! the `.do` spawned in its own process group with the requester's environment and umask; the
//! `.rec`'s temporary made in `.redo/` while it starts up; its stderr relayed as it is written; then
//! the checks (`$1` touched unless made a directory, both stdout and `$3`) and the commit:
//! `.redo/` and the `.rec`'s temporary made again if the `.do` removed them, stdout written to
//! a temp beside the target, output fsynced and renamed (exchanged, when a directory is
//! involved) over the target (or the old file kept when the hash is the same), directory
//! fsynced, `.rec` written to its temporary, fsynced, renamed, directory fsynced.
//!
//! With `REDO_CACHE` set, the shared cache is asked between the `.do` lookup and the spawn
//! (the job token lent back meanwhile): a matching trace's output is fetched into a capture
//! and committed as a stdout would be, and no `.do` runs; after a real build's commit the
//! output is uploaded in the background ([`cached`]).
//!
//! Every resource is held by a guard, so dropping the future at any `.await` (the last client
//! waiting for this build went away) kills the process group, removes the temps, unlocks the
//! target and returns the token; nothing half-written is ever visible under a final name.
//!
//! Three views of the filesystem, each for a reason: the session's `Fs` (the watcher's memory
//! when watched) for what the out-of-date decision also reads (the target's stat, the `.do`
//! lookup), so both agree; the executor's [`Disk`] (through `store::durable`) for what only
//! the runner does (creating, writing, syncing, renaming: never cached; the unit tests' is in
//! memory and fails on demand); and after a write, `Engine::wrote` tells the watcher at once,
//! so the next check in the same request does not wait for the event.
//! From the engine it uses only services (the umask gate, the caches of state files and
//! hashes, job registration, the socket path); it never touches the scheduling tables. What
//! is the runner's own is kept here, in [`Processes`]: how each `.do` is run, the spawn
//! lock, the shared caches, the journal of running jobs; and each running `.do`'s process
//! ([`process`]), which the engine reaches only through [`crate::engine::JobProcess`].

use crate::engine::{Engine, Flight, JobHandle, Origin, Session};
use crate::fastmap::HashMap;
use crate::fs::paths::{self, show};
use crate::fs::{Disk, Hash, Kind, Meta, Stamp};
use crate::jobserver;
use crate::ood::{Trust, same_file};
use crate::output::Msg;
use crate::output::{BuildEvent, TargetEvent};
use crate::remote::Caches;
use crate::store::durable::{self, fsync_dir, stamp_of};
use crate::store::journal::{JobFiles, Registry};
use crate::store::layout::temp_path;
use crate::store::locks::{self, TryLock};
use crate::store::logs;
use crate::store::recfile::{Dep, Rec, Records};
use crate::sync::lock;
use crate::{dofile, fs::umask::UmaskGate, store::cache::Loaded};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

mod cached;
pub(crate) mod commands;
mod commit;
mod conclude;
mod error;
mod guard;
pub(crate) mod orphans;
pub(crate) mod process;
mod relay;
mod run;
mod spawn;
#[cfg(test)]
mod tests;

pub(crate) use crate::engine::{JobError, Ran};
use commit::{Commit, Output};
use conclude::{AfterRun, conclude, wait_for_other};
use error::Error;
use orphans::RunningJob;
use process::{DoProcess, RelayState};
use relay::{Gauge, relay_stderr};
#[cfg(test)]
use spawn::kernel_runs;
use spawn::{How, SpawnRequest, child_env, interpreter, spawn};

/// A job that failed before its `.do` was found.
fn before_run(cause: impl Into<Error>) -> JobError {
    JobError::new(cause.into())
}

/// Go's `ExitError` text, which goredo prints: `exit status 2`, `signal: killed`.
pub fn exit_text(st: ExitStatus) -> String {
    if let Some(c) = st.code() {
        return format!("exit status {c}");
    }
    let name = match st.signal() {
        Some(libc::SIGKILL) => "killed",
        Some(libc::SIGTERM) => "terminated",
        Some(libc::SIGINT) => "interrupt",
        Some(libc::SIGHUP) => "hangup",
        Some(libc::SIGSEGV) => "segmentation fault",
        Some(libc::SIGABRT) => "aborted",
        Some(libc::SIGPIPE) => "broken pipe",
        Some(libc::SIGQUIT) => "quit",
        Some(libc::SIGBUS) => "bus error",
        Some(s) => return format!("signal: {s}"),
        None => return "exited abnormally".into(),
    };
    format!("signal: {name}")
}

/// The daemon's executor: real `.do` processes on the real filesystem, and what running
/// them needs kept between jobs.
pub struct Processes {
    /// The shared build caches requests asked for (`REDO_CACHE`), one client per distinct
    /// configuration, so connections and counters outlive a build.
    caches: Arc<Caches>,
    /// How each `.do` seen is run, with the stat it was read at ([`How`]).
    interpreters: Mutex<HashMap<PathBuf, (Stamp, How)>>,
    /// Starts the `.do` processes, from a process of its own that holds no descriptor of the
    /// daemon's ([`crate::spawner`]).
    spawner: crate::spawner::Spawner,
    /// The `.do`'s stdin.
    devnull: File,
    /// Where running jobs are written down for the next daemon, should this one be killed
    /// (see [`orphans`]); set once at start-up.
    registry: OnceLock<Arc<Registry>>,
    /// What commits write through: the real disk (the unit tests' in-memory tree).
    disk: Arc<dyn Disk>,
}

impl Processes {
    /// The executor of a daemon whose own binary is `exe` (run as `exe spawner`).
    pub fn new(caches: Arc<Caches>, disk: Arc<dyn Disk>, exe: PathBuf) -> io::Result<Processes> {
        Ok(Processes {
            caches,
            disk,
            interpreters: Mutex::default(),
            spawner: crate::spawner::Spawner::new(exe),
            devnull: File::open("/dev/null")?,
            registry: OnceLock::new(),
        })
    }

    /// The first spawner is one forked at start-up ([`crate::spawner::fork_early`]).
    pub fn with_early_spawner(mut self, early: crate::spawner::Early) -> Processes {
        self.spawner = self.spawner.with_early(early);
        self
    }

    /// Starts the spawner process now, so that the first `.do` does not wait for it (within
    /// the runtime).
    pub fn warm(&self) -> io::Result<()> {
        self.spawner.warm()
    }

    /// Set once, at start-up, after the previous daemon's journal was swept.
    pub fn set_registry(&self, registry: Arc<Registry>) {
        let _ = self.registry.set(registry);
    }

    fn registry(&self) -> Option<&Arc<Registry>> {
        self.registry.get()
    }
}

impl crate::engine::Executor for Processes {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        flight: &'a Arc<Flight>,
    ) -> crate::engine::BoxFuture<'a, Result<Ran, JobError>> {
        Box::pin(run::run(self, engine, flight))
    }

    fn prefetch(&self, engine: &Engine, session: &Session, origin: &Origin, target: &Path) {
        cached::prefetch(self, engine, session, origin, target);
    }
}
