//! The file-change accelerator: inotify watches the directories the daemon stats, so that a
//! stat whose file has not changed since is answered from memory. A no-op build then makes no
//! stat system call at all.
//!
//! Correctness never depends on it:
//!
//! * A cached stat is dropped by any event naming its path (or a directory above it), and is
//!   only cached when no event at all was handled while it was taken ([`Shared::epoch`]): a
//!   change racing the stat can never leave a stale entry behind.
//! * inotify queues an event inside the system call that makes the change, before that call
//!   returns. So before a request is served, [`Watcher::sync`] reads the queue until it is
//!   empty: every change made before the request was sent (by an editor, by the `.do` asking)
//!   has then been handled. No cookie file, no round trip through the filesystem.
//! * Only directories below the project root whose path has no symlink in it are cached, and
//!   only once every directory between them and the root is watched too: renaming or
//!   replacing any of those is an event that drops everything below. The root itself moving
//!   stops the daemon (see `lifecycle`).
//! * Queue overflow or the watcher being turned off clear the cache; a directory that cannot
//!   be watched (watch limit, NFS/FUSE/9p/SMB, where inotify misses remote changes) and
//!   symlinks are simply never cached: plain stats.
//!
//! [`WatchedFs`] is the [`Fs`] a session uses when the watcher is on.

use crate::fastmap::{HashMap, HashSet, PathMap};
use crate::fs::{DiskFs, Fs, Hash, Kind, Meta};
use crate::sync::lock;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// How long the event thread lets events gather when nobody follows them ([`follow`]).
const BATCH: Duration = Duration::from_millis(20);

/// At most this many directories are watched; beyond, plain stats.
const MAX_WATCHED_DIRS: usize = 65_536;

/// A directory's `.do` files and `.redo` ([`crate::fs::is_build_name`]).
type Listing = Vec<(OsString, Kind)>;

/// A cached stat: [`Meta`] in 48 bytes instead of 56 (nanoseconds, always below 10^9, in 32
/// bits; `None`, no file, in the niche of `kind`). The watcher keeps one for each path a build
/// stats, a few per target: at a hundred thousand targets the map of them is the daemon's
/// largest table.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Kept {
    size: u64,
    ino: u64,
    ctime_sec: i64,
    mtime_sec: i64,
    ctime_nsec: u32,
    mtime_nsec: u32,
    kind: Kind,
    link: bool,
}

/// What the watcher knows of a path: [`Fs::stat`]'s answer, packed.
type Cached = Option<Kept>;

/// `m` as the watcher keeps it; `None` when it cannot be kept exactly (nanoseconds out of
/// range, which no stat returns): such an answer is then simply not cached.
fn pack(m: Option<Meta>) -> Option<Cached> {
    let Some(m) = m else {
        return Some(None);
    };
    let s = &m.stamp;
    Some(Some(Kept {
        size: s.size,
        ino: s.ino,
        ctime_sec: s.ctime_sec,
        mtime_sec: s.mtime_sec,
        ctime_nsec: u32::try_from(s.ctime_nsec).ok()?,
        mtime_nsec: u32::try_from(s.mtime_nsec).ok()?,
        kind: m.kind,
        link: m.link,
    }))
}

/// The answer `c` stands for ([`pack`]'s inverse).
fn unpack(c: Cached) -> Option<Meta> {
    c.map(|k| Meta {
        stamp: crate::fs::Stamp {
            size: k.size,
            ino: k.ino,
            ctime_sec: k.ctime_sec,
            ctime_nsec: i64::from(k.ctime_nsec),
            mtime_sec: k.mtime_sec,
            mtime_nsec: i64::from(k.mtime_nsec),
        },
        kind: k.kind,
        link: k.link,
    })
}

/// What is known of a directory.
#[derive(Clone, Copy)]
enum Dir {
    /// Watched; `cacheable` when what is in it may be answered from memory (see the module
    /// docs: below the root, no symlink, every directory up to the root watched).
    Watched {
        wd: WatchDescriptor,
        cacheable: bool,
    },
    /// Cannot be watched (remote filesystem, gone, watch limit): never retried.
    Unwatchable,
}

/// The inotify instance and which directories each watch stands for (one directory can be
/// reached by two paths, e.g. through a bind mount: both are dropped by its events).
struct Backend {
    inotify: Inotify,
    paths: HashMap<WatchDescriptor, Vec<PathBuf>>,
}

