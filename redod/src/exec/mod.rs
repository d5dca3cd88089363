//! Running one `.do` and committing its result (SPEC.md §9).
//!
//! Order: `.redo/` created; a job token taken; the fcntl lock taken; the external-modification
//! guard; the `.do` looked up (missing candidates become ifcreate records); its interpreter
//! chosen (executable: itself; a `#!` line: that; else `sh -e`); the temps journaled and its
//! stdout captured in a memfd (nothing is created beside the target before the run, so the
//! `.do` may remove and re-create the target's directory); the `.do` spawned in its own process
//! group with the requester's environment and umask; its stderr relayed as it is written; then
//! the checks (`$1` touched unless made a directory, both stdout and `$3`) and the commit:
//! `.redo/` made again if needed, stdout written to a temp beside the target, output fsynced
//! and renamed (exchanged, when a directory is involved) over the target (or the old file kept
//! when the hash is the same), directory fsynced, `.rec` written to a temp, fsynced, renamed,
//! directory fsynced.
//!
//! Every resource is held by a guard, so dropping the future at any `.await` (the last client
//! waiting for this build went away) kills the process group, removes the temps, unlocks the
//! target and returns the token; nothing half-written is ever visible under a final name.

use crate::engine::{Engine, Flight, JobHandle};
use crate::fs::paths::{self, show};
use crate::fs::{Hash, Kind as FileKind, Stamp, hash_entry};
use crate::jobserver;
use crate::ood::{Trust, same_file};
use crate::output::Kind;
use crate::store::durable::{self, fsync_dir, io_msg, stamp_of};
use crate::store::layout::temp_path;
use crate::store::locks::{self, TryLock};
use crate::store::logs;
use crate::store::orphans::{JobFiles, RunningJob};
use crate::store::recfile::{Dep, Rec, Records};
use crate::{dofile, fs::umask::UmaskGate, store::cache::Loaded};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

/// A job that ran to a successful commit, or a target left alone.
pub enum Ran {
    /// `do_rel`: the `.do` relative to the target's directory, when a `default*.do` (shown in
    /// the completion line); `do_path`: the `.do`, absolute (for events).
    Built {
        took: Duration,
        do_rel: Option<PathBuf>,
        do_path: PathBuf,
    },
    /// Not rebuilt, and that is a success: externally modified (with a warning), or built by
    /// another process holding its lock in this session.
    Kept,
}

/// Why a target failed. Printed once, by the flight, as `err  <target>[ (<do>)][ (<secs>)]: <msg>`.
#[derive(Debug)]
pub struct JobError {
    pub msg: String,
    pub took: Option<Duration>,
    pub do_rel: Option<PathBuf>,
    /// The `.do`, absolute, once found.
    pub do_path: Option<PathBuf>,
    /// The `.do`'s exit status, when it exited with one other than 0.
    pub exit_code: Option<i32>,
}

fn before_run(msg: impl Into<String>) -> JobError {
    JobError {
        msg: msg.into(),
        took: None,
        do_rel: None,
        do_path: None,
        exit_code: None,
    }
}

/// Go's `ExitError` text, which goredo prints: `exit status 2`, `signal: killed`.
pub fn exit_text(st: ExitStatus) -> String {
    if let Some(c) = st.code() {
        return format!("exit status {c}");
    }
    let name = match st.signal() {
        Some(libc::SIGKILL) => "killed",
        Some(libc::SIGTERM) => "terminated",
        Some(libc::SIGINT) => "interrupt",
        Some(libc::SIGHUP) => "hangup",
        Some(libc::SIGSEGV) => "segmentation fault",
        Some(libc::SIGABRT) => "aborted",
        Some(libc::SIGPIPE) => "broken pipe",
        Some(libc::SIGQUIT) => "quit",
        Some(libc::SIGBUS) => "bus error",
        Some(s) => return format!("signal: {s}"),
        None => return "exited abnormally".into(),
    };
    format!("signal: {name}")
}

/// The daemon's executor: real `.do` processes on the real filesystem.
pub struct Processes;

impl crate::engine::Executor for Processes {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        flight: &'a Arc<Flight>,
    ) -> crate::engine::BoxFuture<'a, Result<Ran, JobError>> {
        Box::pin(run(engine, flight))
    }
}

