use super::*;
use crate::insight::timeline::tests::{span, timeline};

fn names(tl: &Timeline) -> Vec<&str> {
    critical_path(tl)
        .into_iter()
        .map(|i| tl.spans[i].target.as_str())
        .collect()
}

#[test]
fn follows_the_dependency_that_finished_last() {
    // all waits for a (ends 50) and b (ends 80); b waited for c (ends 60), d (ends 30).
    let tl = timeline(
        vec![
            span("c", 0, 0, 60, &[]),
            span("d", 1, 0, 30, &[]),
            span("a", 1, 30, 50, &[]),
            span("b", 2, 0, 80, &["d", "c"]),
            span("all", 3, 0, 90, &["a", "b"]),
        ],
        90,
        Some(2),
    );
    assert_eq!(names(&tl), ["c", "b", "all"]);
}

#[test]
fn ends_at_the_span_that_ends_last_and_stops_at_unbuilt_deps() {
    let tl = timeline(
        vec![
            span("x", 0, 0, 10, &["src.c", "gone"]),
            span("y", 1, 0, 40, &["src.h"]),
        ],
        40,
        None,
    );
    assert_eq!(names(&tl), ["y"]);
}

#[test]
fn ignores_deps_that_ended_later_and_cycles() {
    let tl = timeline(
        vec![
            span("a", 0, 0, 50, &["b"]),
            span("b", 1, 0, 30, &["a"]),
            span("late", 2, 0, 45, &[]),
            span("top", 3, 0, 50, &["late", "a"]),
        ],
        50,
        None,
    );
    // a and top both start at 0 and end at 50: the first recorded, a, is picked. Its
    // dep b ended at 30; b's dep a is already on the chain.
    assert_eq!(names(&tl), ["b", "a"]);
}

#[test]
fn empty_build_has_no_path() {
    assert!(critical_path(&timeline(vec![], 0, None)).is_empty());
}
