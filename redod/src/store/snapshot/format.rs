//! The snapshot's bytes. Little-endian; byte strings as a `u32` length then the bytes; a path
//! as the index of its directory in the file's table of directories, then its name (a
//! project's paths share few directories: the table makes the file about half as large).
//!
//! ```text
//! file    = MAGIC FORMAT:u32 producer machine root device:u64 dirs:u32 dir* body BLAKE3(all before)
//! main    = stats:u64 (dir:u32 n:u32 (name flag:u8 meta?)*)*  listings:u64 (dir:u32 meta names:u32 (name kind:u8)*)*
//!           verdicts:u64 (path meta hashflag:u8 hash? trust:u8 inputs:u32 key:u64*)*
//! state   = hashes:u64 (path stamp hash)*  recs:u64 (path stamp build deps:u32 dep*)*
//! meta    = stamp kind:u8 link:u8        stamp = size ino ctime_sec ctime_nsec mtime_sec mtime_nsec
//! dep     = 0 target | 1 target stamp hashflag:u8 hash? | 2 | 3 hash
//! ```
//!
//! The file is untrusted input: every length is checked before it is used, a count can never
//! make an allocation larger than the rest of the file, and the checksum is checked before any
//! of it is decoded.

use super::{
    Contents, HashEntry, ListingEntry, Origin, RecEntry, Rejected, StatGroup, VerdictEntry,
};
use crate::fastmap::HashMap;
use crate::fs::{Hash, Kind, Meta, Stamp};
use crate::store::recfile::{Dep, Rec};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAIN: &[u8; 8] = b"REDOSNAP";
const STATE: &[u8; 8] = b"REDOSTAT";
/// Bumped whenever what is written changes meaning.
pub(super) const FORMAT: u32 = 3;

// ------------------------------------------------------------------------------------------
// Writing.

/// A file being written: its body, and the table of the directories its paths name.
#[derive(Default)]
struct Writer<'a> {
    body: Vec<u8>,
    dirs: HashMap<&'a [u8], u32>,
    order: Vec<&'a [u8]>,
}

impl<'a> Writer<'a> {
    fn u8(&mut self, v: u8) {
        self.body.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.body.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.body.extend_from_slice(&v.to_le_bytes());
    }

    fn count(&mut self, n: usize) {
        self.u64(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.body.extend_from_slice(b);
    }

    fn hash(&mut self, h: &Hash) {
        self.body.extend_from_slice(h);
    }

    fn dir(&mut self, d: &'a [u8]) {
        let next = self.order.len() as u32;
        let i = *self.dirs.entry(d).or_insert(next);
        if i == next {
            self.order.push(d);
        }
        self.u32(i);
    }

    fn path(&mut self, p: &'a Path) {
        let b = p.as_os_str().as_bytes();
        let slash = b.iter().rposition(|&c| c == b'/').unwrap_or(0);
        self.dir(&b[..slash]);
        self.bytes(&b[slash + 1..]);
    }

    fn stamp(&mut self, s: &Stamp) {
        self.u64(s.size);
        self.u64(s.ino);
        for v in [s.ctime_sec, s.ctime_nsec, s.mtime_sec, s.mtime_nsec] {
            self.u64(v as u64);
        }
    }

    fn meta(&mut self, m: &Meta) {
        self.stamp(&m.stamp);
        self.u8(kind_byte(m.kind));
        self.u8(u8::from(m.link));
    }

    fn opt_hash(&mut self, h: &Option<Hash>) {
        match h {
            Some(h) => {
                self.u8(1);
                self.hash(h);
            }
            None => self.u8(0),
        }
    }

    /// The whole file: header, table of directories, body, checksum.
    fn finish(self, magic: &[u8; 8], origin: &Origin) -> Vec<u8> {
        let mut w = Vec::with_capacity(self.body.len() + 4096);
        w.extend_from_slice(magic);
        w.extend_from_slice(&FORMAT.to_le_bytes());
        for b in [
            &origin.producer[..],
            &origin.machine[..],
            origin.root.as_os_str().as_bytes(),
        ] {
            w.extend_from_slice(&(b.len() as u32).to_le_bytes());
            w.extend_from_slice(b);
        }
        w.extend_from_slice(&origin.device.to_le_bytes());
        w.extend_from_slice(&(self.order.len() as u32).to_le_bytes());
        for d in &self.order {
            w.extend_from_slice(&(d.len() as u32).to_le_bytes());
            w.extend_from_slice(d);
        }
        w.extend_from_slice(&self.body);
        let sum = blake3::hash(&w);
        w.extend_from_slice(sum.as_bytes());
        w
    }
}

fn kind_byte(k: Kind) -> u8 {
    match k {
        Kind::File => 0,
        Kind::Dir => 1,
        Kind::Link => 2,
        Kind::Other => 3,
    }
}

/// Whether the state file at `path` is of a target a verdict answers for: those go to the
/// state file (a no-op answered by verdicts needs none of them), the others (a phony `all`,
/// always out of date) to the main one.
fn answered<'a>(c: &'a Contents) -> impl Fn(&Path) -> bool + 'a {
    let targets: crate::fastmap::HashSet<&[u8]> = c
        .verdicts
        .iter()
        .map(|v| v.target.as_os_str().as_bytes())
        .collect();
    move |rec| {
        crate::store::layout::target_of_rec(rec)
            .is_some_and(|t| targets.contains(t.as_os_str().as_bytes()))
    }
}

