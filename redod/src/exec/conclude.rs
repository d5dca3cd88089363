//! After the `.do` exited: goredo's checks (`$1` touched, both stdout and `$3`), the
//! commit, and waiting for another process that holds the target's lock.

use super::*;

/// What a job's end is checked against.
pub(super) struct AfterRun<'a> {
    pub(super) target: &'a Path,
    /// The target's stat before the `.do` ran (when it had an own record).
    pub(super) prev_stamp: Option<Stamp>,
    /// The target's recorded hash (when it had one).
    pub(super) prev_hash: Option<Hash>,
    /// The target was a directory before the `.do` ran (an earlier build's).
    pub(super) was_dir: bool,
    /// What the `.do` wrote to its stdout.
    pub(super) capture: &'a File,
    /// Where a stdout output is written at the commit (beside the target, journaled).
    pub(super) stdout_tmp: &'a Path,
    pub(super) arg3_abs: &'a Path,
    pub(super) rec_path: &'a Path,
    /// The `.do` that ran (messages name it and its `$1`).
    pub(super) dof: &'a dofile::DoFile,
}

/// The end of a job whose `.do` exited: its status, the checks of docs/BEHAVIOUR.md §9 (`$1` touched,
/// both stdout and `$3`), then the commit. Returns the committed state.
/// One function: goredo's checks are an ordered list (`$1` touched, both outputs, the output
/// kind), each a few lines, and the commit must follow the last of them.
pub(super) async fn conclude(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Flight,
    job: &JobHandle,
    status: ExitStatus,
    a: &AfterRun<'_>,
    rec_temp: Option<durable::RecTemp>,
) -> Result<Arc<Rec>, Error> {
    let settings = &flight.origin.settings;
    if !status.success() {
        return Err(Error::Exit(status));
    }
    // $1 must not have been touched by the .do, unless it made it a directory: that
    // directory is the target (apenwarr's redo allows it; its stat changes with every entry,
    // so it cannot be told from one left by an earlier build, and need not be).
    let disk = &*px.disk;
    let now = disk.lstat(a.target).map_err(Error::io("stat", a.target))?;
    let is_dir = now.is_some_and(|m| m.kind == Kind::Dir);
    if let Some(m) = now.filter(|_| !is_dir) {
        if a.prev_stamp
            .is_none_or(|p| !same_file(&m.stamp, &p, settings.trust))
        {
            return Err(Error::Arg1Touched {
                do_name: a.dof.name.clone().into(),
                arg1: a.dof.arg1.clone(),
            });
        }
    }
    let stdout_size =
        a.capture
            .metadata()
            .map(|m| m.len())
            .map_err(|source| Error::CaptureStat {
                of: flight.display.clone(),
                source,
            })?;
    let arg3 = disk.lstat(a.arg3_abs).ok().flatten();
    let arg3_exists = arg3.is_some();
    // A directory left by an earlier build is replaced by a new output; one the .do made
    // while also writing an output is a mistake.
    let made_dir = is_dir && !(a.was_dir && (arg3_exists || stdout_size > 0));
    if made_dir && (arg3_exists || stdout_size > 0) {
        return Err(Error::DirAndOutput {
            target: a.target.to_path_buf(),
            wrote: if arg3_exists { "$3" } else { "to stdout" },
        });
    }
    if arg3_exists && stdout_size > 0 {
        return Err(Error::BothOutputs(a.dof.name.clone().into()));
    }
    let output = if made_dir {
        Output::DirInPlace
    } else if let Some(m) = arg3 {
        Output::Arg3(a.arg3_abs.to_path_buf(), m)
    } else if stdout_size > 0 {
        let c = a.capture.try_clone().map_err(|source| Error::CaptureRead {
            of: flight.display.clone(),
            source,
        })?;
        Output::Captured {
            file: c,
            size: stdout_size,
            executable: false,
        }
    } else {
        Output::Nothing
    };
    // Only a phony target's commit compares with the state file (see `Commit::run`). Read
    // now, under the target's lock: what the state file holds at the commit.
    let prev = match output {
        Output::Nothing => match engine.recs().load(disk.as_fs(), a.rec_path) {
            Ok(Loaded::Ok(rec)) => Some(rec),
            _ => None,
        },
        _ => None,
    };
    let commit = Commit {
        dir: flight.dir.clone(),
        name: flight.name.clone(),
        output,
        target_kind: now.map(|m| m.kind),
        stdout_tmp: a.stdout_tmp.to_path_buf(),
        prev_hash: a.prev_hash,
        sync: !settings.no_sync,
        umask: flight.origin.umask,
        rec_path: a.rec_path.to_path_buf(),
        build: flight.session.uuid.clone(),
        deps: job.take_records(),
        prev,
        rec_temp,
    };
    let committed = commit.run_async(&px.disk, engine).await?;
    if committed.kept_same {
        flight.say(
            Msg::Dbg,
            &format!("{} has same hash, not renaming", flight.display),
        );
    }
    note_commit(engine, flight, a.target, a.rec_path, &committed);
    Ok(committed.rec)
}

/// After a commit (of a build, or of an output fetched from the cache): what the daemon
/// keeps in memory is told of the new state, and contradictory records are warned about.
pub(super) fn note_commit(
    engine: &Engine,
    flight: &Flight,
    target: &Path,
    rec_path: &Path,
    committed: &commit::Committed,
) {
    engine.wrote(target);
    if let Some(stamp) = committed.rec_stamp {
        engine.wrote(rec_path);
        engine
            .recs()
            .store(rec_path.to_path_buf(), stamp, committed.rec.clone());
    }
    if let Some((stamp, hash)) = committed.target {
        engine.hashes().store(target.to_path_buf(), stamp, hash);
    }
    for t in committed.rec.contradictions() {
        flight.say(
            Msg::Warn,
            &format!(
                "simultaneous ifcreate and ifchange records: {}",
                String::from_utf8_lossy(t)
            ),
        );
    }
}

/// Another process (a second daemon, goredo) holds the lock: wait for it, never build
/// ourselves, and accept its result only if it was committed by this build session.
pub(super) async fn wait_for_other(
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
    pid: Option<i32>,
) -> Result<Ran, JobError> {
    let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
    flight.say(
        Msg::Dbg,
        &format!("waiting: {} (pid={pid})", flight.display),
    );
    let mut pause = Duration::from_millis(5);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
        match engine.umask().with(flight.origin.umask, || {
            locks::try_lock(&flight.dir, &flight.name)
        }) {
            Ok(TryLock::Acquired(l)) => {
                drop(l);
                break;
            }
            Ok(TryLock::Held(_)) => {}
            Err(source) => {
                let what = locks::describe(&flight.dir, &flight.name);
                return Err(before_run(Error::Lock { what, source }));
            }
        }
    }
    flight.say(Msg::Dbg, &format!("waiting done: {}", flight.display));
    let rec_path = crate::store::layout::rec_path(&flight.dir, &flight.name);
    match engine.recs().load(&*flight.session.fs, &rec_path) {
        Ok(Loaded::Ok(rec)) if rec.build == flight.session.uuid => Ok(Ran::Kept),
        Ok(Loaded::Ok(_)) => Err(before_run(Error::BuiltByAnother)),
        Ok(Loaded::Missing) => Err(before_run(Error::NotBuiltByAnother)),
        Ok(Loaded::Corrupt(e)) => Err(before_run(e)),
        Err(e) => Err(before_run(Error::io("read", &rec_path)(e))),
    }
}
