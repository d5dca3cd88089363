//! The wait-for graph: joining or starting a flight, refusing an edge that closes a cycle,
//! and a flight's task from start to result.

use super::want::Seen;
use super::*;

#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) flights: PathMap<Arc<Flight>>,
    /// Wait-for graph: target → targets it waits for, each with how many waiters of that
    /// target wait for it (a multiset: two nested clients of one `.do` may want the same
    /// target). A map, not a list: `all` with 10 000 dependencies adds and removes 10 000 edges.
    pub(crate) waits: HashMap<PathBuf, HashMap<PathBuf, usize>>,
    pub(crate) jobs: HashMap<u64, Arc<Job>>,
}

impl Tables {
    /// If `from` waiting for `to` would close a cycle, the cycle as `from → to → … → from`.
    pub(crate) fn cycle(&self, from: &Path, to: &Path) -> Option<Vec<PathBuf>> {
        if from == to {
            return Some(vec![from.to_path_buf(), to.to_path_buf()]);
        }
        let mut parent: HashMap<&Path, &Path> = HashMap::default();
        let mut stack = vec![to];
        while let Some(n) = stack.pop() {
            for next in self.waits.get(n).into_iter().flat_map(HashMap::keys) {
                if parent.contains_key(next.as_path()) || next == to {
                    continue;
                }
                parent.insert(next, n);
                if next == from {
                    let mut path = vec![from.to_path_buf()];
                    let mut cur: &Path = from;
                    while let Some(p) = parent.get(cur) {
                        path.push(p.to_path_buf());
                        cur = p;
                    }
                    path.reverse();
                    path.insert(0, from.to_path_buf());
                    return Some(path);
                }
                stack.push(next);
            }
        }
        None
    }

    pub(crate) fn remove_edge(&mut self, from: &Path, to: &Path) {
        if let Some(v) = self.waits.get_mut(from) {
            if let Some(n) = v.get_mut(to) {
                *n -= 1;
                if *n == 0 {
                    v.remove(to);
                }
            }
            if v.is_empty() {
                self.waits.remove(from);
            }
        }
    }
}

/// Detaches a waiter from a flight when dropped; the flight is cancelled when it was the last.
pub(crate) struct Attached<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) flight: Arc<Flight>,
    pub(crate) id: u64,
    pub(crate) edge: Option<PathBuf>,
    /// A waiter of the flight, which works for it. `false`: a forced request only waiting
    /// for somebody else's build of the target to land before it runs its own.
    pub(crate) listening: bool,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        if let Some(from) = &self.edge {
            lock(&self.engine.tables).remove_edge(from, &self.flight.target);
        }
        if !self.listening {
            return;
        }
        let empty = {
            let mut w = lock(&self.flight.waiters);
            w.retain(|(id, _)| *id != self.id);
            w.is_empty()
        };
        if empty && self.flight.result.borrow().is_none() {
            self.flight.cancel.cancel();
        }
    }
}

pub(crate) enum Attach<'a> {
    Joined(Attached<'a>, watch::Receiver<Option<Outcome>>),
    TornDown(watch::Receiver<Option<Outcome>>),
    Cycle(Vec<PathBuf>),
}

/// Waits for a flight's result. `start` is the next target's [`Want::start`] gate of the
/// same request: opened (dropped) as soon as the flight's `.do` has been spawned, so that
/// the request's targets start in argument order; at `-j 1` only when the result is in, so
/// that they are built strictly one after another.
pub(crate) async fn wait_landed(
    flight: &Flight,
    rx: &mut watch::Receiver<Option<Outcome>>,
    start: &mut Option<oneshot::Sender<()>>,
) -> Outcome {
    pub(crate) async fn landed(rx: &mut watch::Receiver<Option<Outcome>>) -> Outcome {
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(Outcome::Cancelled),
            Err(_) => Outcome::Cancelled,
        }
    }
    if start.is_some() && flight.session.tokens.limit() != Some(1) {
        let mut started = flight.started.subscribe();
        tokio::select! {
            o = landed(rx) => return o,
            _ = started.wait_for(|s| *s) => drop(start.take()),
        }
    }
    landed(rx).await
}

