//! An in-memory tree for unit tests: the [`Fs`] the engine reads and the [`Disk`] a commit
//! writes, with what a crash would leave.
//!
//! Every path that exists maps to an inode; directories above a file exist without an entry
//! of their own (as `mkdir -p` would have made them). The setup helpers ([`MemFs::write`],
//! [`MemFs::mkdir`], ...) change the tree durably, as a checkout would have. The [`Disk`]
//! operations change it as the kernel does: a file's content survives a crash only once the
//! file was synced, a name (created, renamed, removed) only once its directory was synced.
//! [`MemFs::crash`] keeps just that. [`MemFs::fail`] makes one operation fail (and with
//! [`Fault::crash`], every one after it, as if the daemon had died there), so a test can stop
//! a commit at each of its steps; [`MemFs::log`] lists the operations done, to count them.
use super::*;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// The kinds of [`Disk`] operation, for [`MemFs::fail`] and [`MemFs::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Mkdir,
    Write,
    Copy,
    Chmod,
    Sync,
    SyncPath,
    Rename,
    Exchange,
    Remove,
    Touch,
}

/// Which operation fails, and how.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    /// The kind that fails (`None`: any).
    pub op: Option<Op>,
    /// How many of that kind succeed first.
    pub after: usize,
    /// The daemon dies there: that operation and every later one do nothing and fail, until
    /// [`MemFs::crash`].
    pub crash: bool,
}

#[derive(Clone)]
struct Inode {
    data: Vec<u8>,
    /// What a crash leaves of `data`: what it was at the last sync.
    synced: Vec<u8>,
    kind: Kind,
    exec: bool,
    ctime: i64,
    mtime: i64,
}

#[derive(Default)]
struct Tree {
    /// Every path that exists now, with its inode.
    names: BTreeMap<PathBuf, u64>,
    /// What a crash would leave of `names`: each entry as its directory was last synced.
    durable: BTreeMap<PathBuf, u64>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    clock: i64,
    fault: Option<Fault>,
    /// How many operations of each kind were done (for [`Fault::after`]).
    counts: HashMap<Op, usize>,
    dead: bool,
    log: Vec<(Op, PathBuf)>,
}

#[derive(Default)]
pub struct MemFs {
    tree: Mutex<Tree>,
    /// Plays the file watcher: every change is reported to these verdicts, and the tree
    /// then vouches for what it answers.
    watcher: Mutex<Option<std::sync::Arc<dyn Listener>>>,
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// `p` itself and everything below it, among `names`.
fn subtree<'a>(
    names: &'a BTreeMap<PathBuf, u64>,
    p: &'a Path,
) -> impl Iterator<Item = (&'a PathBuf, &'a u64)> + 'a {
    names
        .range::<Path, _>((std::ops::Bound::Included(p), std::ops::Bound::Unbounded))
        .take_while(move |(q, _)| q.starts_with(p))
}

impl Tree {
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    fn inode(&mut self, kind: Kind, data: Vec<u8>) -> u64 {
        self.next_ino += 1;
        let t = self.tick();
        self.inodes.insert(
            self.next_ino,
            Inode {
                synced: data.clone(),
                data,
                kind,
                exec: false,
                ctime: t,
                mtime: t,
            },
        );
        self.next_ino
    }

    fn meta(&self, ino: u64) -> Option<Meta> {
        let i = self.inodes.get(&ino)?;
        let stamp = match i.kind {
            // A directory's stat is not what anything compares.
            Kind::Dir => Stamp::default(),
            _ => Stamp {
                size: i.data.len() as u64,
                ino,
                ctime_sec: i.ctime,
                ctime_nsec: 0,
                mtime_sec: i.mtime,
                mtime_nsec: 0,
            },
        };
        Some(Meta {
            stamp,
            kind: i.kind,
            link: false,
        })
    }

    /// What is at `p`, a directory implied by what is below it included.
    fn kind(&self, p: &Path) -> Option<Kind> {
        match self.names.get(p) {
            Some(ino) => self.inodes.get(ino).map(|i| i.kind),
            None => self.is_dir(p).then_some(Kind::Dir),
        }
    }

    /// A directory, made or implied by what is below it.
    fn is_dir(&self, p: &Path) -> bool {
        let made = || {
            self.names
                .get(p)
                .and_then(|ino| self.inodes.get(ino))
                .is_some_and(|i| i.kind == Kind::Dir)
        };
        p == Path::new("/") || made() || subtree(&self.names, p).any(|(q, _)| q != p)
    }

    fn parent_exists(&self, p: &Path) -> io::Result<()> {
        match p.parent() {
            Some(d) if self.is_dir(d) => Ok(()),
            _ => Err(not_found()),
        }
    }

