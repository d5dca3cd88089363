use super::*;
use crate::fs::{Kind, Stamp};
use std::path::PathBuf;

fn meta(size: u64) -> Meta {
    Meta {
        stamp: Stamp {
            size,
            ..Default::default()
        },
        kind: Kind::File,
        link: false,
    }
}

fn seen(inputs: &[&str], targets: &[&str]) -> Observed {
    Observed {
        inputs: inputs.iter().map(|p| key(Path::new(p))).collect(),
        targets: targets.iter().map(PathBuf::from).collect(),
        vouched: true,
    }
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// /p/top depends on /p/mid, which depends on the source /p/src.
fn chain() -> Verdicts {
    let v = Verdicts::default();
    let g = v.generation();
    assert!(v.record(
        p("/p/mid"),
        (meta(1), None),
        Trust::Ctime,
        seen(&["/p/src"], &[]),
        g
    ));
    assert!(v.record(
        p("/p/top"),
        (meta(2), None),
        Trust::Ctime,
        seen(&[], &["/p/mid"]),
        g
    ));
    v
}

#[test]
fn held_until_an_input_changes() {
    let v = chain();
    assert_eq!(v.holds(p("/p/mid"), Trust::Ctime), Some((meta(1), None)));
    assert_eq!(v.holds(p("/p/top"), Trust::Ctime), Some((meta(2), None)));
    v.changed(p("/p/unrelated"));
    assert!(v.holds(p("/p/top"), Trust::Ctime).is_some());
    v.changed(p("/p/src"));
    assert_eq!(v.holds(p("/p/mid"), Trust::Ctime), None);
    assert_eq!(
        v.holds(p("/p/top"), Trust::Ctime),
        None,
        "a target whose dependency may be out of date is not vouched for"
    );
    assert_eq!(v.stats().0, 0);
    assert!(lock(&v.inner).readers.is_empty(), "no stale index entries");
}

#[test]
fn own_path_change_drops_it_and_dependants() {
    let v = chain();
    v.changed(p("/p/mid"));
    assert_eq!(v.holds(p("/p/top"), Trust::Ctime), None);
}

#[test]
fn not_recorded_when_a_change_was_handled_during_the_check() {
    let v = Verdicts::default();
    let g = v.generation();
    v.changed(p("/p/anything"));
    assert!(!v.record(
        p("/p/t"),
        (meta(1), None),
        Trust::Ctime,
        seen(&["/p/s"], &[]),
        g
    ));
    assert_eq!(v.holds(p("/p/t"), Trust::Ctime), None);
}

#[test]
fn not_recorded_without_the_watchers_word_or_a_dependency_verdict() {
    let v = Verdicts::default();
    let g = v.generation();
    let mut unvouched = seen(&["/p/s"], &[]);
    unvouched.vouched = false;
    assert!(!v.record(p("/p/t"), (meta(1), None), Trust::Ctime, unvouched, g));
    assert!(!v.record(
        p("/p/t"),
        (meta(1), None),
        Trust::Ctime,
        seen(&[], &["/p/dep"]),
        g
    ));
    assert_eq!(v.stats().0, 0);
}

fn records(names: &[&str]) -> Vec<Dep> {
    names
        .iter()
        .map(|n| Dep::Ifchange {
            target: n.as_bytes().to_vec(),
            stamp: Stamp::default(),
            hash: None,
        })
        .collect()
}

#[test]
fn a_batch_holds_while_every_member_does() {
    let v = chain();
    let names = b"mid\0top\0";
    let k = batch_key(p("/p"), p("/p"), Trust::Ctime, names);
    let g = v.generation();
    let members = [p("/p/mid"), p("/p/top")];
    assert!(v.record_batch(k, &members, records(&["mid", "top"]).into(), g));
    let idle = |_: &[u64]| false;
    assert_eq!(v.batch(&k, idle).unwrap().len(), 2);
    assert!(v.batch(&k, |_| true).is_none(), "a member is being rebuilt");
    // Another list, another directory, another trust mode: another batch.
    for other in [
        batch_key(p("/p"), p("/p"), Trust::Ctime, b"mid\0"),
        batch_key(p("/q"), p("/p"), Trust::Ctime, names),
        batch_key(p("/p"), p("/p"), Trust::Mtime, names),
    ] {
        assert!(v.batch(&other, idle).is_none());
    }
    v.changed(p("/p/src"));
    assert!(
        v.batch(&k, idle).is_none(),
        "dropped with a member's verdict"
    );
    assert!(lock(&v.inner).readers.is_empty(), "no stale index entries");
    // Not recorded when a member holds no verdict, or after a change.
    let v = chain();
    let g = v.generation();
    assert!(!v.record_batch(k, &[p("/p/mid"), p("/p/nope")], records(&[]).into(), g));
    v.changed(p("/p/unrelated"));
    assert!(!v.record_batch(k, &members, records(&[]).into(), g));
}

#[test]
fn held_only_for_its_trust_mode_and_cleared_by_clear() {
    let v = chain();
    assert_eq!(v.holds(p("/p/mid"), Trust::None), None);
    assert!(
        !v.record(
            p("/p/x"),
            (meta(3), None),
            Trust::None,
            seen(&[], &["/p/mid"]),
            v.generation()
        ),
        "a dependency verdict of another trust mode does not count"
    );
    v.clear();
    assert_eq!(v.holds(p("/p/mid"), Trust::Ctime), None);
}
