//! Removing the runtime directories of daemons that are gone.
//!
//! Every project gets a directory under `$XDG_RUNTIME_DIR/redo/`, and nothing removed it: a
//! daemon leaves it behind when it exits (idle, stopped), and one user was found with 66 of
//! them for 6 live daemons. A client that has just started a daemon (rare: once per project
//! per idle period) looks at the other directories there and removes those whose daemon is
//! dead, under the same start lock a starting client takes:
//!
//! * its pid file's `flock` is free (a live daemon holds it for its whole life), while this
//!   client holds the directory's start lock (no daemon can be starting: clients start
//!   daemons only under that lock, and hold it until the daemon has its pid lock and listens);
//! * it has not changed for a minute (a client may have just created it and not yet locked);
//! * its daemon exited on its own way (it removed its socket). A daemon that was killed left
//!   its socket, and its journal may name `.do` processes and temporary files that the next
//!   daemon of that project cleans up after (redod's `store::orphans`); such a directory
//!   is kept for a day.
//!
//! Anything else there (not a directory of ours, no start lock) is left alone. A starter that
//! was waiting for the lock of a directory removed meanwhile notices and starts over
//! ([`crate::launch`]). Failures are ignored: this is housekeeping, never a reason to fail a
//! build.

use redo_proto::rundir;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a dead daemon's directory stays: a minute, a day when it was killed.
const QUIET: Duration = Duration::from_secs(60);
const KILLED_QUIET: Duration = Duration::from_secs(24 * 3600);

/// Removes the directories of dead daemons in `base`, except `own`.
pub fn dead_daemons(base: &Path, own: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let uid = nix::unistd::geteuid().as_raw();
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir == own {
            continue;
        }
        let Ok(m) = fs::symlink_metadata(&dir) else {
            continue;
        };
        let quiet = m
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        if m.is_dir() && m.uid() == uid && quiet >= QUIET {
            remove_if_dead(&dir, quiet);
        }
    }
}

fn remove_if_dead(dir: &Path, quiet: Duration) {
    let Some(_start) = try_lock(&dir.join(rundir::START_LOCK)) else {
        return;
    };
    match try_lock(&dir.join(rundir::PID)) {
        Some(_pid) => {}
        // A pid file that cannot be locked: a live daemon holds it.
        None if dir.join(rundir::PID).exists() => return,
        None => {}
    }
    let killed = fs::symlink_metadata(dir.join(rundir::SOCKET)).is_ok();
    if killed && quiet < KILLED_QUIET {
        return;
    }
    let _ = fs::remove_dir_all(dir);
}

/// A non-blocking exclusive `flock` on an existing file (never created, never followed if a
/// symlink). `None` if it is absent or locked.
fn try_lock(path: &Path) -> Option<nix::fcntl::Flock<File>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}
