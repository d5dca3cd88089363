//! One `.do` from its job token to its commit, in the order the module header gives, as four
//! steps: [`prepare`] (state directory, token, lock, the external-modification guard, the
//! `.do` lookup), [`launch`] (temporaries, stdout capture, interpreter, environment, spawn),
//! waiting while its stderr is relayed, and [`finish`] (the checks, the commit, the `.log-rec`).

use super::*;

/// Runs the `.do` for `flight`'s target.
pub(super) async fn run(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
) -> Result<Ran, JobError> {
    let (ready, mut token) = match prepare(px, engine, flight).await? {
        Prepared::Ready(p, token) => (*p, token),
        Prepared::Done(ran) => return Ok(ran),
    };
    let mut cache = cached::cache_use(px, engine, flight, &ready);
    if let Some(cu) = &mut cache {
        // The lookup needs no job slot, and may wait for dependencies that need one (at
        // `-j1`, the only one): the token goes back meanwhile.
        drop(token);
        if let Some(ran) = cached::restore(px, engine, flight, &ready, cu).await {
            flight.session.progress.done.fetch_add(1, Ordering::Relaxed);
            drop(ready.lock);
            flight.say(Msg::Lock, &format!("LOCK_UN: {}", ready.lock_desc));
            return Ok(ran);
        }
        if let Some((r, t)) = flight.insight() {
            r.queued(t);
        }
        token = {
            let _queued = Gauge::new(&flight.session.progress.queued);
            flight.session.tokens.acquire().await
        };
    }
    // Its run starts now, before the spawn: a nested request the `.do` sends at once may be
    // served while the spawn is still being awaited, and its wait belongs to this run.
    if let Some((r, t)) = flight.insight() {
        r.started(t, Some(crate::insight::name(&ready.dof.path)));
    }
    let mut l = launch(px, engine, flight, ready, token).await?;
    l.cache = cache;
    let progress = &flight.session.progress;
    flight.mark_started();
    let dof = &l.ready.dof;
    let default_for = dof.is_default.then_some(flight.display.as_str());
    let _running = progress
        .jobs
        .enter(&progress.running, &l.job.job, &dof.path, default_for);
    let pid = u32::try_from(l.child.pid).unwrap_or(0);
    if l.child.pid > 0 {
        l.running.started(l.child.pid);
        l.process.set_pgid(l.child.pid);
    }
    flight.say(Msg::Dbg, &format!("{} runs [{pid}]", flight.display));
    let do_path = &l.ready.dof.path;
    flight.event(|s| {
        BuildEvent::Target(TargetEvent::Started {
            target: s.rel(&flight.target),
            do_file: s.rel(do_path),
            level: flight.level,
        })
    });
    let (flush_tx, flush_rx) = mpsc::channel(4);
    l.process.set_flush(flush_tx);
    let status = {
        let relay = relay_stderr(
            flight,
            &l.process,
            l.stderr.take(),
            pid,
            flush_rx,
            l.log.take(),
        );
        let wait = l.child.wait();
        tokio::pin!(relay, wait);
        tokio::select! {
            st = &mut wait => {
                // The .do is done; a background process it left may hold stderr open. Take
                // what comes promptly, then stop listening rather than hang the build.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut relay).await;
                st
            }
            () = &mut relay => wait.await,
        }
    };
    let took = l.started.elapsed();
    // What the `.do` changed is only queued in the watcher: the commit and every check after
    // it must see it.
    engine.sync_watcher(&flight.session);
    progress.done.fetch_add(1, Ordering::Relaxed);
    let status = status.map_err(|e| l.ready.with_do(Error::Wait(e), Some(took)))?;
    finish(px, engine, flight, l, status, pid, took).await
}

/// An error of a job whose `.do` is `dof`: error lines always name the `.do`, so that a
/// failure says which script failed.
pub(super) fn with_do(
    dof: &dofile::DoFile,
    cause: impl Into<Error>,
    took: Option<Duration>,
) -> JobError {
    JobError {
        took,
        do_rel: Some(dof.rel.clone()),
        do_path: Some(dof.path.clone()),
        ..JobError::new(cause.into())
    }
}

