//! `--timings[=FILE]` and `--trace=FILE` for one top-level build: the [`Recorder`] its
//! session's flights and jobs feed, and the files written from it when the build ends, however
//! it ends.
//!
//! A build ends in one of two ways, and both write:
//! * its request returns (built, failed, stopped after a failure): [`Reports::close`] writes
//!   on the blocking pool and tells the client where the files are;
//! * its request is dropped before that (the client went away: Ctrl-C, a lost terminal):
//!   the [`Drop`] of an unclosed `Reports` writes what ran until then, the runs still open
//!   ending as interrupted. Nobody is left to tell; the daemon's log says where.
//!
//! In `--watch`, each round is a build of its own (a session each): each round's end writes
//! its report, a new timestamped one in `.redo/timings/` (or `FILE` again, replaced).
//!
//! Only a build from a shell records: a nested `redo-ifchange --timings` inside a `.do` is
//! part of its parent's build, whose report covers it when that build asked for one.

use super::Asked;
use crate::fs::paths;
use crate::insight::{self, Destination, Recorder};
use redo_proto::{BuildOptions, Timings};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The reports one build asked for, until they are written.
pub(crate) struct Reports {
    recorder: Arc<Recorder>,
    timings: Option<Destination>,
    trace: Option<PathBuf>,
    /// `-j` as the timeline has it: `None` for unlimited (or make's pool, whose size is not
    /// known).
    jobs: Option<u32>,
    started: Instant,
    /// The project's name, the report's title.
    title: String,
    /// Where the closing lines go, and the command's name for them.
    sink: crate::output::Sink,
    tool: String,
    /// Written already: a later drop does nothing.
    closed: bool,
}

/// What writing produced: lines for the client (or, when it has gone, the log).
struct Written {
    lines: Vec<String>,
    failed: bool,
}

impl Reports {
    /// The reports `options` ask for, for a build with the job limit `limit` (the tokens'
    /// [`crate::jobserver::Tokens::limit`]); `None` when none is asked, and the build records
    /// nothing.
    pub(crate) fn asked(
        options: &BuildOptions,
        limit: Option<u32>,
        asked: &Asked,
    ) -> Option<Reports> {
        if options.timings.is_none() && options.trace_file.is_none() {
            return None;
        }
        let root = paths::root()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| asked.origin.cwd.clone());
        let file = |b: &[u8]| paths::resolve(&asked.origin.cwd, OsStr::from_bytes(b));
        let timings = options.timings.as_ref().map(|t| match t {
            Timings::Default => Destination::Default { root: root.clone() },
            Timings::File(f) => Destination::File(file(f)),
        });
        let title = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "redo".into());
        Some(Reports {
            recorder: Arc::new(Recorder::new()),
            timings,
            trace: options.trace_file.as_deref().map(|f| file(f)),
            jobs: limit.filter(|&n| n > 0),
            started: Instant::now(),
            title,
            sink: asked.sink.clone(),
            tool: asked.tool.clone(),
            closed: false,
        })
    }

    /// The recorder the build's session holds.
    pub(crate) fn recorder(&self) -> Arc<Recorder> {
        self.recorder.clone()
    }

    /// The build's request is done (`interrupted`: it stopped early, after a failure without
    /// `--keep-going`): writes the files and prints where they are. Returns `false` when one
    /// could not be written (said on the client's stderr).
    pub(crate) async fn close(mut self, interrupted: bool) -> bool {
        self.closed = true;
        let write = self.writer(interrupted);
        let written = tokio::task::spawn_blocking(write)
            .await
            .unwrap_or_else(|e| Written {
                lines: vec![format!("cannot write the build's timings: {e}")],
                failed: true,
            });
        for line in &written.lines {
            self.sink.error(&format!("{}: {line}", self.tool));
        }
        !written.failed
    }

    /// Ends the recording now and gives the work of writing it, to run where blocking is fine.
    fn writer(&self, interrupted: bool) -> impl FnOnce() -> Written + Send + 'static {
        let timeline = self
            .recorder
            .finish(self.started.elapsed(), self.jobs, interrupted);
        let (timings, trace, title) =
            (self.timings.clone(), self.trace.clone(), self.title.clone());
        let shown = {
            let sink = self.sink.clone();
            move |p: &Path| sink.rel(p)
        };
        move || {
            let mut w = Written {
                lines: Vec::new(),
                failed: false,
            };
            if let Some(to) = &timings {
                match insight::write_timings(&timeline, &title, to) {
                    Ok(p) => w.lines.push(format!("timings written to {}", shown(&p))),
                    Err(e) => {
                        w.lines
                            .push(format!("cannot write the timings report: {e}"));
                        w.failed = true;
                    }
                }
            }
            if let Some(p) = &trace {
                match insight::write_trace(&timeline, p) {
                    Ok(()) => w.lines.push(format!("trace written to {}", shown(p))),
                    Err(e) => {
                        w.lines.push(format!("cannot write the trace: {e}"));
                        w.failed = true;
                    }
                }
            }
            w
        }
    }
}

impl Drop for Reports {
    /// The request was dropped before its end (its client went away): what ran is written
    /// all the same, as an interrupted build, on the blocking pool when there is a runtime.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let write = self.writer(true);
        let log = move || {
            for line in write().lines {
                tracing::info!("interrupted build: {line}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(log)),
            Err(_) => log(),
        }
    }
}
