//! Request and event types carried in frames.
//!
//! Paths, arguments and environment entries are raw bytes: Unix file names need not be UTF-8,
//! and a build tool must not lose a file because its name is not.

use serde::{Deserialize, Serialize};
pub use serde_bytes::ByteBuf;

/// One client invocation. Sent once, right after the client hello.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    /// argv[0] as the user typed it, for messages (the operands are in `command`: a `.do`
    /// naming ten thousand targets sends them once).
    pub program: ByteBuf,
    /// The client's working directory, absolute.
    pub cwd: ByteBuf,
    /// The client's whole environment. A `.do` runs with the environment of whoever asked for
    /// it, never the daemon's own (which is whatever the first client had, minutes ago).
    pub env: Vec<(ByteBuf, ByteBuf)>,
    /// The client's umask: files the daemon creates for this request, and the `.do` it starts,
    /// use it.
    pub umask: u32,
    /// The job this client runs inside (`REDO_JOB`), for clients started by a `.do`.
    pub parent_job: Option<u64>,
    /// GNU make's jobserver, when a top-level client was started by `make -jN`: the build then
    /// draws its job tokens from make's pool.
    pub make_jobserver: Option<MakeJobserver>,
    /// Directory of the client binaries. Put first on every `.do`'s `PATH` so that a build
    /// started from a cargo target directory finds `redo-ifchange` without an install.
    pub client_dir: ByteBuf,
    pub terminal: Terminal,
}

/// How a `make -jN` that started the client hands out job tokens (from its `MAKEFLAGS`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum MakeJobserver {
    /// `--jobserver-auth=R,W`: pipe descriptors open in the client process. The daemon opens
    /// its own descriptions of that pipe through `/proc/<client pid>/fd/`.
    Pipe { read: i32, write: i32 },
    /// `--jobserver-auth=fifo:PATH` (GNU make 4.4 and later).
    Fifo(ByteBuf),
}

/// What the client's stderr is connected to.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Terminal {
    pub stderr_is_tty: bool,
    /// Terminal width in columns, 0 when unknown.
    pub columns: u16,
    /// Device and inode of what the client's stderr (descriptor 2) is, from its own `fstat`;
    /// `None` when it is closed or was not looked at. Tells the daemon whether a nested
    /// client writes into its job's stderr relay without a look at `/proc` per request.
    pub stderr: Option<(u64, u64)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `redo` and `redo-ifchange`.
    Build(Build),
    /// `redo-ifcreate`: record "rebuild the running target if these appear".
    Ifcreate { targets: Vec<ByteBuf> },
    /// `redo-always`: the running target is out of date in every new session.
    Always,
    /// `redo-stamp`: BLAKE3 of the client's stdin, recorded but never consulted.
    Stamp { hash: [u8; 32] },
    /// `redo-whichdo`: the `.do` candidates of one target.
    WhichDo { target: ByteBuf },
    /// `redo-targets`, `redo-sources`, `redo-ood`, `redo-affects`, `redo-dot`: listings over
    /// the state files beneath the working directory, one path per line on stdout.
    Query { kind: QueryKind, args: Vec<ByteBuf> },
    /// `redo-log [-r] [-c] target`: the kept stderr of a target's last build.
    Log {
        target: ByteBuf,
        recursive: bool,
        details: bool,
    },
    /// `redo-cleanup [-n] what...`: remove redo's temporary files, logs, locks or all state.
    Cleanup {
        what: Vec<CleanupWhat>,
        dry_run: bool,
    },
    /// `redo-depfix`: re-record the inode data of unchanged dependencies.
    Depfix,
    /// `redo --daemon-watch=...`: turn the file-change accelerator off or on, or make it act as
    /// if its event queue overflowed (a debugging aid, used by the fault-injection tests).
    WatchControl(WatchOp),
    /// `redo --daemon-status`: a few lines about the daemon on stdout.
    DaemonStatus,
    /// `redo --daemon-stop`: the daemon drains (running jobs finish) and exits.
    DaemonStop,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Every known target (args: directories, default the cwd).
    Targets,
    /// Every source the targets depend on (args: targets, default all known).
    Sources,
    /// Every out-of-date target (args: targets, default all known).
    Ood,
    /// Every target that depends on one of the args, transitively.
    Affects,
    /// The dependency graph in Graphviz dot (args: targets, default all known; an arg equal
    /// to [`QUERY_NO_OUTSIDE`] is the option `--no-outside`).
    Dot,
}

