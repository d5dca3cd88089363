//! Bringing one target up to date: the session rule, verdicts, the one walk driver over
//! [`crate::ood::Walk`] (dependencies that are targets are brought up to date before they are
//! compared), and what happens after the check.

use super::want::Seen;
use super::*;

/// A target could not be brought up to date; its waiters have been told why (an `err` line,
/// a failed event), so the caller only stops.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reported;

/// What [`Engine::bring`] learnt of a target it did not rebuild: its stat (`None`: missing)
/// and, when a verdict knew it, its content hash. Recording it as a dependency then needs no
/// second look.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    pub(crate) meta: Option<Meta>,
    pub(crate) hash: Option<Hash>,
}

impl Engine {
    /// Whether `target` was built in this session and what was committed still stands: its
    /// state file is there and its output is the file the state file records (a `.do` may
    /// have removed either since, e.g. `rm -rf out`). Then it is up to date without a check,
    /// as goredo's "`Build` is this run" rule has it: this is what makes `redo-always` run
    /// once per session, and a target asked for by a hundred `.do` files built once.
    /// `seen`: what the requester has just read of the target, if anything.
    pub(crate) fn built_here(&self, session: &Session, target: &Path, seen: &Seen) -> bool {
        if !session.was_built(target) {
            return false;
        }
        let Some((dir, name)) = paths::split(target) else {
            return false;
        };
        let rec = match &seen.rec {
            Some(rec) => rec.clone(),
            None => match self
                .recs
                .load(&*session.fs, &crate::store::layout::rec_path(dir, name))
            {
                Ok(Loaded::Ok(rec)) => rec,
                _ => return false,
            },
        };
        match rec.own(name.as_bytes()) {
            Some((stamp, _)) => match seen.meta {
                Some(meta) => meta,
                None => session.fs.stat(target).ok().flatten(),
            }
            .is_some_and(|m| m.stamp == *stamp),
            // No output file was committed: the state file is all there is to stand.
            None => true,
        }
    }

    /// Brings `want.target` up to date for its session. Joins the target's flight if there is
    /// one, starts it otherwise. A forced request (`redo X`) never joins another request's
    /// flight: it waits for that one to land, then runs the target itself, as goredo does
    /// (three `.do` files running `redo c` run `c.do` three times).
    pub async fn ensure(self: &Arc<Self>, mut want: Want) -> Outcome {
        // Failed once in this session: failed for every later request of it (forced too), so
        // that its `.do` runs once and its error is printed once.
        let needed_by = want.waiter.flight().map(|f| f.display.clone());
        if !want.seen.needs_flight
            && want
                .session
                .failed_before(&want.target, needed_by.as_deref())
        {
            return Outcome::Failed;
        }
        if !want.force && !want.seen.needs_flight {
            if self.built_here(&want.session, &want.target, &want.seen) {
                return Outcome::UpToDate;
            }
            if !self.in_flight(&want.target) && self.up_to_date_now(&mut want) {
                want.noted_up_to_date();
                return Outcome::UpToDate;
            }
        }
        loop {
            let attach = self.attach(&mut want);
            // A new flight took what was read of the target; after a wait it is stale anyway.
            want.seen = Seen::default();
            let (attached, mut rx) = match attach {
                Attach::Joined(a, rx) => (a, rx),
                Attach::TornDown(mut rx) => {
                    // Being torn down: wait for it to land, then start afresh.
                    want.waiter.will_wait(&want.target);
                    let _ = rx.wait_for(Option::is_some).await;
                    continue;
                }
                Attach::Cycle(cycle) => {
                    self.report_cycle(&want, &cycle);
                    return Outcome::Failed;
                }
            };
            want.waiter.will_wait(&want.target);
            if let Some(next) = want.next.take() {
                // This one is being built (or checked): the next one will be, after it.
                self.exec.prefetch(self, &want.session, &want.origin, &next);
            }
            let outcome = wait_landed(&attached.flight, &mut rx, &mut want.start).await;
            let ours = attached.listening;
            drop(attached);
            match outcome {
                // We are still here, so it was not our cancellation: somebody else's last
                // waiter left just as we joined (or the build we waited for was dropped).
                Outcome::Cancelled => continue,
                // Somebody else's build of the target landed: now ours.
                _ if !ours => continue,
                o => {
                    match o {
                        Outcome::Built => want.session.mark_built(&want.target),
                        Outcome::Failed => want.session.mark_failed(
                            &want.target,
                            &want.display,
                            needed_by.as_deref(),
                        ),
                        _ => {}
                    }
                    return o;
                }
            }
        }
    }