/// Runs the `.do` for `flight`'s target.
pub async fn run(engine: &Arc<Engine>, flight: &Arc<Flight>) -> Result<Ran, JobError> {
    let origin = &flight.origin;
    let settings = &origin.settings;
    let fs_ = &*flight.session.fs;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());
    let redo_dir = dir.join(".redo");
    let created = engine
        .umask
        .with(origin.umask, || match fs::create_dir(&redo_dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(_) => fs::create_dir_all(&redo_dir).map(|()| true),
        })
        .map_err(|e| before_run(io_msg("create", &redo_dir, &e)))?;
    if created {
        // The next check in this request may ask whether `dir` has state files.
        engine.wrote(&redo_dir);
    }

    let progress = &flight.session.progress;
    let token = {
        let _queued = Gauge::new(&progress.queued);
        flight.session.tokens.acquire().await
    };
    flight.say(
        Kind::Js,
        &format!("acquired a job token: {}", flight.display),
    );
    let mut lock_name = name.to_os_string();
    lock_name.push(".lock");
    let lock_path = redo_dir.join(lock_name);
    flight.say(Kind::Lock, &format!("LOCK_NB: {}", show(&lock_path)));
    let lock = match engine
        .umask
        .with(origin.umask, || locks::try_lock(&lock_path))
    {
        Ok(TryLock::Acquired(l)) => l,
        Ok(TryLock::Held(pid)) => {
            drop(token);
            return wait_for_other(engine, flight, &lock_path, pid).await;
        }
        Err(e) => return Err(before_run(io_msg("lock", &lock_path, &e))),
    };

    // External-modification guard: the target as it is now versus its own record.
    let target = dir.join(name);
    let rec_path = crate::store::layout::rec_path(dir, name);
    let now = fs_
        .lstat(&target)
        .map_err(|e| before_run(io_msg("stat", &target, &e)))?;
    let loaded = engine
        .recs
        .load(fs_, &rec_path)
        .map_err(|e| before_run(io_msg("read", &rec_path, &e)))?;
    let was_dir = now.is_some_and(|m| m.kind == FileKind::Dir);
    let (prev_stamp, prev_hash, modified) = match (&loaded, now) {
        (Loaded::Ok(rec), Some(now)) => match rec.own(name.as_bytes()) {
            Some((stamp, _)) if !same_file(&now.stamp, stamp, settings.trust) => {
                match durable::interrupted_commit(&rec_path, name.as_bytes(), &target) {
                    // What a dead daemon was committing: ours, not an edit.
                    Some(h) => (Some(now.stamp), Some(h), false),
                    None => (Some(now.stamp), None, true),
                }
            }
            Some((_, hash)) => (Some(now.stamp), hash.copied(), false),
            None => (None, None, false),
        },
        // A damaged state file cannot vouch for the target; the existing file is taken as ours
        // so that the rebuild replaces it instead of failing with "$1 was explicitly touched".
        (Loaded::Corrupt(_), Some(now)) => (Some(now.stamp), None, false),
        _ => (None, None, false),
    };
    if modified {
        drop(lock);
        if settings.stop_if_modified {
            return Err(before_run(format!(
                "{} externally modified",
                flight.display
            )));
        }
        flight.say(
            Kind::Warn,
            &format!("{} externally modified: not redoing", flight.display),
        );
        return Ok(Ran::Kept);
    }

    let lookup = dofile::find(fs_, dir, name, settings.top_dir.as_deref())
        .map_err(|e| before_run(format!("cannot look for a .do: {e}")))?;
    let mut deps: Vec<Dep> = lookup
        .missing
        .iter()
        .map(|m| Dep::Ifcreate {
            target: paths::bytes(m).to_vec(),
        })
        .collect();
    let Some(dof) = lookup.found else {
        let tried: Vec<String> = lookup.missing.iter().map(|m| show(m)).collect();
        return Err(before_run(format!(
            "no .do found (tried: {})",
            tried.join(", ")
        )));
    };
    // Success lines name the .do only when it is a default*.do (as goredo does); error lines
    // always name it, so that a failure says which script failed.
    let do_rel = dof.is_default.then(|| dof.rel.clone());
    let with_do = |msg: String, took: Option<Duration>| JobError {
        msg,
        took,
        do_rel: Some(dof.rel.clone()),
        do_path: Some(dof.path.clone()),
        exit_code: None,
    };
    let do_meta = fs_
        .stat(&dof.path)
        .ok()
        .flatten()
        .ok_or_else(|| with_do(format!("{} vanished", show(&dof.path)), None))?;
    let do_hash = engine
        .hashes
        .hash(
            fs_,
            &dof.path,
            &do_meta.stamp,
            settings.trust != Trust::None,
        )
        .map_err(|e| with_do(io_msg("read", &dof.path, &e), None))?;
    deps.push(Dep::Ifchange {
        target: paths::bytes(&dof.rel).to_vec(),
        stamp: do_meta.stamp,
        hash: Some(do_hash),
    });
    flight.say(Kind::Wait, &flight.name_with_do(do_rel.as_deref()));

    let stdout_tmp = temp_path(dir, name);
    let mut arg3_abs = stdout_tmp.clone().into_os_string();
    arg3_abs.push(".3");
    let arg3_abs = PathBuf::from(arg3_abs);
    let journal_id = engine.next_id();
    let mut running = RunningJob::new(
        engine.registry(),
        journal_id,
        JobFiles {
            target: target.clone(),
            rec_path: rec_path.clone(),
            umask: origin.umask,
            sync: !settings.no_sync,
            temps: vec![stdout_tmp.clone(), arg3_abs.clone()],
        },
    );
    // `stdout_tmp` is only created at the commit, from the capture (see `durable::capture`).
    let spill_dir = engine.socket.parent().unwrap_or(Path::new("/tmp"));
    let cannot_capture = |e: io::Error| {
        with_do(
            format!(
                "cannot make a file to capture the stdout of {} in: {e} (memfd_create, and \
                 O_TMPFILE in {}, failed)",
                flight.display,
                show(spill_dir)
            ),
            None,
        )
    };
    let capture = durable::capture(spill_dir).map_err(cannot_capture)?;
    let stdout_file = capture.try_clone().map_err(cannot_capture)?;
    let arg3 = paths::relative(&dof.dir, &arg3_abs);

    let job = engine.register_job(flight, deps, token);
    let traced = origin.trace || settings.trace_all;
    let args3 = [dof.arg1.as_os_str(), dof.arg2.as_os_str(), arg3.as_os_str()];
    let mut shebang = false;
    let (program, mut args): (OsString, Vec<OsString>) = if fs_.executable(&dof.path) {
        (dof.path.clone().into_os_string(), Vec::new())
    } else {
        let head =
            read_head(&dof.path).map_err(|e| with_do(io_msg("read", &dof.path, &e), None))?;
        match dofile::interpreter(&head, &dof.path).map_err(|e| with_do(e, None))? {
            Some(mut argv) if !argv.is_empty() => {
                shebang = true;
                let program = argv.remove(0);
                argv.push(dof.name.clone());
                (program, argv)
            }
            _ => (
                "/bin/sh".into(),
                vec![if traced { "-ex" } else { "-e" }.into(), dof.name.clone()],
            ),
        }
    };
    args.extend(args3.iter().map(|a| a.to_os_string()));
    flight.say(
        Kind::Dbg,
        &format!(
            "sh: {}: {} {:?} cwd:{} dirprefix:{}",
            flight.display,
            program.to_string_lossy(),
            args,
            show(&dof.dir),
            show(&dof.dir_prefix)
        ),
    );

    let (env, inherit) = child_env(engine, flight, &dof, job.id());
    let keep_logs = settings.keep_logs;
    let log_env = if keep_logs { env.clone() } else { Vec::new() };
    let log = match keep_logs {
        true => match engine
            .umask
            .with(origin.umask, || logs::JobLog::create(dir, name))
        {
            Ok(l) => Some(l),
            Err(e) => {
                return Err(with_do(
                    format!("cannot create the log of {}: {e}", flight.display),
                    None,
                ));
            }
        },
        false => None,
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout_file))
        .stderr(Stdio::piped())
        .process_group(0);
    let (started, started_at) = (Instant::now(), SystemTime::now());
    let mut child = spawn(engine, flight, &mut cmd, &dof.dir, inherit)
        .await
        .map_err(|e| {
            let msg = match shebang {
                true => format!(
                    "cannot run {} named by the #! line of {}: {e}: fix that line, or make the \
                     .do executable",
                    program.to_string_lossy(),
                    show(&dof.path)
                ),
                false => format!("cannot run {}: {e}", program.to_string_lossy()),
            };
            with_do(msg, Some(Duration::ZERO))
        })?;
    flight.mark_started();
    let _running = Gauge::new(&progress.running);
    let pid = child.id().unwrap_or(0);
    if let Some(pgid) = i32::try_from(pid).ok().filter(|p| *p > 0) {
        running.started(pgid);
        job.set_pgid(pgid);
    }
    if let Some(st) = child
        .stderr
        .as_ref()
        .and_then(|e| nix::sys::stat::fstat(e).ok())
    {
        // `dev_t`/`ino_t` are unsigned 64-bit on Linux; the cast only widens elsewhere.
        #[allow(clippy::useless_conversion)]
        job.set_stderr_pipe(u64::from(st.st_dev), u64::from(st.st_ino));
    }
    flight.say(Kind::Dbg, &format!("{} runs [{pid}]", flight.display));
    flight.event(|s| serde_json::json!({"type": "target", "event": "started", "target": s.rel(&flight.target), "do": s.rel(&dof.path), "level": flight.level}));
    let (flush_tx, flush_rx) = mpsc::channel(4);
    job.set_flush(flush_tx);
    let relay = relay_stderr(flight, child.stderr.take(), pid, flush_rx, log);
    let wait = child.wait();
    tokio::pin!(relay, wait);
    let status = tokio::select! {
        st = &mut wait => {
            // The .do is done; a background process it left may hold stderr open. Take what
            // comes promptly, then stop listening rather than hang the build.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut relay).await;
            st
        }
        () = &mut relay => wait.await,
    };
    let took = started.elapsed();
    progress.done.fetch_add(1, Ordering::Relaxed);
    let status =
        status.map_err(|e| with_do(format!("cannot wait for the .do: {e}"), Some(took)))?;
    let after = AfterRun {
        target: &target,
        prev_stamp,
        prev_hash,
        was_dir,
        capture: &capture,
        stdout_tmp: &stdout_tmp,
        arg3_abs: &arg3_abs,
        rec_path: &rec_path,
    };
    let result = conclude(engine, flight, &job, status, &after)
        .await
        .map_err(|msg| JobError {
            exit_code: status.code().filter(|c| *c != 0),
            ..with_do(msg, Some(took))
        });
    if keep_logs {
        let ifchange = match &result {
            Ok(rec) => rec.ifchange_targets().map(<[u8]>::to_vec).collect(),
            Err(_) => job
                .records()
                .iter()
                .filter_map(|d| match d {
                    Dep::Ifchange { target, .. } => Some(target.clone()),
                    _ => None,
                })
                .collect(),
        };
        let rec = logs::LogRec {
            build: flight.session.uuid.clone(),
            ppid: std::process::id(),
            cwd: dof.dir.clone(),
            pid: Some(pid),
            started: started_at,
            finished: started_at + took,
            cmd: program.clone(),
            args: args.clone(),
            env: log_env,
            exit_code: status.code().filter(|c| *c != 0),
            ifchange,
        };
        if let Err(e) = engine.umask.with(origin.umask, || rec.write(dir, name)) {
            flight.say(
                Kind::Warn,
                &format!("cannot write the .log-rec of {}: {e}", flight.display),
            );
        }
    }
    result?;
    drop(lock);
    flight.say(Kind::Lock, &format!("LOCK_UN: {}", show(&lock_path)));
    Ok(Ran::Built {
        took,
        do_rel,
        do_path: dof.path.clone(),
    })
}

