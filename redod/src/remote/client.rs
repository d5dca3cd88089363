//! [`RemoteCache`]: lookups, fetches and background uploads over one backend, with the
//! counters. Every failure is a miss (or an upload not done), counted, never an error of the
//! build: the cache can only make a build faster, not wrong and not failed.
//!
//! Trust: an output is used only after its bytes hashed to the SHA-256 the matching trace
//! names (so a corrupt or tampered blob is a miss); an entry that does not decode as ours
//! is ignored. What the cache cannot check is whether whoever wrote a trace
//! told the truth about its dependencies: give write access only to builders you trust.

use super::backend::{Area, Backend, BlobSink};
use super::config::{CacheConfig, Location, Mode};
use super::dir::DirBackend;
use super::error::CacheError;
use super::format::{self, BlobDigest, Trace, TraceDep};
use super::http::HttpBackend;
use super::key::{ActionKey, KeyInput};
use super::matching::{Observed, Probe, find_match_async};
use super::prefetch::{Answer, Prefetches};
use super::stats::{Snapshot, Stats};
use crate::fs::Hash;
use crate::settings::Env;
use bytes::Bytes;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Uploads running at once.
pub const UPLOAD_CONCURRENCY: usize = 4;
/// Output bytes held in memory by the running uploads together, in KiB (an upload reads its
/// output whole, to hash and send exactly the bytes it checked): one [`MAX_OUTPUT`].
/// Uploads waiting beyond this are dropped (a build faster than the link).
pub const MAX_QUEUED_UPLOADS: usize = 256;
/// Outputs larger than this are not uploaded (they are read into memory to be sent).
pub const MAX_OUTPUT: u64 = 256 << 20;
const MEMORY_BUDGET_KIB: u32 = (MAX_OUTPUT >> 10) as u32;
/// After the server could not be reached, it is not asked again for this long: a cache that
/// is down costs a build one connect timeout, not one per target.
pub const DOWN_PAUSE: Duration = Duration::from_secs(30);

/// What [`RemoteCache::fetch_into`] installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// BLAKE3 of the content: what the target's `.rec` records as its hash.
    pub hash: Hash,
    pub size: u64,
    pub executable: bool,
}

/// The result of [`RemoteCache::restore`].
#[derive(Debug)]
pub enum Restore {
    /// `tmp` holds the verified output; `trace` lists the dependencies to record.
    Hit { trace: Trace, fetched: Fetched },
    /// Build locally. `reasons` say why (for `-d`): no entry, an error, or per trace the first
    /// dependency that differed (`trace 0: x.h changed`).
    Miss { reasons: Vec<String> },
}

/// A committed target to upload ([`RemoteCache::upload`]).
#[derive(Clone, Debug)]
pub struct Upload {
    pub key: ActionKey,
    /// The committed target (absolute path).
    pub output: PathBuf,
    /// Its BLAKE3 as committed: the upload reads the file later, in the background, and
    /// gives up if it is no longer this content (rebuilt or edited since), so a trace is
    /// never paired with another build's output.
    pub output_hash: Hash,
    /// [`TraceDep::from_deps`] of the committed records.
    pub deps: Vec<TraceDep>,
    /// The entry's traces as the lookup before this build saw them (empty: there was no
    /// entry), merged with instead of reading the entry again; `None` (not looked up, or the
    /// lookup failed): read again. An upload by another builder in between is then lost, as
    /// a concurrent one is (last writer wins): a future miss, never a wrong hit.
    pub seen: Option<Vec<Trace>>,
}

/// What [`RemoteCache::lookup`] found.
#[derive(Debug, Default)]
pub struct Lookup {
    /// The entry's traces, newest first; empty: a miss (counted).
    pub traces: Vec<Trace>,
    /// Whether `traces` is what the cache holds (no entry: none): `false` when the server
    /// failed or the entry was not usable (an error, counted).
    pub known: bool,
}

pub struct RemoteCache {
    config: CacheConfig,
    /// For lookups and fetches, on the daemon's runtime (the build waits for them).
    backend: Backend,
    /// For uploads, on [`upload_runtime`]: a connection pool of their own, as an HTTP
    /// client's connections belong to the runtime that made them.
    upload_backend: Backend,
    stats: Stats,
    uploads: TaskTracker,
    slots: Arc<Semaphore>,
    /// [`MEMORY_BUDGET_KIB`] permits.
    memory: Arc<Semaphore>,
    queued: AtomicUsize,
    down_until: Mutex<Option<Instant>>,
    prefetches: Prefetches,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCache({})", self.config)
    }
}

