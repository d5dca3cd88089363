//! Atomic, durable writes: temp file in the same directory, fsync, rename, fsync of the
//! directory (the fsyncs skipped with `REDO_NO_SYNC=1`). Whatever is killed when, a reader
//! sees either the old file or the new one, never a part of it.
//!
//! A target and its state file cannot be renamed together. The commit therefore first writes
//! a *pending* record of the new state ([`write_pending`]); a crash between the target's rename
//! and the state file's leaves that record behind, and with it the proof that the new target is
//! redo's own work ([`interrupted_commit`], [`settle_pending`]).

use crate::fsys::{Hash, Meta, Stamp};
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

fn options(exclusive: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).mode(0o666).custom_flags(libc::O_CLOEXEC);
    if exclusive {
        o.create_new(true);
    } else {
        o.create(true).truncate(true);
    }
    o
}

/// Creates a new file (never an existing one), mode 0666 under the process umask.
pub fn create_new(path: &Path) -> io::Result<File> {
    options(true).open(path)
}

/// `.redo/.redo.T.rec<suffix>`, next to the state file `.redo/T.rec`.
fn beside_rec(rec_path: &Path, suffix: &[u8]) -> PathBuf {
    let name = rec_path.file_name().map(OsStr::as_bytes).unwrap_or(b"rec");
    let dir = rec_path.parent().unwrap_or(Path::new("/"));
    dir.join(OsStr::from_bytes(&[b".redo.", name, suffix].concat()))
}

/// `.redo/.redo.T.rec.tmp`: the temporary a state file is written to. One fixed name per
/// target, so that the registry of running jobs can name it before it exists; the target's
/// lock makes its writer the only one.
pub fn rec_temp_path(rec_path: &Path) -> PathBuf {
    beside_rec(rec_path, b".tmp")
}