/// What a job's end is checked against.
struct AfterRun<'a> {
    target: &'a Path,
    /// The target's stat before the `.do` ran (when it had an own record).
    prev_stamp: Option<Stamp>,
    /// The target's recorded hash (when it had one).
    prev_hash: Option<Hash>,
    /// The target was a directory before the `.do` ran (an earlier build's).
    was_dir: bool,
    /// What the `.do` wrote to its stdout.
    capture: &'a File,
    /// Where a stdout output is written at the commit (beside the target, journaled).
    stdout_tmp: &'a Path,
    arg3_abs: &'a Path,
    rec_path: &'a Path,
}

/// The end of a job whose `.do` exited: its status, the checks of SPEC.md §9 (`$1` touched,
/// both stdout and `$3`), then the commit. Returns the committed state.
async fn conclude(
    engine: &Arc<Engine>,
    flight: &Flight,
    job: &JobHandle,
    status: ExitStatus,
    a: &AfterRun<'_>,
) -> Result<Arc<Rec>, String> {
    let settings = &flight.origin.settings;
    if !status.success() {
        return Err(exit_text(status));
    }
    // $1 must not have been touched by the .do, unless it made it a directory: that
    // directory is the target (apenwarr's redo allows it; its stat changes with every entry,
    // so it cannot be told from one left by an earlier build, and need not be).
    let now = engine
        .fs
        .lstat(a.target)
        .map_err(|e| io_msg("stat", a.target, &e))?;
    let is_dir = now.is_some_and(|m| m.kind == FileKind::Dir);
    if let Some(m) = now.filter(|_| !is_dir) {
        if a.prev_stamp
            .is_none_or(|p| !same_file(&m.stamp, &p, settings.trust))
        {
            return Err("$1 was explicitly touched".into());
        }
    }
    let stdout_size = a
        .capture
        .metadata()
        .map(|m| m.len())
        .map_err(|e| format!("cannot stat the captured stdout of {}: {e}", flight.display))?;
    let arg3_exists = fs::symlink_metadata(a.arg3_abs).is_ok();
    // A directory left by an earlier build is replaced by a new output; one the .do made
    // while also writing an output is a mistake.
    let made_dir = is_dir && !(a.was_dir && (arg3_exists || stdout_size > 0));
    if made_dir && (arg3_exists || stdout_size > 0) {
        return Err(format!(
            "{} is a directory, and the .do also wrote {}: a target is one or the other \
             (remove the directory in the .do, or write nothing)",
            show(a.target),
            if arg3_exists { "$3" } else { "to stdout" }
        ));
    }
    if arg3_exists && stdout_size > 0 {
        return Err("created both tmp and stdout".into());
    }
    let output = if made_dir {
        Output::DirInPlace
    } else if arg3_exists {
        Output::Arg3(a.arg3_abs.to_path_buf())
    } else if stdout_size > 0 {
        let c = a
            .capture
            .try_clone()
            .map_err(|e| format!("cannot read the captured stdout of {}: {e}", flight.display))?;
        Output::Stdout(c)
    } else {
        Output::Nothing
    };
    // Only a phony target's commit compares with the state file (see `Commit::run`). Read
    // now, under the target's lock: what the state file holds at the commit.
    let prev = match output {
        Output::Nothing => match engine.recs.load(&*engine.fs, a.rec_path) {
            Ok(Loaded::Ok(rec)) => Some(rec),
            _ => None,
        },
        _ => None,
    };
    let commit = Commit {
        dir: flight.dir.clone(),
        name: flight.name.clone(),
        output,
        stdout_tmp: a.stdout_tmp.to_path_buf(),
        prev_hash: a.prev_hash,
        sync: !settings.no_sync,
        umask: flight.origin.umask,
        rec_path: a.rec_path.to_path_buf(),
        build: flight.session.uuid.clone(),
        deps: job.take_records(),
        prev,
    };
    let eng = engine.clone();
    let committed = tokio::task::spawn_blocking(move || commit.run(&eng.umask))
        .await
        .map_err(|e| format!("commit failed: {e}"))??;
    if committed.kept_same {
        flight.say(
            Kind::Dbg,
            &format!("{} has same hash, not renaming", flight.display),
        );
    }
    engine.wrote(a.target);
    if let Some(stamp) = committed.rec_stamp {
        engine.wrote(a.rec_path);
        engine
            .recs
            .store(a.rec_path.to_path_buf(), stamp, committed.rec.clone());
    }
    if let Some((stamp, hash)) = committed.target {
        engine.hashes.store(a.target.to_path_buf(), stamp, hash);
    }
    for t in committed.rec.contradictions() {
        flight.say(
            Kind::Warn,
            &format!(
                "simultaneous ifcreate and ifchange records: {}",
                String::from_utf8_lossy(t)
            ),
        );
    }
    Ok(committed.rec)
}

