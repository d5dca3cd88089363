//! A flight ("bring this target up to date", in progress), who waits for it, and where its
//! output goes.

use super::want::Seen;
use super::*;

/// The request a flight works for: whose environment, umask and options its `.do` gets.
pub struct Origin {
    pub cwd: PathBuf,
    pub env: Env,
    pub umask: u32,
    pub client_dir: PathBuf,
    pub settings: Settings,
    /// `-x`: trace the `.do` files this request starts.
    pub trace: bool,
}

#[derive(Clone)]
pub enum Waiter {
    Client(Sink),
    /// A flight checking its dependencies (before its job holds a token).
    Flight(Arc<Flight>),
    /// A running `.do`'s nested request, from the client connection `sink`. When the client's
    /// stderr is `redirected` (not the job's relay pipe: `2>/dev/null`, `$(redo x 2>&1)`,
    /// `exec 2>log`), the text of what it waits for goes to `sink`, and the client writes it
    /// to its fd 2. Otherwise that text would reach the job's relay anyway: it goes where the
    /// job's own text goes, directly (see `Job::relays_stderr_of`), shown as the nested
    /// client's options say.
    Job {
        job: Arc<Job>,
        sink: Sink,
        redirected: bool,
    },
}

impl Waiter {
    /// The flight on whose behalf this waits, if any.
    pub(crate) fn flight(&self) -> Option<&Arc<Flight>> {
        match self {
            Waiter::Client(_) => None,
            Waiter::Flight(f) => Some(f),
            Waiter::Job { job, .. } => Some(&job.flight),
        }
    }

    /// Where text (messages, relayed stderr) about what this waits for goes.
    pub(crate) fn sinks(&self) -> Vec<Sink> {
        Audience::of(std::slice::from_ref(self))
    }

