//! The journal of running jobs (`jobs.journal`, in the runtime directory): append-only, each
//! job's temporaries written down before they exist, then its process group and the start
//! time of the group's leader (so that a recycled pid is never mistaken for it), then its
//! end. A daemon killed with SIGKILL leaves it behind; the next one reads what never ended
//! ([`unfinished`]) and cleans up after it (`exec::orphans`: this module is only the record).
//!
//! A journal rather than a file per job: appending to an open file costs a `write`, creating
//! and removing a file costs two directory updates, which on some filesystems take a
//! millisecond each, per job.

use crate::sync::lock;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The journal's name in the runtime directory.
pub const JOURNAL: &str = "jobs.journal";

/// What a job may leave behind, known before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFiles {
    pub target: PathBuf,
    pub rec_path: PathBuf,
    pub umask: u32,
    pub sync: bool,
    /// Removed when the job ends: where the commit writes the `.do`'s stdout out, `$3` (after
    /// an exchange with a directory target, the old target). Listed before any exists.
    pub temps: Vec<PathBuf>,
}

#[cfg(test)]
impl JobFiles {
    /// A job of target `dir/t` (state `dir/.redo/t.rec`) with these temporaries, for tests.
    pub(crate) fn of_t(dir: &Path, temps: Vec<PathBuf>) -> JobFiles {
        JobFiles {
            target: dir.join("t"),
            rec_path: dir.join(".redo/t.rec"),
            umask: 0o022,
            sync: false,
            temps,
        }
    }
}

/// One journal entry.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    /// Before any of the job's files exist.
    Planned(JobFiles),
    /// Its `.do` runs as group `pgid`, whose leader started at `start`.
    Started { pgid: i32, start: u64 },
    /// The job is over: group signalled, temporaries removed.
    Ended,
}

const PLANNED: u8 = 1;
const STARTED: u8 = 2;
const ENDED: u8 = 3;

/// `len (u32 LE) | kind | job id (u64 LE) | payload | check (u32 LE)`, where `len` counts
/// everything after itself and `check` is the start of the BLAKE3 of kind, id and payload:
/// a record torn by a crash, or garbage, ends the replay instead of being misread.
fn encode(id: u64, e: &Entry) -> Vec<u8> {
    let (kind, payload): (u8, Vec<u8>) = match e {
        Entry::Planned(f) => {
            let mut p = Vec::with_capacity(256);
            p.extend_from_slice(&f.umask.to_le_bytes());
            p.push(u8::from(f.sync));
            for path in [&f.target, &f.rec_path].into_iter().chain(&f.temps) {
                p.extend_from_slice(path.as_os_str().as_bytes());
                p.push(0);
            }
            (PLANNED, p)
        }
        Entry::Started { pgid, start } => {
            let mut p = pgid.to_le_bytes().to_vec();
            p.extend_from_slice(&start.to_le_bytes());
            (STARTED, p)
        }
        Entry::Ended => (ENDED, Vec::new()),
    };
    let mut body = Vec::with_capacity(9 + payload.len());
    body.push(kind);
    body.extend_from_slice(&id.to_le_bytes());
    body.extend_from_slice(&payload);
    let check = blake3::hash(&body);
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&check.as_bytes()[..4]);
    out
}

fn le_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

fn le_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

fn decode_payload(kind: u8, p: &[u8]) -> Option<Entry> {
    Some(match kind {
        PLANNED => {
            let umask = le_u32(p)?;
            let sync = *p.get(4)? != 0;
            let rest = p.get(5..)?;
            let mut paths = rest
                .split(|&b| b == 0)
                .filter(|f| !f.is_empty())
                .map(|f| PathBuf::from(std::ffi::OsStr::from_bytes(f)));
            let (target, rec_path) = (paths.next()?, paths.next()?);
            Entry::Planned(JobFiles {
                target,
                rec_path,
                umask,
                sync,
                temps: paths.collect(),
            })
        }
        STARTED => Entry::Started {
            pgid: i32::from_le_bytes(p.get(..4)?.try_into().ok()?),
            start: le_u64(p.get(4..)?)?,
        },
        ENDED => Entry::Ended,
        _ => return None,
    })
}

