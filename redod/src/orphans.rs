//! No `.do` outlives its job, and none outlives its daemon for long.
//!
//! Every `.do` runs in a process group of its own. [`RunningJob`] owns that group and the
//! job's temporary files: when the job ends, however it ends (success, failure, a killed
//! `.do`, a cancelled build), whatever is still running in the group is terminated and the
//! temporaries are removed.
//!
//! A daemon killed with SIGKILL cannot do that, and its `.do`s live on (they are in their own
//! groups, re-parented to init) and may still write their temporaries. So each running job is
//! also registered as a small file in `<runtime dir>/jobs/`: the group, the start time of its
//! leader (so that a recycled pid is never mistaken for it) and its temporaries. The next
//! daemon, before it serves anything, kills the groups still listed there and removes their
//! temporaries ([`sweep`]).

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::umask::UmaskGate;

/// Start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain anything; fields resume after its last ')'.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = std::str::from_utf8(after)
        .ok()?
        .split_whitespace()
        .nth(19)?;
    field.parse().ok()
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
pub struct JobFiles {
    pub target: PathBuf,
    pub rec_path: PathBuf,
    pub umask: u32,
    pub sync: bool,
    /// Removed when the job ends (the `.do`'s stdout and `$3`).
    pub temps: Vec<PathBuf>,
}

/// A job's process group and temporaries; see the module docs.
pub struct RunningJob {
    pgid: Option<i32>,
    temps: Vec<PathBuf>,
    entry: Option<(PathBuf, Vec<u8>)>,
}

impl RunningJob {
    /// Registers the job (before any of its files exist, so that a daemon killed at any moment
    /// leaves nothing unlisted) and owns its temporaries from now on.
    pub fn new(registry: Option<&Path>, id: u64, files: JobFiles) -> RunningJob {
        let mut job = RunningJob {
            pgid: None,
            temps: files.temps.clone(),
            entry: None,
        };
        if let Some(dir) = registry {
            let mut tail = Vec::with_capacity(512);
            tail.extend_from_slice(
                format!("{}\0{}\0", files.umask, u8::from(files.sync)).as_bytes(),
            );
            let commit_temp = crate::durable::rec_temp_path(&files.rec_path);
            for p in [&files.target, &files.rec_path]
                .into_iter()
                .chain(&files.temps)
                .chain([&commit_temp])
            {
                tail.extend_from_slice(p.as_os_str().as_bytes());
                tail.push(0);
            }
            job.entry = Some((dir.join(format!("{id}")), tail));
            job.write_entry();
        }
        job
    }

    fn write_entry(&mut self) {
        let Some((path, tail)) = &self.entry else {
            return;
        };
        let pgid = self.pgid.unwrap_or(0);
        let start = if pgid > 0 {
            start_time(pgid).unwrap_or(0)
        } else {
            0
        };
        let mut data = format!("1\0{pgid}\0{start}\0").into_bytes();
        data.extend_from_slice(tail);
        // A registry that cannot be written only weakens recovery from a daemon crash.
        if let Err(e) = fs::File::create(path).and_then(|mut f| f.write_all(&data)) {
            tracing::warn!("cannot register a job in {}: {e}", path.display());
            self.entry = None;
        }
    }

