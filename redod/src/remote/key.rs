//! The action key: which entry of the cache a target's build looks up.
//!
//! `SHA-256("redo-cache-key\0", FORMAT_VERSION, target, do_file, BLAKE3(do content),
//! REDO_CACHE_ENV names and values)`, every variable-length field length-prefixed so that no
//! two different inputs concatenate to the same bytes. Paths are relative to the project
//! root, so every checkout of the project, wherever it is, computes the same key.
//!
//! The key deliberately covers only what is known *before* the `.do` runs; everything the
//! build reads after that (sources, headers, generated files) is in the entry's traces and
//! checked by [`super::matching`].

use super::format::FORMAT_VERSION;
use crate::fs::Hash;
use crate::settings::Env;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// A SHA-256 naming one action entry (`{prefix}/ac/{hex}`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActionKey(pub [u8; 32]);

impl ActionKey {
    pub fn hex(&self) -> String {
        crate::fs::hex(&self.0)
    }
}

impl fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionKey({})", self.hex())
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// What the key is made of.
#[derive(Clone, Debug)]
pub struct KeyInput<'a> {
    /// The target's path relative to the project root (`src/foo.o`).
    pub target: &'a [u8],
    /// Its `.do`'s path relative to the project root (`src/default.o.do`).
    pub do_file: &'a [u8],
    /// BLAKE3 of the `.do`'s content (the hash redo records for it).
    pub do_hash: Hash,
    /// The request's environment; only the variables in `env_names` are read.
    pub env: &'a Env,
    /// [`super::CacheConfig::env_names`] (sorted).
    pub env_names: &'a [String],
}

fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

impl KeyInput<'_> {
    pub fn key(&self) -> ActionKey {
        let mut h = Sha256::new();
        h.update(b"redo-cache-key\0");
        h.update(FORMAT_VERSION.to_le_bytes());
        field(&mut h, self.target);
        field(&mut h, self.do_file);
        h.update(self.do_hash);
        h.update((self.env_names.len() as u64).to_le_bytes());
        for name in self.env_names {
            field(&mut h, name.as_bytes());
            // Unset and set-to-empty are different environments.
            match self.env.get(name) {
                None => h.update([0u8]),
                Some(v) => {
                    h.update([1u8]);
                    field(&mut h, v.as_bytes());
                }
            }
        }
        ActionKey(h.finalize().into())
    }
}

#[cfg(test)]
mod tests;