/// `redo-dot --no-outside` travels as this query arg: a path never contains a NUL byte, so
/// it cannot be taken for a target, and the wire types stay as they are.
pub const QUERY_NO_OUTSIDE: &[u8] = b"\0no-outside";

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOp {
    Off,
    On,
    Overflow,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupWhat {
    /// Temporary files of interrupted builds (`.redo.*`).
    Tmp,
    /// Kept logs (`.redo/*.log`, `.redo/*.log-rec`).
    Log,
    /// Lock files (`.redo/*.lock`).
    Lock,
    /// All of redo's state: `.redo` directories (but a `top` marker) and temporary files.
    Full,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// `redo`: rebuild each target unconditionally, one after another, stop at the first failure.
    Redo,
    /// `redo-ifchange`: bring the targets up to date, in parallel.
    Ifchange,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub mode: BuildMode,
    pub targets: Names,
    pub options: BuildOptions,
}

/// A list of names (command-line operands) in one buffer, each followed by a NUL: a `.do`
/// naming ten thousand targets sends one allocation, not ten thousand. Operands cannot contain
/// NUL; a buffer that does not end with one (from a hostile peer) just ends its last name there.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Names(ByteBuf);

impl Names {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let b: &[u8] = &self.0;
        let b = b.strip_suffix(b"\0").unwrap_or(b);
        (!self.0.is_empty())
            .then(|| b.split(|&c| c == 0))
            .into_iter()
            .flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The encoded list, for hashing what was asked.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for Names {
    fn from_iter<I: IntoIterator<Item = T>>(names: I) -> Names {
        let mut b = Vec::new();
        for n in names {
            b.extend_from_slice(n.as_ref());
            b.push(0);
        }
        Names(ByteBuf::from(b))
    }
}

/// Options that concern only this invocation. Options that nested commands inherit (`-xx`,
/// `-s`, `-k`, ...) are not here: the client exports them into the request environment as
/// `REDO_*=1`, exactly as goredo does, and the daemon reads them from there.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// `-j N`; `Some(0)` means unlimited. `None`: `REDO_JOBS`, else 1.
    pub jobs: Option<u32>,
    /// `-x`: trace the `.do` files this invocation starts (`sh -ex`).
    pub trace: bool,
    /// `-f`: skip the out-of-date check.
    pub force: bool,
    /// `--events=json`: also write the build's events as JSON lines on stdout.
    pub events: bool,
    /// `--watch`: build, then build again whenever an input changes, until interrupted.
    pub watch: bool,
    /// `--timings[=FILE]`: write the build's HTML timings report.
    pub timings: Option<Timings>,
    /// `--trace=FILE`: write the build's Chrome trace-event JSON to this file (absolute: the
    /// client resolves it against its directory).
    pub trace_file: Option<ByteBuf>,
}

/// Where `--timings` writes its report.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Timings {
    /// `--timings`: `.redo/timings/` under the project root, timestamped, and `latest.html`.
    Default,
    /// `--timings=FILE` (absolute: the client resolves it against its directory).
    File(ByteBuf),
}

/// Daemon → client, after the daemon hello.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes for the client's stderr: relayed `.do` stderr and redo's own messages.
    Stderr(ByteBuf),
    /// Bytes for the client's stdout (listing commands).
    Stdout(ByteBuf),
    /// Last event: the client exits with this code.
    Done { code: i32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &Names) -> Vec<&[u8]> {
        n.iter().collect()
    }

    #[test]
    fn names_round_trip_and_tolerate_odd_buffers() {
        let list: Names = [&b"a"[..], b"", b"sub/b c", b"\xff"].iter().collect();
        assert_eq!(names(&list), [&b"a"[..], b"", b"sub/b c", b"\xff"]);
        let none: Names = std::iter::empty::<&[u8]>().collect();
        assert!(none.is_empty());
        assert_eq!(names(&none).len(), 0);
        // From a peer: no final NUL ends the last name at the end of the buffer.
        assert_eq!(names(&Names(ByteBuf::from(b"x\0y".to_vec()))), [b"x", b"y"]);
        assert_eq!(names(&Names(ByteBuf::from(b"\0".to_vec()))), [b""]);
    }
}