impl RemoteCache {
    /// A client for `config`. Cheap enough per build, but one per distinct config (kept by
    /// the daemon) keeps connections and counters across builds. Fails only on a bad
    /// `REDO_CACHE_CA` file (an error to show the user: the config is theirs to fix).
    pub fn new(config: CacheConfig) -> Result<Arc<RemoteCache>, CacheError> {
        let backend = || -> Result<Backend, CacheError> {
            Ok(match &config.location {
                Location::Dir(d) => Backend::Dir(DirBackend::new(d)),
                Location::Http {
                    base,
                    user,
                    password,
                } => Backend::Http(HttpBackend::new(
                    base,
                    user.as_deref(),
                    password.as_deref(),
                    config.ca.as_deref(),
                )?),
            })
        };
        let (backend, upload_backend) = (backend()?, backend()?);
        Ok(Arc::new(RemoteCache {
            config,
            backend,
            upload_backend,
            stats: Stats::default(),
            uploads: TaskTracker::new(),
            slots: Arc::new(Semaphore::new(UPLOAD_CONCURRENCY)),
            memory: Arc::new(Semaphore::new(MEMORY_BUDGET_KIB as usize)),
            queued: AtomicUsize::new(0),
            down_until: Mutex::new(None),
            prefetches: Prefetches::default(),
        }))
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The key of a target (paths relative to the project root) built by a `.do` with
    /// content hash `do_hash`, under the request's environment `env`.
    pub fn key(&self, target: &[u8], do_file: &[u8], do_hash: Hash, env: &Env) -> ActionKey {
        KeyInput {
            target,
            do_file,
            do_hash,
            env,
            env_names: &self.config.env_names,
        }
        .key()
    }

    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// For `redo --daemon-status`.
    pub fn stats_line(&self) -> String {
        self.stats.stats_line()
    }

    /// Call at the end of a build: one warning line about the errors since the last call.
    pub fn take_warning(&self) -> Option<String> {
        self.stats.take_warning()
    }

    /// Counts a miss decided by the caller (traces found, none matched).
    pub fn note_miss(&self) {
        self.stats.miss();
    }

    fn available(&self) -> bool {
        let Ok(mut d) = self.down_until.lock() else {
            return true;
        };
        match *d {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                *d = None;
                true
            }
            None => true,
        }
    }

    /// Counts `e`; a server that cannot be reached is paused for [`DOWN_PAUSE`].
    fn failed(&self, e: &CacheError) {
        if matches!(e, CacheError::Paused { .. }) {
            // Counted when it happened; re-arming here would never let the server back.
            return;
        }
        self.stats.error(e);
        if e.is_unavailable() {
            if let Ok(mut d) = self.down_until.lock() {
                *d = Some(Instant::now() + DOWN_PAUSE);
            }
        }
    }

    fn unavailable(&self) -> CacheError {
        CacheError::Paused {
            url: self.config.location.to_string(),
        }
    }

    /// The traces of `key`'s entry, asked of `backend`. `Ok(None)`: no entry. Errors: the
    /// server failed, or the entry is corrupt or foreign (not counted here).
    async fn entry(
        &self,
        backend: &Backend,
        key: &ActionKey,
    ) -> Result<Option<Vec<Trace>>, CacheError> {
        if !self.available() {
            return Err(self.unavailable());
        }
        let Some(ar) = backend.get(Area::Ac, &key.hex()).await? else {
            return Ok(None);
        };
        self.stats.down(ar.len() as u64);
        format::decode_action_result(&ar)
            .map(Some)
            .map_err(|e| CacheError::BadEntry {
                key: key.hex(),
                what: e.to_string(),
            })
    }

