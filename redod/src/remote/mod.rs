//! A shared build cache on Bazel's HTTP remote-cache protocol: what one machine built, every
//! checkout reuses.
//!
//! | file | concept |
//! |---|---|
//! | `config`   | `REDO_CACHE*` → [`CacheConfig`] |
//! | `key`      | the [`ActionKey`] of a target: format version, paths, `.do` hash, `REDO_CACHE_ENV` |
//! | `format`   | [`Trace`]s and the REAPI `ActionResult` entry that holds them |
//! | `matching` | which trace fits the checkout now (pure logic) |
//! | `backend`  | the two areas `cas/` and `ac/`, verified downloads ([`backend::BlobSink`]) |
//! | `http`     | `GET`/`HEAD`/`PUT` over http(s) with basic auth and a private CA |
//! | `dir`      | `file:///dir`, atomic writes (temp + rename) |
//! | `client`   | [`RemoteCache`]: lookup, fetch, background upload, counters |
//! | `prefetch` | entry lookups asked ahead of need (the next target at `-j1`) |
//! | `stats`    | hits, misses, uploads, bytes, errors; one warning per build |
//! | `registry` | [`Caches`]: the daemon's clients, one per distinct configuration |
//!
//! # Integration (runner)
//!
//! The daemon keeps one [`Caches`] (shared by the executor and the request layer, never by
//! the engine: `exec::Processes`, `request::Context`); each request picks its client from its
//! environment (a client holds a connection pool, the "server down" pause and the counters,
//! so it is shared by every request with the same configuration):
//!
//! ```ignore
//! let cache = match ctx.caches.for_env(&request.env) {
//!     Ok(c) => c,                                        // None: REDO_CACHE unset
//!     Err(e) => { warn_once_per_build!("{e}"); None }    // names the variable and the fix
//! };
//! ```
//!
//! `redo --daemon-status` adds [`Caches::stats_lines`]; a draining daemon awaits
//! [`Caches::flush`] so queued uploads are not lost.
//!
//! **Before running a `.do`** for target `T` (already judged out of date, its lock held):
//!
//! ```ignore
//! let key = cache.key(T_rel_root, do_rel_root, do_blake3, &env);
//! let tmp = durable::temp_path(dir, name);            // created inside with create_new
//! match cache.restore(&key, |probe| async move { engine_observe(probe).await }, &tmp, sync).await {
//!     Restore::Hit { trace, fetched } => {
//!         // commit as if the .do had written `tmp` (rename onto T); records: the trace's
//!         // deps (stat each for its Stamp; Ifchange content = hash, None = absent; Ifcreate),
//!         // the own record with `fetched.hash`. Nothing is printed but with -d.
//!     }
//!     Restore::Miss { reasons } => { /* -d: print reasons; run the .do as usual */ }
//! }
//! ```
//!
//! `engine_observe(Probe { path, kind })` resolves `path` against `T`'s directory; for
//! [`ProbeKind::Content`] it first brings the dependency up to date if it is a target (as the
//! out-of-date check does), then answers [`Observed::Content`] (BLAKE3; a target without
//! output: its `redo-stamp`), [`Observed::Absent`], or [`Observed::Exists`] for something that
//! cannot be hashed; for [`ProbeKind::Existence`] only `Absent`/`Exists`. The lower-level
//! steps are public too: [`RemoteCache::lookup`], [`find_match_async`] /
//! [`matching::Matcher`], [`RemoteCache::fetch_into`] (the runner gives it an anonymous
//! capture, which its commit writes out as it would a `.do`'s stdout), [`RemoteCache::note_miss`].
//!
//! Trace paths come from the cache, so treat them as untrusted input: resolve them against
//! `T`'s directory as recorded paths are, and only look (a probe reads and hashes, it never
//! writes). If the `restore` future is dropped (the client went away), `tmp` may be left
//! behind: the runner's usual cleanup of its temporaries applies.
//!
//! **After a commit** that installed a regular file (not when it was fetched from the
//! cache), in `readwrite` mode:
//!
//! ```ignore
//! if let Ok(deps) = TraceDep::from_deps(name, rec.deps.iter()) {   // Err: redo-always, no output
//!     cache.upload(Upload { key, output: dir.join(name), output_hash: committed_blake3, deps, seen });
//! }
//! ```
//!
//! **Ahead of need:** at `-j1` (and for `redo`'s forced targets) a request's targets are
//! built one after another, so when one is being built the runner calls
//! [`RemoteCache::prefetch`] with the next one's key (only when that target is absent: the
//! executor's `Executor::prefetch`, which the engine calls); its `lookup` then takes the
//! answer instead of asking ([`prefetch`]).
//!
//! `seen` is what the lookup before the build found (`Some(traces)` when [`Lookup::known`],
//! else `None`): the upload merges its trace with that instead of reading the entry again.
//! `upload` returns at once; the work runs in a tokio task on a runtime thread of the
//! uploads' own (at most
//! [`client::UPLOAD_CONCURRENCY`] at a time) and re-reads the file, giving up if its BLAKE3
//! is no longer `output_hash`. At the end of a build print [`RemoteCache::take_warning`] (one
//! line, or nothing); `--daemon-status` shows [`RemoteCache::stats_line`].
//!
//! # Guarantees
//!
//! Faults are misses, never wrong builds and never failed builds: a server down or slow
//! (connect 1 s, request 10 s plus 1 s per 4 MiB; after it was unreachable it is not asked for
//! 30 s), an error status, a blob whose SHA-256 or size differs from its name, an entry that
//! does not decode, has another format version or lacks its traces: all counted as
//! errors and reported in one warning. Concurrent uploads of one key are harmless: blobs are
//! content-addressed and written whole, and the entry is last writer wins (a lost trace is a
//! lost future hit, nothing worse).

pub mod backend;
pub mod client;
pub mod config;
pub mod dir;
pub mod error;
pub mod format;
pub mod http;
pub mod key;
pub mod matching;
pub mod prefetch;
pub mod registry;
pub mod stats;

pub use client::{Fetched, Lookup, RemoteCache, Restore, Upload};
pub use config::{CacheConfig, Location, Mode};
pub use error::CacheError;
pub use format::{BlobDigest, Trace, TraceDep};
pub use key::{ActionKey, KeyInput};
pub use matching::{Observed, Outcome, Probe, ProbeKind, Reason, find_match, find_match_async};
pub use registry::Caches;
