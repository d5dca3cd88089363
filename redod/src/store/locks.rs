//! Cross-process exclusion of one target's build (docs/BEHAVIOUR.md §14).
//!
//! Inside the daemon, one build per target is guaranteed by the flight table (`engine`); this
//! lock is for everybody else who could build the same target at the same time: a second daemon
//! whose project overlaps this one (another `XDG_RUNTIME_DIR`, a nested `.redo/top`), or
//! goredo.
//!
//! * **Between daemons**: one lock file per state directory, `DIR/.redo/.lock`, and in it one
//!   byte per target, at an offset hashed from the target's name, locked with an open file
//!   description lock (`F_OFD_SETLK`). A clean build used to create one lock file per target,
//!   and on a filesystem that has just deleted thousands of files, allocating an inode is the
//!   most expensive thing the daemon did per target; now a directory costs one, once. Two names
//!   of one directory whose 62-bit hashes collide exclude each other (as if they were one
//!   target): harmless, only slower.
//!   OFD locks, unlike POSIX record locks, belong to the open file description, not to the
//!   process: each guard opens the file itself, and closing it releases only its own byte, so
//!   targets of one directory built at once never release each other's lock.
//! * **With goredo**, which locks `DIR/.redo/T.lock` (a POSIX lock on the whole file): when that
//!   file exists (goredo has built `T` in this tree before; lock files are never deleted but by
//!   `redo-cleanup lock`), it is locked too, the way goredo does. It is not created: a goredo
//!   building `T` for the first time in this tree, at the same moment as the daemon, is not
//!   excluded (docs/differences.md).
//!
//! Neither lock file is deleted by the daemon: deleting one while another process waits on it
//! would let a third process lock a fresh inode and build concurrently.

use nix::fcntl::{FcntlArg, fcntl};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::layout;

/// The directory's lock file: `DIR/.redo/.lock` (no target is named "", so goredo has no file
/// of that name).
pub const DIR_LOCK: &str = ".lock";

/// Holds the target's locks until dropped.
#[derive(Debug)]
pub struct TargetLock {
    _dir: File,
    _goredo: Option<File>,
}

pub enum TryLock {
    Acquired(TargetLock),
    /// Another process holds it (its pid, when the kernel says: only for goredo's lock).
    Held(Option<i32>),
}

/// Where the lock of `dir/name` is: its directory's lock file, for messages.
pub fn describe(dir: &Path, name: &OsStr) -> String {
    format!(
        "{} [{}]",
        layout::redo_dir(dir).join(DIR_LOCK).display(),
        name.to_string_lossy()
    )
}

/// The byte of the directory's lock file that stands for `name`: BLAKE3 of the name (defined
/// by its specification, so the same in every daemon of every version), its first 62 bits, so
/// that the offset is a valid positive `off_t`.
pub fn offset(name: &OsStr) -> i64 {
    let h = blake3::hash(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    // 62 bits: the cast cannot wrap.
    (u64::from_le_bytes(first) >> 2) as i64
}

fn lock_range(kind: libc::c_short, start: i64, len: i64) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    }
}

fn held(e: nix::errno::Errno) -> bool {
    // POSIX allows either errno for "held by someone else".
    matches!(e, nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES)
}

/// Tries, without blocking, to take the locks of target `dir/name` (`dir/.redo` must exist).
/// The directory's lock file is created (mode 0666 under the umask) the first time.
pub fn try_lock(dir: &Path, name: &OsStr) -> io::Result<TryLock> {
    let redo_dir = layout::redo_dir(dir);
    let dir_lock = OpenOptions::new()
        .write(true)
        .create(true)
        // Never written: truncating would only rewrite its inode times, at every build.
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(redo_dir.join(DIR_LOCK))?;
    let byte = lock_range(libc::F_WRLCK as libc::c_short, offset(name), 1);
    match fcntl(&dir_lock, FcntlArg::F_OFD_SETLK(&byte)) {
        Ok(_) => {}
        Err(e) if held(e) => return Ok(TryLock::Held(None)),
        Err(e) => return Err(io::Error::from(e)),
    }
    let goredo = match goredo_lock(&layout::lock_path(dir, name))? {
        GoredoLock::Absent => None,
        GoredoLock::Taken(f) => Some(f),
        // Dropping `dir_lock` releases the byte just taken.
        GoredoLock::Held(pid) => return Ok(TryLock::Held(pid)),
    };
    Ok(TryLock::Acquired(TargetLock {
        _dir: dir_lock,
        _goredo: goredo,
    }))
}

enum GoredoLock {
    Absent,
    Taken(File),
    Held(Option<i32>),
}

/// goredo's whole-file POSIX lock, when its file exists. POSIX locks are the process's: the
/// daemon opens this file only here, once per build of that target, and never twice at the
/// same time (the flight table makes that so), so no other descriptor's close can release it.
fn goredo_lock(path: &Path) -> io::Result<GoredoLock> {
    let file = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GoredoLock::Absent),
        Err(e) => return Err(e),
    };
    let whole = lock_range(libc::F_WRLCK as libc::c_short, 0, 0);
    match fcntl(&file, FcntlArg::F_SETLK(&whole)) {
        Ok(_) => Ok(GoredoLock::Taken(file)),
        Err(e) if held(e) => {
            let mut probe = whole;
            let pid = match fcntl(&file, FcntlArg::F_GETLK(&mut probe)) {
                Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short => Some(probe.l_pid),
                _ => None,
            };
            Ok(GoredoLock::Held(pid))
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests;
