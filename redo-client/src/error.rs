//! What can go wrong in a client, as one type: every step returns it, and only the entry point
//! ([`crate::start`]) prints it (after the command's name) and exits 1.
//!
//! Messages are for the person at the terminal: they name the file or socket, say what the
//! system said in plain words ([`redo_proto::plain`]), and what to do. Hand-written rather than
//! derived: the client is std-only, and the derive would be its one proc-macro dependency.

use redo_proto::Identity;
use redo_proto::plain::{fix, words};
use redo_proto::rundir::DirError;
use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Called by a name that is none of the commands (a link named `redo-foo`).
    UnknownName(String),
    WorkingDir(io::Error),
    /// `REDO_JOB` is set but is not a job number.
    BadJob(String),
    Encode(String),
    Stdin(io::Error),
    /// `redo -symlinks` could not make some links (each already said why).
    Symlinks {
        failed: usize,
    },
    Rundir(DirError),
    /// A file of the runtime directory could not be opened, locked or inspected.
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A `.do`'s client cannot reach the daemon that runs the `.do`.
    NestedUnreachable {
        socket: PathBuf,
        source: io::Error,
    },
    /// The daemon running this `.do` is another build of redod.
    NestedOtherVersion {
        version: u16,
        identity: Identity,
        expected: Identity,
    },
    Connect {
        socket: PathBuf,
        source: io::Error,
    },
    Send(io::Error),
    /// The connection broke before the daemon's hello: it was going away. Retried at top level.
    Closed(io::Error),
    BadHello(String),
    /// The running daemon speaks another protocol (for `--daemon-status`).
    Protocol {
        version: u16,
    },
    /// Even a daemon this client started refuses it: it is from another build.
    OtherBuild {
        daemon: PathBuf,
        version: u16,
    },
    GaveUpWaiting,
    DaemonMissing(PathBuf),
    Spawn {
        daemon: PathBuf,
        source: io::Error,
    },
    /// The daemon exited at start-up; `said` is what it wrote before it did.
    StartFailed {
        daemon: PathBuf,
        status: String,
        said: String,
        log: PathBuf,
    },
    StartTimeout {
        socket: PathBuf,
        log: PathBuf,
    },
    /// The connection to the daemon broke in the middle of the answer.
    Lost {
        why: String,
        log: Option<PathBuf>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownName(name) => write!(
                f,
                "'{name}' is not a redo command; this program runs as one of: {} (make it a \
                 link named after one, e.g. with 'redo -symlinks')",
                redo_proto::commands::NAMES.join(", ")
            ),
            Error::WorkingDir(e) => {
                write!(f, "cannot determine the working directory: {}", words(e))
            }
            Error::BadJob(job) => write!(
                f,
                "invalid REDO_JOB value '{job}': it is set by redo for the .do scripts it runs; \
                 unset it"
            ),
            Error::Encode(e) => write!(f, "cannot encode the request: {e}"),
            Error::Stdin(e) => write!(f, "cannot read stdin: {}", words(e)),
            Error::Symlinks { failed } => write!(f, "{failed} link(s) could not be made"),
            Error::Rundir(e) => write!(f, "{e}"),
            Error::File { what, path, source } => write!(
                f,
                "cannot {what} {}: {}.{}",
                path.display(),
                words(source),
                fix(source, path)
            ),
            Error::NestedUnreachable { socket, source } => write!(
                f,
                "cannot reach the redo daemon at {} that runs this .do ({}); the build was \
                 probably interrupted",
                socket.display(),
                words(source)
            ),
            Error::NestedOtherVersion {
                version,
                identity,
                expected,
            } => write!(
                f,
                "the redod running this build is another version (protocol {version}, binary \
                 {identity}) than this client expects (protocol {}, binary {expected}); let that \
                 build finish, then run 'redo --daemon-stop'",
                redo_proto::PROTOCOL_VERSION
            ),
            Error::Connect { socket, source } => write!(
                f,
                "cannot connect to the daemon at {}: {}.{}",
                socket.display(),
                words(source),
                fix(source, socket)
            ),
            Error::Send(e) => write!(f, "cannot send the request to the daemon: {}", words(e)),
            Error::Closed(e) => write!(
                f,
                "the daemon closed the connection during the handshake: {}",
                words(e)
            ),
            Error::BadHello(e) => write!(f, "bad handshake from the daemon: {e}"),
            Error::Protocol { version } => write!(
                f,
                "the running redod speaks protocol {version}, this client {}",
                redo_proto::PROTOCOL_VERSION
            ),
            Error::OtherBuild { daemon, version } => write!(
                f,
                "{} speaks protocol {version} and this client protocol {}: they come from \
                 different builds; build both again ('cargo build'), or point REDO_DAEMON at the \
                 redod built with this client",
                daemon.display(),
                redo_proto::PROTOCOL_VERSION
            ),
            Error::GaveUpWaiting => write!(
                f,
                "gave up waiting for the old redod to exit; stop it with its own version's 'redo \
                 --daemon-stop', or kill it"
            ),
            Error::DaemonMissing(daemon) => write!(
                f,
                "the daemon binary {} does not exist: build it with 'cargo build' (it is built \
                 next to redo) or point REDO_DAEMON at it",
                daemon.display()
            ),
            Error::Spawn { daemon, source } => write!(
                f,
                "cannot start {}: {}.{}",
                daemon.display(),
                words(source),
                fix(source, daemon)
            ),
            Error::StartFailed {
                daemon,
                status,
                said,
                log,
            } => {
                write!(f, "{} exited at start-up ({status})", daemon.display())?;
                match said.trim_end() {
                    "" => write!(f, " without saying why; its log is {}", log.display()),
                    said => write!(f, ":\n{said}"),
                }
            }
            Error::StartTimeout { socket, log } => write!(
                f,
                "redod did not start listening on {} within 20 s; see {}",
                socket.display(),
                log.display()
            ),
            Error::Lost { why, log } => {
                write!(f, "lost the connection to the daemon: {why}")?;
                match log {
                    Some(log) => write!(f, " (see {})", log.display()),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<DirError> for Error {
    fn from(e: DirError) -> Self {
        Error::Rundir(e)
    }
}