    /// Starts reading `key`'s entry now, for a [`RemoteCache::lookup`] soon
    /// ([`super::prefetch`]). Needs a tokio runtime (none: nothing is asked); a server paused
    /// as down is not asked.
    pub fn prefetch(self: &Arc<Self>, key: ActionKey) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.available() {
            return;
        }
        let Some(answer) = self.prefetches.ask(key, Instant::now()) else {
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            let _ = answer.send(me.entry(&me.backend, &key).await);
        });
    }

    /// The traces of `key`'s entry ([`Lookup`]): a prefetched answer when there is a fresh
    /// one, else asked now.
    pub async fn lookup(&self, key: &ActionKey) -> Lookup {
        let prefetched = match self.prefetches.take(key, Instant::now()) {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        let answer: Answer = match prefetched {
            Some(a) => a,
            None => self.entry(&self.backend, key).await,
        };
        match answer {
            Ok(Some(traces)) if !traces.is_empty() => Lookup {
                traces,
                known: true,
            },
            Ok(_) => {
                self.stats.miss();
                Lookup {
                    traces: Vec::new(),
                    known: true,
                }
            }
            Err(e) => {
                self.failed(&e);
                self.stats.miss();
                Lookup::default()
            }
        }
    }

    /// Downloads `output` into `file` (a fresh temporary next to the target, created by the
    /// caller with the requester's umask), verifying SHA-256 and size; fsyncs it when `sync`;
    /// adds execute bits where there are read bits when the trace says executable. On `Ok`
    /// the caller renames the temporary onto the target; on `Err` (counted as an error and a
    /// miss) it removes it and builds locally. Counts a hit on success.
    pub async fn fetch_into(
        &self,
        output: &BlobDigest,
        executable: bool,
        file: std::fs::File,
        sync: bool,
    ) -> Result<Fetched, CacheError> {
        let r = self.fetch_inner(output, executable, file, sync).await;
        match &r {
            Ok(f) => {
                self.stats.hit();
                self.stats.down(f.size);
            }
            Err(e) => {
                self.failed(e);
                self.stats.miss();
            }
        }
        r
    }

    async fn fetch_inner(
        &self,
        output: &BlobDigest,
        executable: bool,
        file: std::fs::File,
        sync: bool,
    ) -> Result<Fetched, CacheError> {
        if !self.available() {
            return Err(self.unavailable());
        }
        let mut sink = BlobSink::new(tokio::fs::File::from_std(file), *output);
        if !self.backend.get_into(&output.hex(), &mut sink).await? {
            return Err(CacheError::BadEntry {
                key: output.hex(),
                what: "output blob missing".into(),
            });
        }
        let (file, hash) = sink.finish().await?;
        if executable {
            let meta = file
                .metadata()
                .await
                .map_err(|e| CacheError::io("stat", "fetched output", e))?;
            let mode = meta.permissions().mode();
            file.set_permissions(std::fs::Permissions::from_mode(
                mode | ((mode & 0o444) >> 2),
            ))
            .await
            .map_err(|e| CacheError::io("chmod", "fetched output", e))?;
        }
        if sync {
            file.sync_all()
                .await
                .map_err(|e| CacheError::io("fsync", "fetched output", e))?;
        }
        Ok(Fetched {
            hash,
            size: output.size,
            executable,
        })
    }

    /// [`RemoteCache::fetch_into`] a new file at `tmp` (mode 0666 under the process umask),
    /// removed again on failure.
    pub async fn fetch_to_path(
        &self,
        output: &BlobDigest,
        executable: bool,
        tmp: &Path,
        sync: bool,
    ) -> Result<Fetched, CacheError> {
        let file = match crate::store::durable::create_new(tmp) {
            Ok(f) => f,
            Err(e) => {
                let e = CacheError::io("create", tmp, e);
                self.failed(&e);
                self.stats.miss();
                return Err(e);
            }
        };
        let r = self.fetch_into(output, executable, file, sync).await;
        if r.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        r
    }

    /// Lookup, match and fetch in one: what the runner calls before running a `.do`.
    /// `probe` answers questions about the trace's dependencies (see [`super::matching`]);
    /// on a hit `tmp` holds the verified output.
    pub async fn restore<F, Fut>(
        &self,
        key: &ActionKey,
        probe: F,
        tmp: &Path,
        sync: bool,
    ) -> Restore
    where
        F: FnMut(Probe) -> Fut,
        Fut: std::future::Future<Output = Observed>,
    {
        let traces = match self.entry(&self.backend, key).await {
            Ok(Some(t)) if !t.is_empty() => t,
            Ok(_) => {
                self.stats.miss();
                return Restore::Miss {
                    reasons: vec!["no cache entry".into()],
                };
            }
            Err(e) => {
                self.failed(&e);
                self.stats.miss();
                return Restore::Miss {
                    reasons: vec![e.to_string()],
                };
            }
        };
        let outcome = find_match_async(&traces, probe).await;
        let mut reasons: Vec<String> = outcome
            .rejected
            .iter()
            .map(|(i, r)| format!("trace {i}: {r}"))
            .collect();
        let Some(t) = outcome.matched.and_then(|i| traces.into_iter().nth(i)) else {
            self.stats.miss();
            return Restore::Miss { reasons };
        };
        match self.fetch_to_path(&t.output, t.executable, tmp, sync).await {
            Ok(fetched) => Restore::Hit { trace: t, fetched },
            Err(e) => {
                reasons.push(e.to_string());
                Restore::Miss { reasons }
            }
        }
    }

    /// Queues an upload of a committed target in the background (read-only mode: nothing),
    /// on [`upload_runtime`] (should its thread not start: on the current tokio runtime;
    /// outside one, not queued and counted as an error). Returns at once and never fails;
    /// whether it was queued is returned for tests. Errors are counted for
    /// [`RemoteCache::take_warning`].
    pub fn upload(self: &Arc<Self>, up: Upload) -> bool {
        if self.config.mode == Mode::Read {
            return false;
        }
        let Some(rt) = upload_runtime()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            self.stats.error(&CacheError::NotCacheable(
                "upload outside a tokio runtime".into(),
            ));
            return false;
        };
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_UPLOADS {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats
                .error(&CacheError::NotCacheable("too many uploads waiting".into()));
            return false;
        }
        let me = Arc::clone(self);
        self.uploads.spawn_on(
            async move {
                let slot = me.slots.clone().acquire_owned().await;
                if let Err(e) = me.upload_now(up).await {
                    if !matches!(e, CacheError::NotCacheable(_)) {
                        me.failed(&e);
                    }
                }
                drop(slot);
                me.queued.fetch_sub(1, Ordering::Relaxed);
            },
            &rt,
        );
        true
    }

    /// Waits for the uploads queued so far (tests; a daemon draining before exit).
    pub async fn flush(&self) {
        self.uploads.close();
        self.uploads.wait().await;
        self.uploads.reopen();
    }

    async fn upload_now(&self, up: Upload) -> Result<(), CacheError> {
        let backend = &self.upload_backend;
        if !self.available() {
            return Err(self.unavailable());
        }
        let size = tokio::fs::metadata(&up.output)
            .await
            .map_err(|e| CacheError::io("stat", &up.output, e))?
            .len();
        if size > MAX_OUTPUT {
            return Err(CacheError::NotCacheable(format!(
                "larger than {MAX_OUTPUT} bytes"
            )));
        }
        let kib = u32::try_from(size.div_ceil(1024))
            .unwrap_or(MEMORY_BUDGET_KIB)
            .clamp(1, MEMORY_BUDGET_KIB);
        let _memory = self
            .memory
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|e| CacheError::NotCacheable(format!("upload: {e}")))?;
        let path = up.output.clone();
        let (content, executable) = tokio::task::spawn_blocking(move || read_output(&path, size))
            .await
            .map_err(|e| CacheError::NotCacheable(format!("upload task: {e}")))??;
        if *blake3::hash(&content).as_bytes() != up.output_hash {
            return Err(CacheError::NotCacheable("changed since its commit".into()));
        }
        let digest = BlobDigest::of(&content);
        if backend
            .put_blob(&digest.hex(), Bytes::from(content))
            .await?
        {
            self.stats.up(digest.size);
        }
        // Best effort merge with what is there: a concurrent upload of the same key may be
        // lost (last writer wins), which costs a future hit, never a wrong one.
        let old = match up.seen {
            Some(seen) => seen,
            None => match self.entry(backend, &up.key).await {
                Ok(Some(t)) => t,
                Ok(None) => Vec::new(),
                Err(e) if e.is_unavailable() || matches!(e, CacheError::Paused { .. }) => {
                    return Err(e);
                }
                Err(_) => Vec::new(),
            },
        };
        let traces = format::merge(
            Trace {
                deps: up.deps,
                output: digest,
                executable,
            },
            old,
        );
        let ar = format::encode_action_result(&traces);
        self.stats.up(ar.len() as u64);
        backend
            .put(Area::Ac, &up.key.hex(), Bytes::from(ar))
            .await?;
        self.stats.uploaded();
        Ok(())
    }
}

