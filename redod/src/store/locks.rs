//! The per-target fcntl lock on `DIR/.redo/T.lock` (docs/BEHAVIOUR.md §14).
//!
//! Inside the daemon, one build per target is guaranteed by the flight table (`engine`); the
//! fcntl lock is for everybody else: another daemon whose project overlaps this one, or goredo
//! itself. POSIX record locks belong to the process and are released when *any* descriptor of
//! the file is closed, so the daemon opens a lock file only here, once per build of that target,
//! and never twice at the same time (the flight table makes that so). Lock files are never
//! deleted, as in goredo 1.x: deleting one while another process waits on it would let a third
//! process lock a fresh inode and build concurrently.

use nix::fcntl::{FcntlArg, fcntl};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct TargetLock {
    _file: File,
}

pub enum TryLock {
    Acquired(TargetLock),
    /// Another process holds it (its pid, when the kernel says).
    Held(Option<i32>),
}

/// A write lock over the whole file (`l_len` 0 = to the end, however long it grows).
fn whole_file(kind: libc::c_short) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Opens (creating, mode 0666 under the umask) and tries to lock `path` without blocking.
pub fn try_lock(path: &Path) -> io::Result<TryLock> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        // Never written: truncating would only rewrite its inode times, at every build.
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    match fcntl(
        &file,
        FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK as libc::c_short)),
    ) {
        Ok(_) => Ok(TryLock::Acquired(TargetLock { _file: file })),
        // POSIX allows either errno for "held by someone else".
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
            let mut probe = whole_file(libc::F_WRLCK as libc::c_short);
            let pid = match fcntl(&file, FcntlArg::F_GETLK(&mut probe)) {
                Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short => Some(probe.l_pid),
                _ => None,
            };
            Ok(TryLock::Held(pid))
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_across_processes() {
        let dir = std::env::temp_dir().join(format!("redod-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.lock");
        let held = try_lock(&path).unwrap();
        assert!(matches!(held, TryLock::Acquired(_)));
        // flock(1) cannot test fcntl locks; a child process taking a POSIX lock with the same
        // layout can: python3's fcntl.lockf is fcntl(F_SETLK) underneath.
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys\nf=open(sys.argv[1],'w')\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); print('got')\nexcept OSError: print('busy')")
            .arg(&path)
            .output();
        if let Ok(out) = out {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "busy");
        }
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
