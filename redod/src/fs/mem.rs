//! An in-memory tree for engine unit tests.
use super::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Content, metadata, executable bit.
type Entry = (Vec<u8>, Meta, bool);

#[derive(Default)]
pub struct MemFs {
    files: Mutex<HashMap<PathBuf, Entry>>,
    next_ino: Mutex<u64>,
    clock: Mutex<i64>,
    /// Plays the file watcher: every change is reported to these verdicts, and the tree
    /// then vouches for what it answers.
    watcher: Mutex<Option<std::sync::Arc<dyn Listener>>>,
}

impl MemFs {
    /// Reports every later change to `verdicts`, as the file watcher does.
    pub fn report_to(&self, verdicts: std::sync::Arc<dyn Listener>) {
        *self.watcher.lock().unwrap() = Some(verdicts);
    }

    fn changed(&self, path: &str) {
        if let Some(v) = &*self.watcher.lock().unwrap() {
            v.changed(Path::new(path));
        }
    }

    fn tick(&self) -> i64 {
        let mut c = self.clock.lock().unwrap();
        *c += 1;
        *c
    }

    /// Creates or replaces a file (new inode, new times).
    pub fn write(&self, path: &str, content: &str) {
        self.changed(path);
        let t = self.tick();
        let ino = {
            let mut n = self.next_ino.lock().unwrap();
            *n += 1;
            *n
        };
        let stamp = Stamp {
            size: content.len() as u64,
            ino,
            ctime_sec: t,
            ctime_nsec: 0,
            mtime_sec: t,
            mtime_nsec: 0,
        };
        self.files.lock().unwrap().insert(
            PathBuf::from(path),
            (
                content.as_bytes().to_vec(),
                Meta {
                    stamp,
                    kind: Kind::File,
                    link: false,
                },
                false,
            ),
        );
    }

    pub fn mkdir(&self, path: &str) {
        self.changed(path);
        let stamp = Stamp::default();
        self.files.lock().unwrap().insert(
            PathBuf::from(path),
            (
                Vec::new(),
                Meta {
                    stamp,
                    kind: Kind::Dir,
                    link: false,
                },
                false,
            ),
        );
    }

    /// `touch`: same content and inode, new ctime/mtime.
    pub fn touch(&self, path: &str) {
        self.changed(path);
        let t = self.tick();
        let mut files = self.files.lock().unwrap();
        let e = files.get_mut(Path::new(path)).unwrap();
        e.1.stamp.ctime_sec = t;
        e.1.stamp.mtime_sec = t;
    }

    /// Rewrites content in place: same inode, new size/times.
    pub fn rewrite(&self, path: &str, content: &str) {
        self.changed(path);
        let t = self.tick();
        let mut files = self.files.lock().unwrap();
        let e = files.get_mut(Path::new(path)).unwrap();
        e.0 = content.as_bytes().to_vec();
        e.1.stamp.size = content.len() as u64;
        e.1.stamp.ctime_sec = t;
        e.1.stamp.mtime_sec = t;
    }

    pub fn remove(&self, path: &str) {
        self.changed(path);
        self.files.lock().unwrap().remove(Path::new(path));
    }

    pub fn meta(&self, path: &str) -> Meta {
        self.files.lock().unwrap()[Path::new(path)].1
    }
}

impl Fs for MemFs {
    fn stat(&self, path: &Path) -> io::Result<Option<Meta>> {
        Ok(self.files.lock().unwrap().get(path).map(|e| e.1))
    }
    fn vouches_stat(&self, path: &Path, seen: Option<&Meta>) -> bool {
        self.watcher.lock().unwrap().is_some() && self.stat(path).unwrap().as_ref() == seen
    }
    fn vouches_name(&self, dir: &Path, name: &std::ffi::OsStr, present: bool) -> bool {
        self.watcher.lock().unwrap().is_some()
            && listed(&self.build_names(dir).unwrap(), name) == present
    }
    fn hash(&self, path: &Path) -> io::Result<Hash> {
        let files = self.files.lock().unwrap();
        let e = files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(*blake3::hash(&e.0).as_bytes())
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.lock().unwrap().get(path).map(|e| e.0.clone()))
    }
    fn executable(&self, path: &Path) -> bool {
        self.files.lock().unwrap().get(path).is_some_and(|e| e.2)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        // Directories exist implicitly above every file.
        let mut out: std::collections::BTreeMap<OsString, Kind> = Default::default();
        for (p, e) in self.files.lock().unwrap().iter() {
            let Ok(rest) = p.strip_prefix(dir) else {
                continue;
            };
            let mut comps = rest.components();
            let Some(first) = comps.next() else { continue };
            let kind = if comps.next().is_some() {
                Kind::Dir
            } else {
                e.1.kind
            };
            out.insert(first.as_os_str().to_os_string(), kind);
        }
        Ok(out.into_iter().collect())
    }
}