/// Another process (a second daemon, goredo) holds the lock: wait for it, never build
/// ourselves, and accept its result only if it was committed by this build session.
async fn wait_for_other(
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
    lock_path: &Path,
    pid: Option<i32>,
) -> Result<Ran, JobError> {
    let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
    flight.say(
        Kind::Dbg,
        &format!("waiting: {} (pid={pid})", flight.display),
    );
    let mut pause = Duration::from_millis(5);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
        match engine
            .umask
            .with(flight.origin.umask, || locks::try_lock(lock_path))
        {
            Ok(TryLock::Acquired(l)) => {
                drop(l);
                break;
            }
            Ok(TryLock::Held(_)) => {}
            Err(e) => return Err(before_run(io_msg("lock", lock_path, &e))),
        }
    }
    flight.say(Kind::Dbg, &format!("waiting done: {}", flight.display));
    let rec_path = crate::store::layout::rec_path(&flight.dir, &flight.name);
    match engine.recs.load(&*flight.session.fs, &rec_path) {
        Ok(Loaded::Ok(rec)) if rec.build == flight.session.uuid => Ok(Ran::Kept),
        Ok(Loaded::Ok(_)) => Err(before_run("was not built: build differs")),
        Ok(Loaded::Missing) => Err(before_run("was not built: no .rec")),
        Ok(Loaded::Corrupt(e)) => Err(before_run(e.to_string())),
        Err(e) => Err(before_run(io_msg("read", &rec_path, &e))),
    }
}

