//! The commit on the in-memory disk ([`MemFs`]), stopped at each of its steps.
//!
//! A commit is a fixed sequence of [`Disk`] operations (temporaries, writes, fsyncs, renames).
//! Each test runs it once to count them, then once per step: failing that step (the daemon
//! goes on: the commit must report it and leave the old target and state, or, past the
//! target's rename, a pending record proving the new one ours), or crashing there (the
//! daemon dies, and only what was synced survives; the next daemon's sweep then removes the
//! journaled temporaries and settles the pending record). Whatever the step, no target and
//! no state file is ever seen partly written, and a state file never describes a target
//! that is not there.

use super::*;
use crate::fs::mem::{Fault, MemFs, Op};
use crate::fs::{Fs, Kind};
use crate::store::layout::{rec_path, rec_temp_path};
use crate::store::recfile;

const OLD: &str = "old content";
const NEW: &str = "the new content";

/// A target `/p/t` built once before (`OLD`, with its state), about to be committed again.
struct World {
    fs: Arc<MemFs>,
    gate: UmaskGate,
    target: PathBuf,
    rec_path: PathBuf,
    /// Where the stdout is written out (journaled, as [`super::super::run`] does).
    stdout_tmp: PathBuf,
    /// `$3` (journaled too).
    arg3: PathBuf,
}

/// What a commit produces, for [`World::commit`].
#[derive(Clone, Copy, Debug)]
enum Made {
    /// `NEW` on stdout.
    Stdout,
    /// `NEW` fetched from the shared cache, executable (a cache restore).
    Fetched,
    /// `NEW` written to `$3`.
    Arg3,
    /// Nothing: the target becomes phony.
    Nothing,
    /// `OLD` again on stdout: the old file is kept.
    Same,
}

fn rec(build: &str, deps: Vec<Dep>) -> Rec {
    Rec {
        build: build.into(),
        deps,
    }
}

impl World {
    fn new() -> World {
        let fs = Arc::new(MemFs::default());
        let dir = Path::new("/p");
        let target = dir.join("t");
        let rec_path = rec_path(dir, OsStr::new("t"));
        fs.write("/p/src", "source");
        fs.write("/p/t", OLD);
        let own = Dep::Ifchange {
            target: b"t".to_vec(),
            stamp: fs.meta("/p/t").stamp,
            hash: Some(*blake3::hash(OLD.as_bytes()).as_bytes()),
        };
        let old = recfile::encode(&rec("old", vec![own]));
        fs.write("/p/.redo/t.rec", std::str::from_utf8(&old).unwrap());
        let stdout_tmp = dir.join(".redo.t.0123");
        let arg3 = dir.join(".redo.t.0123.3");
        World {
            fs,
            gate: UmaskGate::new(0o022),
            target,
            rec_path,
            stdout_tmp,
            arg3,
        }
    }

    fn disk(&self) -> Arc<dyn Disk> {
        self.fs.clone()
    }