    /// Counts an operation, and fails it as the fault says.
    fn begin(&mut self, op: Op, path: &Path) -> io::Result<()> {
        if self.dead {
            return Err(os(libc::EIO));
        }
        let n = self.counts.entry(op).or_default();
        let nth = *n;
        *n += 1;
        if let Some(f) = self.fault {
            let counted = match f.op {
                Some(kind) => kind == op && nth == f.after,
                None => self.log.len() == f.after,
            };
            if counted {
                self.dead = f.crash;
                self.fault = None;
                return Err(os(libc::EIO));
            }
        }
        self.log.push((op, path.to_path_buf()));
        Ok(())
    }

    fn file_mut(&mut self, h: &Handle) -> io::Result<&mut Inode> {
        match &h.0 {
            Open::Mem(ino) => self.inodes.get_mut(ino).ok_or_else(not_found),
            Open::File(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    fn new_file(&mut self, path: &Path) -> io::Result<Handle> {
        self.parent_exists(path)?;
        let ino = self.inode(Kind::File, Vec::new());
        if let Some(i) = self.inodes.get_mut(&ino) {
            // Never synced: a crash leaves it empty.
            i.synced.clear();
        }
        self.names.insert(path.to_path_buf(), ino);
        Ok(Handle(Open::Mem(ino)))
    }

    /// Moves `from` and everything below it to `to`.
    fn move_tree(&mut self, from: &Path, to: &Path) {
        let moved: Vec<(PathBuf, u64)> = subtree(&self.names, from)
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            self.names.remove(&p);
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let dest = match rest.as_os_str().is_empty() {
                true => to.to_path_buf(),
                false => to.join(rest),
            };
            self.names.insert(dest, ino);
        }
    }

    fn remove_tree(&mut self, p: &Path) {
        let gone: Vec<PathBuf> = subtree(&self.names, p).map(|(q, _)| q.clone()).collect();
        for q in gone {
            self.names.remove(&q);
        }
    }

    fn changed_inode(&mut self, p: &Path) {
        let t = self.tick();
        if let Some(i) = self.names.get(p).and_then(|ino| self.inodes.get_mut(ino)) {
            i.ctime = t;
        }
    }
}

impl MemFs {
    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap()
    }

    /// Reports every later change to `verdicts`, as the file watcher does.
    pub fn report_to(&self, verdicts: std::sync::Arc<dyn Listener>) {
        *self.watcher.lock().unwrap() = Some(verdicts);
    }

    fn changed(&self, path: &Path) {
        if let Some(v) = &*self.watcher.lock().unwrap() {
            v.changed(path);
        }
    }

    /// Creates or replaces a file (new inode, new times), durably.
    pub fn write(&self, path: &str, content: &str) {
        self.changed(Path::new(path));
        let mut t = self.tree();
        let ino = t.inode(Kind::File, content.as_bytes().to_vec());
        t.names.insert(PathBuf::from(path), ino);
        t.durable.insert(PathBuf::from(path), ino);
    }

    /// A directory, durably.
    pub fn mkdir(&self, path: &str) {
        self.changed(Path::new(path));
        let mut t = self.tree();
        let ino = t.inode(Kind::Dir, Vec::new());
        t.names.insert(PathBuf::from(path), ino);
        t.durable.insert(PathBuf::from(path), ino);
    }

    /// `touch`: same content and inode, new ctime/mtime.
    pub fn touch(&self, path: &str) {
        self.changed(Path::new(path));
        let mut t = self.tree();
        let now = t.tick();
        let ino = t.names[Path::new(path)];
        let i = t.inodes.get_mut(&ino).unwrap();
        i.ctime = now;
        i.mtime = now;
    }

    /// Rewrites content in place, durably: same inode, new size/times.
    pub fn rewrite(&self, path: &str, content: &str) {
        self.changed(Path::new(path));
        let mut t = self.tree();
        let now = t.tick();
        let ino = t.names[Path::new(path)];
        let i = t.inodes.get_mut(&ino).unwrap();
        i.data = content.as_bytes().to_vec();
        i.synced = i.data.clone();
        i.ctime = now;
        i.mtime = now;
    }

    /// Removes a file (or a directory and what is below it), durably.
    pub fn remove(&self, path: &str) {
        self.changed(Path::new(path));
        let mut t = self.tree();
        t.remove_tree(Path::new(path));
        let gone: Vec<PathBuf> = subtree(&t.durable, Path::new(path))
            .map(|(q, _)| q.clone())
            .collect();
        for q in gone {
            t.durable.remove(&q);
        }
    }

    pub fn meta(&self, path: &str) -> Meta {
        let t = self.tree();
        t.meta(t.names[Path::new(path)]).unwrap()
    }

    /// Every path that exists (directories made with [`MemFs::mkdir`] or a [`Disk`]
    /// operation included), sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.tree().names.keys().cloned().collect()
    }

