//! A snapshot of what the daemon remembers between builds, kept on disk so that a daemon that
//! has just started answers its first build as fast as the hundredth.
//!
//! Two files in the project root's `.redo/`:
//!
//! * `snapshot`: what the file watcher vouched for (its stats and the build names of its
//!   directories) and the verdicts decided from them ([`crate::verdict`]). A cold start takes
//!   them back as far as the disk confirms them (`watch::saved`, [`crate::engine`]'s restore):
//!   a no-op is then answered from verdicts, as in a warm daemon, instead of a full check of
//!   every target.
//!   With them, the parsed `.rec` files of the targets no verdict answers for (a phony `all`
//!   is out of date in every build, and its state file names every target).
//! * `snapshot-state`: the other parsed `.rec` files and the content hashes
//!   ([`crate::store::cache`]), read only when the verdicts cannot be taken back (no watcher,
//!   an event during the restore).
//!
//! Both are only ever hints:
//!
//! * **The `.rec` files stay the truth.** Every entry carries the stat its file had when it
//!   was read, and is used only while the file's stat is still exactly that (the caches
//!   compare it at every use; the watcher's entries are all taken again at the restore). A
//!   stale entry is never used.
//! * **Checked as a whole before anything is used**: magic, format version, the daemon version
//!   that wrote it, the machine (`/etc/machine-id`), the project root and its device, and a
//!   BLAKE3 checksum of its bytes. One that fails any of these (another version, another
//!   machine, a copy of the project elsewhere, a torn or corrupt file) is ignored with a debug
//!   line, and the daemon starts as it would without one.
//! * **Written atomically** (a temporary beside it, then `rename`) when the daemon exits. Not
//!   fsynced: a crash may lose it or leave an old one, both only a slower start. Deleting them
//!   costs exactly that, nothing else.

mod format;

use crate::fs::{Hash, Kind, Meta, Stamp};
use crate::store::recfile::Rec;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files' names in the project root's `.redo/`.
pub const FILE: &str = "snapshot";
pub const STATE_FILE: &str = "snapshot-state";

/// What a snapshot must have been written by and for, to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The writing daemon's version.
    pub producer: Vec<u8>,
    /// The machine (`/etc/machine-id`): inode numbers and device ids mean nothing elsewhere.
    pub machine: Vec<u8>,
    pub root: PathBuf,
    /// The root's device: a project moved to another filesystem has other inode numbers.
    pub device: u64,
}

impl Origin {
    /// This daemon's origin for the project at `root`.
    pub fn here(root: &Path) -> io::Result<Origin> {
        let machine = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .find_map(|p| fs::read(p).ok())
            .map(|m| m.trim_ascii().to_vec())
            .unwrap_or_default();
        Ok(Origin {
            producer: format!("redod {}", env!("CARGO_PKG_VERSION")).into_bytes(),
            machine,
            root: root.to_path_buf(),
            device: fs::metadata(root)?.dev(),
        })
    }
}

/// Why a snapshot was not used (a debug line: it is only a slower start).
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("no snapshot")]
    Missing,
    #[error("cannot read the snapshot: {0}")]
    Read(io::Error),
    #[error("not a snapshot of this format (version {0:?}, want {want})", want = format::FORMAT)]
    Format(Option<u32>),
    #[error("written by {0}")]
    Producer(String),
    #[error("written on another machine")]
    Machine,
    #[error("written for another project root or filesystem")]
    Root,
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
}

/// A parsed state file as the cache keeps it: its path, the stat it was read at, its records.
pub type RecEntry = (PathBuf, Stamp, Arc<Rec>);
/// A content hash as the cache keeps it: the file, the stat it was hashed at, the hash.
pub type HashEntry = (PathBuf, Stamp, Hash);
/// A stat the file watcher answers from memory: the path, and what it was (`None`: nothing).
pub type StatEntry = (PathBuf, Option<Meta>);

/// The stats of one directory's entries, as a snapshot is read: a restore takes them again
/// directory by directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatGroup {
    pub dir: PathBuf,
    pub entries: Vec<StatEntry>,
}

/// A directory's build names as the file watcher keeps them, with the directory's own stat
/// when they were saved: a directory whose stat is unchanged has the same entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    pub dir: PathBuf,
    pub dir_meta: Meta,
    pub names: Vec<(OsString, Kind)>,
}

/// A verdict ([`crate::verdict`]): the target, its stat and hash, the trust mode (its number
/// in the file: 0 none, 1 ctime, 2 mtime) and the keys of what it was decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictEntry {
    pub target: PathBuf,
    pub meta: Meta,
    pub hash: Option<Hash>,
    pub trust: u8,
    pub inputs: Vec<u64>,
}

/// What is saved.
#[derive(Debug, Default)]
pub struct Contents {
    pub recs: Vec<RecEntry>,
    pub hashes: Vec<HashEntry>,
    pub stats: Vec<StatEntry>,
    pub listings: Vec<ListingEntry>,
    pub verdicts: Vec<VerdictEntry>,
}

/// The `snapshot` file, read and checked; the state file is read when asked for.
#[derive(Debug)]
pub struct Loaded {
    pub stats: Vec<StatGroup>,
    pub listings: Vec<ListingEntry>,
    pub verdicts: Vec<VerdictEntry>,
    /// The state files of the targets no verdict answers for (`all`, a phony target, is out
    /// of date in every build and always needs its own).
    pub recs: Vec<RecEntry>,
    /// Where `snapshot-state` is, and whose it must be.
    state: (PathBuf, Origin),
}

impl Loaded {
    /// The other parsed state files (those whose path `want` says yes to: the others are
    /// skipped without being decoded) and the hashes, from `snapshot-state`.
    pub fn state(
        &self,
        want: impl Fn(&Path) -> bool,
    ) -> Result<(Vec<RecEntry>, Vec<HashEntry>), Rejected> {
        let (path, origin) = &self.state;
        format::decode_state(read(path)?, origin, want)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Rejected> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Rejected::Missing),
        Err(e) => Err(Rejected::Read(e)),
    }
}

/// The snapshot in `redo_dir`, if it is one of `origin`'s and whole.
pub fn load(redo_dir: &Path, origin: &Origin) -> Result<Loaded, Rejected> {
    let (stats, listings, verdicts, recs) =
        format::decode_main(read(&redo_dir.join(FILE))?, origin)?;
    Ok(Loaded {
        stats,
        listings,
        verdicts,
        recs,
        state: (redo_dir.join(STATE_FILE), origin.clone()),
    })
}

/// Writes `contents` to `redo_dir`'s two files, each atomically.
pub fn save(redo_dir: &Path, origin: &Origin, contents: &Contents) -> io::Result<()> {
    write_atomically(
        &redo_dir.join(STATE_FILE),
        &format::encode_state(origin, contents),
    )?;
    write_atomically(&redo_dir.join(FILE), &format::encode_main(origin, contents))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
