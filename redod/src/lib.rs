//! redod: the per-project redo build daemon.
//!
//! It owns the job tokens, the target locks, the in-memory dependency cache and every write to
//! `.redo/*.rec`, and it runs the `.do` scripts. The `redo*` clients only carry requests to it.
//! `docs/DESIGN.md` at the repository's root states the architecture and its invariants.
//!
//! Module map. Each module uses only the modules after it in the order `docs/DESIGN.md` §2
//! states (the one statement of it: `redod/tests/structure.rs` reads it there and fails on an
//! edge against it, or a cycle).
//!
//! | module        | owns                                                                      |
//! |---------------|---------------------------------------------------------------------------|
//! | `daemon`      | start-up, runtime dir, pid lock, idle exit, drain; the listener           |
//! | `request`     | one client request: parsed once, then a command type per kind (`apply`)   |
//! | `exec`        | the executor: spawning a `.do`, its process, relaying its stderr, checking |
//! |               | and committing its output, the shared cache, the sweep after a crash       |
//! | `engine`      | sessions, one flight per target, waiters, cycles, jobs, the check         |
//! | `query`       | the listings (`redo-targets`, `-sources`, `-ood`, `-affects`, `-dot`)     |
//! | `maintenance` | `redo-cleanup`, `redo-depfix`                                             |
//! | `verdict`     | up-to-date verdicts kept while the watcher vouches for their inputs       |
//! | `ood`         | the out-of-date decision, pure logic over `fs::Fs`                        |
//! | `watch`       | the inotify accelerator: stats and listings answered from memory          |
//! | `store`       | `.rec` recfiles, the `.redo/` layout, durable writes, caches, locks, logs |
//! | `fs`          | the filesystem traits (reads, writes; disk and in-memory), paths, umask    |
//! | `output`      | message lines, client event queues, typed JSON events                     |
//! | `jobserver`   | job tokens, GNU make's jobserver both ways                                |
//! | `settings`    | what a request's environment asks for                                     |
//! | `dofile`      | which `.do` builds a target                                               |
//! | `remote`      | the shared build cache (Bazel's HTTP remote-cache protocol, or a directory)|
//! | `insight`     | `--timings` / `--trace`: a build's timeline, its HTML report, its trace  |

pub mod daemon;
pub(crate) mod dofile;
pub(crate) mod engine;
pub(crate) mod exec;
pub(crate) mod fastmap;
pub mod fs;
pub mod insight;
pub(crate) mod jobserver;
pub(crate) mod maintenance;
pub(crate) mod ood;
pub(crate) mod output;
pub(crate) mod query;
pub mod remote;
pub(crate) mod request;
pub mod settings;
pub mod spawner;
pub mod store;
pub(crate) mod sync;
pub(crate) mod verdict;
pub(crate) mod watch;
