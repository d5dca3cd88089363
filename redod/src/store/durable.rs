//! Atomic, durable writes: temp file in the same directory, fsync, rename, fsync of the
//! directory (the fsyncs skipped with `REDO_NO_SYNC=1`). Whatever is killed when, a reader
//! sees either the old file or the new one, never a part of it. Every write goes through a
//! [`Disk`] (the real one, or the unit tests' in-memory tree, which fails or forgets on
//! demand: that is how the order here is tested).
//!
//! A target and its state file cannot be renamed together. The commit therefore writes the
//! new state to the state file's temporary *before* it touches the target ([`RecWriter`]): a
//! state directory that cannot be written fails the build while the old target stands, and a
//! crash between the target's rename and the state file's leaves that temporary behind, the
//! *pending record* that proves the new target is redo's own work ([`interrupted_commit`],
//! [`settle_pending`]). After the rename the temporary is rewritten in place with the
//! target's final stat (a rename changes its ctime) and renamed over the state file.

use crate::fs::umask::UmaskGate;
use crate::fs::{Disk, Handle, Hash, Kind, Stamp};
use crate::store::Error;
use crate::store::layout::rec_temp_path;
use crate::store::recfile::{self, Rec};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Creates a new file (never an existing one), mode 0666 under the process umask, on the real
/// disk: for files outside a project's tree (the timings report).
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

pub fn fsync_dir(disk: &dyn Disk, dir: &Path) -> Result<(), Error> {
    disk.sync_path(dir).map_err(Error::io("fsync", dir))
}

/// The stat of the path itself: a target that is a symbolic link is recorded as the link.
pub fn stamp_of(disk: &dyn Disk, p: &Path) -> Result<Stamp, Error> {
    match disk.lstat(p) {
        Ok(Some(m)) => Ok(m.stamp),
        Ok(None) => Err(Error::io("stat", p)(io::Error::from(
            io::ErrorKind::NotFound,
        ))),
        Err(e) => Err(Error::io("stat", p)(e)),
    }
}

/// A file to capture a `.do`'s stdout in, outside the target's directory: the `.do` may remove
/// that directory and make it again (`rm -rf out; mkdir out`), and a file created there before
/// the run would be gone with it. A memfd has no name at all; where there is none (an old
/// kernel, a seccomp filter), an unnamed `O_TMPFILE` file in `spill_dir` (the daemon's runtime
/// directory). Either way a crash leaves nothing behind to sweep; the capture lives in the
/// page cache (swappable, not the daemon's heap) until [`copy_capture`] writes it out.
pub fn capture(spill_dir: &Path) -> io::Result<File> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    match memfd_create(c"redo-stdout", MFdFlags::MFD_CLOEXEC) {
        Ok(fd) => Ok(File::from(fd)),
        Err(e) => {
            tracing::debug!("memfd_create: {e}; capturing in {}", spill_dir.display());
            unnamed_in(spill_dir)
        }
    }
}

/// A file without a name in `dir` (`O_TMPFILE`): gone with its last descriptor.
fn unnamed_in(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)
}