    /// Whether a target among `members` (verdict keys) is being built right now.
    pub(crate) fn any_in_flight(&self, members: &[u64]) -> bool {
        lock(&self.tables).flights.keys().any(|t| {
            members
                .binary_search(&crate::ood::observed::key(Path::new(t)))
                .is_ok()
        })
    }

    pub(crate) fn in_flight(&self, target: &Path) -> bool {
        lock(&self.tables).flights.contains_key(target.as_os_str())
    }

    /// The no-op fast path: decides "up to date" on the spot, without a flight, when that
    /// needs nothing built: the state parses and every dependency that is a target is already
    /// done in this session. `false` means "let a flight decide" (it rebuilds and reports), not
    /// "out of date".
    /// What it reads (the verdicts' answer, the state file, the target's stat) stays in
    /// `want.seen` for the flight that decides otherwise.
    pub(crate) fn up_to_date_now(&self, want: &mut Want) -> bool {
        if !want.seen.no_verdict && self.verdict(want).is_some() {
            return true;
        }
        want.seen.no_verdict = true;
        let Some((dir, name)) = paths::split(&want.target) else {
            return false;
        };
        let rec = match &want.seen.rec {
            Some(r) => r.clone(),
            None => match self.recs.load(
                &*want.session.fs,
                &crate::store::layout::rec_path(dir, name),
            ) {
                Ok(Loaded::Ok(r)) => {
                    want.seen.rec = Some(r.clone());
                    r
                }
                _ => return false,
            },
        };
        let checker = self.checker(&want.session, &want.origin.settings);
        let mut walk = Walk::new(&rec, dir, name);
        if let Some(m) = want.seen.meta {
            walk = walk.with_target_meta(m);
        }
        if want.session.verdicts.is_some() {
            walk = walk.observing();
        }
        // Only what needs nothing built is answered here: a dependency to visit ends it.
        let decided = self.advance(
            &mut walk,
            &checker,
            &want.session,
            &want.origin,
            &want.target,
            want.since,
        );
        if want.seen.meta.is_none() {
            want.seen.meta = walk.target_meta();
        }
        matches!(decided, Ok(Advance::Done(None)))
    }

    /// The one walk driver: steps `walk` until it decides, or until it reaches a dependency
    /// that is a target and must be brought up to date first. A dependency built in this
    /// session, or that a verdict vouches for, needs no visit: the walk goes on and compares
    /// it. An up-to-date decision is kept as a verdict when what it read is vouched for.
    pub(crate) fn advance(
        &self,
        walk: &mut Walk<'_>,
        checker: &Checker<'_>,
        session: &Session,
        origin: &Origin,
        target: &Path,
        since: u64,
    ) -> std::io::Result<Advance> {
        let trust = origin.settings.trust;
        loop {
            match walk.next(checker)? {
                Step::UpToDate => {
                    self.keep_verdict(session, origin, target, walk, since);
                    return Ok(Advance::Done(None));
                }
                Step::OutOfDate(r) => return Ok(Advance::Done(Some(r))),
                Step::Visit(dep) if session.insight.is_some() => {
                    if let Some(r) = &session.insight {
                        r.depends(crate::insight::name(target), crate::insight::name(&dep));
                    }
                    if !(self.built_here(session, &dep, &Seen::default())
                        || self.vouched(session, &dep, trust).is_some())
                    {
                        return Ok(Advance::Visit(dep));
                    }
                }
                Step::Visit(dep)
                    if self.built_here(session, &dep, &Seen::default())
                        || self.vouched(session, &dep, trust).is_some() => {}
                Step::Visit(dep) => return Ok(Advance::Visit(dep)),
            }
        }
    }

    /// The target's stat and hash, when a verdict says it is up to date (a forced request
    /// never asks).
    pub(crate) fn verdict(&self, want: &Want) -> Option<Known> {
        if want.force {
            return None;
        }
        self.vouched(&want.session, &want.target, want.origin.settings.trust)
    }

    /// The session's verdict on `target`: its stat and hash when it is up to date, unless the
    /// target is being rebuilt right now (by a forced request of another session): then its
    /// flight's result is the answer.
    pub(crate) fn vouched(
        &self,
        session: &Session,
        target: &Path,
        trust: ood::Trust,
    ) -> Option<Known> {
        let (meta, hash) = session.verdicts.as_ref()?.holds(target, trust)?;
        (!self.in_flight(target)).then_some(Known {
            meta: Some(meta),
            hash,
        })
    }

