//! Hash maps and sets with a fast, non-cryptographic hasher. The daemon's maps are keyed by
//! paths of the user's own project, hashed millions of times in a large no-op build: SipHash
//! (std's default, built against hostile keys) was a tenth of a no-op's CPU.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A map keyed by a path's bytes. `Path`'s own `Hash` walks the path separator by separator
/// (it must treat `a//b` and `a/b` alike); the daemon's hot maps hold clean absolute paths
/// only, for which byte equality is path equality, and hashing the bytes is several times
/// cheaper. Look up with `path.as_os_str()`.
pub type PathMap<V> = HashMap<std::ffi::OsString, V>;
/// A set of paths by their bytes; see [`PathMap`].
pub type PathSet = HashSet<std::ffi::OsString>;
