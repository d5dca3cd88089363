//! Why a job failed, as the runner finds it. Each message is what users have always seen
//! after `err  target (its.do):`; a file operation's is [`store::Error`]'s, the one place
//! that words those.

use crate::fs::paths::show;
use crate::store;
use redo_proto::plain::words;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Reading, writing, syncing or renaming one of redo's files or the target.
    #[error(transparent)]
    File(#[from] store::Error),
    /// The target's lock could not be taken (`what`: the lock, as `LOCK_` lines name it).
    #[error("cannot lock {what}: {}", words(.source))]
    Lock { what: String, source: io::Error },
    /// The state file is damaged.
    #[error(transparent)]
    Corrupt(#[from] store::recfile::ParseError),
    /// Nothing is there and nothing builds it; `needed_by`: the targets that wanted it.
    #[error("no such file, and no .do builds it{}", needed_by_text(.needed_by))]
    NoDo { needed_by: Vec<String> },
    /// `REDO_STOP_IF_MODIFIED=1` and its output was edited since redo wrote it.
    #[error(
        "{0} externally modified: its content is not what redo wrote (remove it to have it \
         rebuilt)"
    )]
    Modified(String),
    /// Another process held its lock, and what it left is not this build's.
    #[error("was not built: build differs")]
    BuiltByAnother,
    #[error("was not built: no .rec")]
    NotBuiltByAnother,
    /// The `.do` lookup itself failed (a directory that cannot be listed).
    #[error("cannot look for a .do: {}", words(.0))]
    DoLookup(io::Error),
    #[error("{} vanished", show(.0))]
    DoVanished(PathBuf),
    #[error(transparent)]
    Shebang(#[from] crate::dofile::ShebangTooLong),
    /// No file to capture the `.do`'s stdout in (`spill`: where an unnamed one was tried).
    #[error(
        "cannot make a file to capture the stdout of {target} in: {} (memfd_create, and \
         O_TMPFILE in {}, failed)",
        words(.source),
        show(.spill)
    )]
    Capture {
        target: String,
        spill: PathBuf,
        source: io::Error,
    },
    /// `-k`: its log could not be created.
    #[error("cannot create the log of {target}: {}", words(.source))]
    Log { target: String, source: io::Error },
    /// The program a `#!` line names cannot be run.
    #[error(
        "cannot run {} named by the #! line of {}: {}: fix that line, or make the .do \
         executable",
        .program.to_string_lossy(),
        show(.do_path),
        words(.source)
    )]
    Interpreter {
        program: std::ffi::OsString,
        do_path: PathBuf,
        source: io::Error,
    },
    #[error("cannot run {}: {}", .program.to_string_lossy(), words(.source))]
    Spawn {
        program: std::ffi::OsString,
        source: io::Error,
    },
    #[error("cannot wait for the .do: {}", words(.0))]
    Wait(io::Error),
    /// The `.do` failed: Go's `ExitError` text, which goredo prints.
    #[error("{}", super::exit_text(*.0))]
    Exit(ExitStatus),
    /// The `.do` (`do_name`) wrote its target (`arg1`, its `$1`) itself.
    #[error(
        "{} wrote {} itself: write to $3 or to stdout instead (redo renames $3 to {} when the \
         .do succeeds)",
        show(.do_name),
        show(.arg1),
        show(.arg1)
    )]
    Arg1Touched { do_name: PathBuf, arg1: PathBuf },
    /// An executable `.do` without a `#!` line: the kernel cannot run it (`ENOEXEC`).
    #[error(
        "cannot run {}: it is executable but does not start with a #! line; make its first \
         line one (e.g. #!/bin/sh), or chmod -x it and redo runs it with /bin/sh -e",
        show(.0)
    )]
    NoShebang(PathBuf),
    /// The captured stdout of `of` could not be stat'ed.
    #[error("cannot stat the captured stdout of {of}: {}", words(.source))]
    CaptureStat { of: String, source: io::Error },
    #[error("cannot read the captured stdout of {of}: {}", words(.source))]
    CaptureRead { of: String, source: io::Error },
    /// `$1` became a directory while the `.do` also wrote `wrote` (`$3`, or to stdout).
    #[error(
        "{} is a directory, and the .do also wrote {wrote}: a target is one or the other \
         (remove the directory in the .do, or write nothing)",
        show(.target)
    )]
    DirAndOutput {
        target: PathBuf,
        wrote: &'static str,
    },
    /// The `.do` (`do_name`) wrote its output both to `$3` and to stdout.
    #[error(
        "{} wrote both $3 and stdout: write the output to one of them only, and messages to \
         stderr (>&2)",
        show(.0)
    )]
    BothOutputs(PathBuf),
    /// The commit's task did not finish (it panicked, or the runtime is going away).
    #[error("commit failed: {0}")]
    Commit(tokio::task::JoinError),
}

fn needed_by_text(needed_by: &[String]) -> String {
    match needed_by.is_empty() {
        true => String::new(),
        false => format!(" (needed by {})", needed_by.join(", ")),
    }
}

impl Error {
    /// A file operation on `path` that failed: `cannot <what> <path>: <error>`.
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(io::Error) -> Error + use<'a> {
        let f = store::Error::io(what, path);
        move |e| Error::File(f(e))
    }
}
