//! The `file://` backend: `dir/cas/{sha256}` and `dir/ac/{sha256}`, for one machine or a
//! shared filesystem. Writes are atomic (a temporary in the same directory, renamed over the
//! name), so concurrent writers and readers on any number of machines see a whole blob or
//! none; two writers of one name both write the same content (CAS) or a whole entry (AC: last
//! writer wins). Not fsynced: a blob torn by a crash fails its SHA-256 check, an entry fails
//! to decode, and either is a miss.
//!
//! The small operations are synchronous: [`super::backend::Backend`] runs each whole (a
//! stat, an open and a read, or a write and a rename) as one task on tokio's blocking pool,
//! not one hand-off per system call as `tokio::fs` would. The daemon's runtime thread is the
//! build's critical path, and uploads run beside every build in readwrite mode.

use super::backend::{Area, BlobSink, MAX_SMALL};
use super::error::CacheError;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Cheap to clone: each operation moves a clone into its blocking task.
#[derive(Clone)]
pub struct DirBackend {
    root: Arc<Path>,
}

impl DirBackend {
    pub fn new(root: &Path) -> DirBackend {
        DirBackend { root: root.into() }
    }

    fn path(&self, area: Area, hex: &str) -> PathBuf {
        self.root.join(area.dir()).join(hex)
    }

    pub fn get(&self, area: Area, hex: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let p = self.path(area, hex);
        let f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CacheError::io("open", p, e)),
        };
        let mut out = Vec::new();
        f.take(MAX_SMALL + 1)
            .read_to_end(&mut out)
            .map_err(|e| CacheError::io("read", &p, e))?;
        if out.len() as u64 > MAX_SMALL {
            return Err(CacheError::BadEntry {
                key: hex.to_string(),
                what: format!("larger than {MAX_SMALL} bytes"),
            });
        }
        Ok(Some(out))
    }

    pub async fn get_into(&self, hex: &str, sink: &mut BlobSink) -> Result<bool, CacheError> {
        let p = self.path(Area::Cas, hex);
        let mut f = match tokio::fs::File::open(&p).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(CacheError::io("open", p, e)),
        };
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| CacheError::io("read", &p, e))?;
            if n == 0 {
                return Ok(true);
            }
            sink.write(&buf[..n]).await?;
        }
    }

    pub fn head(&self, area: Area, hex: &str) -> Result<bool, CacheError> {
        let p = self.path(area, hex);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CacheError::io("stat", p, e)),
        }
    }

    /// Writes `body` as `area/hex`; with `unless_present`, first looks whether a blob of
    /// that name is there (CAS: same name, same content) and then writes nothing. Returns
    /// whether it wrote. The area's directory is made when the temporary cannot be created
    /// for want of it (once per cache, not a `mkdir` per write).
    pub fn put(
        &self,
        area: Area,
        hex: &str,
        body: &[u8],
        unless_present: bool,
    ) -> Result<bool, CacheError> {
        if unless_present && self.head(area, hex)? {
            return Ok(false);
        }
        let dir = self.root.join(area.dir());
        let tmp = crate::store::layout::temp_path(&dir, std::ffi::OsStr::new(hex));
        let written = match std::fs::write(&tmp, body) {
            Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(&dir)
                .map_err(|e| CacheError::io("create", &dir, e))
                .and_then(|()| {
                    std::fs::write(&tmp, body).map_err(|e| CacheError::io("write", &tmp, e))
                }),
            r => r.map_err(|e| CacheError::io("write", &tmp, e)),
        };
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let dest = self.path(area, hex);
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(CacheError::io("rename", dest, e));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