    /// The `.do` runs as group `pgid`.
    pub fn started(&mut self, pgid: i32) {
        self.pgid = Some(pgid);
        self.write_entry();
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.filter(|p| group_exists(*p)) {
            // Leftovers of a finished `.do`, or a cancelled one: TERM now, KILL shortly.
            signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            });
        }
        for t in &self.temps {
            remove_temp(t);
        }
        if let Some((e, _)) = &self.entry {
            let _ = fs::remove_file(e);
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

/// Kills the `.do` groups a dead daemon left running, removes their temporaries and settles
/// their interrupted commits. Run by a new daemon before it serves anything (it holds the pid
/// lock: the old one is gone).
pub fn sweep(registry: &Path, gate: &UmaskGate) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = fs::read_dir(registry) else {
        return swept;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(data) = fs::read(&path) else { continue };
        let mut fields = data.split(|&b| b == 0);
        let mut num = || {
            fields
                .next()
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|s| s.parse::<i64>().ok())
        };
        let (version, pgid, start, umask, sync) = (num(), num(), num(), num(), num());
        if version != Some(1) {
            let _ = fs::remove_file(&path);
            continue;
        }
        if let (Some(pgid), Some(start)) = (pgid.and_then(|p| i32::try_from(p).ok()), start) {
            // A leader alive with another start time is a recycled pid: not ours.
            let recycled = start_time(pgid)
                .is_some_and(|now| start != 0 && i64::try_from(now).ok() != Some(start));
            if pgid > 0 && !recycled && group_exists(pgid) {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                swept.groups_killed += 1;
                // Dead before its temporaries go, or it could write them again.
                let until = Instant::now() + Duration::from_secs(2);
                while group_exists(pgid) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let mut paths = fields
            .filter(|f| !f.is_empty())
            .map(|f| PathBuf::from(std::ffi::OsStr::from_bytes(f)));
        let (target, rec_path) = (paths.next(), paths.next());
        for p in paths {
            if p.symlink_metadata().is_ok() {
                remove_temp(&p);
                swept.temps_removed += 1;
            }
        }
        if let (Some(target), Some(rec_path)) = (target, rec_path) {
            let umask = umask.and_then(|u| u32::try_from(u).ok()).unwrap_or(0o022);
            match crate::durable::settle_pending(&rec_path, &target, sync != Some(0), gate, umask) {
                Ok(true) => swept.commits_finished += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    "cannot settle the interrupted commit of {}: {e}",
                    target.display()
                ),
            }
        }
        let _ = fs::remove_file(&path);
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn sweep_kills_registered_groups_and_removes_temps() {
        let dir = std::env::temp_dir().join(format!("redod-orphans-{}", std::process::id()));
        let reg = dir.join("jobs");
        fs::create_dir_all(&reg).unwrap();
        let temp = dir.join(".redo.t.0123");
        fs::write(&temp, "partial").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        let files = JobFiles {
            target: dir.join("t"),
            rec_path: dir.join(".redo/t.rec"),
            umask: 0o022,
            sync: false,
            temps: vec![temp.clone()],
        };
        let mut job = RunningJob::new(Some(&reg), 7, files);
        job.started(pgid);
        // The daemon "dies": the job is forgotten without its Drop.
        std::mem::forget(job);
        assert!(reg.join("7").exists());
        let gate = UmaskGate::new(0o022);
        let swept = sweep(&reg, &gate);
        assert_eq!(
            swept,
            Swept {
                groups_killed: 1,
                temps_removed: 1,
                commits_finished: 0
            }
        );
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(!temp.exists() && !reg.join("7").exists());
        assert_eq!(sweep(&reg, &gate), Swept::default());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_finished_job_takes_its_leftovers_with_it() {
        let dir = std::env::temp_dir().join(format!("redod-leftovers-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // A "`.do`" that leaves a background process behind and exits.
        let mut sh = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 60 & echo $!")
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pgid = i32::try_from(sh.id()).unwrap();
        let files = JobFiles {
            target: dir.join("t"),
            rec_path: dir.join(".redo/t.rec"),
            umask: 0o022,
            sync: false,
            temps: vec![],
        };
        let mut job = RunningJob::new(None, 1, files);
        job.started(pgid);
        sh.wait().unwrap();
        assert!(group_exists(pgid), "the background sleep is still there");
        drop(job);
        let until = Instant::now() + Duration::from_secs(3);
        while group_exists(pgid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!group_exists(pgid), "the group is gone with its job");
        fs::remove_dir_all(&dir).unwrap();
    }
}