    /// A full check found the target up to date: keep that, if what it read is vouched for.
    pub(crate) fn keep_verdict(
        &self,
        session: &Session,
        origin: &Origin,
        target: &Path,
        walk: &mut Walk<'_>,
        since: u64,
    ) {
        let (Some(v), Some(meta), Some(seen)) =
            (&session.verdicts, walk.target_now(), walk.take_observed())
        else {
            return;
        };
        v.record(target, meta, origin.settings.trust, seen, since);
    }

    /// The verdicts' generation now, for a check about to read things.
    pub(crate) fn generation(session: &Session) -> u64 {
        session.verdicts.as_ref().map_or(0, |v| v.generation())
    }

    pub(crate) async fn run_flight(self: &Arc<Self>, flight: &Arc<Flight>) -> Outcome {
        if !flight.force {
            match self.check(flight).await {
                Ok(None) => {
                    if let Some((r, t)) = flight.insight() {
                        r.up_to_date_target(t);
                    }
                    return Outcome::UpToDate;
                }
                Ok(Some(reason)) => {
                    flight.say(Msg::Dbg, &format!("ood: {}: {reason}", flight.display))
                }
                Err(o) => return o,
            }
        }
        let result = self.exec.run(self, flight).await;
        tracing::debug!(target = %show(&flight.target), ok = result.is_ok(), "job finished");
        match result {
            Ok(Ran::Built {
                took,
                do_rel,
                do_path,
                cached,
            }) => {
                let how = if cached {
                    "(cached)".into()
                } else {
                    secs(took)
                };
                flight.say(
                    Msg::Redo,
                    &format!("{} {how}", flight.name_with_do(do_rel.as_deref())),
                );
                flight
                    .session
                    .progress
                    .built
                    .fetch_add(1, Ordering::Relaxed);
                if let Some((r, t)) = flight.insight() {
                    let o = match cached {
                        true => crate::insight::Outcome::Cached,
                        false => crate::insight::Outcome::Built,
                    };
                    r.finished(t, o);
                }
                flight.event(|s| {
                    BuildEvent::Target(TargetEvent::Finished {
                        target: s.rel(&flight.target),
                        do_file: s.rel(&do_path),
                        duration: took.as_secs_f64(),
                        level: flight.level,
                        cached,
                    })
                });
                Outcome::Built
            }
            Ok(Ran::Kept) => {
                if let Some((r, t)) = flight.insight() {
                    r.up_to_date_target(t);
                }
                Outcome::UpToDate
            }
            Err(e) => {
                let mut name = flight.name_with_do(e.do_rel.as_deref());
                if let Some(t) = e.took {
                    name = format!("{name} {}", secs(t));
                }
                flight.say(Msg::Err, &format!("{name}: {}", e.cause));
                flight
                    .session
                    .progress
                    .failed
                    .fetch_add(1, Ordering::Relaxed);
                if let Some((r, t)) = flight.insight() {
                    r.finished(t, crate::insight::Outcome::Failed);
                }
                flight.event(|s| {
                    BuildEvent::Target(TargetEvent::Failed {
                        target: s.rel(&flight.target),
                        do_file: e.do_path.as_deref().map(|d| s.rel(d)),
                        error: e.cause.to_string(),
                        level: flight.level,
                        duration: e.took.map(|t| t.as_secs_f64()),
                        exit_code: e.exit_code,
                    })
                });
                Outcome::Failed
            }
        }
    }

