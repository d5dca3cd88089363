//! The filesystem as the out-of-date engine sees it: stat, hash, read, "may I execute this".
//!
//! A trait so that the decisions in [`crate::ood`] and [`crate::dofile`] are unit-tested
//! against an in-memory tree (ninja's `DiskInterface` is the model). Writing files is not part
//! of it: writes happen only when a job commits, in [`crate::exec`].

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub type Hash = [u8; 32];

/// The inode data goredo records for a file (`Size InodeNum CtimeSec CtimeNsec MtimeSec
/// MtimeNsec`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Stamp {
    pub size: u64,
    pub ino: u64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link, as [`Fs::lstat`] sees it ([`Fs::stat`] follows links).
    Link,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Meta {
    pub stamp: Stamp,
    pub kind: Kind,
    /// The path is a symbolic link and `stamp`/`kind` are what it points to. A target that is
    /// a link is compared as the link itself ([`Fs::lstat`], [`Fs::hash_link`]); this flag is
    /// how a check that stat'ed it learns that it must ask again, without an `lstat` for
    /// every path that is not a link.
    pub link: bool,
}

impl Meta {
    pub fn from_std(m: &std::fs::Metadata) -> Meta {
        let ft = m.file_type();
        Meta {
            stamp: Stamp {
                size: m.size(),
                ino: m.ino(),
                ctime_sec: m.ctime(),
                ctime_nsec: m.ctime_nsec(),
                mtime_sec: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
            },
            kind: if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_symlink() {
                Kind::Link
            } else {
                Kind::Other
            },
            link: false,
        }
    }
}

/// Told of what a filesystem learns changed (the watcher's events; the in-memory tree's
/// writes), so that what a listener kept from earlier answers (the verdicts) goes with them. Called under no lock of the watcher's own.
pub(crate) trait Listener: Send + Sync {
    fn changed(&self, path: &Path);
    /// Anything may have changed (overflow, a directory moved, the watcher turned off).
    fn all_changed(&self);
}

pub trait Fs: Send + Sync + 'static {
    /// `Ok(None)` when nothing exists at `path` (symlinks are followed, as `stat(2)` does).
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>>;
    /// BLAKE3 of the file's content.
    fn hash(&self, path: &Path) -> io::Result<Hash>;
    /// The path itself, a symbolic link not followed (`lstat(2)`). Trees without links (the
    /// in-memory one of the unit tests) need nothing else than [`Fs::stat`].
    fn lstat(&self, path: &Path) -> io::Result<Option<Meta>> {
        self.stat(path)
    }
    /// BLAKE3 of what the symbolic link at `path` says ([`link_hash`]).
    fn hash_link(&self, path: &Path) -> io::Result<Hash> {
        link_hash(path)
    }
    /// Whole content, `Ok(None)` when missing.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// `access(path, X_OK)`: decides whether a `.do` is executed directly.
    fn executable(&self, path: &Path) -> bool;
    /// The entries of a directory with their kinds, unsorted. Symlinks are reported as
    /// [`Kind::Other`] and never followed, so walks cannot loop.
    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>>;

    /// The entries of `dir` that decide how things there are built ([`is_build_name`]): what
    /// the out-of-date check lists, once per directory and session. A separate call so that
    /// the file watcher can keep it while other files come and go.
    fn build_names(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let mut names = self.list(dir)?;
        names.retain(|(n, _)| is_build_name(n));
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.stat(path)?.is_some())
    }

    /// Whether `name` (a `.do` file, or `.redo`: a [`is_build_name`]) is in `dir` now. The
    /// file watcher answers it from its listing of `dir`; the disk with one `stat`.
    fn has_build_name(&self, dir: &Path, name: &std::ffi::OsStr) -> io::Result<bool> {
        Ok(listed(&self.build_names(dir)?, name))
    }

    /// Whether [`Fs::stat`] of `path` answers `seen` *now* and any later change to it will be
    /// reported (the file watcher vouches for it): a decision made from `seen` may then be
    /// kept ([`crate::verdict`]). Comparing the value, not just "is it watched", is what makes
    /// an answer read earlier (a verdict's inputs, see `crate::verdict`) safe to
    /// keep only while it is still true. Plain disks report nothing.
    fn vouches_stat(&self, _path: &Path, _seen: Option<&Meta>) -> bool {
        false
    }

    /// The same for "`name` is (`present`) or is not among [`Fs::build_names`] of `dir`".
    fn vouches_name(&self, _dir: &Path, _name: &std::ffi::OsStr, _present: bool) -> bool {
        false
    }
}