    /// Counts the operations afresh from now on ([`MemFs::log`], [`Fault::after`]).
    pub fn count_from_here(&self) {
        let mut t = self.tree();
        t.counts.clear();
        t.log.clear();
    }

    /// Makes operations fail from now on, as `fault` says (counting from now).
    pub fn fail(&self, fault: Fault) {
        self.count_from_here();
        self.tree().fault = Some(fault);
    }

    /// The [`Disk`] operations done since the last [`MemFs::fail`] (or ever), in order.
    pub fn log(&self) -> Vec<(Op, PathBuf)> {
        self.tree().log.clone()
    }

    /// A crash, then a reboot: what was not synced is lost (names whose directory was not
    /// synced since they changed, content not synced since it was written), and the tree
    /// works again.
    pub fn crash(&self) {
        let mut t = self.tree();
        t.names = t.durable.clone();
        for i in t.inodes.values_mut() {
            i.data = i.synced.clone();
        }
        t.dead = false;
        t.fault = None;
    }
}

impl Fs for MemFs {
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>> {
        let t = self.tree();
        Ok(t.names.get(path).and_then(|ino| t.meta(*ino)))
    }
    fn vouches_stat(&self, path: &Path, seen: Option<&Meta>) -> bool {
        self.watcher.lock().unwrap().is_some() && self.stat(path).unwrap().as_ref() == seen
    }
    fn vouches_name(&self, dir: &Path, name: &std::ffi::OsStr, present: bool) -> bool {
        self.watcher.lock().unwrap().is_some()
            && listed(&self.build_names(dir).unwrap(), name) == present
    }
    fn hash(&self, path: &Path) -> io::Result<Hash> {
        let t = self.tree();
        let ino = t.names.get(path).ok_or_else(not_found)?;
        let i = t.inodes.get(ino).ok_or_else(not_found)?;
        Ok(*blake3::hash(&i.data).as_bytes())
    }
    fn hash_link(&self, _path: &Path) -> io::Result<Hash> {
        // The tree has no links.
        Err(os(libc::EINVAL))
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let t = self.tree();
        Ok(t.names
            .get(path)
            .and_then(|ino| t.inodes.get(ino))
            .map(|i| i.data.clone()))
    }
    fn executable(&self, path: &Path) -> bool {
        let t = self.tree();
        t.names
            .get(path)
            .and_then(|ino| t.inodes.get(ino))
            .is_some_and(|i| i.exec)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let t = self.tree();
        // Directories exist implicitly above every file.
        let mut out: BTreeMap<OsString, Kind> = Default::default();
        for (p, ino) in subtree(&t.names, dir) {
            let Ok(rest) = p.strip_prefix(dir) else {
                continue;
            };
            let mut comps = rest.components();
            let Some(first) = comps.next() else { continue };
            let kind = match comps.next() {
                Some(_) => Kind::Dir,
                None => t.inodes.get(ino).map_or(Kind::Other, |i| i.kind),
            };
            out.insert(first.as_os_str().to_os_string(), kind);
        }
        Ok(out.into_iter().collect())
    }
}

impl Disk for MemFs {
    fn as_fs(&self) -> &dyn Fs {
        self
    }

    fn create_new(&self, path: &Path) -> io::Result<Handle> {
        let mut t = self.tree();
        t.begin(Op::Create, path)?;
        if t.names.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        t.new_file(path)
    }