/// A target whose `.do` may run now: its lock is held, the guard passed, the `.do` found.
pub(super) struct Ready {
    pub(super) lock: locks::TargetLock,
    /// The lock, as `LOCK_` lines name it.
    pub(super) lock_desc: String,
    pub(super) target: PathBuf,
    pub(super) rec_path: PathBuf,
    /// The target's stat before the `.do` ran (when it had an own record).
    pub(super) prev_stamp: Option<Stamp>,
    /// The target's recorded hash (when it had one).
    pub(super) prev_hash: Option<Hash>,
    pub(super) was_dir: bool,
    pub(super) dof: dofile::DoFile,
    /// The `.do` as success lines name it: only a `default*.do` (as goredo does).
    pub(super) do_rel: Option<PathBuf>,
    /// The records the runner itself makes: the `.do` lookup's ifcreates, the `.do`.
    pub(super) deps: Vec<Dep>,
}

impl Ready {
    /// An error of this job: error lines always name the `.do`, so that a failure says which
    /// script failed.
    pub(super) fn with_do(&self, cause: impl Into<Error>, took: Option<Duration>) -> JobError {
        with_do(&self.dof, cause, took)
    }
}

pub(super) enum Prepared {
    /// With the job token the `.do` will run under.
    Ready(Box<Ready>, jobserver::Token),
    /// Nothing to run: the target was modified by hand, or another process built it.
    Done(Ran),
}

/// Everything before the `.do` is started.
async fn prepare(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
) -> Result<Prepared, JobError> {
    let origin = &flight.origin;
    let settings = &origin.settings;
    let fs_ = &*flight.session.fs;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());

    let progress = &flight.session.progress;
    if let Some((r, t)) = flight.insight() {
        r.queued(t);
    }
    let token = {
        let _queued = Gauge::new(&progress.queued);
        flight.session.tokens.acquire().await
    };
    flight.say(
        Msg::Js,
        &format!("acquired a job token: {}", flight.display),
    );
    let lock_desc = locks::describe(dir, name);
    flight.say(Msg::Lock, &format!("LOCK_NB: {lock_desc}"));
    // `.redo` is made when the lock file cannot be opened for want of it: one `mkdir` per
    // directory rather than one per target.
    let try_lock = || {
        engine
            .umask()
            .with(origin.umask, || locks::try_lock(dir, name))
    };
    let locked = match try_lock() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            make_redo_dir(engine, flight)?;
            try_lock()
        }
        other => other,
    };
    let lock = match locked {
        Ok(TryLock::Acquired(l)) => l,
        Ok(TryLock::Held(pid)) => {
            drop(token);
            return wait_for_other(engine, flight, pid)
                .await
                .map(Prepared::Done);
        }
        Err(source) => {
            return Err(before_run(Error::Lock {
                what: lock_desc,
                source,
            }));
        }
    };

    // Whose file is at the target's path (see `guard`): redo never replaces one it did not
    // write.
    let target = dir.join(name);
    let rec_path = crate::store::layout::rec_path(dir, name);
    let now = fs_
        .lstat(&target)
        .map_err(|e| before_run(Error::io("stat", &target)(e)))?;
    let loaded = engine
        .recs()
        .load(fs_, &rec_path)
        .map_err(|e| before_run(Error::io("read", &rec_path)(e)))?;
    let checker = engine.checker(&flight.session, settings);
    let disk = &*px.disk;
    let found = guard::judge(
        disk,
        &checker,
        &loaded,
        &target,
        &rec_path,
        name.as_bytes(),
        now,
    )
    .map_err(|e| before_run(Error::io("read", &target)(e)))?;
    let (prev_stamp, prev_hash, was_dir) = match found {
        guard::Found::Ours {
            prev_stamp,
            prev_hash,
            was_dir,
        } => (prev_stamp, prev_hash, was_dir),
        guard::Found::Modified => {
            drop(lock);
            return guard::modified(flight).map(Prepared::Done);
        }
        guard::Found::NotOurs => {
            drop(lock);
            guard::not_ours(flight);
            return Ok(Prepared::Done(Ran::Kept));
        }
    };

    let FoundDo { dof, do_rel, deps } = match find_do(engine, flight)? {
        Ok(found) => found,
        // Built by redo, and nothing builds it any more: a source from now on.
        Err(_) if now.is_some() => {
            guard::do_gone(disk, engine, flight, &rec_path)?;
            drop(lock);
            return Ok(Prepared::Done(Ran::Kept));
        }
        Err(tried) => return Err(guard::no_do(flight, &tried)),
    };
    Ok(Prepared::Ready(
        Box::new(Ready {
            lock,
            lock_desc,
            target,
            rec_path,
            prev_stamp,
            prev_hash,
            was_dir,
            dof,
            do_rel,
            deps,
        }),
        token,
    ))
}