/// The `snapshot` file: the watcher's memory, the verdicts, and the state files of the
/// targets no verdict answers for.
pub(super) fn encode_main(origin: &Origin, c: &Contents) -> Vec<u8> {
    let mut w = Writer::default();
    // By directory: a restore takes them again directory by directory.
    type Entry<'a> = (&'a [u8], &'a [u8], &'a Option<Meta>);
    let mut by_dir: Vec<Entry> = c
        .stats
        .iter()
        .map(|(p, m)| {
            let b = p.as_os_str().as_bytes();
            let slash = b.iter().rposition(|&x| x == b'/').unwrap_or(0);
            (&b[..slash], &b[slash + 1..], m)
        })
        .collect();
    by_dir.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let groups: Vec<&[Entry]> = by_dir.chunk_by(|a, b| a.0 == b.0).collect();
    w.count(groups.len());
    for g in groups {
        w.dir(g[0].0);
        w.u32(g.len() as u32);
        for (_, name, meta) in g {
            w.bytes(name);
            match meta {
                Some(m) => {
                    w.u8(1);
                    w.meta(m);
                }
                None => w.u8(0),
            }
        }
    }
    w.count(c.listings.len());
    for l in &c.listings {
        w.dir(l.dir.as_os_str().as_bytes());
        w.meta(&l.dir_meta);
        w.u32(l.names.len() as u32);
        for (name, kind) in &l.names {
            w.bytes(name.as_bytes());
            w.u8(kind_byte(*kind));
        }
    }
    w.count(c.verdicts.len());
    for v in &c.verdicts {
        w.path(&v.target);
        w.meta(&v.meta);
        w.opt_hash(&v.hash);
        w.u8(v.trust);
        w.u32(v.inputs.len() as u32);
        for i in &v.inputs {
            w.u64(*i);
        }
    }
    let answered = answered(c);
    let recs: Vec<&RecEntry> = c.recs.iter().filter(|r| !answered(&r.0)).collect();
    w.recs(&recs);
    w.finish(MAIN, origin)
}

/// The `snapshot-state` file: hashes, and the state files of the targets a verdict answers
/// for.
pub(super) fn encode_state(origin: &Origin, c: &Contents) -> Vec<u8> {
    let mut w = Writer::default();
    w.count(c.hashes.len());
    for (path, stamp, hash) in &c.hashes {
        w.path(path);
        w.stamp(stamp);
        w.hash(hash);
    }
    let answered = answered(c);
    let recs: Vec<&RecEntry> = c.recs.iter().filter(|r| answered(&r.0)).collect();
    w.recs(&recs);
    w.finish(STATE, origin)
}