/// What the event thread and the daemon share.
struct Shared {
    root: PathBuf,
    /// Held while events are read and handled: they are handled in queue order, once.
    backend: Mutex<Backend>,
    stats: Mutex<PathMap<Cached>>,
    listings: Mutex<HashMap<PathBuf, Arc<Listing>>>,
    dirs: Mutex<HashMap<PathBuf, Dir>>,
    /// Bumped by every event that may invalidate something; a stat is cached only if it did
    /// not move while the stat was taken.
    epoch: AtomicU64,
    /// Off (by request, or never started): every lookup goes to the disk.
    enabled: AtomicBool,
    /// Changed paths, for `redo --watch` rounds.
    changes: broadcast::Sender<Arc<PathBuf>>,
    /// Who drops what it kept from earlier answers when they change (the verdicts).
    listeners: std::sync::RwLock<Vec<Arc<dyn crate::fs::Listener>>>,
    /// Statistics for `--daemon-status` and the tests.
    hits: AtomicUsize,
    misses: AtomicUsize,
    resets: AtomicUsize,
}

/// Events that change what is in a directory (and so its listing, and anything cached below
/// a subdirectory of that name).
const NAMING: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO);

/// Events on the watched directory itself that end what its watch can tell.
const GONE: AddWatchFlags = AddWatchFlags::IN_DELETE_SELF
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_IGNORED)
    .union(AddWatchFlags::IN_UNMOUNT);

/// What is watched: every change of a name, a content or an inode's metadata. Opens and
/// reads change nothing and are not asked for.
const MASK: AddWatchFlags = NAMING
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

