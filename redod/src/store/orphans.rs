//! No `.do` outlives its job, and none outlives its daemon for long.
//!
//! Every `.do` runs in a process group of its own. [`RunningJob`] owns that group and the
//! job's temporary files: when the job ends, however it ends (success, failure, a killed
//! `.do`, a cancelled build), whatever is still running in the group is terminated and the
//! temporaries are removed.
//!
//! A daemon killed with SIGKILL cannot do that, and its `.do`s live on (they are in their own
//! groups, re-parented to init) and may still write their temporaries. So every job is also
//! written down in the daemon's [`Registry`], an append-only journal in the runtime directory:
//! its temporaries before they exist, then its group and the start time of the group's leader
//! (so that a recycled pid is never mistaken for it), then its end. The next daemon, before it
//! serves anything, kills the groups of jobs that never ended, removes their temporaries and
//! settles their half-done commits ([`sweep`], [`crate::store::durable::settle_pending`]).
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
use std::time::{Duration, Instant};

use crate::fs::umask::UmaskGate;

/// The journal of running jobs, in the runtime directory.
pub const JOURNAL: &str = "jobs.journal";

/// Start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    // One `read`: the whole line is a few hundred bytes (`fs::read` would stat the file and
    // read it in growing pieces, seven system calls for a file whose size says 0).
    let mut buf = [0u8; 1024];
    let mut f = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = f.read(&mut buf).ok()?;
    let stat = &buf[..n];
    // The command name (field 2) may contain anything; fields resume after its last ')'.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = std::str::from_utf8(after)
        .ok()?
        .split_whitespace()
        .nth(19)?;
    field.parse().ok()
}

/// Now, in the clock ticks since boot that `/proc/<pid>/stat` counts start times in. Taken
/// just after a spawn, it is the child's start time or a little later: the kernel stamps a
/// process with `CLOCK_BOOTTIME` when it is created and reports it rounded down to ticks.
/// Asking the clock (a vDSO call) instead of reading the child's `/proc` entry saves the most
/// expensive system call on the spawn path.
pub fn ticks_since_boot() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&h| h > 0)
        .unwrap_or(100) as u64;
    ts.map_or(0, |t| {
        let ns = (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64;
        ns / (1_000_000_000 / hz)
    })
}

/// How much later than the process's own start a recorded start may be (the time between
/// the spawn and the clock reading; 1 s at 100 Hz). A process group leader whose pid was
/// recycled within that second of the original's start is the only one mistaken for ours.
const START_SLACK: u64 = 100;

/// Whether a process that started at `now` (ticks) is not the one recorded as started at
/// `recorded` (0: unknown, taken as ours).
fn recycled(recorded: u64, now: u64) -> bool {
    recorded != 0 && (now > recorded || recorded - now > START_SLACK)
}

fn group_exists(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

fn signal_group(pgid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
}

/// Removes a temporary file, or a directory a `.do` made at `$3`.
fn remove_temp(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}

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

/// A job's process group and temporaries; see the module docs.
pub struct RunningJob {
    pgid: Option<i32>,
    temps: Vec<PathBuf>,
    /// The commit put the temporaries in place (or removed them): nothing to look for,
    /// unless something of the `.do` still runs and could make them again.
    committed: bool,
    registry: Option<(Arc<Registry>, u64)>,
}

impl RunningJob {
    /// Registers the job (before any of its files exist, so that a daemon killed at any moment
    /// leaves nothing unlisted) and owns its temporaries from now on.
    pub fn new(registry: Option<&Arc<Registry>>, id: u64, files: JobFiles) -> RunningJob {
        let temps = files.temps.clone();
        if let Some(r) = registry {
            r.append(id, &Entry::Planned(files));
        }
        RunningJob {
            pgid: None,
            temps,
            committed: false,
            registry: registry.map(|r| (r.clone(), id)),
        }
    }

    /// The `.do` runs as group `pgid`.
    pub fn started(&mut self, pgid: i32) {
        self.pgid = Some(pgid);
        if let Some((r, id)) = &self.registry {
            let start = ticks_since_boot();
            r.append(*id, &Entry::Started { pgid, start });
        }
    }

    /// The job's commit consumed its temporaries (renamed into place, or removed).
    pub fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        let leftovers = self.pgid.filter(|p| group_exists(*p));
        if let Some(pgid) = leftovers {
            // Leftovers of a finished `.do`, or a cancelled one: TERM now, KILL shortly.
            signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            });
        }
        if leftovers.is_some() || !self.committed {
            for t in &self.temps {
                remove_temp(t);
            }
        }
        if let Some((r, id)) = &self.registry {
            r.append(*id, &Entry::Ended);
        }
    }
}

/// What [`sweep`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub groups_killed: usize,
    pub temps_removed: usize,
    pub commits_finished: usize,
}

/// What the journal says of one job.
#[derive(Default)]
struct Seen {
    files: Option<JobFiles>,
    group: Option<(i32, u64)>,
    ended: bool,
}

/// Kills the `.do` groups a dead daemon left running, removes their temporaries and settles
/// their interrupted commits, from its journal at `path`, which is then removed. Run by a new
/// daemon before it serves anything (it holds the pid lock: the old one is gone).
pub fn sweep(path: &Path, gate: &UmaskGate) -> Swept {
    let mut swept = Swept::default();
    let Ok(data) = fs::read(path) else {
        return swept;
    };
    let mut jobs: HashMap<u64, Seen> = HashMap::new();
    let mut order = Vec::new();
    for (id, e) in replay(&data) {
        let seen = jobs.entry(id).or_insert_with(|| {
            order.push(id);
            Seen::default()
        });
        match e {
            Entry::Planned(f) => seen.files = Some(f),
            Entry::Started { pgid, start } => seen.group = Some((pgid, start)),
            Entry::Ended => seen.ended = true,
        }
    }
    for id in order {
        let Some(seen) = jobs.remove(&id) else {
            continue;
        };
        if !seen.ended {
            if let Some((pgid, start)) = seen.group {
                // A leader alive with another start time is a recycled pid: not ours.
                let reused = start_time(pgid).is_some_and(|now| recycled(start, now));
                if pgid > 0 && !reused && group_exists(pgid) {
                    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    swept.groups_killed += 1;
                    // Dead before its temporaries go, or it could write them again.
                    let until = Instant::now() + Duration::from_secs(2);
                    while group_exists(pgid) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            for p in seen.files.iter().flat_map(|f| &f.temps) {
                if p.symlink_metadata().is_ok() {
                    remove_temp(p);
                    swept.temps_removed += 1;
                }
            }
        }
        if let Some(files) = seen.files.as_ref().filter(|_| !seen.ended) {
            let settled = crate::store::durable::settle_pending(
                &files.rec_path,
                &files.target,
                files.sync,
                gate,
                files.umask,
            );
            match settled {
                Ok(true) => swept.commits_finished += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    "cannot settle the interrupted commit of {}: {e}",
                    files.target.display()
                ),
            }
        }
    }
    let _ = fs::remove_file(path);
    swept
}

#[cfg(test)]
mod tests;