    fn create(&self, path: &Path) -> io::Result<Handle> {
        let mut t = self.tree();
        t.begin(Op::Create, path)?;
        match t.names.get(path).copied() {
            Some(ino) if t.kind(path) == Some(Kind::File) => {
                let now = t.tick();
                let i = t.inodes.get_mut(&ino).ok_or_else(not_found)?;
                i.data.clear();
                i.mtime = now;
                Ok(Handle(Open::Mem(ino)))
            }
            Some(_) => Err(os(libc::EISDIR)),
            None => t.new_file(path),
        }
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::Mkdir, dir)?;
        for d in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !t.is_dir(d) {
                if t.names.contains_key(d) {
                    return Err(os(libc::ENOTDIR));
                }
                let ino = t.inode(Kind::Dir, Vec::new());
                t.names.insert(d.to_path_buf(), ino);
            }
        }
        Ok(())
    }

    fn write_at(&self, file: &Handle, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::Write, Path::new(""))?;
        let now = t.tick();
        let i = t.file_mut(file)?;
        let at = usize::try_from(offset).map_err(|_| os(libc::EFBIG))?;
        if i.data.len() < at + bytes.len() {
            i.data.resize(at + bytes.len(), 0);
        }
        i.data[at..at + bytes.len()].copy_from_slice(bytes);
        i.mtime = now;
        i.ctime = now;
        Ok(())
    }

    fn set_len(&self, file: &Handle, len: u64) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::Write, Path::new(""))?;
        let i = t.file_mut(file)?;
        i.data
            .resize(usize::try_from(len).map_err(|_| os(libc::EFBIG))?, 0);
        Ok(())
    }

    fn copy_from(&self, file: &Handle, from: &std::fs::File) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut t = self.tree();
        t.begin(Op::Copy, Path::new(""))?;
        let mut src = from;
        src.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        src.read_to_end(&mut bytes)?;
        t.file_mut(file)?.data.extend_from_slice(&bytes);
        Ok(())
    }

    fn make_executable(&self, file: &Handle) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::Chmod, Path::new(""))?;
        t.file_mut(file)?.exec = true;
        Ok(())
    }

    fn sync(&self, file: &Handle) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::Sync, Path::new(""))?;
        let i = t.file_mut(file)?;
        i.synced = i.data.clone();
        Ok(())
    }

    fn linked(&self, file: &Handle) -> io::Result<bool> {
        let t = self.tree();
        match &file.0 {
            Open::Mem(ino) => Ok(t.names.values().any(|i| i == ino)),
            Open::File(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    /// A file: its content. A directory: its entries, as they are now. (A directory renamed
    /// keeps, after a crash, only the entries synced under its new name: the tree has no
    /// directory inodes. Pessimistic, and only directory targets move directories.)
    fn sync_path(&self, path: &Path) -> io::Result<()> {
        let mut t = self.tree();
        t.begin(Op::SyncPath, path)?;
        if let Some(Kind::File) = t.kind(path) {
            let ino = t.names[path];
            let i = t.inodes.get_mut(&ino).ok_or_else(not_found)?;
            i.synced = i.data.clone();
            return Ok(());
        }
        if !t.is_dir(path) {
            return Err(not_found());
        }
        let child = |q: &Path| q.parent() == Some(path);
        let was: Vec<(PathBuf, u64)> = subtree(&t.durable, path)
            .filter(|(q, _)| child(q))
            .map(|(q, i)| (q.clone(), *i))
            .collect();
        let now: Vec<(PathBuf, u64)> = subtree(&t.names, path)
            .filter(|(q, _)| child(q))
            .map(|(q, i)| (q.clone(), *i))
            .collect();
        for (q, ino) in &was {
            if t.names.get(q) != Some(ino) {
                let gone: Vec<PathBuf> = subtree(&t.durable, q).map(|(r, _)| r.clone()).collect();
                for r in gone {
                    t.durable.remove(&r);
                }
            }
        }
        t.durable.extend(now);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.changed(from);
        self.changed(to);
        let mut t = self.tree();
        t.begin(Op::Rename, from)?;
        let Some(kind) = t.kind(from) else {
            return Err(not_found());
        };
        t.parent_exists(to)?;
        match (kind, t.kind(to)) {
            (Kind::Dir, Some(Kind::Dir)) if subtree(&t.names, to).any(|(q, _)| q != to) => {
                return Err(os(libc::ENOTEMPTY));
            }
            (Kind::Dir, Some(k)) if k != Kind::Dir => return Err(os(libc::ENOTDIR)),
            (k, Some(Kind::Dir)) if k != Kind::Dir => return Err(os(libc::EISDIR)),
            _ => {}
        }
        t.remove_tree(to);
        t.move_tree(from, to);
        // A rename changes the ctime of what it moves.
        t.changed_inode(to);
        Ok(())
    }

    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        self.changed(a);
        self.changed(b);
        let mut t = self.tree();
        t.begin(Op::Exchange, a)?;
        if t.kind(a).is_none() || t.kind(b).is_none() {
            return Err(not_found());
        }
        let swap = PathBuf::from("/\0exchange");
        t.move_tree(a, &swap);
        t.move_tree(b, a);
        t.move_tree(&swap, b);
        t.changed_inode(a);
        t.changed_inode(b);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.changed(path);
        let mut t = self.tree();
        t.begin(Op::Remove, path)?;
        match t.kind(path) {
            None => Err(not_found()),
            Some(Kind::Dir) => Err(os(libc::EISDIR)),
            Some(_) => {
                t.names.remove(path);
                Ok(())
            }
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.changed(path);
        let mut t = self.tree();
        t.begin(Op::Remove, path)?;
        if t.kind(path).is_none() {
            return Err(not_found());
        }
        t.remove_tree(path);
        Ok(())
    }

    fn set_times_now(&self, path: &Path) -> io::Result<()> {
        self.changed(path);
        let mut t = self.tree();
        t.begin(Op::Touch, path)?;
        let now = t.tick();
        let ino = *t.names.get(path).ok_or_else(not_found)?;
        let i = t.inodes.get_mut(&ino).ok_or_else(not_found)?;
        i.ctime = now;
        i.mtime = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
