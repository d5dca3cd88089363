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
