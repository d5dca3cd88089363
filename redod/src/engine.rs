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
//! * A **job** is a flight whose `.do` is running. Clients started by that `.do` name it
//!   (`REDO_JOB`) to record dependencies into it and to lend its token while they wait.

use crate::cache::{Hashes, Loaded, RecCache};
use crate::fastmap::{HashMap, HashSet, PathMap, PathSet};
use crate::fsys::{Fs, Hash, Meta};
use crate::jobs::{Token, Tokens};
use crate::ood::{self, Checker, Reason, Step, Walk};
use crate::output::{Kind, Sink, secs};
use crate::paths::{self, show};
use crate::runner::{JobError, Ran};
use crate::settings::{Env, Settings};
use crate::state::{Dep, Rec, Records};
use crate::umask::UmaskGate;
use crate::verdict::Verdicts;
use crate::{logs, maintenance, query};
use futures_util::StreamExt;
use redo_proto::{Build, BuildMode, Command, Request};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The journal of running jobs, in the runtime directory (see [`crate::orphans`]).
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

pub struct Session {
    pub uuid: String,
    /// The filesystem as this session sees it: the watcher's cache, or the plain disk.
    pub fs: Arc<dyn Fs>,
    /// Whether `fs` is the watcher's (requests then sync with it first).
    pub watched: bool,
    pub tokens: Tokens,
    /// Verdicts it may answer from and record into (see [`crate::verdict`]).
    pub verdicts: Option<Arc<Verdicts>>,
    pub progress: Progress,
    /// Targets whose `.do` this session ran and committed (see [`Engine::built_here`]).
    built: Mutex<PathSet>,
}

/// Job counts of a session, for the status line.
#[derive(Default)]
pub struct Progress {
    /// Waiting for a job token.
    pub queued: AtomicUsize,
    /// `.do` running.
    pub running: AtomicUsize,
    /// Finished (built or failed).
    pub done: AtomicUsize,
    /// Targets built, and targets that failed, for the session summary.
    pub built: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Progress {
    /// goredo's status line: `run: R wait: W done: D`.
    pub fn line(&self) -> String {
        format!(
            "run: {} wait: {} done: {}",
            self.running.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed)
        )
    }
}

impl Session {
    pub fn new(
        tokens: Tokens,
        fs: Arc<dyn Fs>,
        watched: bool,
        verdicts: Option<Arc<Verdicts>>,
    ) -> Session {
        Session {
            uuid: new_uuid(),
            fs,
            watched,
            tokens,
            verdicts,
            progress: Progress::default(),
            built: Mutex::new(PathSet::default()),
        }
    }

    fn was_built(&self, target: &Path) -> bool {
        lock(&self.built).contains(target.as_os_str())
    }

    fn mark_built(&self, target: &Path) {
        lock(&self.built).insert(target.into());
    }
}

/// A random version-4 UUID, formatted as goredo does.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The request a flight works for: whose environment, umask and options its `.do` gets.
pub struct Origin {
    pub cwd: PathBuf,
    pub env: Env,
    pub umask: u32,
    pub client_dir: PathBuf,
    pub settings: Settings,
    /// `-x`: trace the `.do` files this request starts.
    pub trace: bool,
}

#[derive(Clone)]
pub enum Waiter {
    Client(Sink),
    /// A flight checking its dependencies (before its job holds a token).
    Flight(Arc<Flight>),
    /// A running `.do`'s nested request.
    Job(Arc<Job>),
}

impl Waiter {
    /// The flight on whose behalf this waits, if any.
    fn flight(&self) -> Option<&Arc<Flight>> {
        match self {
            Waiter::Client(_) => None,
            Waiter::Flight(f) => Some(f),
            Waiter::Job(j) => Some(&j.flight),
        }
    }

    fn sinks(&self) -> Vec<Sink> {
        match (self, self.flight()) {
            (_, Some(f)) => f.sinks(),
            (Waiter::Client(s), None) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    fn target(&self) -> Option<&Path> {
        self.flight().map(|f| f.target.as_path())
    }

    /// About to wait for a flight: a job gives its token back meanwhile, so that what it
    /// waits for can run (at `-j1` nothing else could). Only then: a nested request answered
    /// on the spot (sources, up-to-date targets: the usual case) keeps the token, and no
    /// other job sneaks in to pile up behind it.
    fn will_wait(&self) {
        if let Waiter::Job(j) = self {
            j.lend_token();
        }
    }
}

pub struct Flight {
    pub target: PathBuf,
    pub dir: PathBuf,
    pub name: OsString,
    /// The target as the requester named it, for messages.
    pub display: String,
    /// Indentation depth of its messages (`REDO_LEVEL` of the requester).
    pub level: usize,
    pub force: bool,
    pub session: Arc<Session>,
    pub origin: Arc<Origin>,
    waiters: Mutex<Vec<(u64, Waiter)>>,
    result: watch::Sender<Option<Outcome>>,
    /// Set when the `.do` got its job token (see [`wait_landed`]).
    started: watch::Sender<bool>,
    cancel: CancellationToken,
}

impl Flight {
    /// The `.do` has its job token: the next target of the requests waiting for this one may
    /// start (argument order, see [`wait_landed`]).
    pub fn mark_started(&self) {
        self.started.send_replace(true);
    }

    /// Every client that should see this flight's output: its own client waiters and, through
    /// flights waiting for it, theirs.
    pub fn sinks(&self) -> Vec<Sink> {
        let mut out: Vec<Sink> = Vec::new();
        let mut stack: Vec<Waiter> = lock(&self.waiters).iter().map(|(_, w)| w.clone()).collect();
        let mut seen_flights = 0usize;
        while let Some(w) = stack.pop() {
            match (w.flight(), &w) {
                (None, Waiter::Client(s)) => {
                    if !out.iter().any(|o| o.id == s.id) {
                        out.push(s.clone());
                    }
                }
                (None, _) => {}
                (Some(f), _) => {
                    seen_flights += 1;
                    // The wait-for graph is acyclic; the bound only guards against a bug.
                    if seen_flights < 100_000 {
                        stack.extend(lock(&f.waiters).iter().map(|(_, w)| w.clone()));
                    }
                }
            }
        }
        out
    }

    /// A redo message at this flight's level (a warning is also an event).
    pub fn say(&self, kind: Kind, text: &str) {
        for s in self.sinks() {
            s.message(kind, self.level, text);
            if kind == Kind::Warn {
                s.event(serde_json::json!({"type": "warning", "target": s.rel(&self.target), "message": text}));
            }
        }
    }

    /// A JSON event, built per client (paths are relative to each client's directory), for
    /// the clients that asked for events.
    pub fn event(&self, make: impl Fn(&Sink) -> serde_json::Value) {
        for s in self.sinks() {
            if s.style.events {
                s.event(make(&s));
            }
        }
    }

    /// The `.do`'s stderr as `stderr` events, one per line (`continued`: the first line
    /// continues one already sent).
    pub fn stderr_events(&self, chunk: &[u8], continued: bool) {
        let sinks: Vec<Sink> = self
            .sinks()
            .into_iter()
            .filter(|s| s.style.events)
            .collect();
        if sinks.is_empty() {
            return;
        }
        let mut first = true;
        for line in chunk.split_inclusive(|&b| b == b'\n') {
            let complete = line.ends_with(b"\n");
            let text =
                String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
            for s in &sinks {
                let mut ev = serde_json::json!({"type": "stderr", "target": s.rel(&self.target), "line": text});
                if first && continued {
                    ev["continued"] = true.into();
                }
                if !complete {
                    ev["partial"] = true.into();
                }
                s.event(ev);
            }
            first = false;
        }
    }

    /// Relayed `.do` stderr.
    pub async fn relay(&self, bytes: &bytes::Bytes) {
        for s in self.sinks() {
            s.stderr(bytes).await;
        }
    }

    /// `target` or `target (../default.o.do)`.
    pub fn name_with_do(&self, do_rel: Option<&Path>) -> String {
        match do_rel {
            Some(d) => format!("{} ({})", self.display, show(d)),
            None => self.display.clone(),
        }
    }
}

/// A running `.do`, addressable by nested clients through `REDO_JOB`.
pub struct Job {
    id: u64,
    pub flight: Arc<Flight>,
    records: Mutex<Records>,
    token: Mutex<Option<Token>>,
    /// Process group of the running `.do` (0 before it is spawned).
    pgid: AtomicI32,
    /// Asks the job's stderr relay to pass on everything the `.do` has written so far.
    flush: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
}

impl Job {
    /// A nested request is about to wait: give the `.do`'s token back meanwhile.
    fn lend_token(&self) {
        drop(lock(&self.token).take());
    }

    /// The nested request is done: the `.do` runs its own code again and needs a token.
    async fn reclaim_token(&self) {
        if lock(&self.token).is_some() {
            return;
        }
        let t = self.flight.session.tokens.acquire().await;
        let mut slot = lock(&self.token);
        if slot.is_none() {
            *slot = Some(t);
        }
    }

    fn record(&self, deps: impl IntoIterator<Item = Dep>) {
        lock(&self.records).extend(deps);
    }

    fn record_shared(&self, deps: Arc<[Dep]>) {
        lock(&self.records).share(deps);
    }

    /// Waits until the job's relay has passed on what its `.do` wrote to stderr before it
    /// started the nested request now being served: that output must reach the terminal before
    /// anything the nested build prints.
    async fn flush_stderr(&self) {
        let tx = lock(&self.flush).clone();
        if let Some(tx) = tx {
            let (done, wait) = oneshot::channel();
            if tx.send(done).await.is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wait).await;
            }
        }
    }
}