impl<'a> Writer<'a> {
    fn recs(&mut self, recs: &[&'a RecEntry]) {
        let w = self;
        w.count(recs.len());
        for (path, stamp, rec) in recs.iter().copied() {
            w.path(path);
            w.stamp(stamp);
            w.bytes(rec.build.as_bytes());
            w.u32(rec.deps.len() as u32);
            for d in &rec.deps {
                match d {
                    Dep::Ifcreate { target } => {
                        w.u8(0);
                        w.bytes(target);
                    }
                    Dep::Ifchange {
                        target,
                        stamp,
                        hash,
                    } => {
                        w.u8(1);
                        w.bytes(target);
                        w.stamp(stamp);
                        w.opt_hash(hash);
                    }
                    Dep::Always => w.u8(2),
                    Dep::Stamp { hash } => {
                        w.u8(3);
                        w.hash(hash);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Reading.

/// Reads the bytes in order; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    dirs: Vec<&'a [u8]>,
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

    fn bytes(&mut self) -> Result<&'a [u8], Rejected> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn hash(&mut self) -> Result<Hash, Rejected> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(h)
    }

    fn flag(&mut self) -> Result<bool, Rejected> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Rejected::Corrupt("flag")),
        }
    }

    fn opt_hash(&mut self) -> Result<Option<Hash>, Rejected> {
        Ok(match self.flag()? {
            true => Some(self.hash()?),
            false => None,
        })
    }

    /// A count of items each at least `min` bytes long: never more than the rest can hold,
    /// so that a corrupt count cannot make a huge allocation.
    fn count(&mut self, min: usize) -> Result<usize, Rejected> {
        let n = usize::try_from(self.u64()?).map_err(|_| Rejected::Corrupt("count"))?;
        self.fits(n, min)
    }

    fn fits(&self, n: usize, min: usize) -> Result<usize, Rejected> {
        match n <= self.b.len() / min.max(1) {
            true => Ok(n),
            false => Err(Rejected::Corrupt("count")),
        }
    }

    fn dir(&mut self) -> Result<&'a [u8], Rejected> {
        let i = self.u32()? as usize;
        self.dirs
            .get(i)
            .copied()
            .ok_or(Rejected::Corrupt("directory index"))
    }

    /// A path's directory and name, borrowed.
    fn path_parts(&mut self) -> Result<(&'a [u8], &'a [u8]), Rejected> {
        Ok((self.dir()?, self.bytes()?))
    }

    fn path(&mut self) -> Result<PathBuf, Rejected> {
        let (dir, name) = self.path_parts()?;
        Ok(join(dir, name))
    }

    fn stamp(&mut self) -> Result<Stamp, Rejected> {
        Ok(Stamp {
            size: self.u64()?,
            ino: self.u64()?,
            ctime_sec: self.u64()? as i64,
            ctime_nsec: self.u64()? as i64,
            mtime_sec: self.u64()? as i64,
            mtime_nsec: self.u64()? as i64,
        })
    }

    fn kind(&mut self) -> Result<Kind, Rejected> {
        Ok(match self.u8()? {
            0 => Kind::File,
            1 => Kind::Dir,
            2 => Kind::Link,
            3 => Kind::Other,
            _ => return Err(Rejected::Corrupt("file kind")),
        })
    }

    fn meta(&mut self) -> Result<Meta, Rejected> {
        let stamp = self.stamp()?;
        let kind = self.kind()?;
        let link = self.flag()?;
        Ok(Meta { stamp, kind, link })
    }
}

/// `dir/name`, in one allocation.
fn join(dir: &[u8], name: &[u8]) -> PathBuf {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(p))
}

