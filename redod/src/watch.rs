//! The file-change accelerator: inotify (through `notify`) watches the directories the daemon
//! stats, so that a stat whose file has not changed since is answered from memory. A no-op
//! build then makes no stat system call at all.
//!
//! Correctness never depends on it:
//!
//! * A cached stat is dropped by any event naming its path (or a directory above it), and is
//!   only cached when no event at all arrived while it was taken ([`Shared::epoch`]): a change
//!   racing the stat can never leave a stale entry behind.
//! * Before a request is served, [`Watcher::sync`] writes a cookie file in the runtime
//!   directory and waits for its event. One inotify instance has one ordered queue, so once the
//!   cookie's event is processed, so is every change made before the request was sent (the
//!   watchman technique).
//! * Queue overflow, a cookie that does not come back, or the watcher being turned off clear
//!   the cache; a directory that cannot be watched (watch limit, NFS/FUSE/9p/SMB, where inotify
//!   misses remote changes) and symlinks are simply never cached: plain stats.
//!
//! [`WatchedFs`] is the [`Fs`] a session uses when the watcher is on.

use crate::fsys::{DiskFs, Fs, Hash, Kind, Meta};
use notify::Watcher as _;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// At most this many directories are watched; beyond, plain stats.
const MAX_WATCHED_DIRS: usize = 65_536;

/// A directory's entries.
type Listing = Vec<(OsString, Kind)>;

/// What the event thread and the daemon share.
struct Shared {
    stats: Mutex<HashMap<PathBuf, Option<Meta>>>,
    listings: Mutex<HashMap<PathBuf, Arc<Listing>>>,
    /// Directories: watched (true) or not watchable (false, never retried).
    dirs: Mutex<HashMap<PathBuf, bool>>,
    /// Bumped by every event that may invalidate something; a stat is cached only if it did
    /// not move while the stat was taken.
    epoch: AtomicU64,
    cookies: Mutex<HashMap<OsString, oneshot::Sender<()>>>,
    cookie_dir: PathBuf,
    /// Off (by request, or never started): every lookup goes to the disk.
    enabled: AtomicBool,
    /// Changed paths, for `redo --watch` rounds.
    changes: broadcast::Sender<Arc<PathBuf>>,
    /// Statistics for `--daemon-status` and the tests.
    hits: AtomicUsize,
    misses: AtomicUsize,
    resets: AtomicUsize,
}

