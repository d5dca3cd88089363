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
mod tests {
    use super::*;
    use crate::remote::format::BlobDigest;

    fn h(n: u8) -> Hash {
        [n; 32]
    }

    fn chg(p: &str, n: Option<u8>) -> TraceDep {
        TraceDep::Ifchange {
            path: p.as_bytes().to_vec(),
            content: n.map(h),
        }
    }

    fn cre(p: &str) -> TraceDep {
        TraceDep::Ifcreate {
            path: p.as_bytes().to_vec(),
        }
    }

    fn trace(deps: Vec<TraceDep>) -> Trace {
        Trace {
            deps,
            output: BlobDigest::of(b"out"),
            executable: false,
        }
    }

    #[test]
    fn content_that_cannot_be_had_is_a_difference_not_a_question_again() {
        // A dependency that is a directory, or a target that failed to build, answers a
        // content probe with `Exists`: the trace does not match (and the probe is not asked
        // again forever).
        let traces = [trace(vec![chg("d", Some(1))]), trace(vec![cre("x")])];
        let mut asked = 0;
        let o = find_match(&traces, |p| {
            asked += 1;
            assert!(asked < 10, "asked again: {p:?}");
            Observed::Exists
        });
        assert_eq!(o.matched, None);
        assert_eq!(
            o.rejected,
            vec![
                (0, Reason::Changed(b"d".to_vec())),
                (1, Reason::NowExists(b"x".to_vec()))
            ]
        );
    }

    /// A checkout: path -> content (absent when not listed).
    fn world(files: &[(&str, u8)]) -> impl Fn(&Probe) -> Observed {
        let files: HashMap<Vec<u8>, u8> = files
            .iter()
            .map(|(p, n)| (p.as_bytes().to_vec(), *n))
            .collect();
        move |p: &Probe| match (files.get(&p.path), p.kind) {
            (None, _) => Observed::Absent,
            (Some(_), ProbeKind::Existence) => Observed::Exists,
            (Some(n), ProbeKind::Content) => Observed::Content(h(*n)),
        }
    }

    #[test]
    fn first_fitting_trace_wins_with_reasons_for_the_others() {
        let ts = vec![
            trace(vec![chg("x.h", Some(2)), chg("x.c", Some(1))]),
            trace(vec![chg("x.c", Some(1)), cre("y.c")]),
            trace(vec![chg("x.c", Some(1)), chg("x.h", Some(1)), cre("z.c")]),
            trace(vec![chg("x.c", Some(1))]),
        ];
        let o = find_match(&ts, world(&[("x.c", 1), ("x.h", 1), ("y.c", 5)]));
        assert_eq!(o.matched, Some(2));
        let reasons: Vec<String> = o
            .rejected
            .iter()
            .map(|(i, r)| format!("{i}: {r}"))
            .collect();
        assert_eq!(reasons, ["0: x.h changed", "1: y.c now exists"]);
    }

    #[test]
    fn absent_dependencies_and_gone_ones() {
        let ts = vec![trace(vec![chg("a", Some(1))]), trace(vec![chg("b", None)])];
        let o = find_match(&ts, world(&[]));
        assert_eq!(o.matched, Some(1));
        assert_eq!(o.rejected, [(0, Reason::Gone(b"a".to_vec()))]);
        let o = find_match(&ts[1..], world(&[("b", 1)]));
        assert_eq!(o.matched, None);
        assert_eq!(o.rejected[0].1.to_string(), "b now exists");
        assert_eq!(find_match(&[], world(&[])), Outcome::default());
    }

    #[test]
    fn probes_follow_recorded_order_stop_early_and_never_repeat() {
        let ts = vec![
            trace(vec![chg("gen.h", Some(9)), chg("never.c", Some(1))]),
            trace(vec![
                cre("gen.h"),
                chg("gen.h", Some(1)),
                chg("x.c", Some(1)),
            ]),
            trace(vec![chg("gen.h", Some(1)), chg("x.c", Some(1))]),
        ];
        let mut asked = Vec::new();
        let w = world(&[("gen.h", 1), ("x.c", 1)]);
        let o = find_match(&ts, |p| {
            asked.push((String::from_utf8_lossy(&p.path).into_owned(), p.kind));
            w(p)
        });
        assert_eq!(o.matched, Some(2));
        assert_eq!(
            asked,
            [
                ("gen.h".to_string(), ProbeKind::Content),
                ("x.c".to_string(), ProbeKind::Content),
            ],
            "never.c is not probed (its trace failed first); gen.h is probed once"
        );
        // An existence answer is upgraded to a content probe when content is needed.
        let ts = vec![trace(vec![cre("a")]), trace(vec![chg("a", Some(1))])];
        let mut asked = Vec::new();
        let w = world(&[("a", 1)]);
        let o = find_match(&ts, |p| {
            asked.push(p.kind);
            w(p)
        });
        assert_eq!(o.matched, Some(1));
        assert_eq!(asked, [ProbeKind::Existence, ProbeKind::Content]);
    }

    #[test]
    fn a_trace_without_dependencies_fits() {
        let ts = vec![trace(vec![])];
        assert_eq!(find_match(&ts, world(&[])).matched, Some(0));
    }

    #[test]
    fn async_prober() {
        let ts = vec![trace(vec![chg("a", Some(1))])];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = rt.block_on(find_match_async(&ts, |_p| async {
            Observed::Content(h(1))
        }));
        assert_eq!(o.matched, Some(0));
    }
}