impl Shared {
    fn changed(&self, path: &Path) {
        for l in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            l.changed(path);
        }
    }

    fn all_changed(&self) {
        for l in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            l.all_changed();
        }
    }

    /// Forgets everything cached (overflow, turned off).
    fn reset(&self) {
        let mut stats = lock(&self.stats);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        stats.clear();
        lock(&self.listings).clear();
        self.all_changed();
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads and handles every queued event. After it returns, every change made before it
    /// was called has been handled (see the module docs).
    fn drain(&self) {
        let mut backend = lock(&self.backend);
        loop {
            match backend.inotify.read_events() {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    for ev in events {
                        self.on_event(&mut backend, ev);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!("file watcher: {e}; the cache is cleared");
                    self.reset();
                    return;
                }
            }
        }
    }

    fn on_event(&self, backend: &mut Backend, ev: InotifyEvent) {
        if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            tracing::info!("file watcher: event queue overflowed; cache cleared");
            self.reset();
            let _ = self.changes.send(Arc::new(PathBuf::from("/")));
            return;
        }
        let Some(dirs) = backend.paths.get(&ev.wd).cloned() else {
            return; // A watch already dropped.
        };
        for dir in dirs {
            match &ev.name {
                Some(name) => {
                    let p = dir.join(name);
                    if ev.mask.contains(AddWatchFlags::IN_ISDIR) && ev.mask.intersects(NAMING) {
                        // A directory appeared, went or moved: nothing below it holds.
                        self.forget_below(backend, &p);
                    } else {
                        let mut stats = lock(&self.stats);
                        self.epoch.fetch_add(1, Ordering::AcqRel);
                        stats.remove(p.as_os_str());
                        drop(stats);
                        self.changed(&p);
                    }
                    // Other names come and go all the time (temporaries, outputs): they do not
                    // change what is cached of the directory.
                    if ev.mask.intersects(NAMING) && crate::fs::is_build_name(name) {
                        lock(&self.listings).remove(&dir);
                    }
                    let _ = self.changes.send(Arc::new(p));
                }
                None if ev.mask.intersects(GONE) => {
                    self.forget_below(backend, &dir);
                    let _ = self.changes.send(Arc::new(dir));
                }
                // An attribute of the directory itself: its own stat is cached under its
                // parent, whose watch reports it too.
                None => {}
            }
        }
    }

    /// Forgets `top` and everything below it: stats, listings and the watches of directories
    /// (their paths no longer lead to them).
    fn forget_below(&self, backend: &mut Backend, top: &Path) {
        {
            let mut stats = lock(&self.stats);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            stats.retain(|k, _| !Path::new(k).starts_with(top));
        }
        // Listeners (verdicts) index by path hash, not by directory: everything goes.
        self.all_changed();
        lock(&self.listings).retain(|k, _| !k.starts_with(top));
        let gone: Vec<(PathBuf, Dir)> = {
            let mut dirs = lock(&self.dirs);
            let keys: Vec<PathBuf> = dirs
                .keys()
                .filter(|k| k.starts_with(top))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| dirs.remove(&k).map(|d| (k, d)))
                .collect()
        };
        for (path, dir) in gone {
            if let Dir::Watched { wd, .. } = dir {
                if let Some(paths) = backend.paths.get_mut(&wd) {
                    paths.retain(|p| *p != path);
                    if paths.is_empty() {
                        backend.paths.remove(&wd);
                        // Gone already when the directory was deleted: nothing to undo.
                        let _ = backend.inotify.rm_watch(wd);
                    }
                }
            }
        }
    }

    /// Watches `dir` if it can be (once); what is known of it then.
    fn ensure(&self, dir: &Path) -> Dir {
        if let Some(d) = lock(&self.dirs).get(dir) {
            return *d;
        }
        // Below the root, the directories above are watched first (and must be cacheable
        // for this one to be).
        let under_root = dir.starts_with(&self.root);
        let parent_ok = match dir.parent() {
            _ if dir == self.root => true,
            Some(parent) if under_root => {
                matches!(
                    self.ensure(parent),
                    Dir::Watched {
                        cacheable: true,
                        ..
                    }
                )
            }
            _ => false,
        };
        let mut backend = lock(&self.backend);
        if let Some(d) = lock(&self.dirs).get(dir) {
            return *d;
        }
        let state = if lock(&self.dirs).len() >= MAX_WATCHED_DIRS || remote_filesystem(dir) {
            Dir::Unwatchable
        } else {
            match backend.inotify.add_watch(dir, MASK) {
                Ok(wd) => {
                    let canonical = std::fs::canonicalize(dir).is_ok_and(|c| c == dir);
                    backend.paths.entry(wd).or_default().push(dir.to_path_buf());
                    Dir::Watched {
                        wd,
                        cacheable: parent_ok && under_root && canonical,
                    }
                }
                Err(e) => {
                    tracing::debug!("not watching {}: {e}", dir.display());
                    Dir::Unwatchable
                }
            }
        };
        lock(&self.dirs).insert(dir.to_path_buf(), state);
        state
    }

    fn cacheable(&self, dir: &Path) -> bool {
        matches!(
            self.ensure(dir),
            Dir::Watched {
                cacheable: true,
                ..
            }
        )
    }
}

/// Filesystems whose changes can happen elsewhere, unseen by inotify.
fn remote_filesystem(dir: &Path) -> bool {
    use nix::sys::statfs::{FsType, statfs};
    const REMOTE: &[i64] = &[
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x6573_5546, // FUSE
        0x0102_1997, // 9p
        0x0BD0_0BD0, // Lustre
        0x4750_4653, // GPFS
        0x5346_414F, // AFS
    ];
    match statfs(dir) {
        Ok(s) => {
            let t: FsType = s.filesystem_type();
            REMOTE.contains(&t.0)
        }
        Err(_) => true,
    }
}

/// Reads events as they come, for `redo --watch` (requests read the queue themselves, see
/// [`Watcher::sync`]), `lag` after they are there. Ends once the watcher is gone.
///
/// Nobody following (no `redo --watch` round waiting), nothing needs the events early:
/// requests read the queue themselves. The thread then reads at most every [`BATCH`], so
/// that a build, whose every commit makes a few events, does not wake it for each of them;
/// the queue (16384 events by default) cannot fill in that time.
fn follow(shared: Weak<Shared>, fd: OwnedFd, lag: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(1000u16));
        let followed = shared
            .upgrade()
            .is_some_and(|s| s.changes.receiver_count() > 0);
        let wait = if followed { lag } else { lag.max(BATCH) };
        if matches!(ready, Ok(n) if n > 0) && !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match ready {
            Ok(n) if n > 0 => shared.drain(),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("file watcher: {e}; --watch rounds stop");
                return;
            }
        }
    }
}