/// The entries of a journal, up to the first one that is torn or damaged.
fn replay(data: &[u8]) -> Vec<(u64, Entry)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(len) = data.get(at..).and_then(le_u32) {
        let len = len as usize;
        let Some(rec) = data.get(at + 4..at + 4 + len).filter(|_| len >= 13) else {
            break;
        };
        let (body, check) = rec.split_at(len - 4);
        if &blake3::hash(body).as_bytes()[..4] != check {
            break;
        }
        let (Some(id), Some(e)) = (le_u64(&body[1..]), decode_payload(body[0], &body[9..])) else {
            break;
        };
        out.push((id, e));
        at += 4 + len;
    }
    out
}

/// Rewrite the journal with only the live entries once it grows past this.
const COMPACT_AT: u64 = 1 << 20;

struct Journal {
    file: File,
    len: u64,
    /// Entries of jobs not yet ended, in order: what a compaction keeps.
    live: HashMap<u64, Vec<Vec<u8>>>,
}

/// The daemon's journal of running jobs; see the module docs.
pub struct Registry {
    path: PathBuf,
    journal: Mutex<Journal>,
}

fn open_append(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).mode(0o600).custom_flags(libc::O_CLOEXEC);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

impl Registry {
    /// A new, empty journal at `path` (after [`sweep`] has read the old one).
    pub fn create(path: &Path) -> io::Result<Arc<Registry>> {
        let file = open_append(path, true)?;
        Ok(Arc::new(Registry {
            path: path.to_path_buf(),
            journal: Mutex::new(Journal {
                file,
                len: 0,
                live: HashMap::new(),
            }),
        }))
    }

    /// Job `id` is about to start: what it may leave behind (before any of it exists).
    pub fn planned(&self, id: u64, files: JobFiles) {
        self.append(id, &Entry::Planned(files));
    }

    /// Job `id`'s `.do` runs as group `pgid`, whose leader started at `start` (clock ticks
    /// since boot).
    pub fn started(&self, id: u64, pgid: i32, start: u64) {
        self.append(id, &Entry::Started { pgid, start });
    }

    /// Job `id` is over: its group signalled, its temporaries gone.
    pub fn ended(&self, id: u64) {
        self.append(id, &Entry::Ended);
    }

    fn append(&self, id: u64, e: &Entry) {
        let bytes = encode(id, e);
        let mut j = lock(&self.journal);
        // A journal that cannot be written only weakens recovery from a daemon crash.
        if let Err(err) = j.file.write_all(&bytes) {
            tracing::warn!(
                "cannot write the job journal {}: {err}",
                self.path.display()
            );
            return;
        }
        j.len += bytes.len() as u64;
        match e {
            Entry::Ended => {
                j.live.remove(&id);
            }
            _ => j.live.entry(id).or_default().push(bytes),
        }
        if j.len > COMPACT_AT {
            self.compact(&mut j);
        }
    }

    /// Replaces the journal by its live entries (atomically: a crash leaves the old or the new).
    fn compact(&self, j: &mut Journal) {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let live: Vec<u8> = j.live.values().flatten().flatten().copied().collect();
        let fresh = fs::write(&tmp, &live)
            .and_then(|()| fs::rename(&tmp, &self.path))
            .and_then(|()| open_append(&self.path, false));
        match fresh {
            Ok(f) => {
                j.file = f;
                j.len = live.len() as u64;
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                tracing::warn!(
                    "cannot compact the job journal {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// What the journal says of a job that never ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unfinished {
    pub files: Option<JobFiles>,
    /// Its process group and the start time of the group's leader.
    pub group: Option<(i32, u64)>,
}

/// The jobs of the journal at `path` that never ended, in the order they were planned
/// (none when there is no journal).
pub fn unfinished(path: &Path) -> Vec<Unfinished> {
    let Ok(data) = fs::read(path) else {
        return Vec::new();
    };
    let mut jobs: HashMap<u64, (Unfinished, bool)> = HashMap::new();
    let mut order = Vec::new();
    for (id, e) in replay(&data) {
        let (job, ended) = jobs.entry(id).or_insert_with(|| {
            order.push(id);
            Default::default()
        });
        match e {
            Entry::Planned(f) => job.files = Some(f),
            Entry::Started { pgid, start } => job.group = Some((pgid, start)),
            Entry::Ended => *ended = true,
        }
    }
    order
        .into_iter()
        .filter_map(|id| jobs.remove(&id))
        .filter(|(_, ended)| !ended)
        .map(|(job, _)| job)
        .collect()
}

#[cfg(test)]
mod tests;
