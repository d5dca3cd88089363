//! Starting the project's daemon when none listens.
//!
//! Under an exclusive `flock` on `start.lock`, connect again (another client may have won the
//! race), else spawn `redod serve` detached (`setsid`, stdin and stdout `/dev/null`, every
//! inherited fd ≥ 3 closed: a daemon that keeps an outer make's jobserver pipe or a `| tee`
//! open would hang that build forever) and poll until it accepts. Whatever the number of
//! clients racing on a cold project, one daemon results: the start lock serialises the
//! starters, and the daemon's own pid lock turns away any extra one.
//!
//! The daemon's stderr is a pipe to this client until the daemon holds its pid lock and
//! switches its output to `daemon.log`: when it exits at start-up, what it said is in the
//! pipe, even when its log cannot be written (a full disk), and the client shows it.
//!
//! The start lock is also what [`crate::sweep`] takes before it removes a dead daemon's
//! runtime directory; so a starter checks, once it holds the lock, that its lock file is still
//! the one in the directory, and starts over otherwise.

use crate::daemon::connect;
use crate::{Error, sweep};
use redo_proto::rundir::{self, ensure_private_dir};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment a freshly started daemon keeps: its own settings, nothing of the build.
const DAEMON_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "REDO_LOG",
    "RUST_LOG",
    "REDO_DAEMON_IDLE",
    "REDO_NO_WATCH",
    "REDO_WATCH_LAG_MS",
    "RUST_BACKTRACE",
];

/// Starts the daemon for `root` unless one already accepts connections, and returns once one
/// does, with that connection (the caller's request goes on it). Having started one, removes
/// the runtime directories of dead daemons beside `rundir`.
pub fn daemon(root: &Path, rundir: &Path, daemon: &Path) -> Result<UnixStream, Error> {
    let _lock = lock(rundir)?;
    let socket = rundir.join(rundir::SOCKET);
    if let Ok(s) = connect(&socket) {
        return Ok(s);
    }
    if !daemon.exists() {
        return Err(Error::DaemonMissing(daemon.to_path_buf()));
    }
    let mut cmd = Command::new(daemon);
    cmd.arg("serve")
        .arg("--root")
        .arg(root)
        .arg("--runtime-dir")
        .arg(rundir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(
            DAEMON_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        );
    detach(&mut cmd);
    let spawn = |cmd: &mut Command| {
        cmd.spawn().map_err(|source| Error::Spawn {
            daemon: daemon.to_path_buf(),
            source,
        })
    };
    let mut child = spawn(&mut cmd)?;
    let started = Instant::now();
    let mut pause = Duration::from_micros(500);
    let mut hung_up = false;
    loop {
        if let Ok(s) = connect(&socket) {
            if let Some(base) = rundir.parent() {
                sweep::dead_daemons(base, rundir);
            }
            return Ok(s);
        }
        if let Ok(Some(status)) = child.try_wait() {
            if !status.success() {
                return Err(Error::StartFailed {
                    daemon: daemon.to_path_buf(),
                    status: exit_words(status),
                    said: said(&mut child, &rundir.join(rundir::LOG)),
                    log: rundir.join(rundir::LOG),
                });
            }
            // Exit 0: another daemon held the pid lock. Usually it is about to accept us; but
            // it may also be a killed one whose last threads are still exiting (its lock goes
            // with them), and then nobody would ever listen: start ours again.
            std::thread::sleep(Duration::from_millis(20));
            if connect(&socket).is_err() {
                child = spawn(&mut cmd)?;
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(Error::StartTimeout {
                socket,
                log: rundir.join(rundir::LOG),
            });
        }
        wait_for_bind(&child, pause, &mut hung_up);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Waits up to `pause` for the starting daemon to be ready: it hangs up its stderr (the pipe to
/// us) once its socket is bound, when its output goes to its log, so that the next connect is
/// answered without polling. Once the pipe has hung up (`hung_up`), or without it, a plain
/// pause; the pipe stays ours, with what it said (read if the start failed: `said`).
fn wait_for_bind(child: &Child, pause: Duration, hung_up: &mut bool) {
    use std::os::fd::AsFd;
    let pipe = match child.stderr.as_ref() {
        Some(p) if !*hung_up => p,
        _ => return std::thread::sleep(pause),
    };
    let mut fds = [nix::poll::PollFd::new(
        pipe.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(pause.as_millis().max(1)).unwrap_or(u16::MAX);
    if let Ok(n) = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
        let hup = fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLHUP));
        if n > 0 && hup {
            *hung_up = true;
        } else if n > 0 {
            // It is writing something (an error, before it exits): let it.
            std::thread::sleep(pause);
        }
    }
}

/// Creates the runtime directory (and its parent) if needed, checks both, and takes the start
/// lock in it. Starts over when the lock file was removed (with its directory, by
/// [`crate::sweep`]) while this client waited for it.
fn lock(rundir: &Path) -> Result<nix::fcntl::Flock<File>, Error> {
    let uid = nix::unistd::geteuid().as_raw();
    let path = rundir.join(rundir::START_LOCK);
    let file_error = |what, source| Error::File {
        what,
        path: path.clone(),
        source,
    };
    loop {
        for d in [rundir.parent(), Some(rundir)].into_iter().flatten() {
            ensure_private_dir(d, uid)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| file_error("open", e))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| file_error("lock", io::Error::from(e)))?;
        let held = lock.metadata().map_err(|e| file_error("inspect", e))?;
        match std::fs::metadata(&path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(lock),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error("inspect", e)),
        }
    }
}

/// `exit status 1`, `killed by signal 9`.
fn exit_words(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// What the daemon that exited wrote on its stderr (the pipe), or else the end of its log (it
/// had switched to it). Never blocks: whatever the pipe holds is read, nothing waited for.
fn said(child: &mut Child, log: &Path) -> String {
    let mut text = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let nonblocking = nix::fcntl::fcntl(
            &pipe,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        if nonblocking.is_ok() {
            let mut buf = [0u8; 16 << 10];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                text.extend_from_slice(&buf[..n]);
                if text.len() > 64 << 10 {
                    break;
                }
            }
        }
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        text = std::fs::read(log).unwrap_or_default();
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Makes the daemon a session leader with no inherited descriptors besides 0, 1, 2.
#[allow(unsafe_code)]
fn detach(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe system
    // calls (setsid, close_range, close) and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(io::Error::from)?;
            let r = nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            if r != 0 {
                for fd in 3..4096 {
                    nix::libc::close(fd);
                }
            }
            Ok(())
        });
    }
}
