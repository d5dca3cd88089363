use super::*;
use crate::insight::timeline::Wait;
use crate::insight::timeline::tests::{span, timeline};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn steps(points: &[Point]) -> Vec<(u64, u32)> {
    points
        .iter()
        .map(|p| (p.at.as_millis() as u64, p.jobs))
        .collect()
}

#[test]
fn waits_give_the_token_back() {
    let mut all = span("all", 0, 0, 100, &[]);
    all.waits.push(Wait {
        start: ms(10),
        end: ms(60),
        for_targets: vec!["a".into(), "b".into()],
    });
    let tl = timeline(
        vec![all, span("a", 1, 10, 50, &[]), span("b", 2, 10, 40, &[])],
        100,
        Some(2),
    );
    let c = curve(&tl);
    // 0–10 all; 10–40 a and b (all lent its token); 40–50 a; 50–60 nobody (all waits
    // for a token again); 60–100 all.
    assert_eq!(
        steps(&c),
        [(0, 1), (10, 2), (40, 1), (50, 0), (60, 1), (100, 0)]
    );
    assert_eq!(peak(&c), 2);
    // (10 + 60 + 10 + 40) job-ms over 100 ms.
    assert!((average(&c, ms(100)) - 1.2).abs() < 1e-9);
    // all: resumed at 60, its children were done at 50.
    assert_eq!(token_waits(&tl), [ms(10), ms(0), ms(0)]);
}

#[test]
fn a_token_handed_on_makes_no_peak() {
    let tl = timeline(
        vec![span("a", 0, 0, 10, &[]), span("b", 0, 10, 20, &[])],
        20,
        Some(1),
    );
    assert_eq!(steps(&curve(&tl)), [(0, 1), (20, 0)]);
}

#[test]
fn queue_time_counts_and_an_empty_build_is_flat() {
    let mut a = span("a", 0, 30, 40, &[]);
    a.queued = Some(ms(5));
    let mut w = span("w", 1, 0, 50, &[]);
    // Waited for targets that did not run: the whole wait is counted.
    w.waits.push(Wait {
        start: ms(10),
        end: ms(12),
        for_targets: vec!["up-to-date".into()],
    });
    let tl = timeline(vec![w, a], 50, None);
    assert_eq!(token_waits(&tl), [ms(2), ms(25)]);
    let empty = timeline(vec![], 0, None);
    assert_eq!(steps(&curve(&empty)), [(0, 0)]);
    assert_eq!(average(&curve(&empty), Duration::ZERO), 0.0);
}
