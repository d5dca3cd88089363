//! `redo` and `redo-ifchange`: the targets of one request, in order, brought up to date,
//! and the dependency records a nested request leaves in its job.

use super::*;

/// Paths relative to `cwd`, one per line.
/// How many of one request's targets are brought up to date at once. Enough to keep every
/// job slot busy while others wait for their dependencies; bounded because each one in
/// progress holds a future (and soon a flight): a clean build of `all` with 10 000
/// dependencies must not park 10 000 jobs on the token pool. Cannot deadlock: what a target
/// waits for (its dependencies, a token) never waits for a later target of this request's
/// window; dependencies get flights of their own.
fn window(limit: Option<u32>) -> usize {
    match limit {
        Some(0) => usize::MAX,
        Some(n) => (n as usize).saturating_mul(4).max(64),
        None => 256,
    }
}

/// `--shuffle`: a random order (Fisher-Yates over a xorshift seeded from the OS).
fn shuffled<T>(items: &mut [T]) {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let mut x = u64::from_le_bytes(seed) | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Redraws a terminal client's status line while its build runs; stops when dropped.
struct StatusLine(Option<tokio::task::JoinHandle<()>>);

impl StatusLine {
    pub(crate) fn start(session: Arc<Session>, sink: Sink) -> StatusLine {
        if !sink.style.status {
            return StatusLine(None);
        }
        StatusLine(Some(tokio::spawn(async move {
            let mut shown = String::new();
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let line = session.progress.line();
                if line != shown {
                    sink.status(&line);
                    shown = line;
                }
            }
        })))
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

impl Engine {
    /// A new session's token pool: make's when a `make -jN` started the client (unless `-j`
    /// was given), else its own.
    pub(crate) fn session_tokens(&self, b: &Build, origin: &Origin, client: &Client<'_>) -> Tokens {
        let own = || {
            Tokens::new(
                b.options.jobs.or(origin.settings.jobs).unwrap_or(1),
                self.rundir.as_deref(),
            )
        };
        match (&client.make, b.options.jobs) {
            (Some(js), None) => Tokens::from_make(js, client.pid).unwrap_or_else(|e| {
                client.sink.message(
                    Kind::Warn,
                    0,
                    &format!("cannot use make's jobserver ({e}); using this build's own job limit"),
                );
                own()
            }),
            _ => own(),
        }
    }

    pub(crate) async fn build(
        self: &Arc<Self>,
        b: Build,
        origin: Arc<Origin>,
        job: Option<Arc<Job>>,
        client: &Client<'_>,
    ) -> i32 {
        let (sink, tool) = (&client.sink, client.tool);
        let (session, level) = match &job {
            Some(j) => {
                // What the .do changed before asking must be seen (see `watch`).
                if let (true, Some(w)) = (j.flight.session.watched, &self.watcher) {
                    w.sync();
                }
                (j.flight.session.clone(), j.flight.level + 1)
            }
            None => {
                let (fs, watched) = self.session_fs(&origin.settings);
                let tokens = self.session_tokens(&b, &origin, client);
                (
                    Arc::new(Session::new(
                        tokens,
                        fs,
                        watched,
                        self.session_verdicts(watched),
                    )),
                    0,
                )
            }
        };
        let _status = job
            .is_none()
            .then(|| StatusLine::start(session.clone(), sink.clone()));
        if job.is_none() {
            if let Err(e) = self.caches.for_env(&origin.env) {
                // Said once per build; the build goes on without the cache.
                sink.message(Kind::Warn, 0, &format!("{e}: building without the cache"));
            }
        }
        let started = std::time::Instant::now();
        let mut targets: Vec<&[u8]> = b.targets.iter().collect();
        if targets.is_empty() && job.is_none() {
            targets.push(b"all");
        }
        if job.is_none() {
            let names: Vec<String> = targets
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            let jobs = session
                .tokens
                .limit()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null);
            sink.event(serde_json::json!({"type": "session", "event": "started", "build": session.uuid, "targets": names, "jobs": jobs}));
        }
        // A nested request answered in full before, nothing it depends on changed since: its
        // records again, from one lookup (see `verdict`, batches).
        let batch = match (&job, &session.verdicts) {
            (Some(j), Some(v)) if b.mode == BuildMode::Ifchange && !b.options.force => {
                let since = v.generation();
                let key = crate::verdict::batch_key(
                    &j.flight.dir,
                    &origin.cwd,
                    origin.settings.trust,
                    b.targets.as_bytes(),
                );
                if let Some(records) = v.batch(&key, |members| self.any_in_flight(members)) {
                    // Nothing is printed on this path, so the `.do`'s earlier stderr needs no
                    // flush to stay in order (a flush is a round trip to the relay task).
                    j.record_shared(records);
                    j.reclaim_token().await;
                    return 0;
                }
                Some((v.clone(), key, since))
            }
            _ => None,
        };
        // Resolve and de-duplicate (by path: `a` and `./a` are one target). Each wanted target
        // keeps the index of its name as given, which messages show.
        let mut wanted: Vec<(PathBuf, usize)> = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(t));
            if paths::split(&abs).is_none() {
                sink.error(&format!(
                    "{tool}: {}: not a file name",
                    String::from_utf8_lossy(t)
                ));
                return 1;
            }
            wanted.push((abs, i));
        }
        if b.mode == BuildMode::Ifchange {
            let mut seen = HashSet::with_capacity_and_hasher(wanted.len(), Default::default());
            let first: Vec<bool> = wanted
                .iter()
                .map(|(abs, _)| seen.insert(abs.as_os_str()))
                .collect();
            drop(seen);
            let mut first = first.into_iter();
            wanted.retain(|_| first.next().unwrap_or(true));
        }
        // Asked after the batch answer, which prints nothing: no look at the client's stderr.
        let waiter = match &job {
            Some(j) => {
                let redirected = !j.relays_stderr_of(client.pid);
                if !redirected {
                    // What the .do wrote before asking must reach the terminal before what
                    // this request prints, which does not go through its pipe. (A redirected
                    // client prints after what the .do wrote there before asking, by itself.)
                    j.flush_stderr().await;
                }
                Waiter::Job {
                    job: j.clone(),
                    sink: sink.clone(),
                    redirected,
                }
            }
            None => Waiter::Client(sink.clone()),
        };
        let want = |abs: &PathBuf, name: usize, force: bool| Want {
            since: 0, // Read by `bring`.
            target_meta: None,
            rec: None,
            target: abs.clone(),
            display: String::from_utf8_lossy(targets[name]).into_owned(),
            level,
            force,
            session: session.clone(),
            origin: origin.clone(),
            waiter: waiter.clone(),
            start: None,
        };
        let (keep_going, shuffle) = (origin.settings.keep_going, origin.settings.shuffle);
        let mut code = 0;
        let mut all_held = false;
        let mut recorded: Vec<(&PathBuf, Option<Known>)> = Vec::new();
        match b.mode {
            BuildMode::Redo => {
                let mut order: Vec<&(PathBuf, usize)> = wanted.iter().collect();
                if shuffle {
                    shuffled(&mut order);
                }
                for (abs, name) in order {
                    match self.bring(want(abs, *name, true)).await {
                        Ok(known) => recorded.push((abs, known)),
                        Err(()) => {
                            code = 1;
                            if !keep_going {
                                break;
                            }
                        }
                    }
                }
            }
            BuildMode::Ifchange => {
                let force = b.options.force;
                // Targets a verdict vouches for are answered here, without a flight or even a
                // future each: the no-op of a large `all` is mostly these.
                let mut results: Vec<Option<Result<Option<Known>, ()>>> = vec![None; wanted.len()];
                if !force {
                    let trust = origin.settings.trust;
                    for ((abs, _), r) in wanted.iter().zip(results.iter_mut()) {
                        if let Some((meta, hash)) = self.held(&session, abs, trust) {
                            *r = Some(Ok(Some(Known {
                                meta: Some(meta),
                                hash,
                            })));
                        }
                    }
                }
                let mut rest: Vec<usize> = (0..wanted.len())
                    .filter(|i| results[*i].is_none())
                    .collect();
                all_held = rest.is_empty();
                if shuffle {
                    shuffled(&mut rest);
                }
                // Each target starts once the one before it has (see `wait_landed`): in
                // argument order, whatever order the flights' tasks happen to run in.
                let mut after: Option<oneshot::Receiver<()>> = None;
                let wants: Vec<(Want, Option<oneshot::Receiver<()>>)> = rest
                    .iter()
                    .map(|&i| {
                        let (tx, rx) = oneshot::channel();
                        let w = Want {
                            start: Some(tx),
                            ..want(&wanted[i].0, wanted[i].1, force)
                        };
                        (w, after.replace(rx))
                    })
                    .collect();
                let brought: Vec<_> = futures_util::stream::iter(wants)
                    .map(|(w, after)| async move {
                        if let Some(previous) = after {
                            // Sent or dropped: either way the previous target has started.
                            let _ = previous.await;
                        }
                        self.bring(w).await
                    })
                    .buffered(window(session.tokens.limit()))
                    .collect()
                    .await;
                for (i, r) in rest.into_iter().zip(brought) {
                    results[i] = Some(r);
                }
                let results: Vec<_> = results.into_iter().flatten().collect();
                if results.iter().all(Result::is_ok) {
                    recorded.extend(
                        wanted
                            .iter()
                            .zip(results)
                            .map(|((a, _), r)| (a, r.ok().flatten())),
                    );
                } else {
                    code = 1;
                }
            }
        }
        if let Some(j) = &job {
            if code == 0 {
                match self.dependency_records(&j.flight.dir, &recorded, &session, &origin.settings)
                {
                    Ok(deps) => match (all_held, batch) {
                        // Kept once, shared by the batch and this job's records.
                        (true, Some((v, key, since))) => {
                            let deps: Arc<[Dep]> = deps.into();
                            let members: Vec<&Path> =
                                wanted.iter().map(|(abs, _)| abs.as_path()).collect();
                            v.record_batch(key, &members, deps.clone(), since);
                            j.record_shared(deps);
                        }
                        _ => j.record(deps),
                    },
                    Err(e) => {
                        sink.error(&format!("{tool}: {e}"));
                        code = 1;
                    }
                }
            }
            j.reclaim_token().await;
        }
        if job.is_none() {
            if let Some(w) = self
                .caches
                .for_env(&origin.env)
                .ok()
                .flatten()
                .and_then(|c| c.take_warning())
            {
                sink.message(Kind::Warn, 0, &w);
            }
            let p = &session.progress;
            sink.event(serde_json::json!({
                "type": "session", "event": "finished", "build": session.uuid, "exit_code": code,
                "duration": started.elapsed().as_secs_f64(),
                "built": p.built.load(Ordering::Relaxed), "failed": p.failed.load(Ordering::Relaxed),
            }));
        }
        code
    }

    /// `ifchange` records for the given files, relative to the target directory `dir`. A
    /// missing file gets zeroed inode data and no hash (always out of date), or, when it is a
    /// target committed without output after a `redo-stamp`, its stamp as the hash
    /// ([`crate::store::recfile::recorded_stamp`]); a directory gets no record at all.
    pub(crate) fn dependency_records(
        &self,
        dir: &Path,
        files: &[(&PathBuf, Option<Known>)],
        session: &Session,
        settings: &Settings,
    ) -> Result<Vec<Dep>, String> {
        let checker = self.checker(session, settings);
        let mut deps = Vec::with_capacity(files.len());
        for (abs, known) in files {
            let rel = paths::relative(dir, abs).into_os_string().into_vec();
            let now = match known {
                Some(k) => k.meta,
                None => session
                    .fs
                    .stat(abs)
                    .map_err(|e| format!("cannot stat {}: {e}", show(abs)))?,
            };
            match now {
                None => deps.push(Dep::Ifchange {
                    target: rel,
                    stamp: Default::default(),
                    hash: checker
                        .phony_stamp(abs)
                        .map_err(|e| format!("cannot read the state of {}: {e}", show(abs)))?,
                }),
                Some(m) if m.kind == crate::fs::Kind::Dir => {}
                Some(m) => {
                    let hash = match known.and_then(|k| k.hash) {
                        Some(h) => h,
                        None => checker
                            .hash(abs, &m.stamp)
                            .map_err(|e| format!("cannot read {}: {e}", show(abs)))?,
                    };
                    deps.push(Dep::Ifchange {
                        target: rel,
                        stamp: m.stamp,
                        hash: Some(hash),
                    });
                }
            }
        }
        Ok(deps)
    }
}
