//! `redo` and `redo-ifchange`: the targets of one request, in order, brought up to date,
//! and the dependency records a nested request leaves in its job.

use super::reports::Reports;
use super::status::StatusLine;
use super::{Asked, Context};
use crate::engine::{Batch, Engine, Job, Known, Now, Reported, Session, Waiter, Want, targets_key};
use crate::fastmap::HashSet;
use crate::fs::paths;
use crate::jobserver::Tokens;
use crate::output::{BuildEvent, Msg, SessionEvent, Sink};
use futures_util::StreamExt;
use redo_proto::{BuildMode, MakeJobserver};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// Who asked, for a build request: what its process lends the build.
pub(crate) struct Client {
    /// make's jobserver, when a `make -jN` started the client.
    pub(crate) make: Option<MakeJobserver>,
    /// The client's process (whose make jobserver descriptors the daemon may open).
    pub(crate) pid: Option<i32>,
    /// What the client's stderr is, as it said ([`redo_proto::Terminal::stderr`]).
    pub(crate) stderr: Option<(u64, u64)>,
}

/// `redo` or `redo-ifchange` with its targets and options.
pub(crate) struct Build {
    pub(super) build: redo_proto::Build,
    pub(super) client: Client,
}

impl Build {
    pub(super) fn new(build: redo_proto::Build, client: Client) -> Build {
        Build { build, client }
    }

    pub(super) async fn apply(&self, ctx: &Context, asked: &Asked) -> i32 {
        self.run(ctx, asked, &self.build).await
    }