/// Passes a job's stderr on to the clients that wait for it.
struct Relay<'a> {
    flight: &'a Flight,
    /// `-k`: everything the `.do` writes is kept, silenced or not.
    log: Option<logs::JobLog>,
    silent: bool,
    /// Put before every line: `[pid] ` with `-log-pid`, `[target] ` when several jobs may run
    /// at once (so interleaved output can be told apart).
    prefix: Option<String>,
    /// The last bytes passed on ended inside a line.
    mid_line: bool,
    /// The same, for the raw output (before prefixes).
    mid_line_raw: bool,
}

impl Relay<'_> {
    async fn emit(&mut self, chunk: Bytes) {
        if let Some(log) = &mut self.log {
            log.write(&chunk);
        }
        if chunk.is_empty() {
            // A flush for a nested request with nothing new: nothing was cut in two.
            return;
        }
        self.flight.stderr_events(&chunk, self.mid_line_raw);
        self.mid_line_raw = !chunk.ends_with(b"\n");
        if self.silent {
            return;
        }
        let chunk = match &self.prefix {
            None => chunk,
            Some(p) => {
                let mut out = Vec::with_capacity(chunk.len() + 4 * p.len());
                let mut at_line_start = !self.mid_line;
                for piece in chunk.split_inclusive(|&b| b == b'\n') {
                    if at_line_start {
                        out.extend_from_slice(p.as_bytes());
                    }
                    out.extend_from_slice(piece);
                    at_line_start = piece.ends_with(b"\n");
                }
                Bytes::from(out)
            }
        };
        self.mid_line = !chunk.ends_with(b"\n");
        self.flight.relay(&chunk).await;
    }

    /// At the end of the output: never leave the client's cursor after a partial line.
    async fn finish(&mut self) {
        if self.mid_line {
            self.emit(Bytes::from_static(b"\n")).await;
        }
        if let Some(log) = self.log.take() {
            log.finish();
        }
    }
}