impl Shared {
    /// Forgets everything cached (overflow, a lost cookie, turned off).
    fn reset(&self) {
        let mut stats = lock(&self.stats);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        stats.clear();
        lock(&self.listings).clear();
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    fn on_event(&self, res: notify::Result<notify::Event>) {
        let ev = match res {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!("file watcher: {e}; falling back to stat until the cache refills");
                return self.reset();
            }
        };
        // Opening or reading a file changes nothing (notify reports opens too); a close after
        // writing does count.
        if let notify::EventKind::Access(kind) = ev.kind {
            use notify::event::{AccessKind, AccessMode};
            if !matches!(kind, AccessKind::Close(AccessMode::Write)) {
                return;
            }
        }
        if ev.need_rescan() {
            tracing::info!("file watcher: event queue overflowed; cache cleared");
            self.reset();
            let _ = self.changes.send(Arc::new(PathBuf::from("/")));
            return;
        }
        for p in ev.paths {
            if p.parent() == Some(self.cookie_dir.as_path()) {
                if let Some(tx) = p.file_name().and_then(|n| lock(&self.cookies).remove(n)) {
                    let _ = tx.send(());
                }
                continue;
            }
            {
                let mut stats = lock(&self.stats);
                self.epoch.fetch_add(1, Ordering::AcqRel);
                stats.remove(&p);
                // A directory removed or renamed takes what was cached below it along.
                if matches!(
                    ev.kind,
                    notify::EventKind::Remove(_)
                        | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                ) {
                    stats.retain(|k, _| !k.starts_with(&p));
                }
            }
            {
                let mut listings = lock(&self.listings);
                listings.remove(&p);
                if let Some(parent) = p.parent() {
                    listings.remove(parent);
                }
            }
            if matches!(ev.kind, notify::EventKind::Remove(_)) {
                lock(&self.dirs).remove(&p);
            }
            let _ = self.changes.send(Arc::new(p));
        }
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

pub struct Watcher {
    shared: Arc<Shared>,
    backend: Mutex<Option<notify::INotifyWatcher>>,
    seq: AtomicU64,
}

impl Watcher {
    /// Starts watching, with cookies written in `cookie_dir` (the runtime directory). `None`
    /// when inotify is not available: the daemon then always stats.
    pub fn start(cookie_dir: &Path) -> Option<Arc<Watcher>> {
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            stats: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            cookies: Mutex::new(HashMap::new()),
            cookie_dir: cookie_dir.to_path_buf(),
            enabled: AtomicBool::new(true),
            changes,
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            resets: AtomicUsize::new(0),
        });
        let handler = shared.clone();
        let mut backend = match notify::INotifyWatcher::new(
            move |ev| handler.on_event(ev),
            notify::Config::default(),
        ) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("no file watcher ({e}): every build stats its files");
                return None;
            }
        };
        if let Err(e) = backend.watch(cookie_dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(
                "no file watcher (cannot watch {}: {e}): every build stats its files",
                cookie_dir.display()
            );
            return None;
        }
        Some(Arc::new(Watcher {
            shared,
            backend: Mutex::new(Some(backend)),
            seq: AtomicU64::new(0),
        }))
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
        self.shared.on_event(Ok(
            notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan)
        ));
    }

    /// Changed paths, as they are seen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PathBuf>> {
        self.shared.changes.subscribe()
    }

    /// Watches `dir` if it can be; whether it is watched.
    fn ensure_watched(&self, dir: &Path) -> bool {
        if let Some(w) = lock(&self.shared.dirs).get(dir) {
            return *w;
        }
        let ok = lock(&self.shared.dirs).len() < MAX_WATCHED_DIRS
            && !remote_filesystem(dir)
            && match lock(&self.backend)
                .as_mut()
                .map(|b| b.watch(dir, notify::RecursiveMode::NonRecursive))
            {
                Some(Ok(())) => true,
                Some(Err(e)) => {
                    tracing::debug!("not watching {}: {e}", dir.display());
                    false
                }
                None => false,
            };
        lock(&self.shared.dirs).insert(dir.to_path_buf(), ok);
        ok
    }

    /// Watches the directories of `files` (for `redo --watch`); false when one cannot be.
    pub fn watch_dirs_of<'a>(&self, files: impl IntoIterator<Item = &'a PathBuf>) -> bool {
        let mut all = true;
        let mut done = std::collections::HashSet::new();
        for f in files {
            if let Some(d) = f.parent() {
                if done.insert(d.to_path_buf()) {
                    all &= self.ensure_watched(d);
                }
            }
        }
        all
    }

    /// Waits until every change made before this call has been seen (see the module docs).
    pub async fn sync(&self) {
        if !self.enabled() {
            return;
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = OsString::from(format!("cookie-{}-{n}", std::process::id()));
        let path = self.shared.cookie_dir.join(&name);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.cookies).insert(name.clone(), tx);
        let synced = match std::fs::File::create(&path) {
            Ok(_) => tokio::time::timeout(Duration::from_secs(2), rx)
                .await
                .is_ok_and(|r| r.is_ok()),
            Err(e) => {
                tracing::warn!(
                    "cannot write a watcher cookie in {}: {e}",
                    self.shared.cookie_dir.display()
                );
                false
            }
        };
        let _ = std::fs::remove_file(&path);
        lock(&self.shared.cookies).remove(&name);
        if !synced {
            // Whatever the reason, nothing cached can be trusted now.
            self.shared.reset();
        }
    }

    /// The daemon itself changed `path` (a committed target): forget it right away rather
    /// than when its event arrives.
    pub fn forget(&self, path: &Path) {
        let mut stats = lock(&self.shared.stats);
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        stats.remove(path);
        drop(stats);
        if let Some(parent) = path.parent() {
            lock(&self.shared.listings).remove(parent);
        }
    }

    /// `hits misses resets watched-directories` for `--daemon-status`.
    pub fn stats_line(&self) -> String {
        let s = &self.shared;
        format!(
            "file watcher: {}, {} cached stats, {} hits, {} misses, {} resets, {} directories watched\n",
            if self.enabled() { "on" } else { "off" },
            lock(&s.stats).len(),
            s.hits.load(Ordering::Relaxed),
            s.misses.load(Ordering::Relaxed),
            s.resets.load(Ordering::Relaxed),
            lock(&s.dirs).values().filter(|w| **w).count()
        )
    }
}

