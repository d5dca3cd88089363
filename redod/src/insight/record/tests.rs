use super::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A recorder and a clock for it: `at(n)` is n ms after its epoch.
fn recorder() -> (Recorder, impl Fn(u64) -> Instant) {
    let epoch = Instant::now();
    (Recorder::starting_at(epoch), move |n| epoch + ms(n))
}

fn find<'a>(tl: &'a Timeline, target: &str) -> &'a Span {
    tl.spans
        .iter()
        .find(|s| s.target == target)
        .unwrap_or_else(|| panic!("{target} not recorded: {tl:?}"))
}

#[test]
fn a_parent_keeps_its_lane_while_children_run_on_others() {
    let (r, at) = recorder();
    r.queued_at("all", at(0));
    r.started_at("all", Some(Path::new("all.do")), at(1));
    r.waiting_at("all", ["a", "b"], at(5));
    r.started_at("a", Some(Path::new("default.o.do")), at(6));
    r.started_at("b", Some(Path::new("default.o.do")), at(6));
    r.finished_at("a", Outcome::Built, at(20));
    r.finished_at("b", Outcome::Cached, at(30));
    r.resumed_at("all", at(31));
    r.started_at("c", None, at(32));
    r.finished_at("c", Outcome::Failed, at(33));
    r.finished_at("all", Outcome::Built, at(40));
    r.up_to_date(3);
    // Counted once per target, however often asked.
    for t in ["x", "y", "x"] {
        r.up_to_date_target(t);
    }
    let tl = r.finish_at(ms(41), Some(2), false, at(41));

    let all = find(&tl, "all");
    assert_eq!(
        (all.lane, all.queued, all.start, all.end),
        (0, Some(ms(0)), ms(1), ms(40))
    );
    assert_eq!(all.do_file.as_deref(), Some("all.do"));
    assert_eq!(
        all.waits,
        [Wait {
            start: ms(5),
            end: ms(31),
            for_targets: vec!["a".into(), "b".into()]
        }]
    );
    assert_eq!(all.deps, ["a", "b"]);
    assert_eq!((find(&tl, "a").lane, find(&tl, "b").lane), (1, 2));
    // c starts after a and b ended: the lowest free lane.
    assert_eq!(find(&tl, "c").lane, 1);
    assert_eq!(find(&tl, "b").outcome, Outcome::Cached);
    assert_eq!(find(&tl, "c").outcome, Outcome::Failed);
    assert_eq!(tl.up_to_date, 5);
    assert_eq!(
        (tl.wall, tl.jobs_limit, tl.interrupted),
        (ms(41), Some(2), false)
    );
    assert_lanes_never_overlap(&tl);
}

fn assert_lanes_never_overlap(tl: &Timeline) {
    for a in &tl.spans {
        for b in &tl.spans {
            if !std::ptr::eq(a, b) && a.lane == b.lane {
                assert!(a.end <= b.start || b.end <= a.start, "{a:?} overlaps {b:?}");
            }
        }
    }
}

#[test]
fn finish_closes_open_spans_and_waits_as_interrupted() {
    let (r, at) = recorder();
    r.started_at("slow", None, at(0));
    r.waiting_at("slow", ["x"], at(2));
    r.waiting_at("slow", ["y"], at(3));
    r.started_at("x", None, at(2));
    let tl = r.finish_at(ms(1), None, true, at(9));
    let slow = find(&tl, "slow");
    assert_eq!((slow.outcome, slow.end), (Outcome::Interrupted, ms(9)));
    // The second `waiting` joined the open wait.
    assert_eq!(slow.waits.len(), 1);
    assert_eq!(slow.waits[0].end, ms(9));
    assert_eq!(slow.waits[0].for_targets, ["x", "y"]);
    assert_eq!(find(&tl, "x").outcome, Outcome::Interrupted);
    // The wall time covers what ran.
    assert_eq!(tl.wall, ms(9));
    assert!(tl.interrupted);
    // A finished recorder records nothing more.
    r.started_at("late", None, at(10));
    r.finished_at("late", Outcome::Built, at(11));
    assert!(r.finish(ms(0), None, false).spans.is_empty());
}

#[test]
fn out_of_order_calls_are_absorbed() {
    let (r, at) = recorder();
    r.depends("t", "early.h");
    r.queued_at("t", at(1));
    r.queued_at("t", at(2));
    // A failure before the .do ran: a zero-length span, its lane given back at once.
    r.finished_at("nodo", Outcome::Failed, at(3));
    r.started_at("t", None, at(4));
    r.depends("t", "late.h");
    r.depends("t", "early.h");
    r.resumed_at("t", at(5));
    r.waiting_at("unknown", ["z"], at(5));
    r.resumed_at("unknown", at(5));
    // Started again while running: the first run ends, interrupted.
    r.started_at("t", None, at(6));
    r.finished_at("t", Outcome::Built, at(8));
    let tl = r.finish_at(ms(8), Some(1), false, at(8));
    let nodo = find(&tl, "nodo");
    assert_eq!((nodo.start, nodo.end, nodo.lane), (ms(3), ms(3), 0));
    let runs: Vec<&Span> = tl.spans.iter().filter(|s| s.target == "t").collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].outcome, runs[0].end),
        (Outcome::Interrupted, ms(6))
    );
    assert_eq!(runs[0].queued, Some(ms(1)));
    assert_eq!(runs[0].deps, ["early.h", "late.h"]);
    assert!(runs[0].waits.is_empty());
    assert_eq!((runs[1].outcome, runs[1].lane), (Outcome::Built, 0));
    assert!(!tl.spans.iter().any(|s| s.target == "unknown"));
}

#[test]
fn names_that_are_not_utf8_are_kept_lossily() {
    let (r, at) = recorder();
    let name = OsString::from_vec(b"bad\xffname".to_vec());
    r.started_at(&name, Some(Path::new("default.do")), at(0));
    r.finished_at(&name, Outcome::Built, at(1));
    let tl = r.finish_at(ms(1), None, false, at(1));
    assert_eq!(tl.spans[0].target, "bad\u{fffd}name");
}

#[test]
fn calls_from_many_threads_are_all_recorded() {
    let r = Arc::new(Recorder::new());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let name = format!("t{t}-{i}");
                    r.queued(&name);
                    r.started(&name, None);
                    r.finished(&name, Outcome::Built);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let tl = r.finish(Duration::ZERO, Some(8), false);
    assert_eq!(tl.spans.len(), 800);
    assert!(tl.totals().lanes <= 8);
    assert_lanes_never_overlap(&tl);
}
