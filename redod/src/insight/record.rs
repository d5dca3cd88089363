//! The recorder: what the engine tells it while one build runs, turned into a [`Timeline`]
//! when the build ends.
//!
//! It exists only for a build that asked for `--timings` or `--trace` (the engine holds an
//! `Option<Arc<Recorder>>`), so a build that did not ask pays nothing. Each call takes the
//! time itself ([`Instant::now`]) and one uncontended [`std::sync::Mutex`]: commits may run on
//! the blocking pool, so the calls can come from several threads. A poisoned lock is taken
//! over (a recorder is diagnostics, never worth a second panic).
//!
//! The calls for one target, in order: [`queued`](Recorder::queued) (optional: it began
//! waiting for a job token), [`depends`](Recorder::depends) (any number, before or while it
//! runs), [`started`](Recorder::started) (its `.do` spawned, or a cache restore began: it
//! gets a lane), then any number of [`waiting`](Recorder::waiting) /
//! [`resumed`](Recorder::resumed) pairs (blocked in a nested request with its token lent
//! back, then running again), and [`finished`](Recorder::finished). Calls out of that order
//! are absorbed, never an error: a `finished` without `started` records a zero-length span
//! (a target that failed before its `.do` could run), a second `started` of a running target
//! ends the first run as interrupted, calls for unknown targets and calls after
//! [`finish`](Recorder::finish) are ignored. The `*_at` forms take the instant from the caller
//! (tests, replays).
//!
//! Target and `.do` names are taken as given (the engine passes them relative to the project
//! root); a name that is not UTF-8 is kept lossily (U+FFFD), as the report shows it.

use super::lanes::Lanes;
use super::timeline::{Outcome, Span, Timeline, Wait};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Records one build. See the module documentation for the order of calls.
#[derive(Debug)]
pub struct Recorder {
    epoch: Instant,
    started_at: SystemTime,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<Span>,
    /// Running targets: their index in `spans`.
    open: HashMap<String, usize>,
    /// Spans whose last wait has not ended yet.
    blocked: HashSet<usize>,
    /// Targets waiting for a job token: since when.
    queued: HashMap<String, Duration>,
    /// Dependencies named before the target started.
    early_deps: HashMap<String, Vec<String>>,
    lanes: Lanes,
    up_to_date: u64,
    /// Targets counted by [`Recorder::up_to_date_target`].
    fresh: HashSet<String>,
    closed: bool,
}