/// Writes all of `capture` (from its start: the `.do` moved the shared offset) to the new file
/// `dst` (created with `umask`, exclusively: it is a fresh temp name), made executable when
/// `executable`. A failed copy removes `dst`.
pub fn copy_capture(
    disk: &dyn Disk,
    capture: &File,
    dst: &Path,
    executable: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<(), Error> {
    let out = gate
        .with(umask, || disk.create_new(dst))
        .map_err(Error::io("create", dst))?;
    let copied = disk
        .copy_from(&out, capture)
        .and_then(|()| match executable {
            true => disk.make_executable(&out),
            false => Ok(()),
        });
    if let Err(e) = copied {
        let _ = disk.remove_file(dst);
        return Err(Error::io("write", dst)(e));
    }
    Ok(())
}

/// BLAKE3 of all of `capture`, from its start.
pub fn hash_capture(capture: &File) -> io::Result<Hash> {
    use std::io::{Seek, SeekFrom};
    let mut src = capture;
    src.seek(SeekFrom::Start(0))?;
    crate::fs::hash_reader(src)
}

/// Removes a file, a symbolic link or a whole directory tree (never following a link).
pub fn remove_entry(disk: &dyn Disk, p: &Path) {
    let _ = match disk.lstat(p) {
        Ok(Some(m)) if m.kind == Kind::Dir => disk.remove_dir_all(p),
        Ok(Some(_)) => disk.remove_file(p),
        _ => Ok(()),
    };
}

/// Puts `new` (a temporary beside `target`) in `target`'s place. `rename(2)` replaces a file
/// or a link atomically, but cannot put a directory over a file or over a non-empty directory,
/// nor a file over a directory: then the two are swapped atomically and the old one, now under
/// the temporary's name (listed in the job journal, so a crash sweep removes it too), is
/// removed. A filesystem that cannot swap gets the old one removed first: a moment without a
/// target, never a mixture of the two.
pub fn replace(disk: &dyn Disk, new: &Path, target: &Path) -> Result<(), Error> {
    let is_dir = |p: &Path| disk.lstat(p).map(|m| m.map(|m| m.kind == Kind::Dir));
    let target_dir = is_dir(target).map_err(Error::io("stat", target))?;
    let new_dir = match is_dir(new) {
        Ok(Some(d)) => d,
        Ok(None) => return Err(Error::io("stat", new)(io::ErrorKind::NotFound.into())),
        Err(e) => return Err(Error::io("stat", new)(e)),
    };
    replace_known(disk, new, new_dir, target, target_dir)
}

/// [`replace`], when the caller has just stat'ed both: whether `new` is a directory, and
/// whether `target` is one (`None`: there is no target).
pub fn replace_known(
    disk: &dyn Disk,
    new: &Path,
    new_dir: bool,
    target: &Path,
    target_dir: Option<bool>,
) -> Result<(), Error> {
    let renamed = |r: io::Result<()>| {
        r.map_err(|source| Error::Rename {
            from: new.to_path_buf(),
            to: target.to_path_buf(),
            source,
        })
    };
    if target_dir.is_none() || (!new_dir && target_dir == Some(false)) {
        return renamed(disk.rename(new, target));
    }
    match disk.exchange(new, target) {
        Ok(()) => {
            remove_entry(disk, new);
            Ok(())
        }
        Err(e)
            if e.kind() == io::ErrorKind::Unsupported
                || matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) =>
        {
            remove_entry(disk, target);
            renamed(disk.rename(new, target))
        }
        Err(e) => renamed(Err(e)),
    }
}

/// fsyncs every file and directory under `dir` (a directory target), then `dir` itself;
/// links are not followed.
pub fn sync_tree(disk: &dyn Disk, dir: &Path) -> Result<(), Error> {
    for (name, kind) in disk.list(dir).map_err(Error::io("read", dir))? {
        let p = dir.join(name);
        match kind {
            Kind::Dir => sync_tree(disk, &p)?,
            Kind::File => disk.sync_path(&p).map_err(Error::io("fsync", &p))?,
            Kind::Link | Kind::Other => {}
        }
    }
    fsync_dir(disk, dir)
}

/// A state file being replaced: the new state sits in its temporary ([`rec_temp_path`]),
/// durable when `sync`, until [`RecWriter::finish`] renames it over the state file.
pub struct RecWriter<'d> {
    disk: &'d dyn Disk,
    file: Handle,
    tmp: PathBuf,
    rec_path: PathBuf,
    sync: bool,
    /// What the temporary holds now (it is opened truncated): a shorter rewrite truncates.
    len: std::cell::Cell<u64>,
}

/// A state file's temporary made ahead of its commit: while the `.do` runs, so that creating
/// a file (a new inode, slow on some filesystems: ext4 without a journal scans the inodes it
/// freed recently at every creation) is off the path from the `.do`'s exit to its
/// dependants' start. Empty until the commit writes the pending record into it; removed when
/// dropped unless a commit took it. Left by a crash, it is a pending record that proves
/// nothing, which the sweep removes ([`settle_pending`]).
pub struct RecTemp {
    disk: Arc<dyn Disk>,
    file: Option<Handle>,
    tmp: PathBuf,
}

