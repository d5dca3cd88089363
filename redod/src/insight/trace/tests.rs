#![allow(clippy::unwrap_used)]

use super::*;
use crate::insight::timeline::tests::{span, timeline};
use crate::insight::{Outcome, Wait};
use std::time::Duration;

fn sample() -> Timeline {
    let mut all = span("all", 0, 0, 100, &["a"]);
    all.waits.push(Wait {
        start: Duration::from_millis(10),
        end: Duration::from_millis(60),
        for_targets: vec!["a".into()],
    });
    let mut a = span("a", 1, 10, 50, &[]);
    a.outcome = Outcome::Failed;
    a.do_file = None;
    timeline(vec![all, a], 100, Some(2))
}

fn events<'a>(v: &'a Value, ph: &str) -> Vec<&'a Value> {
    v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == ph)
        .collect()
}

#[test]
fn one_complete_event_per_run_on_its_slot() {
    let v = trace(&sample());
    assert_eq!(v["displayTimeUnit"], "ms");
    let targets: Vec<&Value> = events(&v, "X")
        .into_iter()
        .filter(|e| e["cat"] == "target")
        .collect();
    assert_eq!(targets.len(), 2);
    let a = targets.iter().find(|e| e["name"] == "a").unwrap();
    assert_eq!(
        (a["ts"].as_u64(), a["dur"].as_u64()),
        (Some(10_000), Some(40_000))
    );
    assert_eq!((a["pid"].as_u64(), a["tid"].as_u64()), (Some(1), Some(2)));
    assert_eq!(a["args"]["outcome"], "failed");
    assert_eq!(a["args"]["do"], Value::Null);
    assert_eq!(a["args"]["critical"], true);
    let all = targets.iter().find(|e| e["name"] == "all").unwrap();
    assert_eq!(all["args"]["do"], "all.do");
    assert_eq!(all["args"]["token_wait_us"], 10_000);
}

#[test]
fn waits_nest_inside_their_target_on_the_same_thread() {
    let v = trace(&sample());
    let waits: Vec<&Value> = events(&v, "X")
        .into_iter()
        .filter(|e| e["cat"] == "wait")
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0]["tid"], 1);
    assert_eq!(
        (waits[0]["ts"].as_u64(), waits[0]["dur"].as_u64()),
        (Some(10_000), Some(50_000))
    );
    assert_eq!(waits[0]["args"]["for"], serde_json::json!(["a"]));
}

#[test]
fn threads_are_named_after_slots_and_jobs_are_counted() {
    let v = trace(&sample());
    let names: Vec<(u64, &str)> = events(&v, "M")
        .into_iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [(1, "slot 1"), (2, "slot 2")]);
    let jobs: Vec<u64> = events(&v, "C")
        .into_iter()
        .map(|e| e["args"]["jobs"].as_u64().unwrap())
        .collect();
    // all alone; a while all waits (no change); nobody; all again; nobody.
    assert_eq!(jobs, [1, 0, 1, 0]);
    assert_eq!(v["otherData"]["failed"], 1);
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!(
        "../../../../contrib/trace/trace-event.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(v: &jsonschema::Validator, trace: &Value) -> Vec<String> {
    v.iter_errors(trace).map(|e| e.to_string()).collect()
}

#[test]
fn traces_match_the_schema_in_the_repository() {
    let v = validator();
    let sample = trace(&sample());
    assert!(errors(&v, &sample).is_empty(), "{:?}", errors(&v, &sample));
    // From the recorder, with an interrupted run, a name with markup and an empty build.
    let r = crate::insight::Recorder::new();
    r.started("</script>\"x", Some(std::path::Path::new("default.do")));
    r.waiting("</script>\"x", ["dep"]);
    let interrupted = trace(&r.finish(Duration::from_millis(3), None, true));
    assert!(
        errors(&v, &interrupted).is_empty(),
        "{:?}",
        errors(&v, &interrupted)
    );
    let empty = trace(&timeline(vec![], 0, Some(4)));
    assert!(errors(&v, &empty).is_empty(), "{:?}", errors(&v, &empty));
}

#[test]
fn the_schema_rejects_what_is_not_the_format() {
    let v = validator();
    let good = trace(&sample());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut t = good.clone();
        edit(&mut t);
        t
    };
    let target_index = good["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["cat"] == "target")
        .unwrap();
    let bad = [
        broken(&|t| {
            t["traceEvents"][target_index]
                .as_object_mut()
                .unwrap()
                .remove("dur");
        }),
        broken(&|t| t["traceEvents"][target_index]["args"]["outcome"] = "fine".into()),
        broken(&|t| t["traceEvents"][target_index]["ts"] = (-1).into()),
        broken(&|t| t["traceEvents"][target_index]["ph"] = "B".into()),
        broken(&|t| {
            t.as_object_mut().unwrap().remove("traceEvents");
        }),
    ];
    for b in &bad {
        assert!(!v.is_valid(b), "accepted: {b}");
    }
}
