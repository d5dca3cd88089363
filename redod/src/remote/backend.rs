//! The storage behind the cache: two areas of blobs named by SHA-256 hex, `cas/` (content,
//! verified by its name) and `ac/` (action entries, named by the key). One enum over the two
//! backends ([`super::http`], [`super::dir`]) rather than a trait object: the set is closed
//! and the methods are async.

use super::dir::DirBackend;
use super::error::CacheError;
use super::format::BlobDigest;
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Cas,
    Ac,
}

impl Area {
    pub fn dir(self) -> &'static str {
        match self {
            Area::Cas => "cas",
            Area::Ac => "ac",
        }
    }
}

/// Connecting may take this long: a cache that is down must cost a build little.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A whole small request (an entry, a HEAD) may take this long.
pub const SMALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Big blobs get [`SMALL_TIMEOUT`] plus a second per this many bytes (a slow but working
/// link still finishes; a stalled one is given up).
pub const BYTES_PER_SECOND: u64 = 4 << 20;
/// Entries larger than this are not read (a foreign or hostile entry).
pub const MAX_SMALL: u64 = 16 << 20;

/// An HTTP server is asked (`HEAD`) whether it has a CAS blob before one larger than this is
/// sent: a `PUT` of a smaller one costs about what the question does, and rewriting a blob
/// under its own digest changes nothing.
pub const ASK_FIRST: u64 = 64 << 10;

pub fn timeout_for(size: u64) -> Duration {
    SMALL_TIMEOUT + Duration::from_secs(size / BYTES_PER_SECOND)
}

/// Where a downloaded blob goes: written as it arrives, hashed on the way (SHA-256 to
/// verify it, BLAKE3 for the target's `.rec`), refused as soon as it is longer than
/// expected. Nothing is trusted until [`BlobSink::finish`] compared digest and size.
pub struct BlobSink {
    file: tokio::fs::File,
    expected: BlobDigest,
    sha: Sha256,
    blake: blake3::Hasher,
    len: u64,
}

impl BlobSink {
    pub fn new(file: tokio::fs::File, expected: BlobDigest) -> BlobSink {
        BlobSink {
            file,
            expected,
            sha: Sha256::new(),
            blake: blake3::Hasher::new(),
            len: 0,
        }
    }

    pub fn expected_size(&self) -> u64 {
        self.expected.size
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), CacheError> {
        self.len += chunk.len() as u64;
        if self.len > self.expected.size {
            return Err(CacheError::Mismatch {
                hash: self.expected.hex(),
                what: format!("longer than its size {}", self.expected.size),
            });
        }
        self.sha.update(chunk);
        self.blake.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| CacheError::io("write", "fetched output", e))
    }

    /// Verifies what arrived; on success returns the file (flushed, not yet synced) and the
    /// content's BLAKE3.
    pub async fn finish(mut self) -> Result<(tokio::fs::File, crate::fs::Hash), CacheError> {
        let sha: [u8; 32] = self.sha.finalize().into();
        if self.len != self.expected.size || sha != self.expected.sha256 {
            return Err(CacheError::Mismatch {
                hash: self.expected.hex(),
                what: format!(
                    "got {} bytes with SHA-256 {}",
                    self.len,
                    crate::fs::hex(&sha)
                ),
            });
        }
        self.file
            .flush()
            .await
            .map_err(|e| CacheError::io("write", "fetched output", e))?;
        Ok((self.file, *self.blake.finalize().as_bytes()))
    }
}

pub enum Backend {
    Http(super::http::HttpBackend),
    Dir(super::dir::DirBackend),
}

/// A `file://` operation on a filesystem that hangs (a dead NFS server) is given up like a
/// silent HTTP server (the blocking thread under it is left to finish on its own).
async fn bounded<T>(
    size: u64,
    what: &'static str,
    op: impl std::future::Future<Output = Result<T, CacheError>>,
) -> Result<T, CacheError> {
    tokio::time::timeout(timeout_for(size), op)
        .await
        .unwrap_or_else(|_| {
            Err(CacheError::Transport {
                url: "file://".into(),
                what: format!("{what} timed out"),
            })
        })
}

/// One whole `file://` operation on blob `hex`, on tokio's blocking pool, bounded like
/// [`bounded`].
async fn blocking<T: Send + 'static>(
    dir: &DirBackend,
    hex: &str,
    size: u64,
    what: &'static str,
    op: impl FnOnce(&DirBackend, &str) -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    let (dir, hex) = (dir.clone(), hex.to_string());
    bounded(size, what, async move {
        tokio::task::spawn_blocking(move || op(&dir, &hex))
            .await
            .unwrap_or_else(|e| {
                Err(CacheError::Transport {
                    url: "file://".into(),
                    what: format!("{what} failed: {e}"),
                })
            })
    })
    .await
}

impl Backend {
    /// A small blob (an entry); `Ok(None)` when there is none.
    pub async fn get(&self, area: Area, hex: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Backend::Http(b) => b.get(area, hex).await,
            Backend::Dir(b) => blocking(b, hex, 0, "read", move |b, hex| b.get(area, hex)).await,
        }
    }

    /// A CAS blob streamed into `sink`; `Ok(false)` when there is none.
    pub async fn get_into(&self, hex: &str, sink: &mut BlobSink) -> Result<bool, CacheError> {
        match self {
            Backend::Http(b) => b.get_into(hex, sink).await,
            Backend::Dir(b) => {
                let size = sink.expected_size();
                bounded(size, "read", b.get_into(hex, sink)).await
            }
        }
    }

    /// Stores a CAS blob unless the cache has it already (over HTTP, asked only for a blob
    /// larger than [`ASK_FIRST`]); returns whether it was sent.
    pub async fn put_blob(&self, hex: &str, body: bytes::Bytes) -> Result<bool, CacheError> {
        match self {
            Backend::Http(b) => {
                if body.len() as u64 > ASK_FIRST && b.head(Area::Cas, hex).await? {
                    return Ok(false);
                }
                b.put(Area::Cas, hex, body).await.map(|()| true)
            }
            Backend::Dir(b) => {
                blocking(b, hex, body.len() as u64, "write", move |b, hex| {
                    b.put(Area::Cas, hex, &body, true)
                })
                .await
            }
        }
    }

    pub async fn put(&self, area: Area, hex: &str, body: bytes::Bytes) -> Result<(), CacheError> {
        match self {
            Backend::Http(b) => b.put(area, hex, body).await,
            Backend::Dir(b) => {
                blocking(b, hex, body.len() as u64, "write", move |b, hex| {
                    b.put(area, hex, &body, false).map(|_| ())
                })
                .await
            }
        }
    }
}
