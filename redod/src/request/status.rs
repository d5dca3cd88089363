//! The status line of a top-level build on a terminal: drawn by the daemon into the client's
//! stream (the client only says whether its stderr is a terminal and how wide it is), redrawn
//! every 100 ms while something changed, erased by every other line and by the last event.
//!
//! It reads `3/5 done, about 4s left | running: a.do, default.o.do (x.o)`:
//!
//! * **done / total**: `.do` files finished in this build (a cache restore counts as one) out
//!   of the number the last successful build of the same targets ran, or, when this build is
//!   the first, or has already gone past that number, of those finished, running and waiting
//!   for a job slot so far (the total then grows as targets turn up).
//! * **time left**: see [`estimate`]; shown only when the last build is known.
//! * **running**: the `.do` files running right now, oldest first (a `default*.do` with its
//!   target); a `.do` waiting in a nested `redo-ifchange` is not running and is not named.

use crate::engine::{LastBuild, RunningDo, Session};
use crate::output::Sink;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Redraws a terminal client's status line while its build runs; stops when dropped.
pub(super) struct StatusLine(Option<tokio::task::JoinHandle<()>>);

impl StatusLine {
    /// Draws `session`'s line on `sink`, if it has one; `last`: the last build of the same
    /// targets, if known.
    pub(super) fn start(session: Arc<Session>, sink: Sink, last: Option<LastBuild>) -> StatusLine {
        if !sink.style.status {
            return StatusLine(None);
        }
        let started = Instant::now();
        StatusLine(Some(tokio::spawn(async move {
            let mut shown = String::new();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let line = line(&session, &sink, last, started.elapsed());
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

/// The line as it stands now.
fn line(session: &Session, sink: &Sink, last: Option<LastBuild>, elapsed: Duration) -> String {
    let p = &session.progress;
    let count = Count {
        done: p.done.load(Ordering::Relaxed),
        unfinished: p.running.load(Ordering::Relaxed) + p.queued.load(Ordering::Relaxed),
    };
    let names: Vec<String> = p.jobs.now().iter().map(|r| name(sink, r)).collect();
    format_line(count, last, elapsed, &names)
}

/// A running `.do` as the line names it: relative to the client's directory, with its target
/// when it is a `default*.do`.
fn name(sink: &Sink, r: &RunningDo) -> String {
    let d = sink.rel(&r.do_path);
    match &r.target {
        Some(t) => format!("{d} ({t})"),
        None => d,
    }
}

/// The `.do` files of a build at one moment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Count {
    /// Finished.
    pub(super) done: usize,
    /// Running (or waiting in a nested request) and waiting for a job slot.
    pub(super) unfinished: usize,
}

/// The total the line shows: the last build's number, unless this build already knows of
/// more (then what it knows of: the total grows as targets turn up).
pub(super) fn total(count: Count, last: Option<LastBuild>) -> usize {
    let known = count.done + count.unfinished;
    last.map_or(known, |l| l.jobs.max(known))
}

/// The time left, from the last build of the same targets: the smaller of what is left of its
/// duration (`took - elapsed`) and its duration's share of the `.do` files not done yet
/// (`took × (jobs - done) / jobs`), which is the better guess when this build skips most of
/// what the last one ran. `None` (nothing shown) without a last build, or once this build has
/// run longer or more `.do` files than it did: an estimate known to be wrong is not shown.
pub(super) fn estimate(
    done: usize,
    last: Option<LastBuild>,
    elapsed: Duration,
) -> Option<Duration> {
    let last = last?;
    if last.jobs == 0 || done > last.jobs || elapsed >= last.took {
        return None;
    }
    let by_time = last.took - elapsed;
    let left = (last.jobs - done) as f64 / last.jobs as f64;
    let by_count = last.took.mul_f64(left);
    Some(by_time.min(by_count))
}

/// `3/5 done, about 4s left | running: a.do, b.do`.
pub(super) fn format_line(
    count: Count,
    last: Option<LastBuild>,
    elapsed: Duration,
    running: &[String],
) -> String {
    let mut s = format!("{}/{} done", count.done, total(count, last));
    if let Some(left) = estimate(count.done, last, elapsed) {
        s.push_str(&format!(", about {} left", short(left)));
    }
    if !running.is_empty() {
        s.push_str(" | running: ");
        s.push_str(&running.join(", "));
    }
    s
}

/// A duration in whole units, rounded up: `4s`, `2m10s`, `1h05m`.
fn short(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests;