/// Unregisters a job when its `.do` is finished (or its flight dropped).
pub struct JobHandle {
    engine: Arc<Engine>,
    job: Arc<Job>,
}

impl JobHandle {
    pub fn id(&self) -> u64 {
        self.job.id
    }

    /// Where the job's stderr relay listens for flush requests.
    pub fn set_flush(&self, tx: mpsc::Sender<oneshot::Sender<()>>) {
        *lock(&self.job.flush) = Some(tx);
    }

    /// Remembers the `.do`'s process group, for [`Engine::kill_all`].
    pub fn set_pgid(&self, pgid: i32) {
        self.job.pgid.store(pgid, Ordering::Relaxed);
    }

    /// The records gathered so far (runner's own, then nested clients'), in order, for the
    /// commit.
    pub fn take_records(&self) -> Records {
        std::mem::take(&mut *lock(&self.job.records))
    }

    /// The records gathered so far, left in place.
    pub fn records(&self) -> Records {
        lock(&self.job.records).clone()
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        lock(&self.engine.tables).jobs.remove(&self.job.id);
        // Records a commit did not take belong to an attempt that did not land.
        let left = std::mem::take(&mut *lock(&self.job.records)).into_vec();
        let target = self.job.flight.target.clone();
        let mut attempts = lock(&self.engine.attempts);
        if left.is_empty() {
            attempts.remove(&target);
        } else {
            attempts.insert(target, left);
        }
        drop(attempts);
        drop(lock(&self.job.token).take());
    }
}

#[derive(Default)]
struct Tables {
    flights: PathMap<Arc<Flight>>,
    /// Wait-for graph: target → targets it waits for, each with how many waiters of that
    /// target wait for it (a multiset: two nested clients of one `.do` may want the same
    /// target). A map, not a list: `all` with 10 000 dependencies adds and removes 10 000 edges.
    waits: HashMap<PathBuf, HashMap<PathBuf, usize>>,
    jobs: HashMap<u64, Arc<Job>>,
}

impl Tables {
    /// If `from` waiting for `to` would close a cycle, the cycle as `from → to → … → from`.
    fn cycle(&self, from: &Path, to: &Path) -> Option<Vec<PathBuf>> {
        if from == to {
            return Some(vec![from.to_path_buf(), to.to_path_buf()]);
        }
        let mut parent: HashMap<&Path, &Path> = HashMap::default();
        let mut stack = vec![to];
        while let Some(n) = stack.pop() {
            for next in self.waits.get(n).into_iter().flat_map(HashMap::keys) {
                if parent.contains_key(next.as_path()) || next == to {
                    continue;
                }
                parent.insert(next, n);
                if next == from {
                    let mut path = vec![from.to_path_buf()];
                    let mut cur: &Path = from;
                    while let Some(p) = parent.get(cur) {
                        path.push(p.to_path_buf());
                        cur = p;
                    }
                    path.reverse();
                    path.insert(0, from.to_path_buf());
                    return Some(path);
                }
                stack.push(next);
            }
        }
        None
    }

    fn remove_edge(&mut self, from: &Path, to: &Path) {
        if let Some(v) = self.waits.get_mut(from) {
            if let Some(n) = v.get_mut(to) {
                *n -= 1;
                if *n == 0 {
                    v.remove(to);
                }
            }
            if v.is_empty() {
                self.waits.remove(from);
            }
        }
    }
}

/// Detaches a waiter from a flight when dropped; the flight is cancelled when it was the last.
struct Attached<'a> {
    engine: &'a Engine,
    flight: Arc<Flight>,
    id: u64,
    edge: Option<PathBuf>,
    /// A waiter of the flight, which works for it. `false`: a forced request only waiting
    /// for somebody else's build of the target to land before it runs its own.
    listening: bool,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        if let Some(from) = &self.edge {
            lock(&self.engine.tables).remove_edge(from, &self.flight.target);
        }
        if !self.listening {
            return;
        }
        let empty = {
            let mut w = lock(&self.flight.waiters);
            w.retain(|(id, _)| *id != self.id);
            w.is_empty()
        };
        if empty && self.flight.result.borrow().is_none() {
            self.flight.cancel.cancel();
        }
    }
}

enum Attach<'a> {
    Joined(Attached<'a>, watch::Receiver<Option<Outcome>>),
    TornDown(watch::Receiver<Option<Outcome>>),
    Cycle(Vec<PathBuf>),
}

/// Waits for a flight's result. `start` is the next target's [`Want::start`] gate of the
/// same request: opened (dropped) as soon as the flight's `.do` has its job token, so that
/// the request's targets start in argument order; at `-j 1` only when the result is in, so
/// that they are built strictly one after another.
async fn wait_landed(
    flight: &Flight,
    rx: &mut watch::Receiver<Option<Outcome>>,
    start: &mut Option<oneshot::Sender<()>>,
) -> Outcome {
    async fn landed(rx: &mut watch::Receiver<Option<Outcome>>) -> Outcome {
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(Outcome::Cancelled),
            Err(_) => Outcome::Cancelled,
        }
    }
    if start.is_some() && flight.session.tokens.limit() != Some(1) {
        let mut started = flight.started.subscribe();
        tokio::select! {
            o = landed(rx) => return o,
            _ = started.wait_for(|s| *s) => drop(start.take()),
        }
    }
    landed(rx).await
}

/// Starts a flight's task. A plain function with a boxed `Send` future: `ensure` starts
/// flights and a flight's check calls `ensure`, and spelling the type out here keeps the
/// compiler from chasing that loop when it proves the task `Send`.
fn spawn_flight(engine: Arc<Engine>, flight: Arc<Flight>) {
    let fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(async move { engine.fly(flight).await });
    tokio::spawn(fut);
}

/// What [`Engine::bring`] learnt of a target it did not rebuild: its stat (`None`: missing)
/// and, when a verdict knew it, its content hash. Recording it as a dependency then needs no
/// second look.
#[derive(Clone, Copy)]
struct Known {
    meta: Option<Meta>,
    hash: Option<Hash>,
}