impl RecTemp {
    /// Creates (or truncates) the temporary of `rec_path`, with `umask`.
    pub fn create(
        disk: &Arc<dyn Disk>,
        rec_path: &Path,
        gate: &UmaskGate,
        umask: u32,
    ) -> Result<RecTemp, Error> {
        let tmp = rec_temp_path(rec_path);
        let file = open_temp(&**disk, &tmp, gate, umask)?;
        Ok(RecTemp {
            disk: disk.clone(),
            file: Some(file),
            tmp,
        })
    }

    /// The file, while it is still the temporary: the `.do` may have removed `.redo` (its
    /// directory, even) meanwhile, and a record written to a file without a name would not
    /// be the pending record a crash must leave.
    fn take(&mut self) -> Option<Handle> {
        let file = self.file.take()?;
        self.disk.linked(&file).ok().filter(|l| *l).map(|_| file)
    }
}

impl Drop for RecTemp {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = self.disk.remove_file(&self.tmp);
        }
    }
}

/// Opens the state file's temporary `tmp` truncated, made with `umask`. The `.do` may have
/// removed the target's directory, `.redo` in it with it, and made it again: the state goes
/// where the target is. Made only when missing, which saves a `mkdir` and a `stat` on every
/// commit.
fn open_temp(disk: &dyn Disk, tmp: &Path, gate: &UmaskGate, umask: u32) -> Result<Handle, Error> {
    gate.with(umask, || match disk.create(tmp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            disk.create_dir_all(tmp.parent().unwrap_or(Path::new("/")))?;
            disk.create(tmp)
        }
        other => other,
    })
    .map_err(Error::io("create", tmp))
}

impl<'d> RecWriter<'d> {
    /// Writes `rec` to the temporary of `rec_path` (created with `umask`).
    pub fn begin(
        disk: &'d dyn Disk,
        rec_path: &Path,
        rec: &Rec,
        sync: bool,
        gate: &UmaskGate,
        umask: u32,
    ) -> Result<RecWriter<'d>, Error> {
        Self::begin_in(disk, None, rec_path, rec, sync, gate, umask)
    }

    /// [`RecWriter::begin`] in the temporary made `ahead` when there is one and it is still
    /// there (else in a new one).
    pub fn begin_in(
        disk: &'d dyn Disk,
        ahead: Option<&mut RecTemp>,
        rec_path: &Path,
        rec: &Rec,
        sync: bool,
        gate: &UmaskGate,
        umask: u32,
    ) -> Result<RecWriter<'d>, Error> {
        let tmp = rec_temp_path(rec_path);
        let file = match ahead.and_then(RecTemp::take) {
            Some(f) => f,
            None => open_temp(disk, &tmp, gate, umask)?,
        };
        let w = RecWriter {
            disk,
            file,
            tmp,
            rec_path: rec_path.to_path_buf(),
            sync,
            len: std::cell::Cell::new(0),
        };
        match w.put(&recfile::encode(rec)) {
            Ok(()) => Ok(w),
            Err(e) => {
                w.abandon();
                Err(e)
            }
        }
    }

    /// Makes the temporary hold `bytes`, in place (the final state differs from the pending
    /// one by a few digits: no new block, so no "disk full" half way).
    fn put(&self, bytes: &[u8]) -> Result<(), Error> {
        let tmp = &self.tmp;
        let len = bytes.len() as u64;
        self.disk
            .write_at(&self.file, bytes, 0)
            .and_then(|()| match len < self.len.get() {
                true => self.disk.set_len(&self.file, len),
                false => Ok(()),
            })
            .map_err(Error::io("write", tmp))?;
        self.len.set(len);
        if self.sync {
            self.disk
                .sync(&self.file)
                .map_err(Error::io("fsync", tmp))?;
            fsync_dir(self.disk, tmp.parent().unwrap_or(Path::new("/")))?;
        }
        Ok(())
    }

    /// Replaces the state file by `rec` (`None`: what [`RecWriter::begin`] wrote); the new
    /// file's stat.
    pub fn finish(self, rec: Option<&Rec>) -> Result<Stamp, Error> {
        if let Some(rec) = rec {
            self.put(&recfile::encode(rec))?;
        }
        if let Err(e) = self.disk.rename(&self.tmp, &self.rec_path) {
            return Err(Error::Rename {
                from: self.tmp.clone(),
                to: self.rec_path.clone(),
                source: e,
            });
        }
        if self.sync {
            fsync_dir(self.disk, self.rec_path.parent().unwrap_or(Path::new("/")))?;
        }
        stamp_of(self.disk, &self.rec_path)
    }

    /// [`RecWriter::finish`] for a state that proves nothing about a file (no output, a
    /// directory, a state rewritten with its target as it is): failed, it leaves no temporary.
    pub fn finish_or_abandon(self) -> Result<Stamp, Error> {
        let (disk, tmp) = (self.disk, self.tmp.clone());
        let done = self.finish(None);
        if done.is_err() {
            let _ = disk.remove_file(&tmp);
        }
        done
    }

    /// Nothing was installed: the temporary goes.
    pub fn abandon(self) {
        let _ = self.disk.remove_file(&self.tmp);
    }
}