/// `DIR/.redo`, created under the requester's umask if it is not there.
fn make_redo_dir(engine: &Engine, flight: &Flight) -> Result<(), JobError> {
    let redo_dir = crate::store::layout::redo_dir(&flight.dir);
    let created = engine
        .umask()
        .with(flight.origin.umask, || match fs::create_dir(&redo_dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(_) => fs::create_dir_all(&redo_dir).map(|()| true),
        })
        .map_err(|e| before_run(Error::io("create", &redo_dir)(e)))?;
    if created {
        // The next check in this request may ask whether `dir` has state files.
        engine.wrote(&redo_dir);
    }
    Ok(())
}

/// The `.do` that builds a target, as [`find_do`] found it.
struct FoundDo {
    dof: dofile::DoFile,
    /// The `.do` as success lines name it: only a `default*.do`.
    do_rel: Option<PathBuf>,
    /// The records of the lookup: ifcreates of the candidates that are missing, ifchange of
    /// the `.do` (last).
    deps: Vec<Dep>,
}

/// The `.do` that builds the target and its hash; `Err(tried)` with the candidates tried when
/// none does.
fn find_do(engine: &Engine, flight: &Flight) -> Result<Result<FoundDo, Vec<PathBuf>>, JobError> {
    let settings = &flight.origin.settings;
    let fs_ = &*flight.session.fs;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());
    let lookup = dofile::find(fs_, dir, name, settings.top_dir.as_deref())
        .map_err(|e| before_run(Error::DoLookup(e)))?;
    let mut deps: Vec<Dep> = lookup
        .missing
        .iter()
        .map(|m| Dep::Ifcreate {
            target: paths::bytes(m).to_vec(),
        })
        .collect();
    let Some(dof) = lookup.found else {
        return Ok(Err(lookup.missing));
    };
    let do_rel = dof.is_default.then(|| dof.rel.clone());
    let do_meta = fs_
        .stat(&dof.path)
        .ok()
        .flatten()
        .ok_or_else(|| with_do(&dof, Error::DoVanished(dof.path.clone()), None))?;
    let do_hash = engine
        .hashes()
        .hash(
            fs_,
            &dof.path,
            &do_meta.stamp,
            settings.trust != Trust::None,
        )
        .map_err(|e| with_do(&dof, Error::io("read", &dof.path)(e), None))?;
    deps.push(Dep::Ifchange {
        target: paths::bytes(&dof.rel).to_vec(),
        stamp: do_meta.stamp,
        hash: Some(do_hash),
    });
    flight.say(Msg::Wait, &flight.name_with_do(do_rel.as_deref()));
    Ok(Ok(FoundDo { dof, do_rel, deps }))
}

