//! The daemon's life: one per project, found through its runtime directory.
//!
//! * The pid file carries an exclusive `flock` for the daemon's whole life. Only its holder
//!   unlinks and binds the socket, so a second daemon started by a racing client exits at once,
//!   and a stale socket left by a killed daemon is replaced by the next one.
//! * Idle exit: after `REDO_DAEMON_IDLE` seconds (default 1800, 0 = never) with no connection,
//!   no running job and no target in flight. Half an hour, since a start costs little since the
//!   snapshot (`store::snapshot`) and an idle daemon nothing but its memory: a developer's
//!   builds a quarter of an hour apart stay warm, and a daemon left behind still goes away.
//!   Idle, it wakes once a second (to notice its runtime directory or the project removed),
//!   and at once when a connection ends or a drain is asked for.
//! * Drain (`redo --daemon-stop`, or a top-level client of another version): new top-level
//!   requests are turned away (their clients wait and start a fresh daemon); requests from the
//!   running `.do` files are still served; the daemon exits when nothing runs any more.
//! * The daemon also exits when its runtime directory or the project root disappears.

use crate::engine::Engine;
use anyhow::{Context, bail};
use redo_proto::Identity;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_IDLE: Duration = Duration::from_secs(1800);

/// How often an idle daemon looks for its runtime directory and the project root.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How often a busy or draining daemon looks whether it is done.
const BUSY_CHECK: Duration = Duration::from_millis(100);

pub struct Life {
    pub uid: u32,
    pub identity: Identity,
    pub root: PathBuf,
    pub rundir: PathBuf,
    pub started: Instant,
    pub idle: Option<Duration>,
    connections: AtomicUsize,
    draining: AtomicBool,
    last_busy: Mutex<Instant>,
    /// Woken when a connection ends or a drain starts: what may end the daemon's life.
    wake: tokio::sync::Notify,
}

/// Counts a connection while alive.
pub struct Connection(Arc<Life>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
        self.0.wake.notify_one();
    }
}

impl Life {
    pub fn new(
        identity: Identity,
        root: PathBuf,
        rundir: PathBuf,
        idle: Option<Duration>,
    ) -> Arc<Life> {
        Arc::new(Life {
            uid: nix::unistd::geteuid().as_raw(),
            identity,
            root,
            rundir,
            started: Instant::now(),
            idle,
            connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            last_busy: Mutex::new(Instant::now()),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn touch(&self) {
        *self.last_busy.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn connection(self: &Arc<Self>) -> Connection {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Connection(self.clone())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn drain(&self, why: &str) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            tracing::info!("draining: {why}");
        }
        self.wake.notify_one();
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves when the daemon should exit, with the reason. Looks every [`BUSY_CHECK`]
    /// while something runs or a drain waits for it, otherwise when woken, at the idle
    /// deadline, or every [`IDLE_CHECK`].
    pub async fn exit_when_done(&self, engine: &Engine) -> &'static str {
        let mut wait = BUSY_CHECK;
        loop {
            // A wake-up between two looks is kept (`notify_one` stores one permit).
            let _ = tokio::time::timeout(wait, self.wake.notified()).await;
            if !self.rundir.is_dir() {
                return "runtime directory removed";
            }
            if !self.root.is_dir() {
                return "project root removed";
            }
            let (jobs, flights) = engine.activity();
            let busy = jobs > 0 || flights > 0 || self.connections() > 0;
            if busy {
                self.touch();
                wait = BUSY_CHECK;
                continue;
            }
            if self.draining() {
                return "drained";
            }
            let quiet = self
                .last_busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed();
            match self.idle {
                Some(idle) if quiet >= idle => return "idle",
                Some(idle) => wait = (idle - quiet).min(IDLE_CHECK),
                None => wait = IDLE_CHECK,
            }
        }
    }
}

/// `REDO_DAEMON_IDLE`: seconds (fractions allowed), 0 = never.
pub fn idle_from_env(v: Option<&str>) -> anyhow::Result<Option<Duration>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Some(DEFAULT_IDLE)),
        Some(s) => {
            let secs: f64 = s
                .parse()
                .with_context(|| format!("REDO_DAEMON_IDLE='{s}' is not a number of seconds"))?;
            if !secs.is_finite() || secs < 0.0 {
                bail!("REDO_DAEMON_IDLE='{s}' must be 0 (never) or a positive number of seconds");
            }
            Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
        }
    }
}

/// Checks the runtime directory: a directory, ours, mode 0700 (created if missing). The same
/// check as the clients' ([`redo_proto::rundir::check_private_dir`]).
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    redo_proto::rundir::ensure_private_dir(dir, nix::unistd::geteuid().as_raw())?;
    Ok(())
}

/// Takes the pid lock. `Ok(None)`: another daemon holds it. The pid written into the file is
/// only for people and messages: a runtime directory too full to hold it does not stop the
/// daemon (the lock is what counts).
pub fn pid_lock(rundir: &Path) -> anyhow::Result<Option<nix::fcntl::Flock<File>>> {
    let path = rundir.join(redo_proto::rundir::PID);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let written = lock
                .set_len(0)
                .and_then(|()| writeln!(lock, "{}", std::process::id()));
            if let Err(e) = written {
                tracing::warn!(
                    "cannot write the pid into {}: {}",
                    path.display(),
                    redo_proto::plain::words(&e)
                );
            }
            Ok(Some(lock))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Identity of the running executable (see [`Identity`]).
pub fn own_identity() -> Identity {
    Identity::of_file(std::path::Path::new("/proc/self/exe"))
}

#[cfg(test)]
mod tests;