/// What a waiter asks of a target.
pub struct Want {
    pub target: PathBuf,
    /// The target's stat, when the requester has just taken it.
    pub target_meta: Option<Option<Meta>>,
    /// Its parsed state, when the requester has just loaded it.
    pub rec: Option<Arc<crate::state::Rec>>,
    pub display: String,
    pub level: usize,
    pub force: bool,
    pub session: Arc<Session>,
    pub origin: Arc<Origin>,
    pub waiter: Waiter,
    /// The verdicts' generation before anything about the target was read.
    pub since: u64,
    /// Dropped when this target has started (see [`wait_landed`]): the request's next target
    /// waits for that.
    pub start: Option<oneshot::Sender<()>>,
}

/// Runs the `.do` of a flight's target and commits the result. The daemon's executor spawns
/// processes ([`runner::Processes`]); the engine's unit tests use a scripted one over an
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
    watched: Option<Arc<dyn Fs>>,
    /// Up-to-date verdicts ([`crate::verdict`]): the watcher's, or a unit test's.
    verdicts: Option<Arc<Verdicts>>,
    exec: Arc<dyn Executor>,
    pub recs: RecCache,
    pub hashes: Hashes,
    pub umask: UmaskGate,
    /// The daemon's socket, exported to every `.do`.
    pub socket: PathBuf,
    /// The runtime directory: sessions' jobserver FIFOs, the registry of running jobs.
    rundir: Option<PathBuf>,
    /// Serialises spawning: while a `.do` is spawned, its session's jobserver descriptors are
    /// made inheritable, and no other spawn may see them.
    pub spawn_lock: Mutex<()>,
    tables: Mutex<Tables>,
    ids: AtomicU64,
    /// What the last attempt of a target that failed (or was stopped) had declared: its `.do`
    /// lookup and nested requests. `--watch` watches these too, so that fixing a target that
    /// never built triggers a round. Only failed targets are here: a commit removes its own.
    attempts: Mutex<HashMap<PathBuf, Vec<Dep>>>,
    registry: std::sync::OnceLock<Arc<crate::orphans::Registry>>,
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
            registry: std::sync::OnceLock::new(),
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
            e.verdicts = Some(watcher.verdicts().clone());
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
    fn session_verdicts(&self, watched: bool) -> Option<Arc<Verdicts>> {
        match (&self.watcher, watched) {
            (Some(_), false) => None,
            _ => self.verdicts.clone(),
        }
    }

    /// A new session's view of the filesystem, synced with the watcher when it is used.
    fn session_fs(&self, settings: &Settings) -> (Arc<dyn Fs>, bool) {
        match (&self.watched, &self.watcher) {
            (Some(w), Some(watcher)) if !settings.no_watch && watcher.enabled() => {
                watcher.sync();
                (w.clone(), true)
            }
            _ => (self.fs.clone(), false),
        }
    }

    /// The daemon wrote (or created, or removed) `path`: what the watcher knows of it is
    /// stale. Its event comes later; the next check in this very request must not wait for it.
    pub fn wrote(&self, path: &Path) {
        if let Some(w) = &self.watcher {
            w.forget(path);
        }
    }

    /// Whether `target` was built in this session and what was committed still stands: its
    /// state file is there and its output is the file the state file records (a `.do` may
    /// have removed either since, e.g. `rm -rf out`). Then it is up to date without a check,
    /// as goredo's "`Build` is this run" rule has it: this is what makes `redo-always` run
    /// once per session, and a target asked for by a hundred `.do` files built once.
    fn built_here(&self, session: &Session, target: &Path) -> bool {
        if !session.was_built(target) {
            return false;
        }
        let Some((dir, name)) = paths::split(target) else {
            return false;
        };
        let rec = match self.recs.load(&*session.fs, &ood::rec_path(dir, name)) {
            Ok(Loaded::Ok(rec)) => rec,
            _ => return false,
        };
        match rec.own(name.as_bytes()) {
            Some((stamp, _)) => session
                .fs
                .stat(target)
                .ok()
                .flatten()
                .is_some_and(|m| m.stamp == *stamp),
            // No output file was committed: the state file is all there is to stand.
            None => true,
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

    pub fn register_job(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        records: Vec<Dep>,
        token: Token,
    ) -> JobHandle {
        let job = Arc::new(Job {
            id: self.next_id(),
            flight: flight.clone(),
            records: Mutex::new(records.into()),
            token: Mutex::new(Some(token)),
            pgid: AtomicI32::new(0),
            flush: Mutex::new(None),
        });
        lock(&self.tables).jobs.insert(job.id, job.clone());
        JobHandle {
            engine: self.clone(),
            job,
        }
    }

    /// Where running jobs are written down for the next daemon, should this one be killed
    /// (see [`crate::orphans`]); none in the unit tests.
    pub fn registry(&self) -> Option<&Arc<crate::orphans::Registry>> {
        self.registry.get()
    }

    /// Set once, at start-up, after the previous daemon's journal was swept.
    pub fn set_registry(&self, registry: Arc<crate::orphans::Registry>) {
        let _ = self.registry.set(registry);
    }

    fn job(&self, id: u64) -> Option<Arc<Job>> {
        lock(&self.tables).jobs.get(&id).cloned()
    }

    fn checker<'a>(&'a self, session: &'a Session, settings: &Settings) -> Checker<'a> {
        Checker {
            fs: &*session.fs,
            recs: Some(&self.recs),
            hashes: &self.hashes,
            trust: settings.trust,
        }
    }

    /// Brings `want.target` up to date for its session. Joins the target's flight if there is
    /// one, starts it otherwise. A forced request (`redo X`) never joins another request's
    /// flight: it waits for that one to land, then runs the target itself, as goredo does
    /// (three `.do` files running `redo c` run `c.do` three times).
    pub async fn ensure(self: &Arc<Self>, mut want: Want) -> Outcome {
        if !want.force {
            if self.built_here(&want.session, &want.target) {
                return Outcome::UpToDate;
            }
            if !self.in_flight(&want.target) && self.up_to_date_now(&want) {
                return Outcome::UpToDate;
            }
        }
        loop {
            let (attached, mut rx) = match self.attach(&want) {
                Attach::Joined(a, rx) => (a, rx),
                Attach::TornDown(mut rx) => {
                    // Being torn down: wait for it to land, then start afresh.
                    want.waiter.will_wait();
                    let _ = rx.wait_for(Option::is_some).await;
                    continue;
                }
                Attach::Cycle(cycle) => {
                    self.report_cycle(&want, &cycle);
                    return Outcome::Failed;
                }
            };
            want.waiter.will_wait();
            let outcome = wait_landed(&attached.flight, &mut rx, &mut want.start).await;
            let ours = attached.listening;
            drop(attached);
            match outcome {
                // We are still here, so it was not our cancellation: somebody else's last
                // waiter left just as we joined (or the build we waited for was dropped).
                Outcome::Cancelled => continue,
                // Somebody else's build of the target landed: now ours.
                _ if !ours => continue,
                o => {
                    if o == Outcome::Built {
                        want.session.mark_built(&want.target);
                    }
                    return o;
                }
            }
        }
    }

    /// Whether a target among `members` (verdict keys) is being built right now.
    fn any_in_flight(&self, members: &[u64]) -> bool {
        lock(&self.tables).flights.keys().any(|t| {
            members
                .binary_search(&crate::verdict::key(Path::new(t)))
                .is_ok()
        })
    }

    fn in_flight(&self, target: &Path) -> bool {
        lock(&self.tables).flights.contains_key(target.as_os_str())
    }

    /// The no-op fast path: decides "up to date" on the spot, without a flight, when that
    /// needs nothing built: the state parses and every dependency that is a target is already
    /// done in this session. `false` means "let a flight decide" (it rebuilds and reports), not
    /// "out of date".
    fn up_to_date_now(&self, want: &Want) -> bool {
        if self.verdict(want).is_some() {
            return true;
        }
        let trust = want.origin.settings.trust;
        let Some((dir, name)) = paths::split(&want.target) else {
            return false;
        };
        let rec = match &want.rec {
            Some(r) => r.clone(),
            None => match self.recs.load(&*want.session.fs, &ood::rec_path(dir, name)) {
                Ok(Loaded::Ok(r)) => r,
                _ => return false,
            },
        };
        let checker = self.checker(&want.session, &want.origin.settings);
        let mut walk = Walk::new(&rec, dir, name);
        if let Some(m) = want.target_meta {
            walk = walk.with_target_meta(m);
        }
        if want.session.verdicts.is_some() {
            walk = walk.observing();
        }
        loop {
            match walk.next(&checker) {
                Ok(Step::UpToDate) => {
                    self.keep_verdict(
                        &want.session,
                        &want.origin,
                        &want.target,
                        &mut walk,
                        want.since,
                    );
                    return true;
                }
                // A dependency a verdict vouches for is up to date just as well.
                Ok(Step::Visit(dep))
                    if self.built_here(&want.session, &dep)
                        || self.held(&want.session, &dep, trust).is_some() => {}
                _ => return false,
            }
        }
    }

    /// The target's stat and hash, when a verdict says it is up to date (a forced request
    /// never asks).
    fn verdict(&self, want: &Want) -> Option<(Meta, Option<Hash>)> {
        if want.force {
            return None;
        }
        self.held(&want.session, &want.target, want.origin.settings.trust)
    }

    /// The session's verdict on `target`, unless the target is being rebuilt right now (by a
    /// forced request of another session): then its flight's result is the answer.
    fn held(
        &self,
        session: &Session,
        target: &Path,
        trust: ood::Trust,
    ) -> Option<(Meta, Option<Hash>)> {
        let held = session.verdicts.as_ref()?.holds(target, trust)?;
        (!self.in_flight(target)).then_some(held)
    }

    /// A full check found the target up to date: keep that, if what it read is vouched for.
    fn keep_verdict(
        &self,
        session: &Session,
        origin: &Origin,
        target: &Path,
        walk: &mut Walk<'_>,
        since: u64,
    ) {
        let (Some(v), Some(meta), Some(seen)) =
            (&session.verdicts, walk.target_now(), walk.take_observed())
        else {
            return;
        };
        v.record(target, meta, origin.settings.trust, seen, since);
    }

    /// The verdicts' generation now, for a check about to read things.
    fn generation(session: &Session) -> u64 {
        session.verdicts.as_ref().map_or(0, |v| v.generation())
    }

    /// Joins the target's flight or starts one, under the table lock. A forced request finding
    /// another request's flight only waits for it ([`Attached::listening`] is false): it is
    /// not one of its waiters (it neither gets its output nor keeps it alive), but its
    /// wait-for edge is there, so that a cycle through it is still found.
    fn attach(self: &Arc<Self>, want: &Want) -> Attach<'_> {
        let mut t = lock(&self.tables);
        let existing = t.flights.get(want.target.as_os_str()).cloned();
        if let Some(f) = existing.as_ref().filter(|f| f.cancel.is_cancelled()) {
            return Attach::TornDown(f.result.subscribe());
        }
        if let Some(from) = want.waiter.target() {
            if let Some(cycle) = t.cycle(from, &want.target) {
                return Attach::Cycle(cycle);
            }
            *t.waits
                .entry(from.to_path_buf())
                .or_default()
                .entry(want.target.clone())
                .or_default() += 1;
        }
        let (flight, listening) = match existing {
            Some(f) => (f, !want.force),
            None => {
                let f = Arc::new(self.new_flight(want));
                t.flights
                    .insert(want.target.clone().into_os_string(), f.clone());
                spawn_flight(self.clone(), f.clone());
                (f, true)
            }
        };
        let id = self.next_id();
        if listening {
            lock(&flight.waiters).push((id, want.waiter.clone()));
        }
        let rx = flight.result.subscribe();
        Attach::Joined(
            Attached {
                engine: self,
                flight,
                id,
                edge: want.waiter.target().map(Path::to_path_buf),
                listening,
            },
            rx,
        )
    }

    fn new_flight(&self, want: &Want) -> Flight {
        let (dir, name) = paths::split(&want.target)
            .map(|(d, n)| (d.to_path_buf(), n.to_os_string()))
            .unwrap_or_default();
        Flight {
            target: want.target.clone(),
            dir,
            name,
            display: want.display.clone(),
            level: want.level,
            force: want.force,
            session: want.session.clone(),
            origin: want.origin.clone(),
            waiters: Mutex::new(Vec::new()),
            result: watch::channel(None).0,
            started: watch::channel(false).0,
            cancel: CancellationToken::new(),
        }
    }

    fn report_cycle(&self, want: &Want, cycle: &[PathBuf]) {
        let names: Vec<String> = cycle
            .iter()
            .map(|p| show(&paths::relative(&want.origin.cwd, p)))
            .collect();
        let text = format!("{}: dependency cycle: {}", want.display, names.join(" -> "));
        for s in want.waiter.sinks() {
            s.message(Kind::Err, want.level, &text);
            let error = format!("dependency cycle: {}", names.join(" -> "));
            s.event(serde_json::json!({"type": "target", "event": "failed", "target": s.rel(&want.target), "error": error, "level": want.level}));
        }
    }

    async fn fly(self: Arc<Self>, flight: Arc<Flight>) {
        let outcome = tokio::select! {
            biased;
            () = flight.cancel.cancelled() => Outcome::Cancelled,
            o = self.run_flight(&flight) => o,
        };
        {
            let mut t = lock(&self.tables);
            if t.flights
                .get(flight.target.as_os_str())
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                t.flights.remove(flight.target.as_os_str());
            }
        }
        flight.result.send_replace(Some(outcome));
    }

    async fn run_flight(self: &Arc<Self>, flight: &Arc<Flight>) -> Outcome {
        if !flight.force {
            match self.check(flight).await {
                Ok(None) => return Outcome::UpToDate,
                Ok(Some(reason)) => {
                    flight.say(Kind::Dbg, &format!("ood: {}: {reason}", flight.display))
                }
                Err(o) => return o,
            }
        }
        let result = self.exec.run(self, flight).await;
        tracing::debug!(target = %show(&flight.target), ok = result.is_ok(), "job finished");
        match result {
            Ok(Ran::Built {
                took,
                do_rel,
                do_path,
            }) => {
                flight.say(
                    Kind::Redo,
                    &format!("{} {}", flight.name_with_do(do_rel.as_deref()), secs(took)),
                );
                flight
                    .session
                    .progress
                    .built
                    .fetch_add(1, Ordering::Relaxed);
                flight.event(|s| {
                    serde_json::json!({"type": "target", "event": "finished", "target": s.rel(&flight.target), "do": s.rel(&do_path), "duration": took.as_secs_f64(), "level": flight.level})
                });
                Outcome::Built
            }
            Ok(Ran::Kept) => Outcome::UpToDate,
            Err(e) => {
                let mut name = flight.name_with_do(e.do_rel.as_deref());
                if let Some(t) = e.took {
                    name = format!("{name} {}", secs(t));
                }
                flight.say(Kind::Err, &format!("{name}: {}", e.msg));
                flight
                    .session
                    .progress
                    .failed
                    .fetch_add(1, Ordering::Relaxed);
                flight.event(|s| {
                    let mut ev = serde_json::json!({"type": "target", "event": "failed", "target": s.rel(&flight.target), "error": e.msg, "level": flight.level});
                    if let Some(d) = &e.do_path {
                        ev["do"] = s.rel(d).into();
                    }
                    if let Some(t) = e.took {
                        ev["duration"] = t.as_secs_f64().into();
                    }
                    if let Some(c) = e.exit_code {
                        ev["exit_code"] = c.into();
                    }
                    ev
                });
                Outcome::Failed
            }
        }
    }

    /// `Ok(None)`: up to date. `Ok(Some(reason))`: must be rebuilt. `Err`: a dependency
    /// failed (already reported).
    async fn check(self: &Arc<Self>, flight: &Arc<Flight>) -> Result<Option<Reason>, Outcome> {
        let since = Self::generation(&flight.session);
        let rec_path = ood::rec_path(&flight.dir, &flight.name);
        let rec = match self.recs.load(&*flight.session.fs, &rec_path) {
            Ok(Loaded::Ok(rec)) => rec,
            Ok(Loaded::Missing) => return Ok(Some(Reason::NoState)),
            Ok(Loaded::Corrupt(e)) => {
                flight.say(
                    Kind::Warn,
                    &format!("{}: {e}: rebuilding {}", show(&rec_path), flight.display),
                );
                return Ok(Some(Reason::Corrupt(e.to_string())));
            }
            Err(e) => {
                flight.say(
                    Kind::Warn,
                    &format!(
                        "cannot read {}: {e}: rebuilding {}",
                        show(&rec_path),
                        flight.display
                    ),
                );
                return Ok(Some(Reason::Corrupt(e.to_string())));
            }
        };
        let checker = self.checker(&flight.session, &flight.origin.settings);
        let mut walk = Walk::new(&rec, &flight.dir, &flight.name);
        if flight.session.verdicts.is_some() {
            walk = walk.observing();
        }
        loop {
            let step = walk.next(&checker);
            match step {
                Ok(Step::UpToDate) => {
                    self.keep_verdict(
                        &flight.session,
                        &flight.origin,
                        &flight.target,
                        &mut walk,
                        since,
                    );
                    return Ok(None);
                }
                Ok(Step::OutOfDate(r)) => return Ok(Some(r)),
                Ok(Step::Visit(dep)) => {
                    let display = show(&paths::shown(&flight.origin.cwd, &dep));
                    let want = Want {
                        since: Self::generation(&flight.session),
                        target_meta: None,
                        rec: None,
                        target: dep,
                        display,
                        level: flight.level + 1,
                        force: false,
                        session: flight.session.clone(),
                        origin: flight.origin.clone(),
                        waiter: Waiter::Flight(flight.clone()),
                        start: None,
                    };
                    let o = self.ensure(want).await;
                    if !o.ok() {
                        if o == Outcome::Failed && flight.origin.settings.keep_going {
                            self.build_the_rest(flight, &rec, &checker).await;
                        }
                        return Err(o);
                    }
                }
                Err(e) => {
                    flight.say(Kind::Err, &format!("{}: cannot check: {e}", flight.display));
                    return Err(Outcome::Failed);
                }
            }
        }
    }

    /// `--keep-going`: a dependency of `flight` failed, so it cannot be built; every other
    /// dependency its state names that is a target is still brought up to date.
    async fn build_the_rest(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        rec: &Rec,
        checker: &Checker<'_>,
    ) {
        let targets: Vec<PathBuf> = rec
            .ifchange_targets()
            .filter(|t| *t != flight.name.as_bytes())
            .map(|t| paths::resolve(&flight.dir, OsStr::from_bytes(t)))
            .collect();
        for dep in targets {
            let meta = checker.stat(&dep).ok().flatten();
            if checker.is_source(&dep, meta.as_ref()).unwrap_or(true) {
                continue;
            }
            let want = Want {
                since: Self::generation(&flight.session),
                target_meta: None,
                rec: None,
                display: show(&paths::shown(&flight.origin.cwd, &dep)),
                target: dep,
                level: flight.level + 1,
                force: false,
                session: flight.session.clone(),
                origin: flight.origin.clone(),
                waiter: Waiter::Flight(flight.clone()),
                start: None,
            };
            self.ensure(want).await;
        }
    }

    /// Serves one client request; returns the exit code. `peer_pid` is the client's process
    /// (whose make jobserver descriptors the daemon may open).
    pub async fn handle(self: &Arc<Self>, req: Request, sink: Sink, peer_pid: Option<i32>) -> i32 {
        let tool = Some(&req.program)
            .filter(|p| !p.is_empty())
            .map(|a| show(Path::new(OsStr::from_bytes(a))))
            .unwrap_or_else(|| "redo".into());
        let tool = tool.rsplit('/').next().unwrap_or("redo").to_string();
        let fail = |msg: String| {
            sink.error(&format!("{tool}: {msg}"));
            1
        };
        let cwd = PathBuf::from(OsString::from_vec(req.cwd.into_vec()));
        if !cwd.is_absolute() {
            return fail(format!(
                "working directory '{}' is not absolute",
                show(&cwd)
            ));
        }
        let cwd = paths::clean(&cwd);
        let env = Env::from_bytes(
            req.env
                .into_iter()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect(),
        );
        let settings = match Settings::from_env(&env, &cwd) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let job = match req.parent_job {
            None => None,
            Some(id) => match self.job(id) {
                Some(j) => Some(j),
                None => {
                    return fail(format!(
                        "REDO_JOB={id} names no running job of this daemon: was the build that \
                         ran this .do interrupted? Run redo from a shell, not from a stale environment"
                    ));
                }
            },
        };
        let trace = matches!(&req.command, Command::Build(b) if b.options.trace);
        let origin = Arc::new(Origin {
            cwd,
            env,
            umask: req.umask,
            client_dir: PathBuf::from(OsString::from_vec(req.client_dir.into_vec())),
            settings,
            trace,
        });
        let needs_job = |what: &str| -> Result<Arc<Job>, i32> {
            job.clone().ok_or_else(|| {
                fail(format!(
                    "{what} only works inside a .do (no running target: REDO_JOB is not set)"
                ))
            })
        };
        match req.command {
            Command::Build(b) => {
                let client = Client {
                    sink: sink.clone(),
                    tool: &tool,
                    make: req.make_jobserver,
                    pid: peer_pid,
                };
                if b.options.watch && job.is_none() {
                    self.watch_loop(b, origin, client).await
                } else {
                    self.build(b, origin, job, &client).await
                }
            }
            Command::WatchControl(op) => match &self.watcher {
                Some(w) => {
                    match op {
                        redo_proto::WatchOp::Off => w.set_enabled(false),
                        redo_proto::WatchOp::On => w.set_enabled(true),
                        redo_proto::WatchOp::Overflow => w.simulate_overflow(),
                    }
                    0
                }
                None => fail(
                    "this daemon has no file watcher (REDO_NO_WATCH=1, or inotify unavailable)"
                        .into(),
                ),
            },
            // Nothing to record: done, in a .do or not (`redo-ifcreate $(list)` of an empty list).
            Command::Ifcreate { targets } if targets.is_empty() => 0,
            Command::Ifcreate { targets } => {
                let job = match needs_job("redo-ifcreate") {
                    Ok(j) => j,
                    Err(c) => return c,
                };
                let mut deps = Vec::new();
                for t in targets {
                    let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(&t));
                    match job.flight.session.fs.exists(&abs) {
                        Ok(false) => deps.push(Dep::Ifcreate {
                            target: paths::bytes(&paths::relative(&job.flight.dir, &abs)).to_vec(),
                        }),
                        Ok(true) => {
                            return fail(format!(
                                "{} exists: a dependency on its creation would keep the target out of date \
                                 forever; use redo-ifchange for existing files",
                                String::from_utf8_lossy(&t)
                            ));
                        }
                        Err(e) => return fail(format!("cannot stat {}: {e}", show(&abs))),
                    }
                }
                job.record(deps);
                0
            }
            Command::Always => match needs_job("redo-always") {
                Ok(j) => {
                    j.record([Dep::Always]);
                    0
                }
                Err(c) => c,
            },
            Command::Stamp { hash } => match needs_job("redo-stamp") {
                Ok(j) => {
                    j.record([Dep::Stamp { hash }]);
                    0
                }
                Err(c) => c,
            },
            Command::WhichDo { target } => self.whichdo(&origin, &target, &sink, &tool),
            Command::Query { kind, args } => {
                let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.into_vec()).collect();
                let engine = self.clone();
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let g = engine.graph(&o.settings);
                    query::run(&g, kind, &o.cwd, &args)
                })
                .await;
                self.answer(out, &sink, &tool)
            }
            Command::Log {
                target,
                recursive,
                details,
            } => {
                let t = paths::resolve(&origin.cwd, OsStr::from_bytes(&target));
                let o = origin.clone();
                let out =
                    tokio::task::spawn_blocking(move || logs::show(&t, &o.cwd, recursive, details))
                        .await;
                self.answer(out, &sink, &tool)
            }
            Command::Cleanup { what, dry_run } => {
                if let Some(busy) = self.busy(job.is_some()) {
                    return fail(busy);
                }
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    maintenance::cleanup(&o.cwd, &what, dry_run)
                })
                .await;
                let out = out.map(|r| {
                    r.map(|c| {
                        for k in &c.kept {
                            let rel = show(&paths::relative(&origin.cwd, k));
                            sink.message(Kind::Warn, 0, &format!("{rel} changed since redo built it: kept (remove it yourself if it is not needed)"));
                        }
                        lines_relative(&c.removed, &origin.cwd)
                    })
                });
                self.answer(out, &sink, &tool)
            }
            Command::Depfix => {
                if let Some(busy) = self.busy(job.is_some()) {
                    return fail(busy);
                }
                let engine = self.clone();
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let d = maintenance::Depfix {
                        fs: &*engine.fs,
                        recs: &engine.recs,
                        hashes: &engine.hashes,
                        gate: &engine.umask,
                        umask: o.umask,
                        sync: !o.settings.no_sync,
                    };
                    Ok(lines_relative(&d.run(&o.cwd)?, &o.cwd))
                })
                .await;
                self.answer(out, &sink, &tool)
            }
            Command::DaemonStatus | Command::DaemonStop => fail("not a build request".into()),
        }
    }

    /// A new session's token pool: make's when a `make -jN` started the client (unless `-j`
    /// was given), else its own.
    fn session_tokens(&self, b: &Build, origin: &Origin, client: &Client<'_>) -> Tokens {
        let own = || {
            Tokens::new(
                b.options.jobs.or(origin.settings.jobs).unwrap_or(1),
                self.rundir.as_deref(),
            )
        };
        match (&client.make, b.options.jobs) {
            (Some(js), None) => Tokens::from_make(js, client.pid).unwrap_or_else(|e| {
                client.sink.message(
                    Kind::Warn,
                    0,
                    &format!("cannot use make's jobserver ({e}); using this build's own job limit"),
                );
                own()
            }),
            _ => own(),
        }
    }

    /// `redo --watch`: builds, then builds again whenever an input of the targets changes
    /// (debounced), until the client goes away. Rounds after the first bring the targets up to
    /// date (`redo-ifchange`), whatever the command. Two watchers of the same targets share
    /// each round's work (their requests meet in the same flights).
    async fn watch_loop(
        self: &Arc<Self>,
        mut b: Build,
        origin: Arc<Origin>,
        client: Client<'_>,
    ) -> i32 {
        let sink = &client.sink;
        let Some(watcher) = self
            .watcher
            .clone()
            .filter(|w| w.enabled() && !origin.settings.no_watch)
        else {
            sink.error(&format!("{}: --watch needs the file watcher, which is off (REDO_NO_WATCH=1, or inotify is unavailable)", client.tool));
            return 1;
        };
        let mut changes = watcher.subscribe();
        let mut names: Vec<&[u8]> = b.targets.iter().collect();
        if names.is_empty() {
            names.push(b"all");
        }
        let roots: Vec<PathBuf> = names
            .iter()
            .map(|t| paths::resolve(&origin.cwd, OsStr::from_bytes(t)))
            .collect();
        loop {
            let code = self.build(b.clone(), origin.clone(), None, &client).await;
            b.mode = BuildMode::Ifchange;
            b.options.force = false;
            let engine = self.clone();
            let (o, r) = (origin.clone(), roots.clone());
            let attempts = lock(&self.attempts).clone();
            let inputs = tokio::task::spawn_blocking(move || {
                let mut graph = engine.graph(&o.settings);
                graph.attempts = Some(&attempts);
                let mut inputs = graph.inputs(&r).unwrap_or_default();
                // A root that never got as far as running: its .do, once written, starts it.
                for root in &r {
                    inputs.extend(crate::dofile::candidates(
                        &*engine.fs,
                        root,
                        o.settings.top_dir.as_deref(),
                    ));
                }
                inputs
            })
            .await
            .unwrap_or_default();
            watcher.watch_dirs_of(&inputs);
            let verdict = if code == 0 { "built" } else { "failed" };
            sink.error(&format!(
                "redo: {verdict}; watching {} inputs for changes (Ctrl-C to stop)",
                inputs.len()
            ));
            sink.event(serde_json::json!({"type": "watch", "event": "waiting", "exit_code": code, "inputs": inputs.len()}));
            // An input, or a directory above inputs (renamed or removed as a whole); `/` is
            // an overflow: anything may have changed. Descendants of `p` sort right after it.
            let relevant = |p: &Path| {
                inputs
                    .range::<Path, _>((std::ops::Bound::Included(p), std::ops::Bound::Unbounded))
                    .next()
                    .is_some_and(|i| i.starts_with(p))
            };
            // Until an input changes (or the queue overflowed: anything may have).
            loop {
                match changes.recv().await {
                    Ok(p) if relevant(&p) => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return code,
                }
            }
            // Debounce: editors save in several steps; wait for 50 ms of quiet (at most 1 s).
            let settle = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            while let Ok(next) = tokio::time::timeout_at(
                settle.min(tokio::time::Instant::now() + std::time::Duration::from_millis(50)),
                changes.recv(),
            )
            .await
            {
                if matches!(next, Err(broadcast::error::RecvError::Closed)) {
                    return code;
                }
            }
        }
    }

    async fn build(
        self: &Arc<Self>,
        b: Build,
        origin: Arc<Origin>,
        job: Option<Arc<Job>>,
        client: &Client<'_>,
    ) -> i32 {
        let (sink, tool) = (&client.sink, client.tool);
        let (session, level, waiter) = match &job {
            Some(j) => {
                // What the .do changed before asking must be seen (see `watch`).
                if let (true, Some(w)) = (j.flight.session.watched, &self.watcher) {
                    w.sync();
                }
                (
                    j.flight.session.clone(),
                    j.flight.level + 1,
                    Waiter::Job(j.clone()),
                )
            }
            None => {
                let (fs, watched) = self.session_fs(&origin.settings);
                let tokens = self.session_tokens(&b, &origin, client);
                (
                    Arc::new(Session::new(
                        tokens,
                        fs,
                        watched,
                        self.session_verdicts(watched),
                    )),
                    0,
                    Waiter::Client(sink.clone()),
                )
            }
        };
        let _status = job
            .is_none()
            .then(|| StatusLine::start(session.clone(), sink.clone()));
        let started = std::time::Instant::now();
        let mut targets: Vec<&[u8]> = b.targets.iter().collect();
        if targets.is_empty() && job.is_none() {
            targets.push(b"all");
        }
        if job.is_none() {
            let names: Vec<String> = targets
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            let jobs = session
                .tokens
                .limit()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null);
            sink.event(serde_json::json!({"type": "session", "event": "started", "build": session.uuid, "targets": names, "jobs": jobs}));
        }
        // A nested request answered in full before, nothing it depends on changed since: its
        // records again, from one lookup (see `verdict`, batches).
        let batch = match (&job, &session.verdicts) {
            (Some(j), Some(v)) if b.mode == BuildMode::Ifchange && !b.options.force => {
                let since = v.generation();
                let key = crate::verdict::batch_key(
                    &j.flight.dir,
                    &origin.cwd,
                    origin.settings.trust,
                    b.targets.as_bytes(),
                );
                if let Some(records) = v.batch(&key, |members| self.any_in_flight(members)) {
                    // Nothing is printed on this path, so the `.do`'s earlier stderr needs no
                    // flush to stay in order (a flush is a round trip to the relay task).
                    j.record_shared(records);
                    j.reclaim_token().await;
                    return 0;
                }
                Some((v.clone(), key, since))
            }
            _ => None,
        };
        // Resolve and de-duplicate (by path: `a` and `./a` are one target). Each wanted target
        // keeps the index of its name as given, which messages show.
        let mut wanted: Vec<(PathBuf, usize)> = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(t));
            if paths::split(&abs).is_none() {
                sink.error(&format!(
                    "{tool}: {}: not a file name",
                    String::from_utf8_lossy(t)
                ));
                return 1;
            }
            wanted.push((abs, i));
        }
        if b.mode == BuildMode::Ifchange {
            let mut seen = HashSet::with_capacity_and_hasher(wanted.len(), Default::default());
            let first: Vec<bool> = wanted
                .iter()
                .map(|(abs, _)| seen.insert(abs.as_os_str()))
                .collect();
            drop(seen);
            let mut first = first.into_iter();
            wanted.retain(|_| first.next().unwrap_or(true));
        }
        if let Some(j) = &job {
            j.flush_stderr().await;
        }
        let want = |abs: &PathBuf, name: usize, force: bool| Want {
            since: 0, // Read by `bring`.
            target_meta: None,
            rec: None,
            target: abs.clone(),
            display: String::from_utf8_lossy(targets[name]).into_owned(),
            level,
            force,
            session: session.clone(),
            origin: origin.clone(),
            waiter: waiter.clone(),
            start: None,
        };
        let (keep_going, shuffle) = (origin.settings.keep_going, origin.settings.shuffle);
        let mut code = 0;
        let mut all_held = false;
        let mut recorded: Vec<(&PathBuf, Option<Known>)> = Vec::new();
        match b.mode {
            BuildMode::Redo => {
                let mut order: Vec<&(PathBuf, usize)> = wanted.iter().collect();
                if shuffle {
                    shuffled(&mut order);
                }
                for (abs, name) in order {
                    match self.bring(want(abs, *name, true)).await {
                        Ok(known) => recorded.push((abs, known)),
                        Err(()) => {
                            code = 1;
                            if !keep_going {
                                break;
                            }
                        }
                    }
                }
            }
            BuildMode::Ifchange => {
                let force = b.options.force;
                // Targets a verdict vouches for are answered here, without a flight or even a
                // future each: the no-op of a large `all` is mostly these.
                let mut results: Vec<Option<Result<Option<Known>, ()>>> = vec![None; wanted.len()];
                if !force {
                    let trust = origin.settings.trust;
                    for ((abs, _), r) in wanted.iter().zip(results.iter_mut()) {
                        if let Some((meta, hash)) = self.held(&session, abs, trust) {
                            *r = Some(Ok(Some(Known {
                                meta: Some(meta),
                                hash,
                            })));
                        }
                    }
                }
                let mut rest: Vec<usize> = (0..wanted.len())
                    .filter(|i| results[*i].is_none())
                    .collect();
                all_held = rest.is_empty();
                if shuffle {
                    shuffled(&mut rest);
                }
                // Each target starts once the one before it has (see `wait_landed`): in
                // argument order, whatever order the flights' tasks happen to run in.
                let mut after: Option<oneshot::Receiver<()>> = None;
                let wants: Vec<(Want, Option<oneshot::Receiver<()>>)> = rest
                    .iter()
                    .map(|&i| {
                        let (tx, rx) = oneshot::channel();
                        let w = Want {
                            start: Some(tx),
                            ..want(&wanted[i].0, wanted[i].1, force)
                        };
                        (w, after.replace(rx))
                    })
                    .collect();
                let brought: Vec<_> = futures_util::stream::iter(wants)
                    .map(|(w, after)| async move {
                        if let Some(previous) = after {
                            // Sent or dropped: either way the previous target has started.
                            let _ = previous.await;
                        }
                        self.bring(w).await
                    })
                    .buffered(window(session.tokens.limit()))
                    .collect()
                    .await;
                for (i, r) in rest.into_iter().zip(brought) {
                    results[i] = Some(r);
                }
                let results: Vec<_> = results.into_iter().flatten().collect();
                if results.iter().all(Result::is_ok) {
                    recorded.extend(
                        wanted
                            .iter()
                            .zip(results)
                            .map(|((a, _), r)| (a, r.ok().flatten())),
                    );
                } else {
                    code = 1;
                }
            }
        }
        if let Some(j) = &job {
            if code == 0 {
                match self.dependency_records(&j.flight.dir, &recorded, &session, &origin.settings)
                {
                    Ok(deps) => match (all_held, batch) {
                        // Kept once, shared by the batch and this job's records.
                        (true, Some((v, key, since))) => {
                            let deps: Arc<[Dep]> = deps.into();
                            let members: Vec<&Path> =
                                wanted.iter().map(|(abs, _)| abs.as_path()).collect();
                            v.record_batch(key, &members, deps.clone(), since);
                            j.record_shared(deps);
                        }
                        _ => j.record(deps),
                    },
                    Err(e) => {
                        sink.error(&format!("{tool}: {e}"));
                        code = 1;
                    }
                }
            }
            j.reclaim_token().await;
        }
        if job.is_none() {
            let p = &session.progress;
            sink.event(serde_json::json!({
                "type": "session", "event": "finished", "build": session.uuid, "exit_code": code,
                "duration": started.elapsed().as_secs_f64(),
                "built": p.built.load(Ordering::Relaxed), "failed": p.failed.load(Ordering::Relaxed),
            }));
        }
        code
    }

    /// Brings one requested target up to date, skipping sources. Returns the target's stat
    /// when it is still the one taken here (nothing was rebuilt), so that recording it as a
    /// dependency needs no second look.
    async fn bring(self: &Arc<Self>, mut want: Want) -> Result<Option<Known>, ()> {
        want.since = Self::generation(&want.session);
        if let Some((meta, hash)) = self.verdict(&want) {
            return Ok(Some(Known {
                meta: Some(meta),
                hash,
            }));
        }
        let fail = |msg: String| {
            for s in want.waiter.sinks() {
                s.message(Kind::Err, want.level, &format!("{}: {msg}", want.display));
            }
        };
        let Some((dir, name)) = paths::split(&want.target) else {
            fail("not a file name".into());
            return Err(());
        };
        // The state file first: a target that has one is not a source, and the fast path
        // below reuses it.
        let loaded = match self.recs.load(&*want.session.fs, &ood::rec_path(dir, name)) {
            Ok(l) => l,
            Err(e) => {
                fail(format!("cannot read its state: {e}"));
                return Err(());
            }
        };
        let checker = self.checker(&want.session, &want.origin.settings);
        let meta = match checker.stat(&want.target) {
            Ok(m) => m,
            Err(e) => {
                fail(format!("cannot stat: {e}"));
                return Err(());
            }
        };
        let rec = match loaded {
            Loaded::Ok(r) => Some(r),
            Loaded::Missing => match checker.is_source(&want.target, meta.as_ref()) {
                Ok(true) => {
                    for s in want.waiter.sinks() {
                        s.message(
                            Kind::Dbg,
                            want.level,
                            &format!("{} is source, not redoing", want.display),
                        );
                    }
                    return Ok(Some(Known { meta, hash: None }));
                }
                Ok(false) => None,
                Err(e) => {
                    fail(e.to_string());
                    return Err(());
                }
            },
            Loaded::Corrupt(_) => None,
        };
        match self
            .ensure(Want {
                target_meta: Some(meta),
                rec,
                ..want
            })
            .await
        {
            Outcome::UpToDate => Ok(Some(Known { meta, hash: None })),
            Outcome::Built => Ok(None),
            Outcome::Failed | Outcome::Cancelled => Err(()),
        }
    }

    /// `ifchange` records for the given files, relative to the target directory `dir`. A
    /// missing file gets zeroed inode data and no hash (always out of date), or, when it is a
    /// target committed without output after a `redo-stamp`, its stamp as the hash
    /// ([`crate::state::recorded_stamp`]); a directory gets no record at all.
    fn dependency_records(
        &self,
        dir: &Path,
        files: &[(&PathBuf, Option<Known>)],
        session: &Session,
        settings: &Settings,
    ) -> Result<Vec<Dep>, String> {
        let checker = self.checker(session, settings);
        let mut deps = Vec::with_capacity(files.len());
        for (abs, known) in files {
            let rel = paths::relative(dir, abs).into_os_string().into_vec();
            let now = match known {
                Some(k) => k.meta,
                None => session
                    .fs
                    .stat(abs)
                    .map_err(|e| format!("cannot stat {}: {e}", show(abs)))?,
            };
            match now {
                None => deps.push(Dep::Ifchange {
                    target: rel,
                    stamp: Default::default(),
                    hash: checker
                        .phony_stamp(abs)
                        .map_err(|e| format!("cannot read the state of {}: {e}", show(abs)))?,
                }),
                Some(m) if m.kind == crate::fsys::Kind::Dir => {}
                Some(m) => {
                    let hash = match known.and_then(|k| k.hash) {
                        Some(h) => h,
                        None => checker
                            .hash(abs, &m.stamp)
                            .map_err(|e| format!("cannot read {}: {e}", show(abs)))?,
                    };
                    deps.push(Dep::Ifchange {
                        target: rel,
                        stamp: m.stamp,
                        hash: Some(hash),
                    });
                }
            }
        }
        Ok(deps)
    }

    fn whichdo(&self, origin: &Origin, target: &[u8], sink: &Sink, tool: &str) -> i32 {
        let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(target));
        let Some((dir, name)) = paths::split(&abs) else {
            sink.error(&format!(
                "{tool}: {}: not a file name",
                String::from_utf8_lossy(target)
            ));
            return 1;
        };
        let lookup =
            match crate::dofile::find(&*self.fs, dir, name, origin.settings.top_dir.as_deref()) {
                Ok(l) => l,
                Err(e) => {
                    sink.error(&format!("{tool}: {e}"));
                    return 1;
                }
            };
        let mut out = Vec::new();
        let line = |out: &mut Vec<u8>, rel: &Path| {
            out.extend_from_slice(paths::bytes(&paths::relative(
                &origin.cwd,
                &paths::resolve(dir, rel),
            )));
            out.push(b'\n');
        };
        for m in &lookup.missing {
            line(&mut out, m);
        }
        if let Some(f) = &lookup.found {
            line(&mut out, &f.rel);
        }
        sink.stdout(out);
        if lookup.found.is_some() { 0 } else { 1 }
    }

    /// A read-only view for the listing commands.
    pub fn graph(&self, settings: &Settings) -> query::Graph<'_> {
        query::Graph {
            fs: &*self.fs,
            recs: &self.recs,
            hashes: &self.hashes,
            trust: settings.trust,
            attempts: None,
        }
    }

    /// Why a maintenance command must not run now (a build is running), if so. A request from
    /// inside a `.do` is itself part of a running build.
    fn busy(&self, nested: bool) -> Option<String> {
        if nested {
            return Some(
                "cannot run inside a .do: it would change the state of the running build".into(),
            );
        }
        let (jobs, flights) = self.activity();
        maintenance::busy_message(jobs, flights)
    }

    /// Sends a blocking command's output, or its error.
    fn answer(
        &self,
        out: Result<Result<Vec<u8>, String>, tokio::task::JoinError>,
        sink: &Sink,
        tool: &str,
    ) -> i32 {
        match out {
            Ok(Ok(bytes)) => {
                sink.stdout(bytes);
                0
            }
            Ok(Err(msg)) => {
                sink.error(&format!("{tool}: {msg}"));
                1
            }
            Err(e) => {
                sink.error(&format!("{tool}: internal error: {e}"));
                1
            }
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
            .map(|w| w.stats_line())
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

/// Paths relative to `cwd`, one per line.
/// How many of one request's targets are brought up to date at once. Enough to keep every
/// job slot busy while others wait for their dependencies; bounded because each one in
/// progress holds a future (and soon a flight): a clean build of `all` with 10 000
/// dependencies must not park 10 000 jobs on the token pool. Cannot deadlock: what a target
/// waits for (its dependencies, a token) never waits for a later target of this request's
/// window; dependencies get flights of their own.
fn window(limit: Option<u32>) -> usize {
    match limit {
        Some(0) => usize::MAX,
        Some(n) => (n as usize).saturating_mul(4).max(64),
        None => 256,
    }
}

/// `--shuffle`: a random order (Fisher-Yates over a xorshift seeded from the OS).
fn shuffled<T>(items: &mut [T]) {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let mut x = u64::from_le_bytes(seed) | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn lines_relative(paths_: &[PathBuf], cwd: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths_ {
        out.extend_from_slice(paths::bytes(&paths::relative(cwd, p)));
        out.push(b'\n');
    }
    out
}

/// Who asked, for a build request.
struct Client<'a> {
    sink: Sink,
    tool: &'a str,
    make: Option<redo_proto::MakeJobserver>,
    pid: Option<i32>,
}

/// Redraws a terminal client's status line while its build runs; stops when dropped.
struct StatusLine(Option<tokio::task::JoinHandle<()>>);

impl StatusLine {
    fn start(session: Arc<Session>, sink: Sink) -> StatusLine {
        if !sink.style.status {
            return StatusLine(None);
        }
        StatusLine(Some(tokio::spawn(async move {
            let mut shown = String::new();
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let line = session.progress.line();
                if line != shown {
                    sink.status(&line);
                    shown = line;
                }
            }
        })))
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_format() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(
            u.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let mut t = Tables::default();
        let p = |s: &str| PathBuf::from(s);
        t.waits.insert(p("/b"), HashMap::from_iter([(p("/c"), 1)]));
        t.waits.insert(p("/c"), HashMap::from_iter([(p("/a"), 2)]));
        // a waiting for b closes a → b → c → a.
        assert_eq!(
            t.cycle(&p("/a"), &p("/b")),
            Some(vec![p("/a"), p("/b"), p("/c"), p("/a")])
        );
        assert_eq!(t.cycle(&p("/x"), &p("/b")), None);
        assert_eq!(t.cycle(&p("/a"), &p("/a")), Some(vec![p("/a"), p("/a")]));
        t.remove_edge(&p("/c"), &p("/a"));
        assert!(
            t.cycle(&p("/a"), &p("/b")).is_some(),
            "one of two waits is left"
        );
        t.remove_edge(&p("/c"), &p("/a"));
        assert_eq!(t.cycle(&p("/a"), &p("/b")), None);
        assert!(!t.waits.contains_key(&p("/c")));
    }
}