/// A `.do` process started, and what its end is checked and logged against.
pub(super) struct Launched {
    pub(super) ready: Ready,
    pub(super) child: crate::spawner::Proc,
    /// The read end of the `.do`'s stderr pipe, for the relay.
    pub(super) stderr: Option<tokio::net::unix::pipe::Receiver>,
    pub(super) job: JobHandle,
    /// The `.do`'s process, as the engine and nested requests see it.
    pub(super) process: Arc<DoProcess>,
    pub(super) running: RunningJob,
    pub(super) log: Option<logs::JobLog>,
    pub(super) log_env: Vec<(OsString, OsString)>,
    pub(super) capture: File,
    /// The state file's temporary, made once the `.do` was started ([`durable::RecTemp`]).
    pub(super) rec_temp: Option<durable::RecTemp>,
    pub(super) stdout_tmp: PathBuf,
    pub(super) arg3_abs: PathBuf,
    pub(super) program: OsString,
    pub(super) args: Vec<OsString>,
    pub(super) started: Instant,
    pub(super) started_at: SystemTime,
    /// Where the output goes after its commit ([`cached::upload`]).
    pub(super) cache: Option<cached::CacheUse>,
}

/// Temporaries, the stdout capture, the interpreter, the environment, the spawn. One function
/// (longer than most) because each step hands the next a guard: the journal entry names the
/// temporaries before they exist, the capture and the job registration must outlive the spawn.
async fn launch(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
    mut ready: Ready,
    token: jobserver::Token,
) -> Result<Launched, JobError> {
    let origin = &flight.origin;
    let settings = &origin.settings;
    let fs_ = &*flight.session.fs;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());
    let (target, rec_path) = (ready.target.clone(), ready.rec_path.clone());
    let deps = std::mem::take(&mut ready.deps);
    // `find_do` records the `.do` itself last.
    let do_stamp = match deps.last() {
        Some(Dep::Ifchange { stamp, .. }) => Some(*stamp),
        _ => None,
    };
    let dof = &ready.dof;
    let stdout_tmp = temp_path(dir, name);
    let mut arg3_abs = stdout_tmp.clone().into_os_string();
    arg3_abs.push(".3");
    let arg3_abs = PathBuf::from(arg3_abs);
    let journal_id = engine.next_id();
    let running = RunningJob::new(
        px.disk.clone(),
        px.registry(),
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
    let spill_dir = engine.socket().parent().unwrap_or(Path::new("/tmp"));
    let cannot_capture = |source: io::Error| {
        let cause = Error::Capture {
            target: flight.display.clone(),
            spill: spill_dir.to_path_buf(),
            source,
        };
        with_do(dof, cause, None)
    };
    let capture = durable::capture(spill_dir).map_err(cannot_capture)?;
    let stdout_file = capture.try_clone().map_err(cannot_capture)?;
    let arg3 = paths::relative(&dof.dir, &arg3_abs);

    let process = Arc::new(DoProcess::default());
    let job = engine.register_job(flight, deps, token, process.clone());
    let (program, mut args, shebang) = interpreter(px, flight, dof, do_stamp, fs_)?;
    args.extend([
        dof.arg1.clone().into_os_string(),
        dof.arg2.clone().into_os_string(),
        arg3.into_os_string(),
    ]);
    flight.say(
        Msg::Dbg,
        &format!(
            "sh: {}: {} {:?} cwd:{} dirprefix:{}",
            flight.display,
            program.to_string_lossy(),
            args,
            show(&dof.dir),
            show(&dof.dir_prefix)
        ),
    );

    let (env, inherit) = child_env(engine, flight, dof, job.id());
    let keep_logs = settings.keep_logs;
    let log_env = if keep_logs { env.clone() } else { Vec::new() };
    let log = match keep_logs {
        true => match engine
            .umask()
            .with(origin.umask, || logs::JobLog::create(dir, name))
        {
            Ok(l) => Some(l),
            Err(source) => {
                let cause = Error::Log {
                    target: flight.display.clone(),
                    source,
                };
                return Err(with_do(dof, cause, None));
            }
        },
        false => None,
    };
    let (stderr_r, stderr_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
        with_do(
            dof,
            Error::Spawn {
                program: program.clone(),
                source: e.into(),
            },
            None,
        )
    })?;
    // Known before the spawn: the `.do` may start a nested request before the spawner's
    // answer arrives, and that request must tell its own stderr from this pipe.
    if let Ok(st) = nix::sys::stat::fstat(&stderr_r) {
        // `dev_t`/`ino_t` are unsigned 64-bit on Linux; the cast only widens elsewhere.
        #[allow(clippy::useless_conversion)]
        process.set_stderr_pipe(u64::from(st.st_dev), u64::from(st.st_ino));
    }
    let (started, started_at) = (Instant::now(), SystemTime::now());
    let req = SpawnRequest {
        program: &program,
        args: &args,
        env: &env,
        cwd: &dof.dir,
        stdout: stdout_file.as_fd(),
        stderr: stderr_w.as_fd(),
    };
    let spawned = spawn(px, flight, req, inherit).await;
    // The child has its own copies now: the pipe ends when it (and what it left running) close
    // theirs.
    drop((stdout_file, stderr_w));
    let child = spawned.map_err(|source| {
        let program = program.clone();
        let cause = match shebang {
            true => Error::Interpreter {
                program,
                do_path: dof.path.clone(),
                source,
            },
            false => Error::Spawn { program, source },
        };
        with_do(dof, cause, Some(Duration::ZERO))
    })?;
    let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(stderr_r).ok();
    // While the `.do` starts up, the daemon would only wait. Should this fail, the commit
    // makes the temporary itself, and reports what it cannot.
    let rec_temp = durable::RecTemp::create(&px.disk, &rec_path, engine.umask(), origin.umask).ok();
    Ok(Launched {
        ready,
        child,
        stderr,
        job,
        process,
        running,
        log,
        log_env,
        capture,
        rec_temp,
        stdout_tmp,
        arg3_abs,
        program,
        args,
        started,
        started_at,
        cache: None,
    })
}