    fn read(&self, p: &Path) -> Option<String> {
        self.fs
            .read(p)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    fn rec(&self) -> Rec {
        recfile::parse(self.read(&self.rec_path).unwrap().as_bytes()).unwrap()
    }

    /// The commit of `made`, with the state file's temporary made ahead (as while the `.do`
    /// ran) and the records a build of `t` from `src` gathers.
    fn commit(&self, made: Made) -> Commit {
        let capture = |content: &str| {
            use std::io::Write;
            let mut f = durable::capture(Path::new("/tmp")).unwrap();
            f.write_all(content.as_bytes()).unwrap();
            (f, content.len() as u64)
        };
        let output = match made {
            Made::Stdout | Made::Same => {
                let (file, size) = capture(if matches!(made, Made::Same) { OLD } else { NEW });
                Output::Captured {
                    file,
                    size,
                    executable: false,
                }
            }
            Made::Fetched => {
                let (file, size) = capture(NEW);
                Output::Captured {
                    file,
                    size,
                    executable: true,
                }
            }
            Made::Arg3 => {
                let f = self.fs.create_new(&self.arg3).unwrap();
                self.fs.write_at(&f, NEW.as_bytes(), 0).unwrap();
                Output::Arg3(
                    self.arg3.clone(),
                    self.fs.lstat(&self.arg3).unwrap().unwrap(),
                )
            }
            Made::Nothing => Output::Nothing,
        };
        let mut deps = Records::default();
        deps.extend([Dep::Ifchange {
            target: b"src".to_vec(),
            stamp: self.fs.meta("/p/src").stamp,
            hash: Some(self.fs.hash(Path::new("/p/src")).unwrap()),
        }]);
        Commit {
            dir: PathBuf::from("/p"),
            name: OsString::from("t"),
            output,
            target_kind: self.fs.lstat(&self.target).unwrap().map(|m| m.kind),
            stdout_tmp: self.stdout_tmp.clone(),
            prev_hash: Some(*blake3::hash(OLD.as_bytes()).as_bytes()),
            sync: true,
            umask: 0o022,
            rec_path: self.rec_path.clone(),
            build: "new".into(),
            deps,
            prev: None,
            rec_temp: Some(
                durable::RecTemp::create(&self.disk(), &self.rec_path, &self.gate, 0o022).unwrap(),
            ),
        }
    }

    fn run(&self, c: Commit) -> Result<Committed, Error> {
        c.run(&Through {
            disk: &*self.fs,
            gate: &self.gate,
        })
    }

    /// What the next daemon's sweep does for this job: its journaled temporaries removed, its
    /// pending record settled.
    fn sweep(&self) {
        for t in [&self.stdout_tmp, &self.arg3] {
            durable::remove_entry(&*self.fs, t);
        }
        durable::settle_pending(
            &*self.fs,
            &self.rec_path,
            &self.target,
            true,
            &self.gate,
            0o022,
        )
        .unwrap();
    }

    /// The target and its state are either the old ones or the new ones, each whole, and the
    /// state describes the target that is there. `pending`: a commit that failed past the
    /// target's rename may leave the new target with the old state, and a pending record
    /// that proves the new target ours.
    fn consistent(&self, made: Made, pending: bool, why: &str) -> bool {
        let target = self.read(&self.target);
        let rec = self.rec();
        let new_target = match made {
            Made::Nothing => None,
            Made::Same => Some(OLD),
            _ => Some(NEW),
        };
        assert!(
            target.as_deref() == Some(OLD) || target.as_deref() == new_target,
            "{why}: a partial target: {target:?}"
        );
        if rec.build == "old" {
            // A target that is gone is rebuilt by the next check: the old state vouches for
            // nothing then.
            let untouched = target.as_deref() == Some(OLD) || target.is_none();
            let proven = pending
                && durable::interrupted_commit(&*self.fs, &self.rec_path, b"t", &self.target)
                    .is_some();
            assert!(
                untouched || proven,
                "{why}: the old state with a new target nothing proves ours"
            );
            return false;
        }
        assert_eq!(rec.build, "new", "{why}");
        assert_eq!(
            target.as_deref(),
            new_target,
            "{why}: the new state, the old target"
        );
        match rec.own(b"t") {
            Some((stamp, Some(hash))) => {
                let now = self.fs.lstat(&self.target).unwrap().unwrap();
                assert_eq!(*stamp, now.stamp, "{why}: the state's stat of the target");
                assert_eq!(
                    hash,
                    blake3::hash(new_target.unwrap_or("").as_bytes()).as_bytes()
                );
            }
            _ => assert!(matches!(made, Made::Nothing), "{why}: no own record"),
        }
        assert!(
            rec.ifchange_targets().any(|t| t == b"src"),
            "{why}: the records"
        );
        true
    }

    /// Nothing is left but the target, its state and the sources.
    fn no_leftovers(&self, why: &str) {
        let left: Vec<PathBuf> = self
            .fs
            .paths()
            .into_iter()
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().as_bytes();
                name.starts_with(b".redo.") || *p == rec_temp_path(&self.rec_path)
            })
            .collect();
        assert_eq!(left, Vec::<PathBuf>::new(), "{why}: temporaries left");
    }

    /// A commit of `made` with step `k` failing (`crash`: the daemon dying there).
    fn stopped(made: Made, k: usize, crash: bool) -> (World, Result<Committed, Error>) {
        let w = World::new();
        let c = w.commit(made);
        w.fs.fail(Fault {
            op: None,
            after: k,
            crash,
        });
        let done = w.run(c);
        (w, done)
    }

    /// How many disk operations a commit of `made` takes, the commit succeeding.
    fn steps(made: Made) -> usize {
        let w = World::new();
        let c = w.commit(made);
        w.fs.count_from_here();
        w.run(c).unwrap();
        assert!(w.consistent(made, false, "no fault"));
        w.fs.log().len()
    }
}