pub struct Watcher {
    shared: Arc<Shared>,
}

impl Watcher {
    /// Starts watching for the project at `root`. `None` when inotify is not available: the
    /// daemon then always stats. `lag` delays the background reading of events (the tests'
    /// `REDO_WATCH_LAG_MS`: a busy event thread, so that only [`Watcher::sync`] can make a
    /// request see a change made just before it).
    pub fn start(root: &Path, lag: Duration) -> Option<Arc<Watcher>> {
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("no file watcher ({e}): every build stats its files");
                return None;
            }
        };
        let poll_fd = match inotify.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!("no file watcher ({e}): every build stats its files");
                return None;
            }
        };
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            backend: Mutex::new(Backend {
                inotify,
                paths: HashMap::default(),
            }),
            stats: Mutex::new(HashMap::default()),
            listings: Mutex::new(HashMap::default()),
            dirs: Mutex::new(HashMap::default()),
            epoch: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
            changes,
            listeners: std::sync::RwLock::default(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            resets: AtomicUsize::new(0),
        });
        let weak = Arc::downgrade(&shared);
        if let Err(e) = std::thread::Builder::new()
            .name("redod-watch".into())
            .spawn(move || follow(weak, poll_fd, lag))
        {
            tracing::warn!(
                "no file watcher (cannot start its thread: {e}): every build stats its files"
            );
            return None;
        }
        Some(Arc::new(Watcher { shared }))
    }

    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Acquire)
    }

    /// Turns the accelerator off (everything is stat'ed from now on) or on again.
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::Release);
        self.shared.reset();
    }

    /// What a queue overflow does: forget everything cached.
    pub fn simulate_overflow(&self) {
        tracing::info!("file watcher: simulated queue overflow; cache cleared");
        self.shared.reset();
        let _ = self.shared.changes.send(Arc::new(PathBuf::from("/")));
    }

    /// Changed paths, as they are seen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PathBuf>> {
        self.shared.changes.subscribe()
    }

    /// Watches the directories of `files` (for `redo --watch`: changes anywhere, the project
    /// or not, start a round); false when one cannot be.
    pub fn watch_dirs_of<'a>(&self, files: impl IntoIterator<Item = &'a PathBuf>) -> bool {
        let mut all = true;
        let mut done = HashSet::default();
        for f in files {
            if let Some(d) = f.parent() {
                if done.insert(d.to_path_buf()) {
                    all &= matches!(self.shared.ensure(d), Dir::Watched { .. });
                }
            }
        }
        all
    }

    /// Handles every change made before this call (see the module docs): one `read` of the
    /// event queue when nothing happened.
    pub fn sync(&self) {
        if self.enabled() {
            self.shared.drain();
        }
    }

    /// The daemon itself changed `path` (a committed target): forget it right away rather
    /// than when its event arrives.
    pub fn forget(&self, path: &Path) {
        let mut stats = lock(&self.shared.stats);
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        stats.remove(path.as_os_str());
        drop(stats);
        self.shared.changed(path);
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            if crate::fs::is_build_name(name) {
                lock(&self.shared.listings).remove(parent);
            }
        }
    }

    /// From now on, `l` is told of every change seen.
    pub(crate) fn listen(&self, l: Arc<dyn crate::fs::Listener>) {
        self.shared
            .listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(l);
    }

    /// `hits misses resets watched-directories` for `--daemon-status`, with the verdicts'
    /// counts (`verdicts`, `hits`) that its events keep true.
    pub fn stats_line(&self, verdicts: (usize, usize)) -> String {
        let s = &self.shared;
        format!(
            "file watcher: {}, {} cached stats, {} hits, {} misses, {} resets, {} directories watched, {} verdicts, {} verdict hits\n",
            if self.enabled() { "on" } else { "off" },
            lock(&s.stats).len(),
            s.hits.load(Ordering::Relaxed),
            s.misses.load(Ordering::Relaxed),
            s.resets.load(Ordering::Relaxed),
            lock(&s.dirs)
                .values()
                .filter(|d| matches!(d, Dir::Watched { .. }))
                .count(),
            verdicts.0,
            verdicts.1,
        )
    }
}

mod saved;
mod watched_fs;

pub(crate) use watched_fs::WatchedFs;

#[cfg(test)]
mod tests;