/// Whether a [`Fs::build_names`] listing holds `name` as what decides a build: `.redo` as a
/// directory, a `.do` as anything else.
pub fn listed(names: &[(OsString, Kind)], name: &std::ffi::OsStr) -> bool {
    names
        .iter()
        .any(|(n, k)| n == name && ((*k == Kind::Dir) == (name == ".redo")))
}

/// A `.do` file's name, or `.redo` (the state directory).
pub fn is_build_name(name: &std::ffi::OsStr) -> bool {
    name == ".redo" || std::os::unix::ffi::OsStrExt::as_bytes(name).ends_with(b".do")
}

fn not_found(e: &io::Error) -> bool {
    // ENOTDIR: a path component is a file; for our purposes nothing exists there.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// The real filesystem.
#[derive(Default)]
pub struct DiskFs;

impl DiskFs {
    /// [`Fs::stat`], and whether `path` is a symbolic link (a dangling one too, which `stat`
    /// reports as missing): what the file watcher needs to know not to keep the answer.
    pub(crate) fn stat_noting_links(&self, path: &Path) -> io::Result<(Option<Meta>, bool)> {
        // lstat first (as cheap as stat): only a link costs a second call, and is marked.
        match self.lstat(path)? {
            Some(m) if m.kind == Kind::Link => match std::fs::metadata(path) {
                Ok(m) => Ok((
                    Some(Meta {
                        link: true,
                        ..Meta::from_std(&m)
                    }),
                    true,
                )),
                Err(e) if not_found(&e) => Ok((None, true)),
                Err(e) => Err(e),
            },
            other => Ok((other, false)),
        }
    }
}

impl Fs for DiskFs {
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>> {
        Ok(self.stat_noting_links(path)?.0)
    }

    fn lstat(&self, path: &Path) -> io::Result<Option<Meta>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(Meta::from_std(&m))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn has_build_name(&self, dir: &Path, name: &std::ffi::OsStr) -> io::Result<bool> {
        self.exists(&dir.join(name))
    }

    fn hash(&self, path: &Path) -> io::Result<Hash> {
        hash_file(path)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn executable(&self, path: &Path) -> bool {
        nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let ft = e.file_type()?;
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            out.push((e.file_name(), kind));
        }
        Ok(out)
    }
}

/// BLAKE3 of the text of the symbolic link at `path`: a link target's content, never followed
/// (it may point nowhere, or at something that is not ours).
pub fn link_hash(path: &Path) -> io::Result<Hash> {
    use std::os::unix::ffi::OsStrExt;
    let text = std::fs::read_link(path)?;
    Ok(*blake3::hash(text.as_os_str().as_bytes()).as_bytes())
}

/// What a target at `path` holds: a link's text ([`link_hash`]), or a file's content.
pub fn hash_entry(path: &Path) -> io::Result<Hash> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => link_hash(path),
        _ => hash_file(path),
    }
}

/// BLAKE3 of a file, streamed.
pub fn hash_file(path: &Path) -> io::Result<Hash> {
    hash_reader(std::fs::File::open(path)?)
}

/// BLAKE3 of everything `f` yields, streamed.
///
/// Through one buffer per thread, made once: a fresh zeroed 128 KiB buffer per hash (every
/// commit hashes its output) is as large as malloc's mmap threshold, so each hash paid an
/// `mmap`, 32 page faults, the zeroing and an `munmap` for what is mostly a small file.
pub fn hash_reader(mut f: impl Read) -> io::Result<Hash> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        // A hash never calls another on the same thread; should one, it gets its own buffer.
        let mut own = Vec::new();
        let mut guard = buf.try_borrow_mut().ok();
        let buf = guard.as_deref_mut().unwrap_or(&mut own);
        if buf.len() < HASH_BUF {
            buf.resize(HASH_BUF, 0);
        }
        let mut hasher = blake3::Hasher::new();
        loop {
            match f.read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*hasher.finalize().as_bytes())
    })
}

/// The read size of [`hash_reader`].
const HASH_BUF: usize = 128 << 10;

/// Lowercase hex, as the `.rec` `Hash` field wants it.
pub fn hex(h: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in h {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses 64 lowercase hex digits.
pub fn unhex(s: &[u8]) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut h = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        h[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(h)
}

#[cfg(test)]
pub(crate) mod mem;
pub mod paths;
pub mod umask;
