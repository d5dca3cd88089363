//! What redo keeps on disk, and the daemon's memory of it.
//!
//! Owns the `.rec` recfile schema ([`recfile`]), the one `.redo/` layout ([`layout`]), durable
//! writes (temp, fsync, rename: [`durable`]), parsed state files and content hashes kept
//! between builds ([`cache`]), the per-target lock files ([`locks`]), kept logs ([`logs`]) and
//! the journal of running jobs a restarted daemon reads ([`journal`]). It decides nothing
//! about builds and never spawns or signals a process.

pub mod cache;
pub mod durable;
pub mod journal;
pub mod layout;
pub mod locks;
pub mod logs;
pub mod recfile;
pub mod redact;
pub mod snapshot;

use crate::fs::paths::show;
use redo_proto::plain::words;
use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing redo's files. Its messages are the ones users have
/// always seen (`cannot fsync out/.redo: no space left on device`): they name the file; the
/// `io::Error` stays attached, so a caller can still tell `NotFound` from the rest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {what} {}: {}", show(path), words(source))]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {} to {}: {}", show(from), show(to), words(source))]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// `map_err(Error::io("fsync", dir))`.
    pub fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + use<'a> {
        move |source| Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