    /// The top-level clients this waits for on behalf of (where events go).
    pub(crate) fn clients(&self) -> Vec<Sink> {
        match (self, self.flight()) {
            (_, Some(f)) => f.clients(),
            (Waiter::Client(s), None) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    pub(crate) fn target(&self) -> Option<&Path> {
        self.flight().map(|f| f.target.as_path())
    }

    /// About to wait for `for_target`'s flight: a job gives its token back meanwhile, so that what it
    /// waits for can run (at `-j1` nothing else could). Only then: a nested request answered
    /// on the spot (sources, up-to-date targets: the usual case) keeps the token, and no
    /// other job sneaks in to pile up behind it.
    pub(crate) fn will_wait(&self, for_target: &Path) {
        if let Waiter::Job { job, .. } = self {
            job.lend_token();
            if let Some((r, t)) = job.flight.insight() {
                r.waiting(t, [crate::insight::name(for_target)]);
            }
        }
    }
}

/// The wait-for graph is acyclic; this bound on a walk up it only guards against a bug.
pub(crate) const WALK_LIMIT: usize = 100_000;

/// The nearest clients that asked for a flight: walking up its waiters, a client connection
/// ends the walk (a top-level client, or a nested one whose stderr was redirected), a flight
/// checking its dependencies has no client of its own and passes it up.
///
/// Each output must reach each terminal once. A redirected nested client may end up on a
/// terminal that another waiter already serves (two `.do`s of one build wanting the same
/// target, one of them through `$(...)`): the first waiter to have attached gets the text,
/// as in goredo, where the process that took the target's lock prints its output. A nested
/// client counts as reaching the top-level clients of its job.
#[derive(Default)]
pub(crate) struct Audience {
    pub(crate) sinks: Vec<Sink>,
    /// Top-level clients already served, directly or through a nested client.
    pub(crate) reached: Vec<u64>,
}

impl Audience {
    pub(crate) fn of(waiters: &[Waiter]) -> Vec<Sink> {
        let mut a = Audience::default();
        // Depth first, in attach order (reversed onto the stack). With each waiter, the style
        // of the nearest nested client passed through on the way.
        let mut stack: Vec<(Waiter, Option<Style>)> =
            waiters.iter().rev().map(|w| (w.clone(), None)).collect();
        let mut visits = 0usize;
        while let Some((w, asked)) = stack.pop() {
            visits += 1;
            if visits > WALK_LIMIT {
                break;
            }
            let (up, asked) = match &w {
                Waiter::Client(s) => {
                    a.take(s, &[s.id], asked);
                    continue;
                }
                Waiter::Job {
                    job,
                    sink,
                    redirected: true,
                } => {
                    let reach: Vec<u64> = job.flight.clients().iter().map(|c| c.id).collect();
                    a.take(sink, &reach, asked);
                    continue;
                }
                Waiter::Job { job, sink, .. } => (&job.flight, asked.or(Some(sink.style))),
                Waiter::Flight(f) => (f, asked),
            };
            stack.extend(
                lock(&up.waiters)
                    .iter()
                    .rev()
                    .map(|(_, w)| (w.clone(), asked)),
            );
        }
        a.sinks
    }

    /// `asked`: the style of the nested client the text is for, when it reaches `s` on its
    /// behalf.
    pub(crate) fn take(&mut self, s: &Sink, reach: &[u64], asked: Option<Style>) {
        if self.sinks.iter().any(|o| o.id == s.id)
            || (!reach.is_empty() && reach.iter().all(|id| self.reached.contains(id)))
        {
            return;
        }
        self.reached.extend_from_slice(reach);
        let mut s = s.clone();
        if let Some(asked) = asked {
            s.style = asked.on_terminal_of(&s.style);
        }
        self.sinks.push(s);
    }
}

pub struct Flight {
    pub target: PathBuf,
    pub dir: PathBuf,
    pub name: OsString,
    /// The target as the requester named it, for messages.
    pub display: String,
    /// Indentation depth of its messages (`REDO_LEVEL` of the requester).
    pub level: usize,
    pub force: bool,
    pub session: Arc<Session>,
    pub origin: Arc<Origin>,
    /// What the requester that started the flight had read of the target, with the
    /// verdicts' generation from before it read it: taken by the check.
    pub(crate) seen: Mutex<Option<(u64, Seen)>>,
    pub(crate) waiters: Mutex<Vec<(u64, Waiter)>>,
    pub(crate) result: watch::Sender<Option<Outcome>>,
    /// Set when the `.do` has been spawned (see [`wait_landed`]).
    pub(crate) started: watch::Sender<bool>,
    pub(crate) cancel: CancellationToken,
}

impl Flight {
    /// The session's recorder, when its build asked for `--timings` or `--trace`, with this
    /// flight's target as the recorder names it. `None` (one check) for every other build.
    pub(crate) fn insight(&self) -> Option<(&Recorder, &Path)> {
        self.session
            .insight
            .as_deref()
            .map(|r| (r, crate::insight::name(&self.target)))
    }

    /// The `.do` has been started: the next target of the requests waiting for this one may
    /// start (argument order, see [`wait_landed`]).
    pub fn mark_started(&self) {
        self.started.send_replace(true);
    }

    /// Where this flight's text goes: the nearest clients that asked for it (see
    /// `Audience`).
    pub fn sinks(&self) -> Vec<Sink> {
        let waiters: Vec<Waiter> = lock(&self.waiters).iter().map(|(_, w)| w.clone()).collect();
        Audience::of(&waiters)
    }

    /// The top-level clients this flight works for, through every flight and job waiting for
    /// it: where JSON events go, so that a top-level event stream covers the whole build
    /// (nested clients never ask for events).
    pub fn clients(&self) -> Vec<Sink> {
        let mut out: Vec<Sink> = Vec::new();
        let mut stack: Vec<Waiter> = lock(&self.waiters).iter().map(|(_, w)| w.clone()).collect();
        let mut seen_flights = 0usize;
        while let Some(w) = stack.pop() {
            match (w.flight(), &w) {
                (None, Waiter::Client(s)) => {
                    if !out.iter().any(|o| o.id == s.id) {
                        out.push(s.clone());
                    }
                }
                (None, _) => {}
                (Some(f), _) => {
                    seen_flights += 1;
                    if seen_flights < WALK_LIMIT {
                        stack.extend(lock(&f.waiters).iter().map(|(_, w)| w.clone()));
                    }
                }
            }
        }
        out
    }

    /// A redo message at this flight's level (a warning is also an event).
    pub fn say(&self, kind: Msg, text: &str) {
        for s in self.sinks() {
            s.message(kind, self.level, text);
        }
        if kind == Msg::Warn {
            for s in self.clients() {
                s.event(&BuildEvent::Warning {
                    target: s.rel(&self.target),
                    message: text.to_string(),
                });
            }
        }
    }

    /// A JSON event, built per client (paths are relative to each client's directory), for
    /// the clients that asked for events.
    pub fn event(&self, make: impl Fn(&Sink) -> BuildEvent) {
        for s in self.clients() {
            if s.style.events {
                s.event(&make(&s));
            }
        }
    }

    /// The `.do`'s stderr as `stderr` events, one per line (`continued`: the first line
    /// continues one already sent).
    pub fn stderr_events(&self, chunk: &[u8], continued: bool) {
        let sinks: Vec<Sink> = self
            .clients()
            .into_iter()
            .filter(|s| s.style.events)
            .collect();
        if sinks.is_empty() {
            return;
        }
        let mut first = true;
        for line in chunk.split_inclusive(|&b| b == b'\n') {
            let complete = line.ends_with(b"\n");
            let text =
                String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
            for s in &sinks {
                s.event(&BuildEvent::Stderr {
                    target: s.rel(&self.target),
                    line: text.clone(),
                    continued: first && continued,
                    partial: !complete,
                });
            }
            first = false;
        }
    }

    /// Relayed `.do` stderr.
    pub async fn relay(&self, bytes: &bytes::Bytes) {
        for s in self.sinks() {
            s.stderr(bytes).await;
        }
    }

    /// This flight cannot build its target because a dependency its state names failed (and
    /// said why): one line naming both, and a failed event. Its `.do` does not run.
    pub fn dependency_failed(&self, dep: &str) {
        let error = format!("dependency {dep} failed");
        self.say(Msg::Err, &format!("{}: {error}", self.display));
        self.session.progress.failed.fetch_add(1, Ordering::Relaxed);
        if let Some((r, t)) = self.insight() {
            r.finished(t, crate::insight::Outcome::Failed);
        }
        self.event(|s| {
            BuildEvent::Target(TargetEvent::Failed {
                target: s.rel(&self.target),
                do_file: None,
                error: error.clone(),
                level: self.level,
                duration: None,
                exit_code: None,
            })
        });
    }

    /// The targets whose checks wait for this flight, as they were named: who needs it.
    pub fn needed_by(&self) -> Vec<String> {
        lock(&self.waiters)
            .iter()
            .filter_map(|(_, w)| w.flight().map(|f| f.display.clone()))
            .collect()
    }

    /// `target` or `target (../default.o.do)`.
    pub fn name_with_do(&self, do_rel: Option<&Path>) -> String {
        match do_rel {
            Some(d) => format!("{} ({})", self.display, show(d)),
            None => self.display.clone(),
        }
    }
}
