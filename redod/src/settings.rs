//! What a request's environment asks for (docs/BEHAVIOUR.md §4). Every request carries its client's
//! environment; these are read from it, never from the daemon's own.

use crate::fs::paths;
use crate::jobserver::MakeStyle;
use crate::ood::Trust;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A client's environment, in order. Later entries win, as with Go's `os/exec`.
#[derive(Clone, Debug, Default)]
pub struct Env(pub Vec<(OsString, OsString)>);

impl Env {
    pub fn from_bytes(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
            .collect())
    }

    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == name.as_bytes())
            .map(|(_, v)| v.as_os_str())
    }

    /// An environment from `NAME=value` pairs, for tests.
    #[cfg(test)]
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Env {
        Env::from_bytes(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// goredo's toggles are on only when exactly "1".
    pub fn is_one(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.as_bytes() == b"1")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub trust: Trust,
    pub no_sync: bool,
    pub stop_if_modified: bool,
    pub keep_logs: bool,
    pub silent: bool,
    pub trace_all: bool,
    pub debug: bool,
    pub log_pid: bool,
    pub log_wait: bool,
    pub log_lock: bool,
    pub log_js: bool,
    pub no_progress: bool,
    pub no_status: bool,
    pub no_color: bool,
    /// `REDO_JOBS`: `Some(0)` = unlimited.
    pub jobs: Option<u32>,
    /// `REDO_TOP_DIR`, made absolute against the requester's cwd.
    pub top_dir: Option<PathBuf>,
    /// `REDO_MAKE`: how `.do` children learn about the job tokens.
    pub make: MakeStyle,
    /// `REDO_NO_WATCH=1`: this build stats every file itself.
    pub no_watch: bool,
    /// `REDO_KEEP_GOING=1` (`--keep-going`): a failure stops nothing else; every target that
    /// can be built is, and the request fails at the end.
    pub keep_going: bool,
    /// `REDO_SHUFFLE=1` (`--shuffle`): the targets of each request are started in random
    /// order, to find dependencies nobody declared.
    pub shuffle: bool,
}

impl Settings {
    pub fn from_env(env: &Env, cwd: &Path) -> Result<Settings, SettingsError> {
        Settings::from_pairs(env.0.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())), cwd)
    }

    /// As [`Settings::from_env`], from `NAME`/value pairs as a request carries them (later
    /// pairs win). One pass over the environment: every request reads its settings.
    pub fn from_pairs<'a>(
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        cwd: &Path,
    ) -> Result<Settings, SettingsError> {
        let env = Vars::of(pairs);
        let trust = parse_trust(env.get("REDO_INODE_TRUST"))?;
        let jobs = match env.get("REDO_JOBS").filter(|v| !v.is_empty()) {
            None => None,
            // A goredo parent in unlimited mode tells its children "NO".
            Some(b"NO") => Some(0),
            Some(v) => Some(
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| SettingsError::Jobs(String::from_utf8_lossy(v).into_owned()))?,
            ),
        };
        let no_progress = env.is_one("REDO_NO_PROGRESS");
        Ok(Settings {
            trust,
            no_sync: env.is_one("REDO_NO_SYNC"),
            stop_if_modified: env.is_one("REDO_STOP_IF_MODIFIED"),
            keep_logs: env.is_one("REDO_LOGS"),
            silent: env.is_one("REDO_SILENT"),
            trace_all: env.is_one("REDO_TRACE"),
            debug: env.is_one("REDO_DEBUG"),
            log_pid: env.is_one("REDO_LOG_PID") || env.is_one("REDO_DEBUG"),
            log_wait: env.is_one("REDO_LOG_WAIT"),
            log_lock: env.is_one("REDO_LOG_LOCK"),
            log_js: env.is_one("REDO_LOG_JS"),
            no_progress,
            no_status: no_progress || env.is_one("REDO_NO_STATUS"),
            no_color: env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
            jobs,
            top_dir: env
                .get("REDO_TOP_DIR")
                .filter(|v| !v.is_empty())
                .map(|t| paths::resolve(cwd, OsStr::from_bytes(t))),
            make: parse_make(env.get("REDO_MAKE"))?,
            no_watch: env.is_one("REDO_NO_WATCH"),
            keep_going: env.is_one("REDO_KEEP_GOING"),
            shuffle: env.is_one("REDO_SHUFFLE"),
        })
    }
}

/// The variables [`Settings`] reads.
const NAMES: [&str; 20] = [
    "REDO_INODE_TRUST",
    "REDO_JOBS",
    "REDO_NO_PROGRESS",
    "REDO_NO_SYNC",
    "REDO_STOP_IF_MODIFIED",
    "REDO_LOGS",
    "REDO_SILENT",
    "REDO_TRACE",
    "REDO_DEBUG",
    "REDO_LOG_PID",
    "REDO_LOG_WAIT",
    "REDO_LOG_LOCK",
    "REDO_LOG_JS",
    "REDO_NO_STATUS",
    "NO_COLOR",
    "REDO_TOP_DIR",
    "REDO_MAKE",
    "REDO_NO_WATCH",
    "REDO_KEEP_GOING",
    "REDO_SHUFFLE",
];

/// The values of [`NAMES`] in one environment, found in one pass (the last pair wins).
struct Vars<'a>([Option<&'a [u8]>; NAMES.len()]);

impl<'a> Vars<'a> {
    fn of(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vars<'a> {
        let mut found = [None; NAMES.len()];
        for (k, v) in pairs {
            if !k.starts_with(b"REDO_") && k != b"NO_COLOR" {
                continue;
            }
            if let Some(i) = NAMES.iter().position(|n| n.as_bytes() == k) {
                found[i] = Some(v);
            }
        }
        Vars(found)
    }

    fn get(&self, name: &str) -> Option<&'a [u8]> {
        let i = NAMES.iter().position(|n| *n == name);
        debug_assert!(i.is_some(), "{name} is not in NAMES");
        i.and_then(|i| self.0[i])
    }

    /// goredo's toggles are on only when exactly "1".
    fn is_one(&self, name: &str) -> bool {
        self.get(name) == Some(b"1")
    }
}

/// `REDO_INODE_TRUST`.
fn parse_trust(v: Option<&[u8]>) -> Result<Trust, SettingsError> {
    match v {
        None | Some(b"") | Some(b"ctime") => Ok(Trust::Ctime),
        Some(b"none") => Ok(Trust::None),
        Some(b"mtime") => Ok(Trust::Mtime),
        Some(other) => Err(SettingsError::Trust(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

/// `REDO_MAKE`.
fn parse_make(v: Option<&[u8]>) -> Result<MakeStyle, SettingsError> {
    match v {
        None | Some(b"") | Some(b"gmake") => Ok(MakeStyle::Gmake),
        Some(b"fifo") => Ok(MakeStyle::Fifo),
        Some(b"bmake") => Ok(MakeStyle::Bmake),
        Some(b"none") => Ok(MakeStyle::None),
        Some(other) => Err(SettingsError::Make(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

/// A variable of the request's environment with a value redo cannot use: the message names
/// it and the values it takes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("invalid REDO_JOBS value '{0}': use a number, 0 for unlimited")]
    Jobs(String),
    #[error("unknown REDO_INODE_TRUST value '{0}': use none, ctime or mtime")]
    Trust(String),
    #[error("unknown REDO_MAKE value '{0}': use gmake, fifo, bmake or none")]
    Make(String),
}

#[cfg(test)]
mod tests;
