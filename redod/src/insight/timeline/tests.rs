use super::*;

/// A span for tests: times in milliseconds.
pub(crate) fn span(target: &str, lane: u32, start: u64, end: u64, deps: &[&str]) -> Span {
    Span {
        target: target.to_string(),
        do_file: Some(format!("{target}.do")),
        lane,
        queued: None,
        start: Duration::from_millis(start),
        end: Duration::from_millis(end),
        outcome: Outcome::Built,
        waits: Vec::new(),
        deps: deps.iter().map(|d| d.to_string()).collect(),
    }
}

pub(crate) fn timeline(spans: Vec<Span>, wall_ms: u64, jobs: Option<u32>) -> Timeline {
    Timeline {
        spans,
        wall: Duration::from_millis(wall_ms),
        jobs_limit: jobs,
        interrupted: false,
        up_to_date: 0,
        started_at: SystemTime::UNIX_EPOCH,
    }
}

#[test]
fn totals_count_outcomes_and_lanes() {
    let mut a = span("a", 0, 0, 10, &[]);
    a.outcome = Outcome::Cached;
    let mut b = span("b", 3, 0, 10, &[]);
    b.outcome = Outcome::Failed;
    let mut tl = timeline(vec![a, b, span("c", 1, 0, 5, &[])], 10, Some(4));
    tl.up_to_date = 7;
    let t = tl.totals();
    assert_eq!(
        t,
        Totals {
            built: 1,
            cached: 1,
            failed: 1,
            interrupted: 0,
            up_to_date: 7,
            lanes: 4
        }
    );
}

#[test]
fn queue_wait_is_zero_without_a_queue_time() {
    let mut s = span("a", 0, 10, 20, &[]);
    assert_eq!(s.queue_wait(), Duration::ZERO);
    s.queued = Some(Duration::from_millis(4));
    assert_eq!(s.queue_wait(), Duration::from_millis(6));
    assert_eq!(s.duration(), Duration::from_millis(10));
}