/// Checks a file's magic, format, origin and checksum, and reads its table of directories:
/// a reader of its body.
fn open<'a>(bytes: &'a [u8], magic: &[u8; 8], origin: &Origin) -> Result<Reader<'a>, Rejected> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(Rejected::Format(None));
    }
    let mut r = Reader {
        b: &bytes[8..],
        dirs: Vec::new(),
    };
    let format = r.u32()?;
    if format != FORMAT {
        return Err(Rejected::Format(Some(format)));
    }
    if bytes.len() < 12 + 32 {
        return Err(Rejected::Corrupt("truncated"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(Rejected::Corrupt("checksum"));
    }
    let mut r = Reader {
        b: &body[12..],
        dirs: Vec::new(),
    };
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
    let n = r.u32()? as usize;
    let n = r.fits(n, 4)?;
    let mut dirs = Vec::with_capacity(n);
    for _ in 0..n {
        dirs.push(r.bytes()?);
    }
    r.dirs = dirs;
    Ok(r)
}

fn done(r: &Reader<'_>) -> Result<(), Rejected> {
    match r.b.is_empty() {
        true => Ok(()),
        false => Err(Rejected::Corrupt("trailing bytes")),
    }
}

/// Sizes, in bytes, of the smallest entry of each kind (for [`Reader::count`]).
const META: usize = 48 + 2;
const PATH: usize = 4 + 4;

pub(super) type Main = (
    Vec<StatGroup>,
    Vec<ListingEntry>,
    Vec<VerdictEntry>,
    Vec<RecEntry>,
);

/// The `snapshot` file's contents.
pub(super) fn decode_main(bytes: Vec<u8>, origin: &Origin) -> Result<Main, Rejected> {
    let mut r = open(&bytes, MAIN, origin)?;
    let n = r.count(4 + 4)?;
    let mut stats = Vec::with_capacity(n);
    for _ in 0..n {
        let dir = r.dir()?;
        let k = r.u32()? as usize;
        let k = r.fits(k, 4 + 1)?;
        let mut entries = Vec::with_capacity(k);
        for _ in 0..k {
            let path = join(dir, r.bytes()?);
            let meta = match r.flag()? {
                true => Some(r.meta()?),
                false => None,
            };
            entries.push((path, meta));
        }
        stats.push(StatGroup {
            dir: PathBuf::from(OsStr::from_bytes(dir)),
            entries,
        });
    }
    let n = r.count(4 + META + 4)?;
    let mut listings = Vec::with_capacity(n);
    for _ in 0..n {
        let dir = PathBuf::from(OsStr::from_bytes(r.dir()?));
        let dir_meta = r.meta()?;
        let k = r.u32()? as usize;
        let k = r.fits(k, 5)?;
        let mut names = Vec::with_capacity(k);
        for _ in 0..k {
            let name = OsString::from_vec(r.bytes()?.to_vec());
            names.push((name, r.kind()?));
        }
        listings.push(ListingEntry {
            dir,
            dir_meta,
            names,
        });
    }
    let n = r.count(PATH + META + 1 + 1 + 4)?;
    let mut verdicts = Vec::with_capacity(n);
    for _ in 0..n {
        let target = r.path()?;
        let meta = r.meta()?;
        let hash = r.opt_hash()?;
        let trust = r.u8()?;
        let k = r.u32()? as usize;
        let k = r.fits(k, 8)?;
        let mut inputs = Vec::with_capacity(k);
        for _ in 0..k {
            inputs.push(r.u64()?);
        }
        verdicts.push(VerdictEntry {
            target,
            meta,
            hash,
            trust,
            inputs,
        });
    }
    let recs = decode_recs(&mut r, |_| true)?;
    done(&r)?;
    Ok((stats, listings, verdicts, recs))
}

/// The `snapshot-state` file's hashes and the parsed state files `want` says yes to.
pub(super) fn decode_state(
    bytes: Vec<u8>,
    origin: &Origin,
    want: impl Fn(&Path) -> bool,
) -> Result<(Vec<RecEntry>, Vec<HashEntry>), Rejected> {
    let mut r = open(&bytes, STATE, origin)?;
    let n = r.count(PATH + 48 + 32)?;
    let mut hashes = Vec::with_capacity(n);
    for _ in 0..n {
        hashes.push((r.path()?, r.stamp()?, r.hash()?));
    }
    let recs = decode_recs(&mut r, want)?;
    done(&r)?;
    Ok((recs, hashes))
}

/// A section of parsed state files, those `want` says yes to.
fn decode_recs(
    r: &mut Reader<'_>,
    want: impl Fn(&Path) -> bool,
) -> Result<Vec<RecEntry>, Rejected> {
    let n = r.count(PATH + 48 + 4 + 4)?;
    let mut recs = Vec::new();
    for _ in 0..n {
        let (dir, name) = r.path_parts()?;
        let path = join(dir, name);
        if !want(&path) {
            skip_rec(r)?;
            continue;
        }
        let stamp = r.stamp()?;
        let build =
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| Rejected::Corrupt("build id"))?;
        let k = r.u32()? as usize;
        let k = r.fits(k, 1)?;
        let mut deps = Vec::with_capacity(k);
        for _ in 0..k {
            deps.push(match r.u8()? {
                0 => Dep::Ifcreate {
                    target: r.bytes()?.to_vec(),
                },
                1 => Dep::Ifchange {
                    target: r.bytes()?.to_vec(),
                    stamp: r.stamp()?,
                    hash: r.opt_hash()?,
                },
                2 => Dep::Always,
                3 => Dep::Stamp { hash: r.hash()? },
                _ => return Err(Rejected::Corrupt("record type")),
            });
        }
        recs.push((path, stamp, Arc::new(Rec { build, deps })));
    }
    Ok(recs)
}

/// Moves past one state file's stamp and records (its path was read).
fn skip_rec(r: &mut Reader<'_>) -> Result<(), Rejected> {
    r.take(48)?;
    r.bytes()?;
    let k = r.u32()? as usize;
    for _ in 0..k {
        match r.u8()? {
            0 => {
                r.bytes()?;
            }
            1 => {
                r.bytes()?;
                r.take(48)?;
                r.opt_hash()?;
            }
            2 => {}
            3 => {
                r.take(32)?;
            }
            _ => return Err(Rejected::Corrupt("record type")),
        }
    }
    Ok(())
}
