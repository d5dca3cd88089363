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
                    Msg::Warn,
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
        let (session, level) = self.session_for(&b, &origin, job.as_ref(), client);
        let _status = job
            .is_none()
            .then(|| StatusLine::start(session.clone(), sink.clone()));
        if job.is_none() {
            if let Err(e) = self.caches.for_env(&origin.env) {
                // Said once per build; the build goes on without the cache.
                sink.message(Msg::Warn, 0, &format!("{e}: building without the cache"));
            }
        }
        let started = std::time::Instant::now();
        let mut targets: Vec<&[u8]> = b.targets.iter().collect();
        if targets.is_empty() && job.is_none() {
            targets.push(b"all");
        }
        if job.is_none() {
            sink.event(&BuildEvent::Session(SessionEvent::Started {
                build: session.uuid.clone(),
                targets: targets
                    .iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect(),
                jobs: session.tokens.limit(),
            }));
        }
        let batch = match self.batch(&b, &origin, job.as_ref(), &session).await {
            Batch::Answered => return 0,
            Batch::Keep(k) => k,
        };
        let Some(wanted) = resolve(&targets, &origin.cwd, b.mode, sink, tool) else {
            return 1;
        };
        let asking = Asking {
            targets: &targets,
            level,
            session: session.clone(),
            origin: origin.clone(),
            waiter: waiter_for(job.as_ref(), sink, client).await,
        };
        let (mut code, recorded, all_held) = match b.mode {
            BuildMode::Redo => {
                let (code, recorded) = self.redo_each(&asking, &wanted).await;
                (code, recorded, false)
            }
            BuildMode::Ifchange => self.ifchange_all(&asking, &wanted, b.options.force).await,
        };
        if let Some(j) = &job {
            if code == 0 {
                let held = all_held.then_some(batch).flatten();
                if let Err(e) = self.record_into(j, &recorded, &wanted, held, &asking) {
                    sink.error(&format!("{tool}: {e}"));
                    code = 1;
                }
            }
            j.reclaim_token().await;
        }
        if job.is_none() && code != 0 && origin.settings.keep_going {
            for line in session.failure_summary() {
                sink.message(Msg::Err, 0, &line);
            }
        }
        if job.is_none() {
            if let Some(w) = self
                .caches
                .for_env(&origin.env)
                .ok()
                .flatten()
                .and_then(|c| c.take_warning())
            {
                sink.message(Msg::Warn, 0, &w);
            }
            let p = &session.progress;
            sink.event(&BuildEvent::Session(SessionEvent::Finished {
                build: session.uuid.clone(),
                exit_code: code,
                duration: started.elapsed().as_secs_f64(),
                built: p.built.load(Ordering::Relaxed),
                failed: p.failed.load(Ordering::Relaxed),
            }));
        }
        code
    }

    /// The session a request builds in, and the level of its messages: a nested request's
    /// job's, or a new one for a top-level request.
    fn session_for(
        &self,
        b: &Build,
        origin: &Origin,
        job: Option<&Arc<Job>>,
        client: &Client<'_>,
    ) -> (Arc<Session>, usize) {
        match job {
            // Synced with the watcher when the request was accepted (see `Engine::handle`).
            Some(j) => (j.flight.session.clone(), j.flight.level + 1),
            None => {
                let (fs, watched) = self.session_fs(&origin.settings);
                let tokens = self.session_tokens(b, origin, client);
                let verdicts = self.session_verdicts(watched);
                (Arc::new(Session::new(tokens, fs, watched, verdicts)), 0)
            }
        }
    }

    /// A nested request answered in full before, nothing it depends on changed since: its
    /// records again, from one lookup (see `verdict`, batches). Otherwise where to keep this
    /// answer if it turns out to be one.
    async fn batch(
        &self,
        b: &Build,
        origin: &Origin,
        job: Option<&Arc<Job>>,
        session: &Session,
    ) -> Batch {
        let (Some(j), Some(v)) = (job, &session.verdicts) else {
            return Batch::Keep(None);
        };
        if b.mode != BuildMode::Ifchange || b.options.force {
            return Batch::Keep(None);
        }
        let since = v.generation();
        let key = crate::verdict::batch_key(
            &j.flight.dir,
            &origin.cwd,
            origin.settings.trust,
            b.targets.as_bytes(),
        );
        if let Some(records) = v.batch(&key, |members| self.any_in_flight(members)) {
            // Nothing is printed on this path, so the `.do`'s earlier stderr needs no flush to
            // stay in order (a flush is a round trip to the relay task).
            j.record_shared(records);
            j.reclaim_token().await;
            return Batch::Answered;
        }
        Batch::Keep(Some((v.clone(), key, since)))
    }

    /// `redo a b c`: each target rebuilt, one after another; the first failure stops the rest
    /// (`--keep-going`: not).
    async fn redo_each<'w>(
        self: &Arc<Self>,
        asking: &Asking<'_>,
        wanted: &'w [(PathBuf, usize)],
    ) -> (i32, Vec<(&'w PathBuf, Option<Known>)>) {
        let settings = &asking.origin.settings;
        let mut order: Vec<&(PathBuf, usize)> = wanted.iter().collect();
        if settings.shuffle {
            shuffled(&mut order);
        }
        let (mut code, mut recorded) = (0, Vec::new());
        let ahead = self.looks_ahead(asking, true);
        for (k, (abs, name)) in order.iter().enumerate() {
            let want = Want {
                next: order.get(k + 1).filter(|_| ahead).map(|(p, _)| p.clone()),
                ..asking.want(abs, *name, true)
            };
            match self.bring(want).await {
                Ok(known) => recorded.push((abs, known)),
                Err(Reported) => {
                    code = 1;
                    if !settings.keep_going {
                        break;
                    }
                }
            }
        }
        (code, recorded)
    }

    /// Whether the request's targets, built `one_by_one`, each ask the shared cache for the
    /// next one's entry ([`Want::next`]): only with a cache, and only when they are built
    /// one after another (in parallel, a lookup already overlaps other targets' builds).
    fn looks_ahead(&self, asking: &Asking<'_>, one_by_one: bool) -> bool {
        one_by_one && matches!(self.caches.for_env(&asking.origin.env), Ok(Some(_)))
    }

    /// `redo-ifchange a b c`: the targets brought up to date in parallel, started in argument
    /// order. Also says whether verdicts answered for all of them (a batch to keep).
    async fn ifchange_all<'w>(
        self: &Arc<Self>,
        asking: &Asking<'_>,
        wanted: &'w [(PathBuf, usize)],
        force: bool,
    ) -> (i32, Vec<(&'w PathBuf, Option<Known>)>, bool) {
        let session = &asking.session;
        // Targets a verdict vouches for are answered here, without a flight or even a future
        // each: the no-op of a large `all` is mostly these. Only up to the first one that is
        // not: building that one may change what a later one reads (a `.do` writing a
        // source), and a later target is judged after the ones before it started (landed, at
        // `-j 1`), with or without the watcher; `bring` asks its verdict then.
        let mut results: Vec<Option<Result<Option<Known>, Reported>>> = vec![None; wanted.len()];
        if !force {
            let trust = asking.origin.settings.trust;
            for ((abs, _), r) in wanted.iter().zip(results.iter_mut()) {
                let Some((meta, hash)) = self.held(session, abs, trust) else {
                    break;
                };
                *r = Some(Ok(Some(Known {
                    meta: Some(meta),
                    hash,
                })));
            }
        }
        let mut rest: Vec<usize> = (0..wanted.len())
            .filter(|i| results[*i].is_none())
            .collect();
        let all_held = rest.is_empty();
        if asking.origin.settings.shuffle {
            shuffled(&mut rest);
        }
        // Each target starts once the one before it has (see `wait_landed`): in argument
        // order, whatever order the flights' tasks happen to run in.
        let mut after: Option<oneshot::Receiver<()>> = None;
        let ahead = self.looks_ahead(asking, session.tokens.limit() == Some(1));
        let wants: Vec<(Want, Option<oneshot::Receiver<()>>)> = rest
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let (tx, rx) = oneshot::channel();
                let next = rest.get(k + 1).filter(|_| ahead);
                let w = Want {
                    start: Some(tx),
                    next: next.map(|&n| wanted[n].0.clone()),
                    ..asking.want(&wanted[i].0, wanted[i].1, force)
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
        if !results.iter().all(Result::is_ok) {
            return (1, Vec::new(), all_held);
        }
        let recorded = wanted
            .iter()
            .zip(results)
            .map(|((a, _), r)| (a, r.ok().flatten()))
            .collect();
        (0, recorded, all_held)
    }

    /// A nested request's targets recorded as dependencies of its job; kept as a batch too
    /// when verdicts answered for all of them.
    fn record_into(
        &self,
        j: &Job,
        recorded: &[(&PathBuf, Option<Known>)],
        wanted: &[(PathBuf, usize)],
        batch: Option<KeptBatch>,
        asking: &Asking<'_>,
    ) -> Result<(), String> {
        let deps = self.dependency_records(
            &j.flight.dir,
            recorded,
            &asking.session,
            &asking.origin.settings,
        )?;
        match batch {
            // Kept once, shared by the batch and this job's records.
            Some((v, key, since)) => {
                let deps: Arc<[Dep]> = deps.into();
                let members: Vec<&Path> = wanted.iter().map(|(abs, _)| abs.as_path()).collect();
                v.record_batch(key, &members, deps.clone(), since);
                j.record_shared(deps);
            }
            None => j.record(deps),
        }
        Ok(())
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

/// Where a batch answer would be kept: the verdicts, its key, their generation before.
type KeptBatch = (Arc<crate::verdict::Verdicts>, crate::verdict::BatchKey, u64);

enum Batch {
    /// The request was answered from a kept batch.
    Answered,
    Keep(Option<KeptBatch>),
}

/// What every target of one request shares: how it is named, its level, session, origin and
/// waiter.
struct Asking<'a> {
    targets: &'a [&'a [u8]],
    level: usize,
    session: Arc<Session>,
    origin: Arc<Origin>,
    waiter: Waiter,
}

impl Asking<'_> {
    fn want(&self, abs: &Path, name: usize, force: bool) -> Want {
        Want {
            since: 0, // Read by `bring`.
            target_meta: None,
            rec: None,
            target: abs.to_path_buf(),
            display: String::from_utf8_lossy(self.targets[name]).into_owned(),
            level: self.level,
            force,
            session: self.session.clone(),
            origin: self.origin.clone(),
            waiter: self.waiter.clone(),
            start: None,
            next: None,
        }
    }
}

