//! Which `.do` builds a target (docs/BEHAVIOUR.md §7).
//!
//! For target `D/T`: `D/T.do`; then in `D` and each parent up to the top,
//! `default.<ext...>.do` from the longest extension to the shortest, then `default.do`. The
//! search stops after `/`, after `$REDO_TOP_DIR`, or after a directory holding `.redo/top`.
//! Every candidate tried and missing is returned so that the caller records it as an ifcreate
//! dependency: creating a more specific `.do` later makes the target out of date.

use crate::fs::{Fs, Kind};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoFile {
    /// Absolute path of the `.do`.
    pub path: PathBuf,
    /// The directory it lives in, where it runs.
    pub dir: PathBuf,
    /// Its file name.
    pub name: OsString,
    /// Its path relative to the target's directory (`../default.o.do`): recorded and shown.
    pub rel: PathBuf,
    /// The target's directory relative to the `.do`'s (`REDO_DIRPREFIX`; empty at level 0).
    pub dir_prefix: PathBuf,
    /// `$1`: the target relative to the `.do`'s directory.
    pub arg1: PathBuf,
    /// `$2`: `$1` without the extension matched by `default.<ext>.do`.
    pub arg2: PathBuf,
    /// Whether a `default*.do` matched (the completion line then names it).
    pub is_default: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Lookup {
    pub found: Option<DoFile>,
    /// Candidates tried before the one found, relative to the target's directory.
    pub missing: Vec<PathBuf>,
}

/// The `default*.do` names for target name `t`, most specific first.
pub fn default_names(t: &[u8]) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = t.split(|&b| b == b'.').collect();
    let mut out = Vec::with_capacity(parts.len());
    for i in 1..parts.len() {
        let mut n = b"default.".to_vec();
        n.extend_from_slice(&parts[i..].join(&b'.'));
        n.extend_from_slice(b".do");
        out.push(n);
    }
    out.push(b"default.do".to_vec());
    out
}

/// A git repository's root (a `.git` directory): the project's root when nothing else says so
/// (the daemon's own rule), so the `.do` search stops there too, instead of going on to `/`
/// (goredo's rule without `.redo/top`), where a stray `default.do` in a home directory would
/// build the project's files. A `.git` *file* (a submodule, a worktree) is no stop: a
/// superproject's `default*.do` may build inside its submodules.
fn is_repository_root(fs: &dyn Fs, dir: &Path) -> io::Result<bool> {
    Ok(fs
        .stat(&dir.join(".git"))?
        .is_some_and(|m| m.kind == Kind::Dir))
}

fn is_file(fs: &dyn Fs, p: &Path) -> io::Result<bool> {
    Ok(fs.stat(p)?.is_some_and(|m| m.kind != Kind::Dir))
}

/// Finds the `.do` for target `name` in directory `dir` (absolute, clean). The search upwards
/// stops at `top` (`REDO_TOP_DIR`), a directory with `.redo/top`, a git repository's root, or
/// `/`.
pub fn find(fs: &dyn Fs, dir: &Path, name: &OsStr, top: Option<&Path>) -> io::Result<Lookup> {
    let t = name.as_bytes();
    let mut lookup = Lookup::default();
    let mut own = t.to_vec();
    own.extend_from_slice(b".do");
    let own = OsString::from_vec(own);
    if is_file(fs, &dir.join(&own))? {
        lookup.found = Some(found(dir, name, dir, own, 0, false));
        return Ok(lookup);
    }
    lookup.missing.push(PathBuf::from(&own));
    let defaults = default_names(t);
    let mut search = dir.to_path_buf();
    let mut up = 0usize;
    loop {
        for cand in &defaults {
            let cand = OsStr::from_bytes(cand);
            if is_file(fs, &search.join(cand))? {
                lookup.found = Some(found(dir, name, &search, cand.to_os_string(), up, true));
                return Ok(lookup);
            }
            let mut rel = PathBuf::new();
            for _ in 0..up {
                rel.push("..");
            }
            rel.push(cand);
            lookup.missing.push(rel);
        }
        let stop = search.parent().is_none()
            || top == Some(search.as_path())
            || fs.exists(&search.join(".redo/top"))?
            || is_repository_root(fs, &search)?;
        if stop {
            return Ok(lookup);
        }
        search.pop();
        up += 1;
    }
}