    /// Builds `b` (this request's targets, or a `--watch` round of them).
    pub(super) async fn run(&self, ctx: &Context, asked: &Asked, b: &redo_proto::Build) -> i32 {
        let engine = &ctx.engine;
        let (sink, tool, origin, job) = (&asked.sink, &asked.tool, &asked.origin, &asked.job);
        let mut reports = None;
        let (session, level) = match job {
            // Synced with the watcher when the request was accepted (see `request::serve`).
            Some(j) => (j.flight.session.clone(), j.flight.level + 1),
            None => {
                let tokens = self.session_tokens(engine, b, asked);
                reports = Reports::asked(&b.options, tokens.limit(), asked);
                let recorder = reports.as_ref().map(Reports::recorder);
                (engine.new_session(&origin.settings, tokens, recorder), 0)
            }
        };
        if job.is_none() {
            if let Err(e) = ctx.caches.for_env(&origin.env) {
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
        let batch = match job {
            Some(j) if b.mode == BuildMode::Ifchange && !b.options.force => {
                let trust = origin.settings.trust;
                match engine
                    .kept_batch(j, &origin.cwd, trust, b.targets.as_bytes())
                    .await
                {
                    Batch::Answered => return 0,
                    Batch::Keep(k) => k,
                }
            }
            _ => None,
        };
        let Some(wanted) = resolve(&targets, &origin.cwd, b.mode, sink, tool) else {
            return 1;
        };
        // The status line's estimates are those of the last build of the same targets.
        let key = job
            .is_none()
            .then(|| targets_key(wanted.iter().map(|(p, _)| p.as_path())));
        let _status =
            key.map(|k| StatusLine::start(session.clone(), sink.clone(), engine.last_build(k)));
        if let Some((r, t)) = job.as_ref().and_then(|j| j.flight.insight()) {
            // What the `.do` asks for is what it depends on, answered at once or waited for.
            for (abs, _) in &wanted {
                r.depends(t, crate::insight::name(abs));
            }
        }
        let asking = Asking {
            engine,
            targets: &targets,
            level,
            session: session.clone(),
            origin: origin.clone(),
            waiter: self.waiter(job.as_ref(), sink).await,
            ahead: matches!(ctx.caches.for_env(&origin.env), Ok(Some(_))),
        };
        let (mut code, recorded, all_held) = match b.mode {
            BuildMode::Redo => {
                let (code, recorded) = asking.redo_each(&wanted).await;
                (code, recorded, false)
            }
            BuildMode::Ifchange => asking.ifchange_all(&wanted, b.options.force).await,
        };
        if let Some(j) = job {
            if code == 0 {
                let batch = all_held.then_some(batch).flatten();
                if let Err(e) = engine.record_into(j, &recorded, batch, &origin.settings) {
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
            if let Some(w) = ctx
                .caches
                .for_env(&origin.env)
                .ok()
                .flatten()
                .and_then(|c| c.take_warning())
            {
                sink.message(Msg::Warn, 0, &w);
            }
            let p = &session.progress;
            if let Some(k) = key.filter(|_| code == 0) {
                engine.remember_build(k, p.done.load(Ordering::Relaxed), started.elapsed());
            }
            sink.event(&BuildEvent::Session(SessionEvent::Finished {
                build: session.uuid.clone(),
                exit_code: code,
                duration: started.elapsed().as_secs_f64(),
                built: p.built.load(Ordering::Relaxed),
                failed: p.failed.load(Ordering::Relaxed),
            }));
        }
        if let Some(r) = reports {
            let stopped = code != 0 && !origin.settings.keep_going;
            if !r.close(stopped).await && code == 0 {
                code = 1;
            }
        }
        code
    }

    /// A new session's token pool: make's when a `make -jN` started the client (unless `-j`
    /// was given), else its own.
    fn session_tokens(&self, engine: &Engine, b: &redo_proto::Build, asked: &Asked) -> Tokens {
        let own = || {
            Tokens::new(
                b.options.jobs.or(asked.origin.settings.jobs).unwrap_or(1),
                engine.rundir(),
            )
        };
        match (&self.client.make, b.options.jobs) {
            (Some(js), None) => Tokens::from_make(js, self.client.pid).unwrap_or_else(|e| {
                asked.sink.message(
                    Msg::Warn,
                    0,
                    &format!("cannot use make's jobserver ({e}); using this build's own job limit"),
                );
                own()
            }),
            _ => own(),
        }
    }

    /// Who waits for this request's targets. Asked after the batch answer, which prints
    /// nothing: no look at the client's stderr on that path.
    async fn waiter(&self, job: Option<&Arc<Job>>, sink: &Sink) -> Waiter {
        let Some(j) = job else {
            return Waiter::Client(sink.clone());
        };
        let redirected = !j.relays_stderr_of(self.client.stderr, self.client.pid);
        if !redirected && j.stderr_unsent() {
            // What the .do wrote before asking must reach the terminal before what this
            // request prints, which does not go through its pipe. (A redirected client prints
            // after what the .do wrote there before asking, by itself.)
            j.flush_stderr().await;
        }
        Waiter::Job {
            job: j.clone(),
            sink: sink.clone(),
            redirected,
        }
    }
}

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

/// What every target of one request shares: how it is named, its level, session, origin and
/// waiter; whether a shared cache is to be asked ahead ([`Want::then`]).
struct Asking<'a> {
    engine: &'a Arc<Engine>,
    targets: &'a [&'a [u8]],
    level: usize,
    session: Arc<Session>,
    origin: Arc<crate::engine::Origin>,
    waiter: Waiter,
    /// The request has a shared cache: targets built one after another each ask it for the
    /// next one's entry (in parallel, a lookup already overlaps other targets' builds).
    ahead: bool,
}

/// The request's targets, each with what [`Engine::bring`] learnt of it.
type Recorded<'w> = Vec<(&'w PathBuf, Option<Known>)>;

impl Asking<'_> {
    /// The target `abs`, named as the request's `name`th operand.
    fn want(&self, abs: &Path, name: usize) -> Want {
        Want::new(
            abs.to_path_buf(),
            String::from_utf8_lossy(self.targets[name]).into_owned(),
            self.level,
            self.session.clone(),
            self.origin.clone(),
            self.waiter.clone(),
        )
    }

