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

/// A job's process group and temporaries; see the module docs.
pub struct RunningJob {
    pgid: Option<i32>,
    temps: Vec<PathBuf>,
    entry: Option<PathBuf>,
}

impl RunningJob {
    /// Owns `temps` from now on (removed on drop even if the `.do` never starts).
    pub fn new(temps: Vec<PathBuf>) -> RunningJob {
        RunningJob {
            pgid: None,
            temps,
            entry: None,
        }
    }

    /// The `.do` runs as group `pgid`: registers it in `registry` (a directory) if given.
    pub fn started(&mut self, pgid: i32, registry: Option<&Path>, id: u64) {
        self.pgid = Some(pgid);
        let Some(dir) = registry else { return };
        let mut entry = Vec::with_capacity(256);
        entry.extend_from_slice(format!("{pgid}\0{}\0", start_time(pgid).unwrap_or(0)).as_bytes());
        for t in &self.temps {
            entry.extend_from_slice(t.as_os_str().as_bytes());
            entry.push(0);
        }
        let path = dir.join(format!("{id}"));
        // A registry that cannot be written only weakens recovery from a daemon crash.
        match fs::File::create(&path).and_then(|mut f| f.write_all(&entry)) {
            Ok(()) => self.entry = Some(path),
            Err(e) => tracing::warn!("cannot register job {id} in {}: {e}", dir.display()),
        }
    }

    pub fn pgid(&self) -> Option<i32> {
        self.pgid
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
        if let Some(e) = &self.entry {
            let _ = fs::remove_file(e);
        }
    }
}

/// What [`sweep`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub groups_killed: usize,
    pub temps_removed: usize,
}

/// Kills the `.do` groups a dead daemon left running and removes their temporaries. Run by a
/// new daemon before it serves anything (it holds the pid lock: the old one is gone).
pub fn sweep(registry: &Path) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = fs::read_dir(registry) else {
        return swept;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(data) = fs::read(&path) else { continue };
        let mut fields = data.split(|&b| b == 0);
        let num = |f: Option<&[u8]>| {
            f.and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|s| s.parse::<i64>().ok())
        };
        let (pgid, start) = (num(fields.next()), num(fields.next()));
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
        for t in fields.filter(|f| !f.is_empty()) {
            let p = Path::new(std::ffi::OsStr::from_bytes(t));
            if p.symlink_metadata().is_ok() {
                remove_temp(p);
                swept.temps_removed += 1;
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
        let mut job = RunningJob::new(vec![temp.clone()]);
        job.started(pgid, Some(&reg), 7);
        // The daemon "dies": the job is forgotten without its Drop.
        std::mem::forget(job);
        assert!(reg.join("7").exists());
        let swept = sweep(&reg);
        assert_eq!(
            swept,
            Swept {
                groups_killed: 1,
                temps_removed: 1
            }
        );
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(!temp.exists() && !reg.join("7").exists());
        assert_eq!(sweep(&reg), Swept::default());
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
        let mut job = RunningJob::new(vec![]);
        job.started(pgid, None, 1);
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