/// The disk, with stats and listings answered from the watcher's cache when it can vouch for
/// them. Hashes and contents are always read from the disk.
pub struct WatchedFs {
    disk: DiskFs,
    watcher: Arc<Watcher>,
}

impl WatchedFs {
    pub fn new(watcher: Arc<Watcher>) -> WatchedFs {
        WatchedFs {
            disk: DiskFs,
            watcher,
        }
    }
}

impl Fs for WatchedFs {
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>> {
        let s = &self.watcher.shared;
        if !self.watcher.enabled() {
            return self.disk.stat(path);
        }
        if let Some(m) = lock(&s.stats).get(path) {
            s.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(*m);
        }
        s.misses.fetch_add(1, Ordering::Relaxed);
        let Some(dir) = path.parent().filter(|d| self.watcher.ensure_watched(d)) else {
            return self.disk.stat(path);
        };
        let _ = dir;
        let before = s.epoch.load(Ordering::Acquire);
        // A symlink's target may change where no watch sees it: never cached.
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let m = self.disk.stat(path)?;
        if !link {
            let mut stats = lock(&s.stats);
            if s.epoch.load(Ordering::Acquire) == before {
                stats.insert(path.to_path_buf(), m);
            }
        }
        Ok(m)
    }

    fn hash(&self, path: &Path) -> io::Result<Hash> {
        self.disk.hash(path)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.disk.read(path)
    }

    fn executable(&self, path: &Path) -> bool {
        self.disk.executable(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let s = &self.watcher.shared;
        if !self.watcher.enabled() || !self.watcher.ensure_watched(dir) {
            return self.disk.list(dir);
        }
        if let Some(l) = lock(&s.listings).get(dir) {
            return Ok((**l).clone());
        }
        let before = s.epoch.load(Ordering::Acquire);
        let l = self.disk.list(dir)?;
        let mut listings = lock(&s.listings);
        if s.epoch.load(Ordering::Acquire) == before {
            listings.insert(dir.to_path_buf(), Arc::new(l.clone()));
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("redod-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        d
    }

    #[tokio::test]
    async fn cached_until_changed_and_synced_by_cookie() {
        let d = scratch("cache");
        let w = Watcher::start(&d.join("run")).expect("inotify");
        let fs = WatchedFs::new(w.clone());
        let f = d.join("src/a.c");
        std::fs::write(&f, "one").unwrap();
        let m1 = fs.stat(&f).unwrap().unwrap();
        let hits = w.shared.hits.load(Ordering::Relaxed);
        assert_eq!(fs.stat(&f).unwrap().unwrap(), m1);
        assert_eq!(
            w.shared.hits.load(Ordering::Relaxed),
            hits + 1,
            "second stat from memory"
        );
        // A change, then a request: the cookie makes sure it is seen before anything is read.
        std::fs::write(&f, "three").unwrap();
        w.sync().await;
        assert_eq!(fs.stat(&f).unwrap().unwrap().stamp.size, 5);
        std::fs::remove_file(&f).unwrap();
        w.sync().await;
        assert!(fs.stat(&f).unwrap().is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn off_and_overflow_fall_back_to_the_disk() {
        let d = scratch("off");
        let w = Watcher::start(&d.join("run")).expect("inotify");
        let fs = WatchedFs::new(w.clone());
        let f = d.join("src/b.c");
        std::fs::write(&f, "x").unwrap();
        fs.stat(&f).unwrap();
        w.simulate_overflow();
        assert!(
            lock(&w.shared.stats).is_empty(),
            "overflow forgets everything"
        );
        w.set_enabled(false);
        std::fs::write(&f, "xyz").unwrap();
        // No sync, watcher off: still right, straight from the disk.
        assert_eq!(fs.stat(&f).unwrap().unwrap().stamp.size, 3);
        w.set_enabled(true);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn symlinks_are_never_cached() {
        let d = scratch("link");
        let w = Watcher::start(&d.join("run")).expect("inotify");
        let fs = WatchedFs::new(w.clone());
        std::fs::create_dir_all(d.join("elsewhere")).unwrap();
        std::fs::write(d.join("elsewhere/real"), "1").unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere/real"), d.join("src/link")).unwrap();
        fs.stat(&d.join("src/link")).unwrap();
        // The target changes in a directory nobody watches.
        std::fs::write(d.join("elsewhere/real"), "1234").unwrap();
        assert_eq!(fs.stat(&d.join("src/link")).unwrap().unwrap().stamp.size, 4);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
