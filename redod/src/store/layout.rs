//! The one `.redo/` layout: where a target's state file, lock, logs and temporaries live.
//!
//! ```text
//! DIR/T                       the target
//! DIR/.redo.T.<16 hex>        a temporary the output is written to before its rename
//! DIR/.redo/T.rec             its state (recfile)
//! DIR/.redo/.redo.T.rec.tmp   the state file's temporary (one fixed name: the journal of
//!                             running jobs names it before it exists); made, empty, while
//!                             the `.do` runs, and filled at its commit
//!                             (`store::durable::RecTemp`)
//! DIR/.redo/.lock             the directory's lock file: a byte per target (`store::locks`)
//! DIR/.redo/T.lock            goredo's lock of T, taken too when it exists, never created
//! DIR/.redo/T.log, T.log-rec  its kept stderr and how it ran (`-k`)
//! ```
//!
//! The names are goredo's, so that goredo, `redo-cleanup` and recutils find them.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `DIR/.redo`.
pub fn redo_dir(dir: &Path) -> PathBuf {
    dir.join(".redo")
}

/// `DIR/.redo/NAME<suffix>`.
fn in_redo_dir(dir: &Path, name: &OsStr, suffix: &str) -> PathBuf {
    let mut file = name.to_os_string();
    file.push(suffix);
    redo_dir(dir).join(file)
}

/// The state file of `dir/name`.
pub fn rec_path(dir: &Path, name: &OsStr) -> PathBuf {
    in_redo_dir(dir, name, ".rec")
}

/// The target whose state file is `rec` (`DIR/.redo/NAME.rec` → `DIR/NAME`), if it is one.
pub fn target_of_rec(rec: &Path) -> Option<PathBuf> {
    let name = rec.file_name()?.as_bytes().strip_suffix(b".rec")?;
    let redo = rec.parent()?;
    if redo.file_name()? != ".redo" {
        return None;
    }
    Some(redo.parent()?.join(OsStr::from_bytes(name)))
}

/// goredo's lock file of `dir/name` (`store::locks` takes it when it exists).
pub fn lock_path(dir: &Path, name: &OsStr) -> PathBuf {
    in_redo_dir(dir, name, ".lock")
}

/// The kept stderr of `dir/name` (`-k`).
pub fn log_path(dir: &Path, name: &OsStr) -> PathBuf {
    in_redo_dir(dir, name, ".log")
}

/// How the last job of `dir/name` ran (`-k`).
pub fn log_rec_path(dir: &Path, name: &OsStr) -> PathBuf {
    in_redo_dir(dir, name, ".log-rec")
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

#[cfg(test)]
mod tests;