/// Writes `rec` to `rec_path` atomically (through [`rec_temp_path`], created with `umask`), and
/// returns the stat of the new file.
pub fn write_rec(
    disk: &dyn Disk,
    rec_path: &Path,
    rec: &Rec,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<Stamp, Error> {
    RecWriter::begin(disk, rec_path, rec, sync, gate, umask)?.finish_or_abandon()
}

/// The hash a commit interrupted by a crash was installing at `target`, if `target` holds
/// exactly that: the daemon died after the target's rename and before its state file's. The
/// target is then ours, not an external edit.
pub fn interrupted_commit(
    disk: &dyn Disk,
    rec_path: &Path,
    name: &[u8],
    target: &Path,
) -> Option<Hash> {
    let pending = disk.read(&rec_temp_path(rec_path)).ok()??;
    installed(disk, &pending, name, target)
}

/// The target's own hash in the encoded state `pending`, if `target` holds that content.
fn installed(disk: &dyn Disk, pending: &[u8], name: &[u8], target: &Path) -> Option<Hash> {
    let rec = recfile::parse(pending).ok()?;
    let (_, hash) = rec.own(name)?;
    let hash = *hash?;
    (crate::fs::hash_entry(disk.as_fs(), target).ok()? == hash).then_some(hash)
}

/// Settles a commit a dead daemon left half done, from the state it was installing
/// (`pending`, encoded): finished (the state file written with the target as it is now) when
/// the target holds what `pending` says; otherwise the old state stays. Returns whether it
/// finished one.
pub fn settle(
    disk: &dyn Disk,
    rec_path: &Path,
    target: &Path,
    pending: &[u8],
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<bool, Error> {
    let Some(name) = target.file_name().map(OsStr::as_bytes) else {
        return Ok(false);
    };
    let (Some(_), Ok(mut rec)) = (
        installed(disk, pending, name, target),
        recfile::parse(pending),
    ) else {
        return Ok(false);
    };
    let now = stamp_of(disk, target)?;
    for d in &mut rec.deps {
        if let recfile::Dep::Ifchange {
            target: t, stamp, ..
        } = d
        {
            if t.as_slice() == name {
                *stamp = now;
            }
        }
    }
    write_rec(disk, rec_path, &rec, sync, gate, umask)?;
    Ok(true)
}

/// [`settle`] from the pending record a dead daemon left next to `rec_path` (the state file's
/// temporary), which is removed either way. Returns whether it finished a commit.
pub fn settle_pending(
    disk: &dyn Disk,
    rec_path: &Path,
    target: &Path,
    sync: bool,
    gate: &UmaskGate,
    umask: u32,
) -> Result<bool, Error> {
    let pending = rec_temp_path(rec_path);
    let Ok(Some(bytes)) = disk.read(&pending) else {
        return Ok(false);
    };
    let finished = settle(disk, rec_path, target, &bytes, sync, gate, umask);
    let _ = disk.remove_file(&pending);
    finished
}

/// The state of target `t` built as `build`, its own record saying it holds `content`.
#[cfg(test)]
pub(crate) fn test_rec(build: &str, content: &[u8]) -> Rec {
    Rec {
        build: build.into(),
        deps: vec![crate::store::recfile::Dep::Ifchange {
            target: b"t".to_vec(),
            stamp: crate::fs::Stamp::default(),
            hash: Some(*blake3::hash(content).as_bytes()),
        }],
    }
}

#[cfg(test)]
mod tests;