/// Relays the `.do`'s stderr as it is written: whole lines as soon as they are complete, a
/// partial line after a short pause (progress output without a newline), everything at once
/// when a nested request of this job asks for it (`flush`), so that what the `.do` wrote
/// before starting a nested build reaches the terminal before what that build prints (which
/// goes there directly, unless the nested command's stderr was redirected).
async fn relay_stderr(
    flight: &Flight,
    pipe: Option<tokio::process::ChildStderr>,
    pid: u32,
    mut flush: mpsc::Receiver<oneshot::Sender<()>>,
    log: Option<logs::JobLog>,
) {
    let Some(mut pipe) = pipe else { return };
    let settings = &flight.origin.settings;
    let mut prefix = String::new();
    if settings.log_pid {
        prefix.push_str(&format!("[{pid}] "));
    }
    if flight.session.tokens.limit() != Some(1) {
        prefix.push_str(&format!("[{}] ", flight.display));
    }
    let mut relay = Relay {
        flight,
        log,
        silent: settings.silent,
        prefix: (!prefix.is_empty()).then_some(prefix),
        mid_line: false,
        mid_line_raw: false,
    };
    let mut buf = BytesMut::with_capacity(8192);
    let mut flushing = true;
    loop {
        buf.reserve(8192);
        let pause = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            read = pipe.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    relay.emit(buf.split().freeze()).await;
                    relay.finish().await;
                    return;
                }
                Ok(_) => {
                    if let Some(pos) = buf.iter().rposition(|&b| b == b'\n') {
                        relay.emit(buf.split_to(pos + 1).freeze()).await;
                    } else if buf.len() > 64 << 10 {
                        relay.emit(buf.split().freeze()).await;
                    }
                }
            },
            () = pause, if !buf.is_empty() => relay.emit(buf.split().freeze()).await,
            req = flush.recv(), if flushing => match req {
                Some(reply) => {
                    // Everything already in the pipe, without waiting for more.
                    while let Some(Ok(n)) = pipe.read_buf(&mut buf).now_or_never() {
                        if n == 0 {
                            break;
                        }
                        buf.reserve(8192);
                    }
                    relay.emit(buf.split().freeze()).await;
                    let _ = reply.send(());
                }
                None => flushing = false,
            },
        }
    }
}

