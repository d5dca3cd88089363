//! Hash maps and sets with a fast, non-cryptographic hasher. The daemon's maps are keyed by
//! paths of the user's own project, hashed millions of times in a large no-op build: SipHash
//! (std's default, built against hostile keys) was a tenth of a no-op's CPU.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A path as a key of the daemon's large maps: its bytes in an allocation of exactly their
/// size, behind a 16-byte pointer (an `OsString` is 24 bytes and may carry spare capacity).
/// With a few hundred thousand paths kept (the watcher's stats, the caches), those bytes are
/// a sizeable part of the daemon's memory.
pub type PathKey = Box<std::ffi::OsStr>;

/// A map keyed by a path's bytes. `Path`'s own `Hash` walks the path separator by separator
/// (it must treat `a//b` and `a/b` alike); the daemon's hot maps hold clean absolute paths
/// only, for which byte equality is path equality, and hashing the bytes is several times
/// cheaper. Look up with `path.as_os_str()`, make a key with [`key`].
pub type PathMap<V> = HashMap<PathKey, V>;
/// A set of paths by their bytes; see [`PathMap`].
pub type PathSet = HashSet<PathKey>;

/// The key of `path` in a [`PathMap`] or a [`PathSet`].
pub fn key(path: &std::path::Path) -> PathKey {
    path.as_os_str().into()
}

/// The key of `path`, without copying it when it has no spare capacity.
pub fn key_of(path: std::path::PathBuf) -> PathKey {
    path.into_os_string().into_boxed_os_str()
}
