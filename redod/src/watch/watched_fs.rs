//! The filesystem as a watched session sees it: [`crate::fs::Fs`] with stats and listings
//! from the watcher's memory.

use super::*;

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

impl WatchedFs {
    /// The watcher's listing of `dir`'s build names, read from the disk once and kept until an
    /// event touches it; `None` where the watcher cannot vouch for `dir` (off, not watched).
    fn listing(&self, dir: &Path) -> io::Result<Option<Arc<Listing>>> {
        let s = &self.watcher.shared;
        if !self.watcher.enabled() || !s.cacheable(dir) {
            return Ok(None);
        }
        if let Some(l) = lock(&s.listings).get(dir) {
            return Ok(Some(l.clone()));
        }
        let before = s.epoch.load(Ordering::Acquire);
        let l = Arc::new(self.disk.build_names(dir)?);
        let mut listings = lock(&s.listings);
        if s.epoch.load(Ordering::Acquire) == before {
            listings.insert(dir.to_path_buf(), l.clone());
        }
        Ok(Some(l))
    }
}

impl Fs for WatchedFs {
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>> {
        let s = &self.watcher.shared;
        if !self.watcher.enabled() {
            return self.disk.stat(path);
        }
        if let Some(m) = lock(&s.stats).get(path.as_os_str()) {
            s.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(unpack(*m));
        }
        s.misses.fetch_add(1, Ordering::Relaxed);
        if !path.parent().is_some_and(|d| s.cacheable(d)) {
            return self.disk.stat(path);
        }
        let before = s.epoch.load(Ordering::Acquire);
        // A symlink's target may change where no watch sees it: never cached. (One system
        // call for what is not a link: this is every stat of a cold start.)
        let (m, link) = self.disk.stat_noting_links(path)?;
        if let (false, Some(kept)) = (link, pack(m)) {
            let mut stats = lock(&s.stats);
            if s.epoch.load(Ordering::Acquire) == before {
                stats.insert(crate::fastmap::key(path), kept);
            }
        }
        Ok(m)
    }

    fn hash(&self, path: &Path) -> io::Result<Hash> {
        self.disk.hash(path)
    }

    fn lstat(&self, path: &Path) -> io::Result<Option<Meta>> {
        // Only a target that is (or was) a link asks: never cached, like links in `stat`.
        self.disk.lstat(path)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.disk.read(path)
    }

    fn executable(&self, path: &Path) -> bool {
        self.disk.executable(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        self.disk.list(dir)
    }

    fn vouches_stat(&self, path: &Path, seen: Option<&Meta>) -> bool {
        // Only what is cached is vouched for (never symlinks, never outside watched
        // directories; an entry an event dropped is gone), and only if it is what was seen.
        self.watcher.enabled()
            && lock(&self.watcher.shared.stats)
                .get(path.as_os_str())
                .is_some_and(|c| unpack(*c) == seen.copied())
    }

    fn vouches_name(&self, dir: &Path, name: &std::ffi::OsStr, present: bool) -> bool {
        self.watcher.enabled()
            && lock(&self.watcher.shared.listings)
                .get(dir)
                .is_some_and(|l| crate::fs::listed(l, name) == present)
    }

    fn build_names(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        Ok(match self.listing(dir)? {
            Some(l) => (*l).clone(),
            None => self.disk.build_names(dir)?,
        })
    }

    fn has_build_name(&self, dir: &Path, name: &std::ffi::OsStr) -> io::Result<bool> {
        match self.listing(dir)? {
            Some(l) => Ok(crate::fs::listed(&l, name)),
            None => self.disk.has_build_name(dir, name),
        }
    }
}
