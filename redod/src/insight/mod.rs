//! Build insight: what a build did over time, for `redo --timings[=FILE]` (a self-contained
//! HTML report) and `redo --trace=FILE` (Chrome trace-event JSON for Perfetto).
//!
//! Owns the [`Recorder`] the engine feeds while one build runs (created only when a report
//! is asked for, so a build without one pays nothing), the [`Timeline`] it closes into, the
//! analyses over it ([`critical`] path, [`concurrency`] curve and token waits), the two
//! writers ([`report`], [`trace`]) and the files ([`files`]: default location
//! `ROOT/.redo/timings/timings-<UTC>.html` and `latest.html`, atomic writes, the 20 newest
//! kept). It never reads a build's state and decides nothing about builds.
//!
//! The engine's side, in order: `Recorder::new()` when the build starts; `queued`,
//! `depends`, `started`, `waiting`/`resumed`, `finished`, `up_to_date` as it works (see
//! [`record`] for the contract); `finish(wall, jobs_limit, interrupted)` when it ends, failed
//! or interrupted too; then [`write_timings`] / [`write_trace`].

pub mod concurrency;
pub mod critical;
pub(crate) mod escape;
pub mod files;
pub(crate) mod lanes;
pub mod record;
pub mod report;
pub mod timeline;
pub mod trace;
pub(crate) mod utc;

pub use record::Recorder;
pub use timeline::{Outcome, Span, Timeline, Totals, Wait};

use crate::store;
use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong writing a report or a trace. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] store::Error),
    #[error("cannot encode the build's timings as JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("{}: not a file name (give a file, e.g. --timings=build.html)", crate::fs::paths::show(.0))]
    NotAFile(PathBuf),
}

impl Error {
    /// `map_err(Error::io("write", path))`.
    pub fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + use<'a> {
        move |e| Error::Io(store::Error::io(what, path)(e))
    }
}

/// Where `--timings` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `--timings`: `.redo/timings/` under the project root ([`files`]).
    Default { root: PathBuf },
    /// `--timings=FILE`.
    File(PathBuf),
}

/// Renders `timeline` as the HTML report titled `title` (the project's name) and writes it to
/// `to`. Returns the path to print.
pub fn write_timings(timeline: &Timeline, title: &str, to: &Destination) -> Result<PathBuf, Error> {
    let html = report::render(timeline, title)?;
    match to {
        Destination::Default { root } => {
            Ok(files::write_report(root, timeline.started_at, html.as_bytes())?.report)
        }
        Destination::File(path) => {
            files::write_atomic(path, html.as_bytes())?;
            Ok(path.clone())
        }
    }
}

/// `path` as the recorder is given it: relative to the project root the daemon serves,
/// unchanged (absolute) outside it or where no root is set (unit tests). Borrows: feeding a
/// recorder allocates nothing for a name it then ignores.
pub fn name(path: &Path) -> &Path {
    crate::fs::paths::root()
        .and_then(|root| path.strip_prefix(root).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(path)
}

/// Writes `timeline` as Chrome trace-event JSON to `path`.
pub fn write_trace(timeline: &Timeline, path: &Path) -> Result<(), Error> {
    files::write_atomic(path, &trace::to_bytes(timeline)?)
}
