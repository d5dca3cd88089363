//! Where reports go and how they are written.
//!
//! `redo --timings=FILE` and `redo --trace=FILE` write FILE ([`write_atomic`]). `--timings`
//! without a file writes ([`write_report`]):
//!
//! ```text
//! ROOT/.redo/timings/timings-20260315T101530.123Z.html   this build's report (UTC start time)
//! ROOT/.redo/timings/latest.html                          the newest report (a hard link)
//! ```
//!
//! where ROOT is the project root. The [`KEEP_REPORTS`] newest timestamped reports are kept,
//! older ones removed. In `--watch`, each round is a build of its own and gets its own report;
//! `latest.html` is always the last round's.
//!
//! Every write is atomic: a temporary beside the file (`.redo.<name>.<16 hex>`, which
//! `redo-cleanup tmp` knows), then a rename, so a browser reloading `latest.html` never reads
//! half a report. They are not fsynced: a report is a diagnostic, never an input of a build.

use super::Error;
use super::utc::Utc;
use crate::store::durable::create_new;
use crate::store::layout::{redo_dir, temp_path};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many timestamped reports `.redo/timings/` keeps.
pub const KEEP_REPORTS: usize = 20;

const PREFIX: &str = "timings-";
const SUFFIX: &str = ".html";
const LATEST: &str = "latest.html";

/// `ROOT/.redo/timings`.
pub fn timings_dir(root: &Path) -> PathBuf {
    redo_dir(root).join("timings")
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// This build's report, timestamped: the path to print.
    pub report: PathBuf,
    /// `latest.html`, the same file.
    pub latest: PathBuf,
}

/// Writes `html` as the report of a build started at `started` in the default place under
/// `root`, points `latest.html` at it and removes the oldest reports beyond [`KEEP_REPORTS`].
pub fn write_report(root: &Path, started: SystemTime, html: &[u8]) -> Result<Written, Error> {
    let dir = timings_dir(root);
    fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    let report = free_name(&dir, &Utc::of(started).stamp());
    write_atomic(&report, html)?;
    let latest = dir.join(LATEST);
    link_atomic(&report, &latest, html)?;
    prune(&dir, KEEP_REPORTS)?;
    Ok(Written { report, latest })
}

/// `dir/timings-STAMP.html`, or with `-2`, `-3`… when two builds started in the same
/// millisecond.
fn free_name(dir: &Path, stamp: &str) -> PathBuf {
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let p = dir.join(format!("{PREFIX}{stamp}{suffix}{SUFFIX}"));
        if n >= 1000 || fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Writes `bytes` to `path` through a temporary beside it and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let (dir, name) = parts(path)?;
    let tmp = temp_path(dir, name);
    let written = create_new(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(Error::io("write", &tmp));
    let renamed = written.and_then(|()| fs::rename(&tmp, path).map_err(Error::io("rename", &tmp)));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Makes `link` another name of `target` atomically (a hard link made beside it, then
/// renamed over it); where hard links are refused, writes `bytes` to `link` instead.
fn link_atomic(target: &Path, link: &Path, bytes: &[u8]) -> Result<(), Error> {
    let (dir, name) = parts(link)?;
    let tmp = temp_path(dir, name);
    if fs::hard_link(target, &tmp).is_err() {
        return write_atomic(link, bytes);
    }
    fs::rename(&tmp, link).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("rename", &tmp)(e)
    })
}

fn parts(path: &Path) -> Result<(&Path, &OsStr), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::NotAFile(path.to_path_buf()))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    Ok((dir.unwrap_or(Path::new(".")), name))
}

/// Removes the oldest `timings-*.html` in `dir` beyond the `keep` newest (by name: the
/// timestamps sort in time order).
fn prune(dir: &Path, keep: usize) -> Result<(), Error> {
    let mut reports: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Error::io("list", dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.as_bytes();
                n.starts_with(PREFIX.as_bytes()) && n.ends_with(SUFFIX.as_bytes())
            })
        })
        .collect();
    reports.sort();
    let excess = reports.len().saturating_sub(keep);
    for old in &reports[..excess] {
        fs::remove_file(old).map_err(Error::io("remove", old))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