/// After the `.do` exited: the checks and the commit, the `.log-rec` (`-k`), the lock let go.
async fn finish(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
    mut l: Launched,
    status: ExitStatus,
    pid: u32,
    took: Duration,
) -> Result<Ran, JobError> {
    let origin = &flight.origin;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());
    let r = &l.ready;
    let after = AfterRun {
        target: &r.target,
        prev_stamp: r.prev_stamp,
        prev_hash: r.prev_hash,
        was_dir: r.was_dir,
        capture: &l.capture,
        stdout_tmp: &l.stdout_tmp,
        arg3_abs: &l.arg3_abs,
        rec_path: &r.rec_path,
        dof: &r.dof,
    };
    let result = conclude(
        px,
        engine,
        flight,
        &l.job,
        status,
        &after,
        l.rec_temp.take(),
    )
    .await
    .map_err(|cause| JobError {
        exit_code: status.code().filter(|c| *c != 0),
        ..r.with_do(cause, Some(took))
    });
    if origin.settings.keep_logs {
        let ifchange = match &result {
            Ok(rec) => rec.ifchange_targets().map(<[u8]>::to_vec).collect(),
            Err(_) => l
                .job
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
            cwd: r.dof.dir.clone(),
            pid: Some(pid),
            started: l.started_at,
            finished: l.started_at + took,
            cmd: l.program.clone(),
            args: l.args.clone(),
            env: l.log_env.clone(),
            exit_code: status.code().filter(|c| *c != 0),
            ifchange,
        };
        if let Err(e) = engine.umask().with(origin.umask, || rec.write(dir, name)) {
            flight.say(
                Msg::Warn,
                &format!("cannot write the .log-rec of {}: {e}", flight.display),
            );
        }
    }
    let rec = result?;
    // As before the split: the lock goes first, the journal entry when the job is over.
    let Launched {
        ready,
        mut running,
        cache,
        ..
    } = l;
    running.committed();
    drop(ready.lock);
    flight.say(Msg::Lock, &format!("LOCK_UN: {}", ready.lock_desc));
    drop(running);
    if let Some(cu) = cache {
        cached::upload(flight, &ready.target, &rec, cu);
    }
    Ok(Ran::Built {
        took,
        do_rel: ready.do_rel,
        do_path: ready.dof.path,
        cached: false,
    })
}
