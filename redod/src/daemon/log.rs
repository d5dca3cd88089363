//! The daemon's output: `daemon.log` in its runtime directory, from the moment it holds its
//! pid lock.
//!
//! Until then its stdout and stderr are what it was started with: a client starting it reads
//! its stderr through a pipe, so that a daemon that exits at start-up is heard (and a person
//! running `redod serve` by hand sees it in the terminal). Then both go to the log, which is
//! moved to `daemon.log.old` beyond 8 MB. A log that cannot be opened (a full or read-only
//! runtime directory) leaves the output where it was, and one that cannot be written later is
//! not an error: the daemon runs without a log rather than not at all (tracing drops what it
//! cannot write, see `main`).

use redo_proto::rundir;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Beyond this the log is moved aside at the next start.
const ROTATE_AT: u64 = 8 << 20;

/// Sends stdout and stderr to `rundir/daemon.log` (see the module docs).
pub fn to_log(rundir: &Path) {
    let path = rundir.join(rundir::LOG);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > ROTATE_AT) {
        let _ = std::fs::rename(&path, rundir.join(format!("{}.old", rundir::LOG)));
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path);
    let redirected = log.and_then(|log| {
        nix::unistd::dup2_stdout(&log)?;
        nix::unistd::dup2_stderr(&log)?;
        Ok(())
    });
    if let Err(e) = redirected {
        tracing::warn!(
            "cannot write the log {}: {}; running without it",
            path.display(),
            redo_proto::plain::words(&e)
        );
        // The starting client's pipe is let go all the same: its hanging up says the daemon
        // is ready (`redo-client`'s `launch`).
        if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
}
