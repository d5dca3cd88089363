//! How many jobs held a job token at each moment, and how long targets waited for one.
//!
//! A span holds a token from its start to its end, except while it waits in a nested request
//! (it lent its token back to run its children). The curve is that count over time, a step
//! function, compared in the report with `-j`.
//!
//! Token waits: a span waited for a token from [`Span::queued`] to its start, and after each
//! nested wait from the moment the targets it waited for had all finished (the last of their
//! spans in this build to end; the wait's start when none of them ran) to its resumption.
//! The second part is an estimate: the engine does not say when the children were done, so a
//! slow up-to-date check of a child counts as token wait.

use super::timeline::{Span, Timeline};
use std::collections::HashMap;
use std::time::Duration;

/// From `at` on (until the next point), `jobs` held a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub at: Duration,
    pub jobs: u32,
}

/// The concurrency curve: points in time order, the first at 0, a point only where the count
/// changes.
pub fn curve(timeline: &Timeline) -> Vec<Point> {
    // (time, change): releases sort before takes at the same instant, so a job handing its
    // token to the next one makes no spurious peak.
    let mut events: Vec<(Duration, i8)> = Vec::with_capacity(timeline.spans.len() * 2);
    for s in &timeline.spans {
        events.push((s.start, 1));
        events.push((s.end, -1));
        for w in &s.waits {
            events.push((w.start, -1));
            events.push((w.end, 1));
        }
    }
    events.sort_unstable();
    let mut points = vec![Point {
        at: Duration::ZERO,
        jobs: 0,
    }];
    let mut jobs: i64 = 0;
    for (i, &(at, change)) in events.iter().enumerate() {
        jobs += i64::from(change);
        if events.get(i + 1).is_some_and(|next| next.0 == at) {
            continue;
        }
        let jobs = u32::try_from(jobs.max(0)).unwrap_or(u32::MAX);
        match points.last_mut() {
            Some(last) if last.jobs == jobs => {}
            Some(last) if last.at == at => last.jobs = jobs,
            _ => points.push(Point { at, jobs }),
        }
    }
    points
}

/// The most jobs at once.
pub fn peak(points: &[Point]) -> u32 {
    points.iter().map(|p| p.jobs).max().unwrap_or(0)
}

/// Job-time held, divided by the wall time: the average number of jobs running.
pub fn average(points: &[Point], wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    let mut held = 0.0;
    for (i, p) in points.iter().enumerate() {
        let until = points.get(i + 1).map_or(wall, |n| n.at).min(wall);
        held += until.saturating_sub(p.at).as_secs_f64() * f64::from(p.jobs);
    }
    held / wall.as_secs_f64()
}

/// Each span's token wait (same order as `timeline.spans`), per the module's rule.
pub fn token_waits(timeline: &Timeline) -> Vec<Duration> {
    let mut last_end: HashMap<&str, Duration> = HashMap::new();
    for s in &timeline.spans {
        let e = last_end.entry(s.target.as_str()).or_default();
        *e = (*e).max(s.end);
    }
    timeline
        .spans
        .iter()
        .map(|s| token_wait(s, &last_end))
        .collect()
}

fn token_wait(span: &Span, last_end: &HashMap<&str, Duration>) -> Duration {
    let mut total = span.queue_wait();
    for w in &span.waits {
        let children_done = w
            .for_targets
            .iter()
            .filter_map(|t| last_end.get(t.as_str()))
            .copied()
            .filter(|&e| e <= w.end)
            .max()
            .unwrap_or(w.start)
            .max(w.start);
        total += w.end.saturating_sub(children_done);
    }
    total
}

#[cfg(test)]
mod tests;
