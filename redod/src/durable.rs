//! Atomic, durable writes: temp file in the same directory, fsync, rename, fsync of the
//! directory (the fsyncs skipped with `REDO_NO_SYNC=1`). Whatever is killed when, a reader
//! sees either the old file or the new one, never a part of it.

use crate::fsys::{Meta, Stamp};
use crate::paths::show;
use crate::state::{self, Rec};
use crate::umask::UmaskGate;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `cannot <what> <path>: <error>`.
pub fn io_msg(what: &str, path: &Path, e: &io::Error) -> String {
    format!("cannot {what} {}: {e}", show(path))
}

/// `.redo.<name>.<16 hex>` in `dir`: the naming goredo uses, so `redo-cleanup tmp` finds
/// leftovers.
pub fn temp_path(dir: &Path, name: &OsStr) -> PathBuf {
    let mut rnd = [0u8; 8];
    // getrandom only fails without a kernel entropy source; a fixed suffix plus O_EXCL still
    // keeps us from clobbering anything.
    let _ = getrandom::fill(&mut rnd);
    let mut n = b".redo.".to_vec();
    n.extend_from_slice(name.as_bytes());
    n.push(b'.');
    for b in rnd {
        n.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    dir.join(OsString::from_vec(n))
}

/// Creates a new file (never an existing one), mode 0666 under the process umask.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

pub fn fsync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_msg("fsync", dir, &e))
}

pub fn stamp_of(p: &Path) -> Result<Stamp, String> {
    fs::metadata(p)
        .map(|m| Meta::from_std(&m).stamp)
        .map_err(|e| io_msg("stat", p, &e))
}

/// Writes `rec` to `rec_path` atomically (the temp file created with `umask`), and returns the
/// stat of the new file.
pub fn write_rec(
    rec_path: &Path,
    rec: &Rec,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<Stamp, String> {
    let dir = rec_path.parent().unwrap_or(Path::new("/"));
    let tmp = temp_path(dir, rec_path.file_name().unwrap_or(OsStr::new("rec")));
    let write = || -> Result<(), String> {
        let mut f = gate
            .with(umask, || create_new(&tmp))
            .map_err(|e| io_msg("create", &tmp, &e))?;
        f.write_all(&state::encode(rec))
            .map_err(|e| io_msg("write", &tmp, &e))?;
        if sync {
            f.sync_all().map_err(|e| io_msg("fsync", &tmp, &e))?;
        }
        fs::rename(&tmp, rec_path)
            .map_err(|e| format!("cannot rename {} to {}: {e}", show(&tmp), show(rec_path)))?;
        if sync {
            fsync_dir(dir)?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    stamp_of(rec_path)
}

/// `.redo/.redo.T.rec.pending`: what target `T` is about to hold, written before the target
/// changes and removed once its new state file is in place.
pub fn pending_path(rec_path: &Path) -> PathBuf {
    let name = rec_path.file_name().map(OsStr::as_bytes).unwrap_or(b"rec");
    let dir = rec_path.parent().unwrap_or(Path::new("/"));
    dir.join(OsStr::from_bytes(&[b".redo.", name, b".pending"].concat()))
}

/// Writes the pending record (see [`pending_path`]): durable before the target is touched, so
/// that a crash between the target's rename and its state file's can be recognised later.
pub fn write_pending(
    pending: &Path,
    rec: &Rec,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<(), String> {
    let mut f = gate
        .with(umask, || {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o666)
                .custom_flags(libc::O_CLOEXEC)
                .open(pending)
        })
        .map_err(|e| io_msg("create", pending, &e))?;
    let r = f
        .write_all(&state::encode(rec))
        .map_err(|e| io_msg("write", pending, &e));
    let r = r.and_then(|()| {
        if sync {
            f.sync_all().map_err(|e| io_msg("fsync", pending, &e))
        } else {
            Ok(())
        }
    });
    let r = r.and_then(|()| {
        if sync {
            fsync_dir(pending.parent().unwrap_or(Path::new("/")))
        } else {
            Ok(())
        }
    });
    if r.is_err() {
        let _ = fs::remove_file(pending);
    }
    r
}

/// The hash a commit interrupted by a crash was installing at `target`, if `target` holds
/// exactly that: the daemon died after the target's rename and before its state file's. The
/// target is then ours, not an external edit.
pub fn interrupted_commit(
    rec_path: &Path,
    name: &[u8],
    target: &Path,
) -> Option<crate::fsys::Hash> {
    let rec = state::parse(&fs::read(pending_path(rec_path)).ok()?).ok()?;
    let (_, hash) = rec.own(name)?;
    let hash = *hash?;
    (crate::fsys::hash_file(target).ok()? == hash).then_some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_follow_goredo() {
        let p = temp_path(Path::new("/d"), OsStr::new("t.o"));
        let n = p.file_name().unwrap().to_str().unwrap();
        assert!(
            n.starts_with(".redo.t.o.") && n.len() == ".redo.t.o.".len() + 16,
            "{n}"
        );
    }

    #[test]
    fn rec_written_atomically_without_leftovers() {
        let dir = std::env::temp_dir().join(format!("redod-durable-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let gate = UmaskGate::new(0o022);
        let path = dir.join("t.rec");
        let rec = Rec {
            build: "b".into(),
            deps: vec![crate::state::Dep::Always],
        };
        for sync in [true, false] {
            write_rec(&path, &rec, sync, &gate, 0o022).unwrap();
            assert_eq!(state::parse(&fs::read(&path).unwrap()).unwrap(), rec);
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        // Unwritable destination: an error naming the path, no temp left behind.
        let err = write_rec(&dir.join("missing/t.rec"), &rec, false, &gate, 0o022).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