/// `.redo/.redo.T.rec.pending`: what target `T` is about to hold, written before the target
/// changes and removed once its new state file is in place.
pub fn pending_path(rec_path: &Path) -> PathBuf {
    beside_rec(rec_path, b".pending")
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

/// Writes `bytes` to `path` (created with `umask`), fsynced when `sync`; removes `path` again
/// on failure.
fn write_file(
    path: &Path,
    bytes: &[u8],
    exclusive: bool,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<(), String> {
    let write = || -> Result<(), String> {
        let mut f = gate
            .with(umask, || options(exclusive).open(path))
            .map_err(|e| io_msg("create", path, &e))?;
        f.write_all(bytes).map_err(|e| io_msg("write", path, &e))?;
        if sync {
            f.sync_all().map_err(|e| io_msg("fsync", path, &e))?;
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(path);
    })
}

/// Writes `rec` to `rec_path` atomically (through [`rec_temp_path`], created with `umask`), and
/// returns the stat of the new file.
pub fn write_rec(
    rec_path: &Path,
    rec: &Rec,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<Stamp, String> {
    let dir = rec_path.parent().unwrap_or(Path::new("/"));
    let tmp = rec_temp_path(rec_path);
    write_file(&tmp, &state::encode(rec), false, sync, gate, umask)?;
    if let Err(e) = fs::rename(&tmp, rec_path) {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "cannot rename {} to {}: {e}",
            show(&tmp),
            show(rec_path)
        ));
    }
    if sync {
        fsync_dir(dir)?;
    }
    stamp_of(rec_path)
}

/// Writes the pending record (see [`pending_path`]): durable before the target is touched.
pub fn write_pending(
    pending: &Path,
    rec: &Rec,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<(), String> {
    write_file(pending, &state::encode(rec), false, sync, gate, umask)?;
    if sync {
        fsync_dir(pending.parent().unwrap_or(Path::new("/")))?;
    }
    Ok(())
}

/// The hash a commit interrupted by a crash was installing at `target`, if `target` holds
/// exactly that: the daemon died after the target's rename and before its state file's. The
/// target is then ours, not an external edit.
pub fn interrupted_commit(rec_path: &Path, name: &[u8], target: &Path) -> Option<Hash> {
    let rec = state::parse(&fs::read(pending_path(rec_path)).ok()?).ok()?;
    let (_, hash) = rec.own(name)?;
    let hash = *hash?;
    (crate::fsys::hash_file(target).ok()? == hash).then_some(hash)
}

/// Settles a commit a dead daemon left half done: finished (the state file written with the
/// target as it is now) when the target holds what the pending record says, rolled back (the
/// pending record dropped) otherwise. Returns whether it finished one.
pub fn settle_pending(
    rec_path: &Path,
    target: &Path,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<bool, String> {
    let pending = pending_path(rec_path);
    let Some(name) = target.file_name().map(OsStr::as_bytes) else {
        return Ok(false);
    };
    if !pending.exists() {
        return Ok(false);
    }
    let finished = match (
        interrupted_commit(rec_path, name, target),
        fs::read(&pending).ok().and_then(|b| state::parse(&b).ok()),
    ) {
        (Some(_), Some(mut rec)) => {
            let now = stamp_of(target)?;
            for d in &mut rec.deps {
                if let state::Dep::Ifchange {
                    target: t, stamp, ..
                } = d
                {
                    if t.as_slice() == name {
                        *stamp = now;
                    }
                }
            }
            write_rec(rec_path, &rec, sync, gate, umask)?;
            true
        }
        _ => false,
    };
    let _ = fs::remove_file(&pending);
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Dep;

    #[test]
    fn temp_names_follow_goredo() {
        let p = temp_path(Path::new("/d"), OsStr::new("t.o"));
        let n = p.file_name().unwrap().to_str().unwrap();
        assert!(
            n.starts_with(".redo.t.o.") && n.len() == ".redo.t.o.".len() + 16,
            "{n}"
        );
        assert_eq!(
            rec_temp_path(Path::new("/d/.redo/t.rec")),
            PathBuf::from("/d/.redo/.redo.t.rec.tmp")
        );
        assert_eq!(
            pending_path(Path::new("/d/.redo/t.rec")),
            PathBuf::from("/d/.redo/.redo.t.rec.pending")
        );
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("redod-durable-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(".redo")).unwrap();
        dir
    }

    #[test]
    fn rec_written_atomically_without_leftovers() {
        let dir = scratch("rec");
        let gate = UmaskGate::new(0o022);
        let path = dir.join(".redo/t.rec");
        let rec = Rec {
            build: "b".into(),
            deps: vec![Dep::Always],
        };
        for sync in [true, false] {
            write_rec(&path, &rec, sync, &gate, 0o022).unwrap();
            assert_eq!(state::parse(&fs::read(&path).unwrap()).unwrap(), rec);
        }
        assert_eq!(
            fs::read_dir(dir.join(".redo")).unwrap().count(),
            1,
            "no temp file left"
        );
        // Unwritable destination: an error naming the path, no temp left behind.
        let err = write_rec(&dir.join("missing/t.rec"), &rec, false, &gate, 0o022).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_interrupted_commit_is_finished_or_rolled_back() {
        let dir = scratch("pending");
        let gate = UmaskGate::new(0o022);
        let (target, rec_path) = (dir.join("t"), dir.join(".redo/t.rec"));
        let own = |content: &[u8]| Dep::Ifchange {
            target: b"t".to_vec(),
            stamp: Stamp::default(),
            hash: Some(*blake3::hash(content).as_bytes()),
        };
        write_rec(
            &rec_path,
            &Rec {
                build: "old".into(),
                deps: vec![own(b"old")],
            },
            false,
            &gate,
            0o022,
        )
        .unwrap();
        // The daemon wrote the pending record and renamed the new target, then died.
        write_pending(
            &pending_path(&rec_path),
            &Rec {
                build: "new".into(),
                deps: vec![own(b"new")],
            },
            false,
            &gate,
            0o022,
        )
        .unwrap();
        fs::write(&target, "new").unwrap();
        assert!(interrupted_commit(&rec_path, b"t", &target).is_some());
        assert!(settle_pending(&rec_path, &target, false, &gate, 0o022).unwrap());
        let rec = state::parse(&fs::read(&rec_path).unwrap()).unwrap();
        assert_eq!(rec.build, "new");
        assert_eq!(
            rec.own(b"t").unwrap().0,
            &stamp_of(&target).unwrap(),
            "the target as it is now"
        );
        assert!(!pending_path(&rec_path).exists());
        // Died before the rename: the old target stays, the pending record goes.
        write_pending(
            &pending_path(&rec_path),
            &Rec {
                build: "newer".into(),
                deps: vec![own(b"newer")],
            },
            false,
            &gate,
            0o022,
        )
        .unwrap();
        assert!(!settle_pending(&rec_path, &target, false, &gate, 0o022).unwrap());
        assert_eq!(
            state::parse(&fs::read(&rec_path).unwrap()).unwrap().build,
            "new"
        );
        assert!(!pending_path(&rec_path).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