/// The targets resolved against `cwd` and, for `redo-ifchange`, de-duplicated by path (`a`
/// and `./a` are one target); each keeps the index of its name as given, which messages show.
fn resolve(
    targets: &[&[u8]],
    cwd: &Path,
    mode: BuildMode,
    sink: &Sink,
    tool: &str,
) -> Option<Vec<(PathBuf, usize)>> {
    let mut wanted: Vec<(PathBuf, usize)> = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let abs = paths::resolve(cwd, OsStr::from_bytes(t));
        if paths::split(&abs).is_none() {
            sink.error(&format!(
                "{tool}: {}: not a file name",
                String::from_utf8_lossy(t)
            ));
            return None;
        }
        wanted.push((abs, i));
    }
    if mode == BuildMode::Ifchange {
        let mut seen = HashSet::with_capacity_and_hasher(wanted.len(), Default::default());
        let first: Vec<bool> = wanted
            .iter()
            .map(|(abs, _)| seen.insert(abs.as_os_str()))
            .collect();
        drop(seen);
        let mut first = first.into_iter();
        wanted.retain(|_| first.next().unwrap_or(true));
    }
    Some(wanted)
}

/// Who waits for this request's targets. Asked after the batch answer, which prints nothing:
/// no look at the client's stderr on that path.
async fn waiter_for(job: Option<&Arc<Job>>, sink: &Sink, client: &Client<'_>) -> Waiter {
    let Some(j) = job else {
        return Waiter::Client(sink.clone());
    };
    let redirected = !j.relays_stderr_of(client.stderr, client.pid);
    if !redirected && j.stderr_unsent() {
        // What the .do wrote before asking must reach the terminal before what this request
        // prints, which does not go through its pipe. (A redirected client prints after what
        // the .do wrote there before asking, by itself.)
        j.flush_stderr().await;
    }
    Waiter::Job {
        job: j.clone(),
        sink: sink.clone(),
        redirected,
    }
}