/// The runtime the uploads run on, started with the first: a thread of its own, so that
/// what they cost (reading and hashing outputs, the requests) runs beside the build instead
/// of on the daemon's one runtime thread, which every job's requests, spawns and commits go
/// through. Never dropped (a runtime must not be dropped inside another's task); it idles
/// in `epoll_wait` when there is nothing to upload. `None` if its thread could not start.
fn upload_runtime() -> Option<&'static tokio::runtime::Handle> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("redod-uploads")
                .build()
                .ok()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("redod-uploads".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The committed output, if it is a regular file of at most `limit` bytes (the size its
/// memory was reserved for).
fn read_output(path: &Path, limit: u64) -> Result<(Vec<u8>, bool), CacheError> {
    let f = std::fs::File::open(path).map_err(|e| CacheError::io("open", path, e))?;
    let meta = f.metadata().map_err(|e| CacheError::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(CacheError::NotCacheable("not a regular file".into()));
    }
    let mut content = Vec::with_capacity(usize::try_from(limit.min(meta.len())).unwrap_or(0));
    f.take(limit + 1)
        .read_to_end(&mut content)
        .map_err(|e| CacheError::io("read", path, e))?;
    if content.len() as u64 > limit {
        return Err(CacheError::NotCacheable("changed since its commit".into()));
    }
    Ok((content, meta.permissions().mode() & 0o111 != 0))
}