const ALL: [Made; 5] = [
    Made::Stdout,
    Made::Fetched,
    Made::Arg3,
    Made::Nothing,
    Made::Same,
];

#[test]
fn a_crash_at_any_step_leaves_the_old_build_or_the_new_one() {
    for made in ALL {
        let steps = World::steps(made);
        assert!(steps > 3, "{made:?}: {steps} steps");
        for k in 0..=steps {
            let why = format!("{made:?}, crash at step {k} of {steps}");
            let (w, done) = World::stopped(made, k, true);
            assert_eq!(done.is_ok(), k == steps, "{why}: {:?}", done.err());
            w.fs.crash();
            // What a reader sees right after the reboot.
            w.consistent(made, true, &why);
            // What the next daemon leaves.
            w.sweep();
            let new = w.consistent(made, false, &format!("{why}, swept"));
            if k == steps {
                assert!(new, "{why}: the commit was lost");
            }
            w.no_leftovers(&why);
        }
    }
}

#[test]
fn a_failed_step_reports_and_leaves_the_old_state_or_a_provable_new_target() {
    for made in ALL {
        let steps = World::steps(made);
        for k in 0..steps {
            let why = format!("{made:?}, step {k} of {steps} fails");
            let (w, done) = World::stopped(made, k, false);
            let new = w.consistent(made, true, &why);
            match done {
                // A step whose failure changes nothing the commit guarantees (removing a
                // temporary it no longer needs).
                Ok(_) => assert!(new, "{why}: reported success, old state"),
                // Past the state's rename (its directory's fsync failing), the new build is
                // there, and the failure is reported all the same.
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            // The job's end removes its journaled temporaries; only a pending record that
            // proves the new target ours may stay, for the guard.
            for t in [&w.stdout_tmp, &w.arg3] {
                durable::remove_entry(&*w.fs, t);
            }
            let pending = w.fs.stat(&rec_temp_path(&w.rec_path)).unwrap().is_some();
            if pending {
                // Left for the guard (and the sweep, which settles it): it proves the target.
                let proves =
                    durable::interrupted_commit(&*w.fs, &w.rec_path, b"t", &w.target).is_some();
                assert!(proves, "{why}: a pending record that proves nothing");
            } else {
                w.no_leftovers(&why);
            }
        }
    }
}

/// The commit's order, as the crash guarantee needs it: the new state is durable in its
/// temporary before the target is touched, the output is synced before it is renamed, the
/// state file is renamed last.
#[test]
fn the_new_state_is_pending_before_the_target_is_replaced() {
    let w = World::new();
    let c = w.commit(Made::Stdout);
    w.fs.count_from_here();
    w.run(c).unwrap();
    let log = w.fs.log();
    let at = |op: Op, p: &Path| {
        log.iter()
            .position(|(o, q)| *o == op && (q == p || p.as_os_str().is_empty()))
            .unwrap_or_else(|| panic!("no {op:?} of {}: {log:?}", p.display()))
    };
    let pending_synced = at(Op::SyncPath, Path::new("/p/.redo"));
    let output_synced = at(Op::SyncPath, &w.stdout_tmp);
    let target_renamed = at(Op::Rename, &w.stdout_tmp);
    let rec_renamed = at(Op::Rename, &rec_temp_path(&w.rec_path));
    assert!(pending_synced < target_renamed, "{log:?}");
    assert!(output_synced < target_renamed, "{log:?}");
    assert!(target_renamed < rec_renamed, "{log:?}");
    assert!(
        log[target_renamed..rec_renamed]
            .iter()
            .any(|(o, p)| *o == Op::SyncPath && p == Path::new("/p")),
        "the target's directory is synced before the state is renamed: {log:?}"
    );
    assert_eq!(
        log.last().map(|(o, p)| (*o, p.as_path())),
        Some((Op::SyncPath, Path::new("/p/.redo")))
    );
}

#[test]
fn a_fetched_output_is_installed_executable() {
    let w = World::new();
    let c = w.commit(Made::Fetched);
    let done = w.run(c).unwrap();
    assert!(w.fs.executable(&w.target));
    assert!(!done.kept_same);
    let w = World::new();
    w.run(w.commit(Made::Stdout)).unwrap();
    assert!(!w.fs.executable(&w.target));
}

/// The same content again: the old file stays (dependants see nothing new), its times are
/// set to now, and the state records its stat.
#[test]
fn the_same_content_keeps_the_old_file() {
    let w = World::new();
    let before = w.fs.lstat(&w.target).unwrap().unwrap().stamp;
    let done = w.run(w.commit(Made::Same)).unwrap();
    assert!(done.kept_same);
    let after = w.fs.lstat(&w.target).unwrap().unwrap();
    assert_eq!((after.stamp.ino, after.kind), (before.ino, Kind::File));
    assert_ne!(after.stamp.mtime_sec, before.mtime_sec);
    assert!(w.consistent(Made::Same, false, "same"));
    w.no_leftovers("same");
}

/// A directory made at `$3` over the old file, each step failing in turn: the state is the
/// old one with the old file, or the new one with the directory; nothing is left but what
/// the job's end removes.
#[test]
fn a_directory_output_is_installed_whole_or_not_at_all() {
    let dir_commit = |w: &World| {
        w.fs.create_dir_all(&w.arg3.join("sub")).unwrap();
        let f = w.fs.create_new(&w.arg3.join("sub/f")).unwrap();
        w.fs.write_at(&f, NEW.as_bytes(), 0).unwrap();
        let mut c = w.commit(Made::Nothing);
        c.output = Output::Arg3(w.arg3.clone(), w.fs.lstat(&w.arg3).unwrap().unwrap());
        c
    };
    let steps = {
        let w = World::new();
        let c = dir_commit(&w);
        w.fs.count_from_here();
        w.run(c).unwrap();
        w.fs.log().len()
    };
    for k in 0..=steps {
        let why = format!("directory, step {k} of {steps} fails");
        let w = World::new();
        let c = dir_commit(&w);
        w.fs.fail(Fault {
            op: None,
            after: k,
            crash: false,
        });
        let done = w.run(c);
        // (The old file, swapped out to `$3`'s name, may fail to go: the job's end removes it.)
        assert!(done.is_ok() || k < steps, "{why}");
        let rec = w.rec();
        let installed = w.read(&w.target.join("sub/f"));
        match rec.build.as_str() {
            "old" => assert!(
                w.read(&w.target).as_deref() == Some(OLD) || installed.as_deref() == Some(NEW),
                "{why}"
            ),
            _ => {
                assert_eq!(installed.as_deref(), Some(NEW), "{why}");
                assert_eq!(rec.own(b"t"), None, "{why}: a directory has no own record");
            }
        }
        for t in [&w.stdout_tmp, &w.arg3] {
            durable::remove_entry(&*w.fs, t);
        }
        w.no_leftovers(&why);
    }
}
