//! A running `.do`'s process as the engine sees it ([`JobProcess`]): its process group (to
//! kill it when the daemon goes), the pipe its stderr is relayed from (to tell a nested
//! client writing into it from one whose stderr was redirected), and where the relay stands
//! (to ask it for a flush only when it may hold something back).

use crate::engine::{BoxFuture, JobProcess};
use crate::sync::lock;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One `.do`'s process, filled in as [`super::run`] starts it.
pub(crate) struct DoProcess {
    /// Its process group (0 before it is spawned).
    pgid: AtomicI32,
    /// Asks the stderr relay to pass on everything the `.do` has written so far.
    flush: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
    /// Device and inode of the pipe the `.do`'s stderr is relayed from (unset before the
    /// spawn, or when it could not be read).
    stderr_pipe: OnceLock<(u64, u64)>,
    /// Where the stderr relay stands.
    relay: Mutex<RelayState>,
}

/// The stderr relay of a job, as a nested request sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RelayState {
    /// Not reading yet: whatever there is, a flush is asked for.
    Starting,
    /// Reading the pipe `pipe` (the relay's own descriptor, valid while this state lasts);
    /// `idle` when it holds nothing back and is not passing anything on.
    Reading { pipe: RawFd, idle: bool },
    /// The pipe is closed: nothing more comes through the relay.
    Over,
}

impl Default for DoProcess {
    fn default() -> DoProcess {
        DoProcess {
            pgid: AtomicI32::new(0),
            flush: Mutex::new(None),
            stderr_pipe: OnceLock::new(),
            relay: Mutex::new(RelayState::Starting),
        }
    }
}

impl DoProcess {
    /// The `.do` runs as process group `pgid`.
    pub(crate) fn set_pgid(&self, pgid: i32) {
        self.pgid.store(pgid, Ordering::Relaxed);
    }

    /// Where the job's stderr relay listens for flush requests.
    pub(crate) fn set_flush(&self, tx: mpsc::Sender<oneshot::Sender<()>>) {
        *lock(&self.flush) = Some(tx);
    }

    /// Remembers which pipe the `.do`'s stderr is. Set right after the spawn: a nested request
    /// that could come before (it cannot, in practice: the `.do` has to start first) is taken
    /// as not redirected.
    pub(crate) fn set_stderr_pipe(&self, dev: u64, ino: u64) {
        let _ = self.stderr_pipe.set((dev, ino));
    }

    /// The relay's state, which the relay sets as it goes (its descriptor stays open while
    /// the lock is held: see [`RelayState::Reading`]).
    pub(crate) fn relay(&self) -> &Mutex<RelayState> {
        &self.relay
    }
}

/// Bytes waiting in the pipe `fd`; `None` when that cannot be told.
#[allow(unsafe_code)]
fn unread(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to `n`. `fd` is open:
    // the caller holds the lock that the relay takes before it closes the descriptor.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

/// Sends `signal` to process group `pgid`; whether it exists (`None`: only asks that).
pub(crate) fn signal_group(pgid: i32, signal: Option<nix::sys::signal::Signal>) -> bool {
    pgid > 0 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal).is_ok()
}

/// Start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    // One `read`: the whole line is a few hundred bytes (`fs::read` would stat the file and
    // read it in growing pieces, seven system calls for a file whose size says 0).
    let mut buf = [0u8; 1024];
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = f.read(&mut buf).ok()?;
    let stat = &buf[..n];
    // The command name (field 2) may contain anything; fields resume after its last ')'.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = std::str::from_utf8(after)
        .ok()?
        .split_whitespace()
        .nth(19)?;
    field.parse().ok()
}

/// Now, in the clock ticks since boot that `/proc/<pid>/stat` counts start times in. Taken
/// just after a spawn, it is the child's start time or a little later: the kernel stamps a
/// process with `CLOCK_BOOTTIME` when it is created and reports it rounded down to ticks.
/// Asking the clock (a vDSO call) instead of reading the child's `/proc` entry saves the most
/// expensive system call on the spawn path.
pub(crate) fn ticks_since_boot() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&h| h > 0)
        .unwrap_or(100) as u64;
    ts.map_or(0, |t| {
        let ns = (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64;
        ns / (1_000_000_000 / hz)
    })
}

/// How much later than the process's own start a recorded start may be (the time between
/// the spawn and the clock reading; 1 s at 100 Hz). A process group leader whose pid was
/// recycled within that second of the original's start is the only one mistaken for ours.
pub(crate) const START_SLACK: u64 = 100;

/// Whether a process that started at `now` (ticks) is not the one recorded as started at
/// `recorded` (0: unknown, taken as ours).
pub(crate) fn recycled(recorded: u64, now: u64) -> bool {
    recorded != 0 && (now > recorded || recorded - now > START_SLACK)
}

impl JobProcess for DoProcess {
    fn kill(&self) {
        let pgid = self.pgid.load(Ordering::Relaxed);
        signal_group(pgid, Some(nix::sys::signal::Signal::SIGKILL));
    }

    /// The client says what its stderr is (`stderr`, from its own `fstat`); a client that
    /// did not (its stderr closed) is looked at through `/proc`. When this cannot be told (no
    /// pid, `/proc` unreadable, the pipe not yet known), `true`: the output reaches the
    /// terminal as it always did.
    fn relays_stderr_of(&self, stderr: Option<(u64, u64)>, pid: Option<i32>) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(pipe) = self.stderr_pipe.get() else {
            return true;
        };
        if let Some(id) = stderr {
            return id == *pipe;
        }
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return true;
        };
        match std::fs::metadata(format!("/proc/{pid}/fd/2")) {
            Ok(m) => (m.dev(), m.ino()) == *pipe,
            // `2>&-`: nowhere to write, unless it is the process that is not visible here.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                !Path::new(&format!("/proc/{pid}/fd")).exists()
            }
            Err(_) => true,
        }
    }

    /// A `.do` writes before it starts the nested command, so what it wrote first is in the
    /// pipe by the time the request arrives.
    fn stderr_unsent(&self) -> bool {
        match *lock(&self.relay) {
            RelayState::Starting => true,
            RelayState::Reading { idle: false, .. } => true,
            RelayState::Reading { pipe, idle: true } => unread(pipe) != Some(0),
            RelayState::Over => false,
        }
    }

    fn flush_stderr(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let tx = lock(&self.flush).clone();
            if let Some(tx) = tx {
                let (done, wait) = oneshot::channel();
                if tx.send(done).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
