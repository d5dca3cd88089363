//! Which of an entry's traces fits the checkout as it is now. Pure logic: the caller answers
//! the questions ([`Probe`]), so the engine can bring a dependency that is itself a target up
//! to date before answering, exactly as it would before judging a target out of date.
//!
//! Traces are tried newest first; within a trace the dependencies are checked in recorded
//! order and the trace is abandoned at the first difference. The order matters: a build that
//! recorded `redo-ifchange config.h` before `redo-ifchange x.c` may only have learned of
//! `x.c` from `config.h`'s content, and the probes (which may build targets) follow the path
//! the `.do` itself took, never building a dependency of a trace already known not to fit.
//! Each path is probed at most once per match.

use super::format::{Trace, TraceDep};
use crate::fs::Hash;
use crate::fs::paths::{from_bytes, show};
use std::collections::{HashMap, HashSet};
use std::fmt;

fn show_bytes(p: &[u8]) -> String {
    show(from_bytes(p))
}

/// A question about a dependency, by its recorded path (relative to the target's directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub path: Vec<u8>,
    pub kind: ProbeKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// An `ifchange` dependency: its content hash (bring it up to date first if it is a
    /// target; a target without output answers with its `redo-stamp`, as its `.rec` would).
    Content,
    /// An `ifcreate` dependency: only whether it exists (no need to hash it).
    Existence,
}

/// The answer to a [`Probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    Absent,
    /// It exists, with this BLAKE3 content hash.
    Content(Hash),
    /// It exists; its content was not asked for (or cannot be hashed, e.g. a directory).
    Exists,
}

/// Why a trace did not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Changed(Vec<u8>),
    NowExists(Vec<u8>),
    Gone(Vec<u8>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Changed(p) => write!(f, "{} changed", show_bytes(p)),
            Reason::NowExists(p) => write!(f, "{} now exists", show_bytes(p)),
            Reason::Gone(p) => write!(f, "{} is gone", show_bytes(p)),
        }
    }
}

/// The result of matching: the index of the first trace that fits, and why each one before it
/// did not (for `-d`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    pub matched: Option<usize>,
    pub rejected: Vec<(usize, Reason)>,
}

pub enum Step {
    /// Answer this with [`Matcher::answer`], then call [`Matcher::step`] again.
    Probe(Probe),
    Done(Outcome),
}

/// The matching state machine: `step`, answer the probe, `step`, … until `Done`.
pub struct Matcher<'t> {
    traces: &'t [Trace],
    trace: usize,
    dep: usize,
    seen: HashMap<Vec<u8>, Observed>,
    /// Paths whose content was asked for: an `Exists` answer to that (a directory, a
    /// dependency that failed to build) is a difference, not a reason to ask again.
    content_asked: HashSet<Vec<u8>>,
    pending: Option<(Vec<u8>, ProbeKind)>,
    outcome: Outcome,
}

/// How a recorded dependency compares with what is observed; `None`: ask.
fn judge(dep: &TraceDep, seen: Option<&Observed>) -> Option<Result<(), Reason>> {
    let seen = *seen?;
    let path = || dep.path().to_vec();
    Some(match (dep, seen) {
        (TraceDep::Ifcreate { .. }, Observed::Absent) => Ok(()),
        (TraceDep::Ifcreate { .. }, _) => Err(Reason::NowExists(path())),
        (TraceDep::Ifchange { content: None, .. }, Observed::Absent) => Ok(()),
        (TraceDep::Ifchange { content: None, .. }, _) => Err(Reason::NowExists(path())),
        (
            TraceDep::Ifchange {
                content: Some(_), ..
            },
            Observed::Absent,
        ) => Err(Reason::Gone(path())),
        (
            TraceDep::Ifchange {
                content: Some(h), ..
            },
            Observed::Content(c),
        ) if *h == c => Ok(()),
        // Known to exist but its content was not asked for yet: ask.
        (
            TraceDep::Ifchange {
                content: Some(_), ..
            },
            Observed::Exists,
        ) => return None,
        (
            TraceDep::Ifchange {
                content: Some(_), ..
            },
            Observed::Content(_),
        ) => Err(Reason::Changed(path())),
    })
}

impl<'t> Matcher<'t> {
    pub fn new(traces: &'t [Trace]) -> Matcher<'t> {
        Matcher {
            traces,
            trace: 0,
            dep: 0,
            seen: HashMap::new(),
            content_asked: HashSet::new(),
            pending: None,
            outcome: Outcome::default(),
        }
    }

    pub fn step(&mut self) -> Step {
        loop {
            let Some(t) = self.traces.get(self.trace) else {
                return Step::Done(std::mem::take(&mut self.outcome));
            };
            let Some(d) = t.deps.get(self.dep) else {
                self.outcome.matched = Some(self.trace);
                self.trace = self.traces.len();
                return Step::Done(std::mem::take(&mut self.outcome));
            };
            let seen = self.seen.get(d.path());
            let unhashable =
                matches!(seen, Some(Observed::Exists)) && self.content_asked.contains(d.path());
            let verdict = match d {
                TraceDep::Ifchange {
                    content: Some(_), ..
                } if unhashable => Some(Err(Reason::Changed(d.path().to_vec()))),
                _ => judge(d, seen),
            };
            match verdict {
                Some(Ok(())) => self.dep += 1,
                Some(Err(r)) => {
                    self.outcome.rejected.push((self.trace, r));
                    self.trace += 1;
                    self.dep = 0;
                }
                None => {
                    let kind = match d {
                        TraceDep::Ifcreate { .. } => ProbeKind::Existence,
                        TraceDep::Ifchange { .. } => ProbeKind::Content,
                    };
                    self.pending = Some((d.path().to_vec(), kind));
                    return Step::Probe(Probe {
                        path: d.path().to_vec(),
                        kind,
                    });
                }
            }
        }
    }

    /// The answer to the last [`Step::Probe`]. An answer without a question is ignored.
    pub fn answer(&mut self, observed: Observed) {
        if let Some((p, kind)) = self.pending.take() {
            if kind == ProbeKind::Content {
                self.content_asked.insert(p.clone());
            }
            self.seen.insert(p, observed);
        }
    }
}

/// Matching with a synchronous prober.
pub fn find_match(traces: &[Trace], mut probe: impl FnMut(&Probe) -> Observed) -> Outcome {
    let mut m = Matcher::new(traces);
    loop {
        match m.step() {
            Step::Done(o) => return o,
            Step::Probe(p) => {
                let seen = probe(&p);
                m.answer(seen);
            }
        }
    }
}

/// Matching with an asynchronous prober (the engine bringing dependencies up to date).
pub async fn find_match_async<F, Fut>(traces: &[Trace], mut probe: F) -> Outcome
where
    F: FnMut(Probe) -> Fut,
    Fut: std::future::Future<Output = Observed>,
{
    let mut m = Matcher::new(traces);
    loop {
        match m.step() {
            Step::Done(o) => return o,
            Step::Probe(p) => {
                let seen = probe(p).await;
                m.answer(seen);
            }
        }
    }
}

#[cfg(test)]
mod tests;