    /// `Ok(None)`: up to date. `Ok(Some(reason))`: must be rebuilt. `Err`: a dependency
    /// failed (already reported).
    pub(crate) async fn check(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
    ) -> Result<Option<Reason>, Outcome> {
        // What the requester that started this flight read of the target, just before.
        let (since, seen) = lock(&flight.seen)
            .take()
            .unwrap_or_else(|| (Self::generation(&flight.session), Seen::default()));
        let rec_path = crate::store::layout::rec_path(&flight.dir, &flight.name);
        let loaded = match seen.rec {
            Some(rec) => Ok(Loaded::Ok(rec)),
            None => self.recs.load(&*flight.session.fs, &rec_path),
        };
        let rec = match loaded {
            Ok(Loaded::Ok(rec)) => rec,
            Ok(Loaded::Missing) => return Ok(Some(Reason::NoState)),
            Ok(Loaded::Corrupt(e)) => {
                flight.say(
                    Msg::Warn,
                    &format!("{}: {e}: rebuilding {}", show(&rec_path), flight.display),
                );
                return Ok(Some(Reason::Corrupt(e.to_string())));
            }
            Err(e) => {
                let reason = Reason::Corrupt(e.to_string());
                let e = crate::store::Error::io("read", &rec_path)(e);
                flight.say(Msg::Warn, &format!("{e}: rebuilding {}", flight.display));
                return Ok(Some(reason));
            }
        };
        let checker = self.checker(&flight.session, &flight.origin.settings);
        let mut walk = Walk::new(&rec, &flight.dir, &flight.name);
        if let Some(m) = seen.meta {
            walk = walk.with_target_meta(m);
        }
        if flight.session.verdicts.is_some() {
            walk = walk.observing();
        }
        loop {
            let step = self.advance(
                &mut walk,
                &checker,
                &flight.session,
                &flight.origin,
                &flight.target,
                since,
            );
            match step {
                Ok(Advance::Done(decided)) => return Ok(decided),
                Ok(Advance::Visit(dep)) => {
                    // `advance` has just asked the verdicts about it.
                    let want = Want::dependency(flight, dep).unvouched();
                    let dep_display = want.display.clone();
                    let o = self.ensure(want).await;
                    if !o.ok() {
                        if o == Outcome::Failed {
                            flight.dependency_failed(&dep_display);
                            if flight.origin.settings.keep_going {
                                self.build_the_rest(flight, &rec, &checker).await;
                            }
                        }
                        return Err(o);
                    }
                }
                Err(e) => {
                    flight.say(Msg::Err, &format!("{}: cannot check: {e}", flight.display));
                    return Err(Outcome::Failed);
                }
            }
        }
    }

    /// `--keep-going`: a dependency of `flight` failed, so it cannot be built; every other
    /// dependency its state names that is a target is still brought up to date.
    pub(crate) async fn build_the_rest(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        rec: &Rec,
        checker: &Checker<'_>,
    ) {
        let targets: Vec<PathBuf> = rec
            .ifchange_targets()
            .filter(|t| *t != flight.name.as_bytes())
            .map(|t| paths::resolve(&flight.dir, OsStr::from_bytes(t)))
            .collect();
        for dep in targets {
            let meta = checker.stat(&dep).ok().flatten();
            if checker.is_source(&dep, meta.as_ref()).unwrap_or(true) {
                continue;
            }
            self.ensure(Want::dependency(flight, dep)).await;
        }
    }

    /// Brings one requested target up to date, skipping sources. Returns the target's stat
    /// when it is still the one taken here (nothing was rebuilt), so that recording it as a
    /// dependency needs no second look.
    pub(crate) async fn bring(self: &Arc<Self>, want: Want) -> Result<Option<Known>, Reported> {
        match self.bring_now(want) {
            Now::Answered(r) => r,
            Now::Wait(want, meta, hash) => match self.ensure(*want).await {
                Outcome::UpToDate => Ok(Some(Known { meta, hash })),
                Outcome::Built => Ok(None),
                Outcome::Failed | Outcome::Cancelled => Err(Reported),
            },
        }
    }