fn name(n: impl AsRef<OsStr>) -> String {
    n.as_ref().to_string_lossy().into_owned()
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose time 0 is now: create it when the build starts.
    pub fn new() -> Recorder {
        Recorder::starting_at(Instant::now())
    }

    /// A recorder whose time 0 is `epoch`.
    pub fn starting_at(epoch: Instant) -> Recorder {
        let started_at = SystemTime::now()
            .checked_sub(epoch.elapsed())
            .unwrap_or_else(SystemTime::now);
        Recorder {
            epoch,
            started_at,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> Option<MutexGuard<'_, State>> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (!s.closed).then_some(s)
    }

    fn offset(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.epoch)
    }

    /// `at`, or now: read under the state's lock, so that events from several threads are
    /// stamped in the order they are applied (a lane freed by one thread's `finished` is never
    /// taken by another's `started` stamped earlier).
    fn time(&self, at: Option<Instant>) -> Duration {
        self.offset(at.unwrap_or_else(Instant::now))
    }

    /// `target` started waiting for a job token.
    pub fn queued(&self, target: impl AsRef<OsStr>) {
        self.queued_when(target, None);
    }

    /// [`queued`](Recorder::queued), at `at`.
    pub fn queued_at(&self, target: impl AsRef<OsStr>, at: Instant) {
        self.queued_when(target, Some(at));
    }

    fn queued_when(&self, target: impl AsRef<OsStr>, at: Option<Instant>) {
        if let Some(mut s) = self.state() {
            let t = self.time(at);
            s.queued.entry(name(target)).or_insert(t);
        }
    }

    /// `target` depends on `dep` (checked before its `.do` ran, or named while it runs): an
    /// edge the critical path may follow.
    pub fn depends(&self, target: impl AsRef<OsStr>, dep: impl AsRef<OsStr>) {
        let (target, dep) = (name(target), name(dep));
        if let Some(mut s) = self.state() {
            match s.open.get(&target).copied() {
                Some(i) => s.spans[i].deps.push(dep),
                None => s.early_deps.entry(target).or_default().push(dep),
            }
        }
    }

    /// `target`'s `.do` was spawned (`do_file`), or its restore from the shared cache began
    /// (`do_file` `None` unless known): it takes the lowest free lane.
    pub fn started(&self, target: impl AsRef<OsStr>, do_file: Option<&Path>) {
        self.started_when(target, do_file, None);
    }

    /// [`started`](Recorder::started), at `at`.
    pub fn started_at(&self, target: impl AsRef<OsStr>, do_file: Option<&Path>, at: Instant) {
        self.started_when(target, do_file, Some(at));
    }

    fn started_when(&self, target: impl AsRef<OsStr>, do_file: Option<&Path>, at: Option<Instant>) {
        if let Some(mut s) = self.state() {
            let t = self.time(at);
            s.start(name(target), do_file.map(|d| name(d.as_os_str())), t);
        }
    }

    /// `target`'s `.do` is blocked in a nested request for `for_targets` and lent its job token
    /// back. A second call before [`resumed`](Recorder::resumed) adds to the same wait.
    pub fn waiting<I>(&self, target: impl AsRef<OsStr>, for_targets: I)
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.waiting_when(target, for_targets, None);
    }

    /// [`waiting`](Recorder::waiting), at `at`.
    pub fn waiting_at<I>(&self, target: impl AsRef<OsStr>, for_targets: I, at: Instant)
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.waiting_when(target, for_targets, Some(at));
    }

    fn waiting_when<I>(&self, target: impl AsRef<OsStr>, for_targets: I, at: Option<Instant>)
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        let Some(mut s) = self.state() else { return };
        let t = self.time(at);
        let Some(i) = s.open.get(&name(target)).copied() else {
            return;
        };
        let names: Vec<String> = for_targets.into_iter().map(name).collect();
        let fresh = s.blocked.insert(i);
        let span = &mut s.spans[i];
        span.deps.extend(names.iter().cloned());
        match span.waits.last_mut() {
            Some(w) if !fresh => w.for_targets.extend(names),
            _ => span.waits.push(Wait {
                start: t,
                end: t,
                for_targets: names,
            }),
        }
    }

    /// `target`'s `.do` got a job token back after [`waiting`](Recorder::waiting).
    pub fn resumed(&self, target: impl AsRef<OsStr>) {
        self.resumed_when(target, None);
    }

    /// [`resumed`](Recorder::resumed), at `at`.
    pub fn resumed_at(&self, target: impl AsRef<OsStr>, at: Instant) {
        self.resumed_when(target, Some(at));
    }

    fn resumed_when(&self, target: impl AsRef<OsStr>, at: Option<Instant>) {
        let Some(mut s) = self.state() else { return };
        let t = self.time(at);
        if let Some(i) = s.open.get(&name(target)).copied() {
            s.unblock(i, t);
        }
    }

    /// `target`'s run ended with `outcome`; its lane is free again.
    pub fn finished(&self, target: impl AsRef<OsStr>, outcome: Outcome) {
        self.finished_when(target, outcome, None);
    }

    /// [`finished`](Recorder::finished), at `at`.
    pub fn finished_at(&self, target: impl AsRef<OsStr>, outcome: Outcome, at: Instant) {
        self.finished_when(target, outcome, Some(at));
    }

    fn finished_when(&self, target: impl AsRef<OsStr>, outcome: Outcome, at: Option<Instant>) {
        let target = name(target);
        let Some(mut s) = self.state() else { return };
        let t = self.time(at);
        if !s.open.contains_key(&target) {
            s.start(target.clone(), None, t);
        }
        s.close(&target, t, outcome);
    }

    /// `n` more targets were found up to date.
    pub fn up_to_date(&self, n: u64) {
        if let Some(mut s) = self.state() {
            s.up_to_date = s.up_to_date.saturating_add(n);
        }
    }

    /// `target` was found up to date without running anything: counted once, however many
    /// requests of the build ask for it.
    pub fn up_to_date_target(&self, target: impl AsRef<OsStr>) {
        let target = target.as_ref().to_string_lossy();
        if let Some(mut s) = self.state()
            && !s.fresh.contains(target.as_ref())
        {
            s.fresh.insert(target.into_owned());
            s.up_to_date = s.up_to_date.saturating_add(1);
        }
    }

    /// Ends the recording: spans still open end now, as [`Outcome::Interrupted`]. `wall` is
    /// the build's wall time (raised to the last span's end if shorter), `jobs_limit` its `-j`
    /// (`None`: unlimited). Later calls, this one included, record nothing and give an empty
    /// timeline.
    pub fn finish(&self, wall: Duration, jobs_limit: Option<u32>, interrupted: bool) -> Timeline {
        self.finish_at(wall, jobs_limit, interrupted, Instant::now())
    }

    /// [`finish`](Recorder::finish), at `at`.
    pub fn finish_at(
        &self,
        wall: Duration,
        jobs_limit: Option<u32>,
        interrupted: bool,
        at: Instant,
    ) -> Timeline {
        let t = self.offset(at);
        let mut spans = Vec::new();
        let mut up_to_date = 0;
        if let Some(mut s) = self.state() {
            let open: Vec<String> = s.open.keys().cloned().collect();
            for target in open {
                s.close(&target, t, Outcome::Interrupted);
            }
            s.closed = true;
            spans = std::mem::take(&mut s.spans);
            up_to_date = s.up_to_date;
        }
        spans.sort_by_key(|s| s.start);
        for span in &mut spans {
            let mut seen = HashSet::new();
            span.deps.retain(|d| seen.insert(d.clone()));
        }
        let last_end = spans.iter().map(|s| s.end).max().unwrap_or_default();
        Timeline {
            spans,
            wall: wall.max(last_end),
            jobs_limit,
            interrupted,
            up_to_date,
            started_at: self.started_at,
        }
    }
}

