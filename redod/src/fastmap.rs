//! Hash maps and sets with a fast, non-cryptographic hasher. The daemon's maps are keyed by
//! paths of the user's own project, hashed millions of times in a large no-op build: SipHash
//! (std's default, built against hostile keys) was a tenth of a no-op's CPU.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
