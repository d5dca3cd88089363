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
//! The journal's format and file are [`crate::store::journal`]'s.

use super::process::{recycled, signal_group, start_time, ticks_since_boot};
use crate::fs::Disk;
use crate::fs::umask::UmaskGate;
use crate::store::durable::remove_entry;
use crate::store::journal::{self, JobFiles, Registry};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A job's process group and temporaries; see the module docs.
pub(crate) struct RunningJob {
    pgid: Option<i32>,
    temps: Vec<PathBuf>,
    /// The commit put the temporaries in place (or removed them): nothing to look for,
    /// unless something of the `.do` still runs and could make them again.
    committed: bool,
    registry: Option<(Arc<Registry>, u64)>,
    /// Where the temporaries are.
    disk: Arc<dyn Disk>,
}

impl RunningJob {
    /// Registers the job (before any of its files exist, so that a daemon killed at any moment
    /// leaves nothing unlisted) and owns its temporaries from now on.
    pub(crate) fn new(
        disk: Arc<dyn Disk>,
        registry: Option<&Arc<Registry>>,
        id: u64,
        files: JobFiles,
    ) -> RunningJob {
        let temps = files.temps.clone();
        if let Some(r) = registry {
            r.planned(id, files);
        }
        RunningJob {
            pgid: None,
            temps,
            committed: false,
            registry: registry.map(|r| (r.clone(), id)),
            disk,
        }
    }

    /// The `.do` runs as group `pgid`.
    pub(crate) fn started(&mut self, pgid: i32) {
        self.pgid = Some(pgid);
        if let Some((r, id)) = &self.registry {
            r.started(*id, pgid, ticks_since_boot());
        }
    }

    /// The job's commit consumed its temporaries (renamed into place, or removed).
    pub(crate) fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        let leftovers = self.pgid.filter(|p| signal_group(*p, None));
        if let Some(pgid) = leftovers {
            // Leftovers of a finished `.do`, or a cancelled one: TERM now, KILL shortly.
            signal_group(pgid, Some(Signal::SIGTERM));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                signal_group(pgid, Some(Signal::SIGKILL));
            });
        }
        if leftovers.is_some() || !self.committed {
            for t in &self.temps {
                remove_entry(&*self.disk, t);
            }
        }
        if let Some((r, id)) = &self.registry {
            r.ended(*id);
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

/// Kills the `.do` groups a dead daemon left running, removes their temporaries (from
/// `disk`) and settles their interrupted commits, from its journal at `path`, which is then
/// removed. Run by a new daemon before it serves anything (it holds the pid lock: the old one
/// is gone).
pub fn sweep(disk: &dyn Disk, path: &Path, gate: &UmaskGate) -> Swept {
    let mut swept = Swept::default();
    for job in journal::unfinished(path) {
        if let Some((pgid, start)) = job.group {
            // A leader alive with another start time is a recycled pid: not ours.
            let reused = start_time(pgid).is_some_and(|now| recycled(start, now));
            if !reused && signal_group(pgid, None) {
                signal_group(pgid, Some(Signal::SIGKILL));
                swept.groups_killed += 1;
                // Dead before its temporaries go, or it could write them again.
                let until = Instant::now() + Duration::from_secs(2);
                while signal_group(pgid, None) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let Some(files) = job.files else {
            continue;
        };
        for p in &files.temps {
            if disk.lstat(p).is_ok_and(|m| m.is_some()) {
                remove_entry(disk, p);
                swept.temps_removed += 1;
            }
        }
        let settled = crate::store::durable::settle_pending(
            disk,
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
    let _ = std::fs::remove_file(path);
    swept
}

#[cfg(test)]
mod tests;