impl State {
    /// `target` starts running at `t` on the lowest free lane; a run of it still open ends
    /// first, as interrupted.
    fn start(&mut self, target: String, do_file: Option<String>, t: Duration) {
        if self.open.contains_key(&target) {
            self.close(&target, t, Outcome::Interrupted);
        }
        let span = Span {
            queued: self.queued.remove(&target),
            deps: self.early_deps.remove(&target).unwrap_or_default(),
            do_file,
            target: target.clone(),
            lane: self.lanes.take(),
            start: t,
            end: t,
            outcome: Outcome::Interrupted,
            waits: Vec::new(),
        };
        self.open.insert(target, self.spans.len());
        self.spans.push(span);
    }

    fn unblock(&mut self, i: usize, t: Duration) {
        if self.blocked.remove(&i)
            && let Some(w) = self.spans[i].waits.last_mut()
        {
            w.end = t.max(w.start);
        }
    }

    /// Ends the running span of `target` at `t`.
    fn close(&mut self, target: &str, t: Duration, outcome: Outcome) {
        let Some(i) = self.open.remove(target) else {
            return;
        };
        self.unblock(i, t);
        let span = &mut self.spans[i];
        span.end = t.max(span.start);
        span.outcome = outcome;
        let lane = span.lane;
        self.lanes.give_back(lane);
    }
}

#[cfg(test)]
mod tests;