/// The start of a `.do`, where a `#!` line would be (see [`dofile::interpreter`]).
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(dofile::SHEBANG_MAX);
    File::open(path)?
        .take(dofile::SHEBANG_MAX as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Counts itself in a progress gauge while alive.
struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    fn new(g: &'a AtomicUsize) -> Gauge<'a> {
        g.fetch_add(1, Ordering::Relaxed);
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Spawns the `.do` with the requester's umask. When the job tokens are a pipe advertised as
/// descriptors, they are made inheritable for this one spawn, under the spawn lock so that no
/// other `.do` inherits them by accident. An executable `.do` still open for writing somewhere
/// (`ETXTBSY`, e.g. an editor saving it, or another process forking at that moment) is retried
/// briefly instead of failing the build.
async fn spawn(
    engine: &Engine,
    flight: &Flight,
    cmd: &mut tokio::process::Command,
    cwd: &Path,
    inherit: bool,
) -> io::Result<tokio::process::Child> {
    let tokens = &flight.session.tokens;
    let mut attempt = 0;
    loop {
        let result = engine.umask.with(flight.origin.umask, || {
            let _serial = engine.spawn_lock.lock().unwrap_or_else(|p| p.into_inner());
            if inherit {
                tokens.children_inherit(true)?;
            }
            // The child starts in `cwd` because the daemon is there while it spawns it:
            // `Command::current_dir` would make the statically linked std fork (it cannot
            // find `posix_spawn_file_actions_addchdir_np`), copying the daemon's page tables
            // for every `.do`; `posix_spawn` does not. Nothing in the daemon uses relative
            // paths, and spawns are serialised here.
            let child = std::env::set_current_dir(cwd).and_then(|()| cmd.spawn());
            // `/` exists: nothing to report.
            let _ = std::env::set_current_dir("/");
            if inherit {
                tokens.children_inherit(false)?;
            }
            child
        });
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// Variables the daemon sets for a `.do`; whatever the requester's environment had under
/// these names is replaced.
const SET_BY_DAEMON: &[&str] = &[
    "REDO_LEVEL",
    "REDO_DIRPREFIX",
    "REDO_BUILD_UUID",
    "REDO_DEP_CWD",
    "REDO_TOP_DIR",
    "PWD",
    "PATH",
    redo_proto::env::SOCKET,
    redo_proto::env::JOB,
    "MAKEFLAGS",
    // goredo's own plumbing: meaningless here and misleading if inherited from a goredo parent.
    "REDO_DEP_FD",
    "REDO_STDERR_PREFIX",
    "REDO_STATUS_FD",
    "REDO_OOD_TGTS_FD",
    "REDO_OOD_TGTS_LOCK_FD",
    "REDO_JS_FD",
    "REDO_JS_TOKEN",
];

/// The `.do`'s environment: the requester's, plus where the daemon is and which job this is.
/// Also whether the jobserver's descriptors must be inherited.
fn child_env(
    engine: &Engine,
    flight: &Flight,
    dof: &dofile::DoFile,
    job: u64,
) -> (Vec<(OsString, OsString)>, bool) {
    let origin = &flight.origin;
    let mut env: Vec<(OsString, OsString)> = origin
        .env
        .0
        .iter()
        .filter(|(k, _)| !SET_BY_DAEMON.iter().any(|s| k.as_bytes() == s.as_bytes()))
        .cloned()
        .collect();
    let mut set = |k: &str, v: OsString| env.push((k.into(), v));
    set("REDO_LEVEL", (flight.level + 1).to_string().into());
    set("REDO_DIRPREFIX", dof.dir_prefix.clone().into_os_string());
    set("REDO_BUILD_UUID", flight.session.uuid.clone().into());
    set("REDO_DEP_CWD", dof.dir.clone().into_os_string());
    set("PWD", dof.dir.clone().into_os_string());
    set(
        redo_proto::env::SOCKET,
        engine.socket.clone().into_os_string(),
    );
    set(redo_proto::env::JOB, job.to_string().into());
    if let Some(top) = &origin.settings.top_dir {
        set("REDO_TOP_DIR", top.clone().into_os_string());
    }
    // The client binaries first, so that `redo-ifchange` in a .do is this build's, even when it
    // was started straight from a cargo target directory.
    let inherited = origin
        .env
        .get("PATH")
        .map(OsStr::as_bytes)
        .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let client = origin.client_dir.as_os_str().as_bytes();
    let path = if client.is_empty() || inherited.split(|&b| b == b':').next() == Some(client) {
        inherited.to_vec()
    } else {
        [client, b":", inherited].concat()
    };
    set("PATH", OsString::from_vec(path));
    // make run by the .do shares this build's job tokens.
    let makeflags = origin
        .env
        .get("MAKEFLAGS")
        .map(OsStr::as_bytes)
        .unwrap_or(b"");
    let tokens = &flight.session.tokens;
    let mut inherit = false;
    match tokens.for_children() {
        Some(js) => {
            let (flags, js_fd, fds) =
                jobserver::advertise(makeflags, &js, tokens.limit(), origin.settings.make);
            inherit = fds;
            match flags {
                Some(f) => set("MAKEFLAGS", OsString::from_vec(f)),
                None => set("MAKEFLAGS", OsString::from_vec(makeflags.to_vec())),
            }
            if let Some(fd) = js_fd {
                set("REDO_JS_FD", OsString::from_vec(fd));
            }
        }
        // No pipe to share: an outer make's descriptors are not open here, so its jobserver
        // words would only earn a "jobserver unavailable" warning.
        None if !makeflags.is_empty() => set(
            "MAKEFLAGS",
            OsString::from_vec(jobserver::without_jobserver(makeflags)),
        ),
        None => {}
    }
    (env, inherit)
}

/// What a `.do` produced, as [`conclude`] found it.
enum Output {
    /// Nothing: the target is phony.
    Nothing,
    /// Its stdout, captured outside the target's directory ([`durable::capture`]).
    Stdout(File),
    /// `$3`: a file, a symbolic link or a directory.
    Arg3(PathBuf),
    /// A directory it made at `$1` itself.
    DirInPlace,
}

/// The blocking tail of a successful job.
struct Commit {
    dir: PathBuf,
    name: OsString,
    output: Output,
    /// Where a stdout output is written out, beside the target (a journaled temp name).
    stdout_tmp: PathBuf,
    prev_hash: Option<Hash>,
    sync: bool,
    umask: u32,
    rec_path: PathBuf,
    build: String,
    deps: Records,
    /// The state file as it is before the commit.
    prev: Option<Arc<Rec>>,
}

struct Committed {
    rec: Arc<Rec>,
    /// The new state file's stat; `None` when the old one was left as it was.
    rec_stamp: Option<Stamp>,
    target: Option<(Stamp, Hash)>,
    kept_same: bool,
}

impl Commit {
    /// Installs the output and the new state. With output, the order is: the new state in
    /// the state file's temporary (the pending record, durable when syncing), the target
    /// (renamed, or its times set when the content is the same), the state file (the
    /// temporary rewritten with the target's final stat and renamed over it). A state
    /// directory that cannot be written therefore fails before the old target is touched, and
    /// a crash between the two renames leaves a pending record that identifies the new target
    /// as ours ([`durable::interrupted_commit`]).
    fn run(mut self, gate: &UmaskGate) -> Result<Committed, String> {
        let target = self.dir.join(&self.name);
        // The .do may have removed the target's directory, `.redo` in it with it, and made
        // it again: the state goes where the target is.
        let redo_dir = self.rec_path.parent().unwrap_or(Path::new("/"));
        gate.with(self.umask, || fs::create_dir_all(redo_dir))
            .map_err(|e| io_msg("create", redo_dir, &e))?;
        let out = match std::mem::replace(&mut self.output, Output::Nothing) {
            Output::Nothing => return self.phony(&target, gate),
            Output::DirInPlace => return self.directory(&target, None, gate),
            Output::Arg3(p) if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) => {
                return self.directory(&target, Some(p), gate);
            }
            Output::Arg3(p) => Ok(p),
            Output::Stdout(f) => Err(f),
        };
        let target_is_file = fs::symlink_metadata(&target).is_ok_and(|m| m.is_file());
        let (out, hash, kept_same) = match out {
            Ok(p) => {
                let hash = hash_entry(&p).map_err(|e| io_msg("read", &p, &e))?;
                let is_file = fs::symlink_metadata(&p).is_ok_and(|m| m.is_file());
                let kept = is_file && target_is_file && self.prev_hash == Some(hash);
                (Some(p), hash, kept)
            }
            Err(capture) => {
                let hash = durable::hash_capture(&capture).map_err(|e| {
                    format!("cannot read the captured stdout of {}: {e}", show(&target))
                })?;
                if target_is_file && self.prev_hash == Some(hash) {
                    // Same content: nothing to write out.
                    (None, hash, true)
                } else {
                    durable::copy_capture(&capture, &self.stdout_tmp, gate, self.umask)?;
                    (Some(self.stdout_tmp.clone()), hash, false)
                }
            }
        };
        // The target's own record, with the output's stat for now (a rename changes its ctime).
        let mut deps = self.deps.into_vec();
        deps.push(Dep::Ifchange {
            target: self.name.as_bytes().to_vec(),
            stamp: stamp_of(out.as_deref().unwrap_or(&target))?,
            hash: Some(hash),
        });
        let mut rec = Rec {
            build: self.build,
            deps,
        };
        let writer = durable::RecWriter::begin(&self.rec_path, &rec, self.sync, gate, self.umask)?;
        let install = || -> Result<(), String> {
            match &out {
                Some(out) if !kept_same => {
                    // A link has no content of its own to sync: its directory's fsync is it.
                    if self.sync && fs::symlink_metadata(out).is_ok_and(|m| m.is_file()) {
                        File::open(out)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| io_msg("fsync", out, &e))?;
                    }
                    durable::replace(out, &target)?;
                }
                _ => {
                    // Same content: keep the old file, so dependants see nothing new.
                    if let Some(out) = &out {
                        let _ = fs::remove_file(out);
                    }
                    nix::sys::stat::utimensat(
                        nix::fcntl::AT_FDCWD,
                        &target,
                        &nix::sys::time::TimeSpec::UTIME_NOW,
                        &nix::sys::time::TimeSpec::UTIME_NOW,
                        nix::sys::stat::UtimensatFlags::FollowSymlink,
                    )
                    .map_err(|e| io_msg("set the times of", &target, &io::Error::from(e)))?;
                }
            }
            if self.sync {
                fsync_dir(&self.dir)?;
            }
            Ok(())
        };
        if let Err(e) = install() {
            // Nothing was installed: the old state stands.
            writer.abandon();
            return Err(e);
        }
        let stamp = stamp_of(&target)?;
        if let Some(Dep::Ifchange { stamp: own, .. }) = rec.deps.last_mut() {
            *own = stamp;
        }
        // Should this fail, the pending record stays: the new target is still known as ours.
        let rec_stamp = writer.finish(Some(&rec))?;
        Ok(Committed {
            rec: Arc::new(rec),
            rec_stamp: Some(rec_stamp),
            target: Some((stamp, hash)),
            kept_same,
        })
    }

    /// No output: no target. An old file is removed; the target is phony now.
    fn phony(mut self, target: &Path, gate: &UmaskGate) -> Result<Committed, String> {
        let had_target = fs::remove_file(target).is_ok();
        let phony = Dep::Ifcreate {
            target: self.name.as_bytes().to_vec(),
        };
        // A phony target (`all`) runs in every build: when it declared exactly what its
        // state already says, only the `Build` line would change, which matters to nobody
        // outside this session (the daemon knows what it built), so the state file is
        // left alone instead of rewriting (and re-reading) a large one each time.
        let unchanged = |p: &Rec| {
            p.deps
                .split_last()
                .is_some_and(|(last, rest)| *last == phony && self.deps.same_as(rest))
        };
        if let Some(prev) = self.prev.take().filter(|p| !had_target && unchanged(p)) {
            return Ok(Committed {
                rec: prev,
                rec_stamp: None,
                target: None,
                kept_same: false,
            });
        }
        let mut deps = self.deps.into_vec();
        deps.push(phony);
        let rec = Rec {
            build: self.build,
            deps,
        };
        let rec_stamp = durable::write_rec(&self.rec_path, &rec, self.sync, gate, self.umask)?;
        Ok(Committed {
            rec: Arc::new(rec),
            rec_stamp: Some(rec_stamp),
            target: None,
            kept_same: false,
        })
    }

    /// A directory target: made at `$3` (`from`, put in the target's place) or at `$1`. Its
    /// state has no record of its own: a directory's stat changes with every entry made in
    /// it, so it is up to date when its dependencies are (and rebuilt when it is missing),
    /// never "externally modified"; and a hash of a tree would cost a walk of it per check.
    fn directory(
        self,
        target: &Path,
        from: Option<PathBuf>,
        gate: &UmaskGate,
    ) -> Result<Committed, String> {
        let rec = Rec {
            build: self.build,
            deps: self.deps.into_vec(),
        };
        if self.sync {
            durable::sync_tree(from.as_deref().unwrap_or(target))?;
        }
        let writer = durable::RecWriter::begin(&self.rec_path, &rec, self.sync, gate, self.umask)?;
        if let Some(from) = &from {
            if let Err(e) = durable::replace(from, target) {
                writer.abandon();
                return Err(e);
            }
        }
        if self.sync {
            fsync_dir(&self.dir)?;
        }
        let rec_stamp = writer.finish(None)?;
        Ok(Committed {
            rec: Arc::new(rec),
            rec_stamp: Some(rec_stamp),
            target: None,
            kept_same: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_texts() {
        assert_eq!(exit_text(ExitStatus::from_raw(2 << 8)), "exit status 2");
        assert_eq!(
            exit_text(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            exit_text(ExitStatus::from_raw(libc::SIGTERM)),
            "signal: terminated"
        );
    }
}
