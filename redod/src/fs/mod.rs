//! The filesystem as the daemon sees it, behind two traits so that what depends on it is
//! unit-tested against an in-memory tree ([`mem`]; ninja's `DiskInterface` and
//! `VirtualFileSystem` are the model):
//!
//! * [`Fs`]: stat, hash, read, list, "may I execute this": what the out-of-date decisions in
//!   [`crate::ood`] and [`crate::dofile`] read. The file watcher answers it from memory.
//! * [`Disk`]: the writes a commit is made of (create a temporary, write, fsync, rename or
//!   exchange, remove), each one system call on the real disk ([`DiskFs`]). Their order is
//!   the crash guarantee of `docs/DESIGN.md` §7; the in-memory tree fails any one of them on
//!   demand, or forgets what was not synced, so that guarantee is tested step by step.

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

impl Meta {
    /// From a `stat(2)` buffer (`fstatat` of a directory's entry: see `watch::saved`).
    pub fn from_stat(st: &nix::sys::stat::FileStat) -> Meta {
        let fmt = st.st_mode & libc::S_IFMT;
        // `st_size` and `st_ino` are never negative; the casts only change the type.
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        Meta {
            stamp: Stamp {
                size: st.st_size as u64,
                ino: st.st_ino as u64,
                ctime_sec: st.st_ctime as i64,
                ctime_nsec: st.st_ctime_nsec as i64,
                mtime_sec: st.st_mtime as i64,
                mtime_nsec: st.st_mtime_nsec as i64,
            },
            kind: match fmt {
                libc::S_IFDIR => Kind::Dir,
                libc::S_IFREG => Kind::File,
                libc::S_IFLNK => Kind::Link,
                _ => Kind::Other,
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
        // The watcher keeps it: not the capacity of every entry of a large directory.
        names.shrink_to_fit();
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

/// An open file of a [`Disk`]: a descriptor of the real disk, or a file of the unit tests'
/// in-memory tree.
#[derive(Debug)]
pub struct Handle(Open);

#[derive(Debug)]
enum Open {
    File(std::fs::File),
    #[cfg(test)]
    Mem(u64),
}

impl Handle {
    /// The descriptor of a file of the real disk.
    fn file(&self) -> io::Result<&std::fs::File> {
        match &self.0 {
            Open::File(f) => Ok(f),
            #[cfg(test)]
            Open::Mem(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }
}

/// The writes of a commit (and of a cache restore, and of a state file's rewrite), one
/// system call each on the real disk. Files are created with mode 0666 under the process
/// umask (the caller sets it, through [`umask::UmaskGate`]).
pub trait Disk: Fs {
    /// The same disk, read through [`Fs`].
    fn as_fs(&self) -> &dyn Fs;
    /// Creates a file that does not exist yet (`O_CREAT | O_EXCL`).
    fn create_new(&self, path: &Path) -> io::Result<Handle>;
    /// Opens a file for writing, created or truncated.
    fn create(&self, path: &Path) -> io::Result<Handle>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Writes all of `bytes` at `offset`.
    fn write_at(&self, file: &Handle, bytes: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, file: &Handle, len: u64) -> io::Result<()>;
    /// Appends everything `from` holds, from its start (a capture: see
    /// [`crate::store::durable::capture`]). On the disk, `copy_file_range`: the bytes pass
    /// through the kernel only.
    fn copy_from(&self, file: &Handle, from: &std::fs::File) -> io::Result<()>;
    /// Makes the file executable wherever it is readable (`chmod +x`, as far as `r` goes).
    fn make_executable(&self, file: &Handle) -> io::Result<()>;
    /// `fsync` of an open file.
    fn sync(&self, file: &Handle) -> io::Result<()>;
    /// Whether the open file still has a name (its directory may have been removed since).
    fn linked(&self, file: &Handle) -> io::Result<bool>;
    /// `fsync` of the file or directory at `path` (of a directory: its entries).
    fn sync_path(&self, path: &Path) -> io::Result<()>;
    /// `rename(2)`: atomically replaces a file or a link at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`); `Unsupported` where the
    /// filesystem cannot.
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Sets the times of `path` (following a link) to now.
    fn set_times_now(&self, path: &Path) -> io::Result<()>;
}

fn open(options: &mut std::fs::OpenOptions, path: &Path) -> io::Result<Handle> {
    use std::os::unix::fs::OpenOptionsExt;
    options
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(|f| Handle(Open::File(f)))
}

impl Disk for DiskFs {
    fn as_fs(&self) -> &dyn Fs {
        self
    }

    fn create_new(&self, path: &Path) -> io::Result<Handle> {
        open(std::fs::OpenOptions::new().create_new(true), path)
    }

    fn create(&self, path: &Path) -> io::Result<Handle> {
        open(
            std::fs::OpenOptions::new().create(true).truncate(true),
            path,
        )
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn write_at(&self, file: &Handle, bytes: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(file.file()?, bytes, offset)
    }

    fn set_len(&self, file: &Handle, len: u64) -> io::Result<()> {
        file.file()?.set_len(len)
    }

    fn copy_from(&self, file: &Handle, from: &std::fs::File) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut src = from;
        src.seek(SeekFrom::Start(0))?;
        io::copy(&mut src, &mut file.file()?).map(drop)
    }

    fn make_executable(&self, file: &Handle) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let f = file.file()?;
        let mode = f.metadata()?.permissions().mode();
        f.set_permissions(std::fs::Permissions::from_mode(
            mode | ((mode & 0o444) >> 2),
        ))
    }

    fn sync(&self, file: &Handle) -> io::Result<()> {
        file.file()?.sync_all()
    }

    fn linked(&self, file: &Handle) -> io::Result<bool> {
        Ok(file.file()?.metadata()?.nlink() > 0)
    }

    fn sync_path(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(io::Error::from)
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn exchange(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn set_times_now(&self, path: &Path) -> io::Result<()> {
        use nix::sys::{stat, time::TimeSpec};
        stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &TimeSpec::UTIME_NOW,
            &TimeSpec::UTIME_NOW,
            stat::UtimensatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)
    }
}

/// What a target at `path` of `fs` holds: a link's text ([`Fs::hash_link`]), or a file's
/// content.
pub fn hash_entry(fs: &dyn Fs, path: &Path) -> io::Result<Hash> {
    match fs.lstat(path)? {
        Some(m) if m.kind == Kind::Link => fs.hash_link(path),
        _ => fs.hash(path),
    }
}

/// BLAKE3 of the text of the symbolic link at `path`: a link target's content, never followed
/// (it may point nowhere, or at something that is not ours).
pub fn link_hash(path: &Path) -> io::Result<Hash> {
    use std::os::unix::ffi::OsStrExt;
    let text = std::fs::read_link(path)?;
    Ok(*blake3::hash(text.as_os_str().as_bytes()).as_bytes())
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
