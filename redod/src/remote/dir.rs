//! The `file://` backend: `dir/cas/{sha256}` and `dir/ac/{sha256}`, for one machine or a
//! shared filesystem. Writes are atomic (a temporary in the same directory, renamed over the
//! name), so concurrent writers and readers on any number of machines see a whole blob or
//! none; two writers of one name both write the same content (CAS) or a whole entry (AC: last
//! writer wins). Not fsynced: a blob torn by a crash fails its SHA-256 check, an entry fails
//! to decode, and either is a miss.

use super::backend::{Area, BlobSink, MAX_SMALL};
use super::error::CacheError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

pub struct DirBackend {
    root: PathBuf,
}

impl DirBackend {
    pub fn new(root: &Path) -> DirBackend {
        DirBackend {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, area: Area, hex: &str) -> PathBuf {
        self.root.join(area.dir()).join(hex)
    }

    pub async fn get(&self, area: Area, hex: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let p = self.path(area, hex);
        let f = match tokio::fs::File::open(&p).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CacheError::io("open", p, e)),
        };
        let mut out = Vec::new();
        f.take(MAX_SMALL + 1)
            .read_to_end(&mut out)
            .await
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

    pub async fn head(&self, area: Area, hex: &str) -> Result<bool, CacheError> {
        let p = self.path(area, hex);
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CacheError::io("stat", p, e)),
        }
    }

    pub async fn put(&self, area: Area, hex: &str, body: bytes::Bytes) -> Result<(), CacheError> {
        let dir = self.root.join(area.dir());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| CacheError::io("create", &dir, e))?;
        let tmp = crate::store::layout::temp_path(&dir, std::ffi::OsStr::new(hex));
        if let Err(e) = tokio::fs::write(&tmp, &body).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(CacheError::io("write", tmp, e));
        }
        let dest = self.path(area, hex);
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(CacheError::io("rename", dest, e));
        }
        Ok(())
    }
}
