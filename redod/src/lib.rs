//! redod: the per-project redo build daemon.
//!
//! It owns the job tokens, the target locks, the in-memory dependency cache and every write to
//! `.redo/*.rec`, and it runs the `.do` scripts. The `redo*` clients only carry requests to it.
//!
//! Module map (one job each):
//!
//! | module      | job                                                                  |
//! |-------------|----------------------------------------------------------------------|
//! | `lifecycle` | runtime dir, pid lock, idle exit, drain                              |
//! | `server`    | accept, peer-uid check, handshake, one task per connection           |
//! | `engine`    | sessions, one flight per target, waiters, cycles, nested requests    |
//! | `ood`       | out-of-date decisions, pure logic over `fsys::Fs`                    |
//! | `dofile`    | which `.do` builds a target                                          |
//! | `runner`    | spawning a `.do`, relaying its stderr, checking and committing       |
//! | `state`     | the `.rec` recfile format                                            |
//! | `cache`     | parsed `.rec` files and hashes kept between builds                   |
//! | `locks`     | the fcntl lock on `.redo/T.lock`                                     |
//! | `jobs`      | job tokens                                                           |
//! | `output`    | message lines and client event queues                                |
//! | `settings`  | what a request's environment asks for                                |
//! | `umask`     | creating files and processes with the requester's umask              |
//! | `fsys`      | the filesystem trait the engine decides over                         |
//! | `paths`     | lexical path arithmetic on bytes                                     |
//! | `watch`     | the inotify accelerator: stats and listings answered from memory     |
//! | `verdict`   | up-to-date verdicts kept while the watcher vouches for their inputs  |
//! | `remote`    | the shared build cache (Bazel HTTP remote-cache protocol, `file://`) |

pub mod cache;
pub mod dofile;
pub mod durable;
pub mod engine;
pub mod fastmap;
pub mod fsys;
pub mod jobs;
pub mod lifecycle;
pub mod locks;
pub mod logs;
pub mod maintenance;
pub mod ood;
pub mod orphans;
pub mod output;
pub mod paths;
pub mod query;
pub mod remote;
pub mod runner;
pub mod server;
pub mod settings;
pub mod state;
pub mod umask;
pub mod verdict;
pub mod watch;

#[cfg(test)]
mod engine_tests;
