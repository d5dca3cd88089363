//! A snapshot of what the daemon remembers between builds (parsed `.rec` files and content
//! hashes, [`crate::store::cache`]), kept on disk so that a daemon that has just started
//! answers its first build as fast as the hundredth: without it, a cold daemon reads and
//! parses every state file again (about 30 µs each).
//!
//! It lives at `ROOT/.redo/snapshot` (the project root's `.redo/`) and is only ever a hint:
//!
//! * **The `.rec` files stay the truth.** Every entry carries the stat its file had when it
//!   was read (the state file's, or the hashed file's), and the caches use an entry only while
//!   the file's stat is still exactly that ([`RecCache::load`] and [`Hashes::hash`] compare it
//!   at every use, as they do for what they learnt themselves). A stale entry is never used; it
//!   is read again from the file.
//! * **Checked as a whole before anything is used**: its magic, format version, the daemon
//!   version that wrote it, the machine (`/etc/machine-id`), the project root and its device,
//!   and a BLAKE3 checksum of its bytes. A snapshot that fails any of these (another version,
//!   another machine, a copy of the project elsewhere, a torn or corrupt file) is ignored with
//!   a debug line, and the daemon starts as it would without one.
//! * **Written atomically** (a temporary beside it, then `rename`), from a copy of the caches
//!   taken under their locks. It is not fsynced: a crash may lose it or leave an old one, both
//!   of which are only a slower start. Deleting it costs exactly that, nothing else.

use crate::fs::{Hash, Stamp};
use crate::store::cache::{Hashes, RecCache};
use crate::store::recfile::{Dep, Rec};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file's name in the project root's `.redo/`.
pub const FILE: &str = "snapshot";

const MAGIC: &[u8; 8] = b"REDOSNAP";
/// Bumped whenever what is written changes meaning.
const FORMAT: u32 = 1;

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
    #[error("not a snapshot of this format (version {0:?}, want {FORMAT})")]
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

/// What [`load`] found: entries to give the caches.
#[derive(Debug, Default)]
pub struct Contents {
    pub recs: Vec<RecEntry>,
    pub hashes: Vec<HashEntry>,
}

/// The snapshot at `path`, if it is one of `origin`'s and whole.
pub fn load(path: &Path, origin: &Origin) -> Result<Contents, Rejected> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Rejected::Missing),
        Err(e) => return Err(Rejected::Read(e)),
    };
    decode(&bytes, origin)
}

/// Gives the caches what `contents` holds (entries they already have are kept: theirs are
/// at least as recent).
pub fn absorb(contents: Contents, recs: &RecCache, hashes: &Hashes) {
    recs.absorb(contents.recs);
    hashes.absorb(contents.hashes);
}