    /// `redo a b c`: each target rebuilt, one after another; the first failure stops the rest
    /// (`--keep-going`: not).
    async fn redo_each<'w>(&self, wanted: &'w [(PathBuf, usize)]) -> (i32, Recorded<'w>) {
        let settings = &self.origin.settings;
        let mut order: Vec<&(PathBuf, usize)> = wanted.iter().collect();
        if settings.shuffle {
            shuffled(&mut order);
        }
        let (mut code, mut recorded) = (0, Vec::new());
        for (k, (abs, name)) in order.iter().enumerate() {
            let next = order.get(k + 1).filter(|_| self.ahead);
            let want = self
                .want(abs, *name)
                .forced(true)
                .then(next.map(|(p, _)| p.clone()));
            match self.engine.bring(want).await {
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

    /// `redo-ifchange a b c`: the targets brought up to date in parallel, started in argument
    /// order. Also says whether verdicts answered for all of them (a batch to keep).
    async fn ifchange_all<'w>(
        &self,
        wanted: &'w [(PathBuf, usize)],
        force: bool,
    ) -> (i32, Recorded<'w>, bool) {
        let (engine, session) = (self.engine, &self.session);
        // Targets a verdict vouches for are answered here, without a flight or even a future
        // each: the no-op of a large `all` is mostly these. Only up to the first one that is
        // not: building that one may change what a later one reads (a `.do` writing a
        // source), and a later target is judged after the ones before it started (landed, at
        // `-j 1`), with or without the watcher; `bring` asks its verdict then.
        let mut results: Vec<Option<Result<Option<Known>, Reported>>> = vec![None; wanted.len()];
        let mut answered = 0;
        if !force {
            let trust = self.origin.settings.trust;
            for ((abs, _), r) in wanted.iter().zip(results.iter_mut()) {
                let Some(known) = engine.vouched(session, abs, trust) else {
                    break;
                };
                *r = Some(Ok(Some(known)));
                answered += 1;
            }
        }
        let all_held = answered == wanted.len();
        // Then, in the same order, what can be told at once without a verdict (a daemon just
        // started has none): sources, up-to-date targets. Only the first target that needs a
        // flight, and those after it, get a future each.
        let mut first: Option<(usize, Want)> = None;
        if !force && !self.origin.settings.shuffle {
            for (i, (abs, name)) in wanted.iter().enumerate().skip(answered) {
                let w = self.want(abs, *name);
                // The verdicts were just asked of the first one.
                let w = if i == answered { w.unvouched() } else { w };
                match engine.bring_now(w) {
                    Now::Answered(r) => results[i] = Some(r),
                    Now::Wait(w, ..) => {
                        first = Some((i, *w));
                        break;
                    }
                }
            }
        }
        let mut rest: Vec<usize> = (0..wanted.len())
            .filter(|i| results[*i].is_none())
            .collect();
        if self.origin.settings.shuffle {
            shuffled(&mut rest);
        }
        // Each target starts once the one before it has (see `wait_landed`): in argument
        // order, whatever order the flights' tasks happen to run in.
        let mut after: Option<oneshot::Receiver<()>> = None;
        let ahead = self.ahead && session.tokens.limit() == Some(1);
        // Made as the stream asks for them: the first target starts before the thousands
        // after it have a want each.
        // (Boxed: the closure's borrows are otherwise too general for the spawned task.)
        type Wants<'a> =
            Box<dyn Iterator<Item = (Want, Option<oneshot::Receiver<()>>)> + Send + 'a>;
        let order = &rest;
        let wants: Wants<'_> = Box::new(order.iter().enumerate().map(move |(k, &i)| {
            let (tx, rx) = oneshot::channel();
            let next = order.get(k + 1).filter(|_| ahead);
            // The first one `bring_now` looked at is brought up to date before anything
            // else can change (it starts at once): no second look.
            let w = match first.take() {
                Some((f, w)) if f == i => w,
                _ => self.want(&wanted[i].0, wanted[i].1).forced(force),
            };
            let w = w.starting(tx).then(next.map(|&n| wanted[n].0.clone()));
            (w, after.replace(rx))
        }));
        let brought: Vec<_> = futures_util::stream::iter(wants)
            .map(|(w, after)| async move {
                if let Some(previous) = after {
                    // Sent or dropped: either way the previous target has started.
                    let _ = previous.await;
                }
                engine.bring(w).await
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
