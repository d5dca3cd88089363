//! What redo keeps on disk, and the daemon's memory of it.
//!
//! Owns the `.rec` recfile schema ([`recfile`]), the one `.redo/` layout ([`layout`]), durable
//! writes (temp, fsync, rename: [`durable`]), parsed state files and content hashes kept
//! between builds ([`cache`]), the per-target lock files ([`locks`]), kept logs ([`logs`]) and
//! the journal of running jobs a restarted daemon sweeps ([`orphans`]). It decides nothing
//! about builds and never spawns a process.

pub mod cache;
pub mod durable;
pub mod layout;
pub mod locks;
pub mod logs;
pub mod orphans;
pub mod recfile;