/// Every `.do` path the lookup for `target` (absolute) depends on: the one found and the
/// candidates tried before it (whose creation would change the answer).
pub fn candidates(fs: &dyn Fs, target: &Path, top: Option<&Path>) -> Vec<PathBuf> {
    let Some((dir, name)) = crate::fs::paths::split(target) else {
        return Vec::new();
    };
    let Ok(lookup) = find(fs, dir, name, top) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = lookup
        .missing
        .iter()
        .map(|m| crate::fs::paths::resolve(dir, m.as_os_str()))
        .collect();
    out.extend(lookup.found.map(|f| f.path));
    out
}

fn found(
    dir: &Path,
    name: &OsStr,
    do_dir: &Path,
    do_name: OsString,
    up: usize,
    is_default: bool,
) -> DoFile {
    let comps: Vec<&OsStr> = dir.iter().skip(1).collect();
    let dir_prefix: PathBuf = comps[comps.len().saturating_sub(up)..].iter().collect();
    let mut rel = PathBuf::new();
    for _ in 0..up {
        rel.push("..");
    }
    rel.push(&do_name);
    let t = name.as_bytes();
    let dn = do_name.as_bytes();
    // `default.<ext>.do` matched: $2 drops ".<ext>". `default.do` and `T.do` keep the name.
    let base = if is_default && dn.len() > "default.do".len() {
        let ext_len = dn.len() - "default.".len() - ".do".len();
        &t[..t.len().saturating_sub(ext_len + 1)]
    } else {
        t
    };
    DoFile {
        path: do_dir.join(&do_name),
        dir: do_dir.to_path_buf(),
        name: do_name,
        rel,
        arg1: dir_prefix.join(name),
        arg2: dir_prefix.join(OsStr::from_bytes(base)),
        dir_prefix,
        is_default,
    }
}

/// A `#!` line the kernel would refuse (longer than it reads).
#[derive(Debug, thiserror::Error)]
#[error(
    "the #! line of {} is longer than {} bytes: shorten it, or make the .do executable",
    crate::fs::paths::show(.0),
    SHEBANG_MAX - 1
)]
pub struct ShebangTooLong(pub PathBuf);

/// How many bytes of a `.do` are read for its `#!` line: the kernel's own limit
/// (`BINPRM_BUF_SIZE`), so a line the kernel would refuse is refused here too.
pub const SHEBANG_MAX: usize = 256;

/// The interpreter a non-executable `.do` asks for on its first line (`head`: at most
/// [`SHEBANG_MAX`] bytes from the start of the file), as `argv` without the script: `None`
/// means goredo's `/bin/sh -e`.
///
/// apenwarr's redo runs such a `.do` with the `#!` program, its arguments split on spaces;
/// goredo ignores the line. The words are split on blanks as apenwarr's redo does (not as
/// the kernel, which passes everything after the program as one argument), so that
/// `#!/usr/bin/env bash -e` works. `#!/bin/sh` alone or with `-e` keeps goredo's `sh -e`
/// (and `-x` tracing): those `.do` files mean exactly that already.
pub fn interpreter(head: &[u8], do_path: &Path) -> Result<Option<Vec<OsString>>, ShebangTooLong> {
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => &rest[..end],
        None if head.len() >= SHEBANG_MAX => {
            return Err(ShebangTooLong(do_path.to_path_buf()));
        }
        None => rest,
    };
    let words: Vec<OsString> = line
        .split(|&b| b == b' ' || b == b'\t' || b == b'\r')
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from_vec(w.to_vec()))
        .collect();
    let plain_sh = match words.as_slice() {
        [] => true,
        [sh] => sh == "/bin/sh",
        [sh, e] => sh == "/bin/sh" && e == "-e",
        _ => false,
    };
    Ok((!plain_sh).then_some(words))
}

#[cfg(test)]
mod tests;