/// Starts a flight's task. A plain function with a boxed `Send` future: `ensure` starts
/// flights and a flight's check calls `ensure`, and spelling the type out here keeps the
/// compiler from chasing that loop when it proves the task `Send`.
pub(crate) fn spawn_flight(engine: Arc<Engine>, flight: Arc<Flight>) {
    let fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(async move { engine.fly(flight).await });
    tokio::spawn(fut);
}

impl Engine {
    /// Joins the target's flight or starts one, under the table lock. A forced request finding
    /// another request's flight only waits for it ([`Attached::listening`] is false): it is
    /// not one of its waiters (it neither gets its output nor keeps it alive), but its
    /// wait-for edge is there, so that a cycle through it is still found.
    /// A new flight takes what the want has read of its target (`want.seen`).
    pub(crate) fn attach(self: &Arc<Self>, want: &mut Want) -> Attach<'_> {
        let mut t = lock(&self.tables);
        let existing = t.flights.get(want.target.as_os_str()).cloned();
        if let Some(f) = existing.as_ref().filter(|f| f.cancel.is_cancelled()) {
            return Attach::TornDown(f.result.subscribe());
        }
        if let Some(from) = want.waiter.target() {
            if let Some(cycle) = t.cycle(from, &want.target) {
                return Attach::Cycle(cycle);
            }
            *t.waits
                .entry(from.to_path_buf())
                .or_default()
                .entry(want.target.clone())
                .or_default() += 1;
        }
        let (flight, listening) = match existing {
            Some(f) => (f, !want.force),
            None => {
                let seen = std::mem::take(&mut want.seen);
                let f = Arc::new(self.new_flight(want, seen));
                t.flights
                    .insert(crate::fastmap::key(&want.target), f.clone());
                spawn_flight(self.clone(), f.clone());
                (f, true)
            }
        };
        let id = self.next_id();
        if listening {
            lock(&flight.waiters).push((id, want.waiter.clone()));
        }
        let rx = flight.result.subscribe();
        Attach::Joined(
            Attached {
                engine: self,
                flight,
                id,
                edge: want.waiter.target().map(Path::to_path_buf),
                listening,
            },
            rx,
        )
    }

    pub(crate) fn new_flight(&self, want: &Want, seen: Seen) -> Flight {
        let (dir, name) = paths::split(&want.target)
            .map(|(d, n)| (d.to_path_buf(), n.to_os_string()))
            .unwrap_or_default();
        Flight {
            target: want.target.clone(),
            dir,
            name,
            display: want.display.clone(),
            level: want.level,
            force: want.force,
            session: want.session.clone(),
            origin: want.origin.clone(),
            seen: Mutex::new(Some((want.since, seen))),
            waiters: Mutex::new(Vec::new()),
            result: watch::channel(None).0,
            started: watch::channel(false).0,
            cancel: CancellationToken::new(),
        }
    }

    pub(crate) fn report_cycle(&self, want: &Want, cycle: &[PathBuf]) {
        let names: Vec<String> = cycle
            .iter()
            .map(|p| show(&paths::relative(&want.origin.cwd, p)))
            .collect();
        let text = format!("{}: dependency cycle: {}", want.display, names.join(" -> "));
        for s in want.waiter.sinks() {
            s.message(Msg::Err, want.level, &text);
        }
        for s in want.waiter.clients() {
            let error = format!("dependency cycle: {}", names.join(" -> "));
            s.event(&BuildEvent::Target(TargetEvent::Failed {
                target: s.rel(&want.target),
                do_file: None,
                error,
                level: want.level,
                duration: None,
                exit_code: None,
            }));
        }
    }

    pub(crate) async fn fly(self: Arc<Self>, flight: Arc<Flight>) {
        let outcome = tokio::select! {
            biased;
            () = flight.cancel.cancelled() => Outcome::Cancelled,
            o = self.run_flight(&flight) => o,
        };
        {
            let mut t = lock(&self.tables);
            if t.flights
                .get(flight.target.as_os_str())
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                t.flights.remove(flight.target.as_os_str());
            }
        }
        flight.result.send_replace(Some(outcome));
    }
}
