//! The module's one error type. Every variant is a reason to *not* use the cache (a miss, or
//! an upload skipped); none of them may fail a build. Messages name the variable or the
//! server involved so that a warning line is enough to act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A `REDO_CACHE*` variable that cannot be used: `var` names it, `fix` says what to do.
    #[error("{var}: {what}; {fix}")]
    Config {
        var: &'static str,
        what: String,
        fix: &'static str,
    },
    /// The server could not be reached, or did not answer in time.
    #[error("remote cache {url}: {what}")]
    Transport { url: String, what: String },
    /// Not asked: the server was unreachable a moment ago ([`super::client::DOWN_PAUSE`]).
    /// A miss, but not counted as another error.
    #[error("remote cache {url}: not asked, unreachable a moment ago")]
    Paused { url: String },
    /// The server answered with an unexpected HTTP status.
    #[error("remote cache {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    /// A blob whose SHA-256 or size is not the one it is stored under.
    #[error("remote cache blob {hash}: content does not match its digest ({what})")]
    Mismatch { hash: String, what: String },
    /// An action entry that is not ours or not readable (bad protobuf, unknown format
    /// version, trace blob missing).
    #[error("remote cache entry {key}: {what}")]
    BadEntry { key: String, what: String },
    /// A local file operation of the cache (the `file://` backend, the fetched output).
    #[error("remote cache: {0}")]
    Io(crate::store::Error),
    /// The target cannot be cached (not a regular file, `redo-always`, too big, changed
    /// since its commit).
    #[error("not cacheable: {0}")]
    NotCacheable(String),
}

impl CacheError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        CacheError::Io(crate::store::Error::Io {
            what,
            path: path.into(),
            source: error,
        })
    }

    /// Whether the server itself seems to be down (connection refused, timeout): the client
    /// then stops asking it for a while instead of paying a timeout per target.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CacheError::Transport { .. })
    }
}
