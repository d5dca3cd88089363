//! Which daemon a request goes to, in three cases: a client inside a `.do` talks to the daemon
//! that runs it ([`nested`]); `--daemon-status`/`--daemon-stop` talk to the project's daemon
//! if there is one and never start one ([`control`]); any other top-level request finds the
//! project's daemon, starting it when absent and replacing it when it is another build of
//! redod ([`top_level`]).

use crate::exchange::{handshake, relay};
use crate::request::{self, Outgoing};
use crate::{Error, daemon, launch};
use redo_proto::rundir;
use redo_proto::{Answer, ClientHello, Command, Identity};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sends the request and relays the answer; returns the exit code.
pub fn run(command: Command, argv: &[OsString], exported: &[&'static str]) -> Result<i32, Error> {
    let control = match command {
        Command::DaemonStatus => Some(false),
        Command::DaemonStop => Some(true),
        _ => None,
    };
    let out = request::prepare(command, argv, exported)?;
    let daemon_bin = daemon::daemon_binary(out.exe.as_deref());
    let expected = daemon_bin
        .as_deref()
        .map(Identity::of_file)
        .unwrap_or(Identity::ANY);
    if let Some(socket) = &out.nested {
        return nested(socket, &out, expected);
    }
    if control.is_none() {
        let program = argv.first().map(OsString::as_os_str).unwrap_or_default();
        crate::interrupt::install(crate::Tool::called_as(program).map_or("redo", |t| t.name()));
    }
    let root = daemon::project_root(&out.cwd, std::env::var_os("REDO_TOP_DIR").as_deref());
    let uid = nix::unistd::geteuid().as_raw();
    let rundir = rundir::runtime_dir(&root, std::env::var_os("XDG_RUNTIME_DIR").as_deref(), uid);
    match control {
        Some(stop) => self::control(stop, &root, &rundir, &out),
        None => {
            daemon::rundir_state(&rundir)?;
            let daemon_bin = daemon_bin.unwrap_or_else(|| PathBuf::from("redod"));
            top_level(&root, &rundir, &daemon_bin, &out, expected)
        }
    }
}

/// Inside a `.do`: the daemon running it, which must be the version this client expects
/// (replacing it would kill the build this `.do` belongs to).
fn nested(socket: &Path, out: &Outgoing, expected: Identity) -> Result<i32, Error> {
    let stream = daemon::connect(socket).map_err(|source| Error::NestedUnreachable {
        socket: socket.to_path_buf(),
        source,
    })?;
    let (stream, hello) = handshake(stream, ClientHello::new(false, expected), &out.frame)?;
    if hello.answer != Answer::Accepted {
        return Err(Error::NestedOtherVersion {
            version: hello.version,
            identity: hello.identity,
            expected,
        });
    }
    relay(stream, None)
}

/// `--daemon-status` (`stop` false) and `--daemon-stop`: no daemon is started for them.
fn control(stop: bool, root: &Path, rundir: &Path, out: &Outgoing) -> Result<i32, Error> {
    if !daemon::rundir_state(rundir)? {
        return Ok(not_running(stop, root));
    }
    let socket = rundir.join(rundir::SOCKET);
    let stream = match daemon::connect(&socket) {
        Ok(s) => s,
        Err(e) if daemon::no_daemon(&e) => return Ok(not_running(stop, root)),
        Err(source) => return Err(Error::Connect { socket, source }),
    };
    // Stop works across versions: a daemon that cannot decode our request drains on the
    // replace flag instead.
    let (stream, hello) = handshake(stream, ClientHello::new(stop, Identity::ANY), &out.frame)?;
    match hello.answer {
        Answer::Accepted => relay(stream, Some(rundir)),
        Answer::Replacing => {
            eprintln!("redo: redod (another version) is finishing its jobs and exiting");
            Ok(0)
        }
        Answer::Mismatch => Err(Error::Protocol {
            version: hello.version,
        }),
    }
}

fn not_running(stop: bool, root: &Path) -> i32 {
    eprintln!("redo: no daemon is running for {}", root.display());
    if stop { 0 } else { 1 }
}

/// A top-level request: connect, starting the daemon when none listens; when the one that
/// does is another build of redod, let it drain and start ours.
fn top_level(
    root: &Path,
    rundir: &Path,
    daemon_bin: &Path,
    out: &Outgoing,
    expected: Identity,
) -> Result<i32, Error> {
    let socket = rundir.join(rundir::SOCKET);
    let started = Instant::now();
    let mut told = false;
    // Times this client found no daemon and had one started. A daemon that still refuses it
    // after the second is not of this client's version (a `redod` from another build next to
    // it, or named by REDO_DAEMON): starting it again would only repeat that, forever.
    let mut starts = 0;
    loop {
        let stream = match daemon::connect(&socket) {
            Ok(s) => s,
            Err(e) if daemon::no_daemon(&e) => {
                starts += 1;
                launch::daemon(root, rundir, daemon_bin)?
            }
            Err(source) => return Err(Error::Connect { socket, source }),
        };
        let (stream, hello) = match handshake(stream, ClientHello::new(true, expected), &out.frame)
        {
            Ok(sh) => sh,
            // The daemon was going away as we connected: the next attempt finds the new one.
            Err(Error::Closed(_)) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(e),
        };
        if hello.answer == Answer::Accepted {
            return relay(stream, Some(rundir));
        }
        if starts >= 2 {
            return Err(Error::OtherBuild {
                daemon: daemon_bin.to_path_buf(),
                version: hello.version,
            });
        }
        // The running daemon is another build of redod; it drains and exits, then we start ours.
        // Not connected while we wait: a draining daemon exits once no connection is open.
        drop(stream);
        if !told {
            told = true;
            let pid = daemon::recorded_pid(rundir)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            eprintln!(
                "redo: replacing the running redod{pid}, another version, once its jobs finish"
            );
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(Error::GaveUpWaiting);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