/// Writes the caches' contents to `path`, atomically.
pub fn save(path: &Path, origin: &Origin, recs: &RecCache, hashes: &Hashes) -> io::Result<()> {
    let bytes = encode(origin, &recs.entries(), &hashes.entries());
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(&bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The format: little-endian; byte strings as a u32 length then the bytes.
//
//   MAGIC, FORMAT: u32, producer, machine, root, device: u64,
//   recs: u64, then per rec: path, stamp, build, deps: u32, then per dep: tag u8 and fields,
//   hashes: u64, then per hash: path, stamp, 32 bytes,
//   BLAKE3 of everything before: 32 bytes.

fn encode(origin: &Origin, recs: &[RecEntry], hashes: &[HashEntry]) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 + recs.len() * 256 + hashes.len() * 128);
    w.extend_from_slice(MAGIC);
    w.extend_from_slice(&FORMAT.to_le_bytes());
    put_bytes(&mut w, &origin.producer);
    put_bytes(&mut w, &origin.machine);
    put_bytes(&mut w, origin.root.as_os_str().as_bytes());
    w.extend_from_slice(&origin.device.to_le_bytes());
    w.extend_from_slice(&(recs.len() as u64).to_le_bytes());
    for (path, stamp, rec) in recs {
        put_bytes(&mut w, path.as_os_str().as_bytes());
        put_stamp(&mut w, stamp);
        put_bytes(&mut w, rec.build.as_bytes());
        w.extend_from_slice(&(rec.deps.len() as u32).to_le_bytes());
        for d in &rec.deps {
            match d {
                Dep::Ifcreate { target } => {
                    w.push(0);
                    put_bytes(&mut w, target);
                }
                Dep::Ifchange {
                    target,
                    stamp,
                    hash,
                } => {
                    w.push(1);
                    put_bytes(&mut w, target);
                    put_stamp(&mut w, stamp);
                    match hash {
                        Some(h) => {
                            w.push(1);
                            w.extend_from_slice(h);
                        }
                        None => w.push(0),
                    }
                }
                Dep::Always => w.push(2),
                Dep::Stamp { hash } => {
                    w.push(3);
                    w.extend_from_slice(hash);
                }
            }
        }
    }
    w.extend_from_slice(&(hashes.len() as u64).to_le_bytes());
    for (path, stamp, hash) in hashes {
        put_bytes(&mut w, path.as_os_str().as_bytes());
        put_stamp(&mut w, stamp);
        w.extend_from_slice(hash);
    }
    let sum = blake3::hash(&w);
    w.extend_from_slice(sum.as_bytes());
    w
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

fn put_stamp(w: &mut Vec<u8>, s: &Stamp) {
    for v in [s.size, s.ino] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    for v in [s.ctime_sec, s.ctime_nsec, s.mtime_sec, s.mtime_nsec] {
        w.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads the bytes in order; every read is bounds-checked (the file is untrusted input).
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Rejected> {
        if self.b.len() < n {
            return Err(Rejected::Corrupt("truncated"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Rejected> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Rejected> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, Rejected> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn i64(&mut self) -> Result<i64, Rejected> {
        Ok(self.u64()? as i64)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Rejected> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn hash(&mut self) -> Result<Hash, Rejected> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(h)
    }

    fn stamp(&mut self) -> Result<Stamp, Rejected> {
        Ok(Stamp {
            size: self.u64()?,
            ino: self.u64()?,
            ctime_sec: self.i64()?,
            ctime_nsec: self.i64()?,
            mtime_sec: self.i64()?,
            mtime_nsec: self.i64()?,
        })
    }

    fn path(&mut self) -> Result<PathBuf, Rejected> {
        Ok(PathBuf::from(OsString::from_vec(self.bytes()?.to_vec())))
    }

    /// A count of items each at least `min` bytes long: never more than the rest can hold, so
    /// that a corrupt count cannot make a huge allocation.
    fn count(&mut self, min: usize) -> Result<usize, Rejected> {
        let n = usize::try_from(self.u64()?).map_err(|_| Rejected::Corrupt("count"))?;
        if n > self.b.len() / min.max(1) {
            return Err(Rejected::Corrupt("count"));
        }
        Ok(n)
    }
}

fn decode(bytes: &[u8], origin: &Origin) -> Result<Contents, Rejected> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Rejected::Format(None));
    }
    let format = Reader {
        b: &bytes[MAGIC.len()..],
    }
    .u32()?;
    if format != FORMAT {
        return Err(Rejected::Format(Some(format)));
    }
    if bytes.len() < MAGIC.len() + 4 + 32 {
        return Err(Rejected::Corrupt("truncated"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    let mut r = Reader {
        b: &body[MAGIC.len() + 4..],
    };
    if blake3::hash(body).as_bytes() != sum {
        return Err(Rejected::Corrupt("checksum"));
    }
    let producer = r.bytes()?;
    if producer != origin.producer.as_slice() {
        return Err(Rejected::Producer(
            String::from_utf8_lossy(producer).into_owned(),
        ));
    }
    if r.bytes()? != origin.machine.as_slice() {
        return Err(Rejected::Machine);
    }
    if r.bytes()? != origin.root.as_os_str().as_bytes() || r.u64()? != origin.device {
        return Err(Rejected::Root);
    }
    let mut out = Contents::default();
    let n = r.count(4 + 48 + 4 + 4)?;
    out.recs.reserve(n);
    for _ in 0..n {
        let path = r.path()?;
        let stamp = r.stamp()?;
        let build =
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| Rejected::Corrupt("build id"))?;
        let ndeps = r.u32()? as usize;
        if ndeps > r.b.len() {
            return Err(Rejected::Corrupt("count"));
        }
        let mut deps = Vec::with_capacity(ndeps);
        for _ in 0..ndeps {
            deps.push(match r.u8()? {
                0 => Dep::Ifcreate {
                    target: r.bytes()?.to_vec(),
                },
                1 => {
                    let target = r.bytes()?.to_vec();
                    let stamp = r.stamp()?;
                    let hash = match r.u8()? {
                        0 => None,
                        1 => Some(r.hash()?),
                        _ => return Err(Rejected::Corrupt("hash flag")),
                    };
                    Dep::Ifchange {
                        target,
                        stamp,
                        hash,
                    }
                }
                2 => Dep::Always,
                3 => Dep::Stamp { hash: r.hash()? },
                _ => return Err(Rejected::Corrupt("record type")),
            });
        }
        out.recs.push((path, stamp, Arc::new(Rec { build, deps })));
    }
    let n = r.count(4 + 48 + 32)?;
    out.hashes.reserve(n);
    for _ in 0..n {
        out.hashes.push((r.path()?, r.stamp()?, r.hash()?));
    }
    if !r.b.is_empty() {
        return Err(Rejected::Corrupt("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