    /// The part of [`Engine::bring`] that needs no waiting: a verdict, a source, a target that
    /// failed before in this session, one built here, one up to date without building anything.
    /// A request's targets are answered this way, in order, until the first that needs a
    /// flight (a no-op of a daemon just started, which has no verdicts yet, is all of them).
    pub(crate) fn bring_now(&self, mut want: Want) -> Now {
        want.since = Self::generation(&want.session);
        if !want.seen.no_verdict {
            if let Some(known) = self.verdict(&want) {
                want.noted_up_to_date();
                return Now::Answered(Ok(Some(known)));
            }
            want.seen.no_verdict = true;
        }
        let fail = |msg: String| {
            for s in want.waiter.sinks() {
                s.message(Msg::Err, want.level, &format!("{}: {msg}", want.display));
            }
            Now::Answered(Err(Reported))
        };
        let Some((dir, name)) = paths::split(&want.target) else {
            return fail("not a file name".into());
        };
        // The state file first: a target that has one is not a source, and the fast path
        // below reuses it.
        let loaded = match self.recs.load(
            &*want.session.fs,
            &crate::store::layout::rec_path(dir, name),
        ) {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot read its state: {e}")),
        };
        let checker = self.checker(&want.session, &want.origin.settings);
        let meta = match checker.stat(&want.target) {
            Ok(m) => m,
            Err(e) => return fail(format!("cannot stat: {e}")),
        };
        let rec = match loaded {
            Loaded::Ok(r) => Some(r),
            Loaded::Missing => match checker.is_source(&want.target, meta.as_ref()) {
                Ok(true) => {
                    self.taken_as_source(&want, &checker);
                    return Now::Answered(Ok(Some(Known { meta, hash: None })));
                }
                Ok(false) => None,
                Err(e) => return fail(e.to_string()),
            },
            Loaded::Corrupt(_) => None,
        };
        // Its content hash, when its own record vouches for the stat taken here: recording
        // it as a dependency then reads nothing (the first build of a daemon just started
        // would otherwise hash every up-to-date target its `.do` names).
        let hash = match (&rec, &meta) {
            (Some(r), Some(m)) if want.origin.settings.trust != ood::Trust::None => r
                .own(name.as_bytes())
                .filter(|(stamp, _)| **stamp == m.stamp)
                .and_then(|(_, h)| h.copied()),
            _ => None,
        };
        want.seen.meta = Some(meta);
        want.seen.rec = rec;
        // What `ensure` would decide before it starts or joins a flight.
        let needed_by = want.waiter.flight().map(|f| f.display.clone());
        if want
            .session
            .failed_before(&want.target, needed_by.as_deref())
        {
            return Now::Answered(Err(Reported));
        }
        if !want.force && self.built_here(&want.session, &want.target, &want.seen) {
            return Now::Answered(Ok(Some(Known { meta, hash })));
        }
        if !want.force && !self.in_flight(&want.target) && self.up_to_date_now(&mut want) {
            want.noted_up_to_date();
            return Now::Answered(Ok(Some(Known { meta, hash })));
        }
        want.seen.needs_flight = true;
        Now::Wait(Box::new(want), meta, hash)
    }
}

/// What [`Engine::bring_now`] found.
pub(crate) enum Now {
    /// The answer (a failure has been said).
    Answered(Result<Option<Known>, Reported>),
    /// It needs a flight: [`Engine::ensure`] this want (which carries what was read), with
    /// the target's stat and hash as read here for an up-to-date answer.
    Wait(Box<Want>, Option<Meta>, Option<Hash>),
}

impl Engine {
    /// A requested file that is a source (it exists, and redo has no record of building it).
    /// When a `.do` could build it (its own `NAME.do`, or any `.do` for a forced `redo FILE`),
    /// it is the user's file all the same, never overwritten: one warning per build says so
    /// and how to have it built. (One that only a `default*.do` matches is a plain source, as
    /// in goredo: most sources match some `default.do`.)
    fn taken_as_source(&self, want: &Want, checker: &Checker<'_>) {
        let say = |kind: Msg, text: &str| {
            for s in want.waiter.sinks() {
                s.message(kind, want.level, text);
            }
        };
        say(
            Msg::Dbg,
            &format!("{} is source, not redoing", want.display),
        );
        let own = checker.own_do(&want.target).unwrap_or(false);
        if !(own || want.force) {
            return;
        }
        let Some((dir, name)) = paths::split(&want.target) else {
            return;
        };
        let top = want.origin.settings.top_dir.as_deref();
        let Some(dof) = crate::dofile::find(&*want.session.fs, dir, name, top)
            .ok()
            .and_then(|l| l.found)
        else {
            return;
        };
        if want.session.first_warning(&want.target) {
            say(Msg::Warn, &not_ours_warning(&want.display, Some(&dof.rel)));
        }
    }
}

/// What a user's file taken as a source is warned with: its name, and how to have redo build
/// it instead.
pub(crate) fn not_ours_warning(display: &str, do_rel: Option<&Path>) -> String {
    let how = match do_rel {
        Some(d) => format!("remove it to have {} build it", show(d)),
        None => "remove it to have it built".into(),
    };
    format!(
        "{display} exists and redo did not build it: taking it as a source, not overwriting it ({how})"
    )
}

/// Where a walk stands after [`Engine::advance`].
pub(crate) enum Advance {
    /// Decided: `None` up to date, else why not.
    Done(Option<Reason>),
    /// This dependency is a target to bring up to date before the walk goes on.
    Visit(PathBuf),
}
