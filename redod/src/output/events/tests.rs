use super::*;

fn one_of_each() -> Vec<BuildEvent> {
    vec![
        BuildEvent::Session(SessionEvent::Started {
            build: "80143f04-bfff-4673-950c-081d712f573d".into(),
            targets: vec!["all".into()],
            jobs: Some(2),
        }),
        BuildEvent::Session(SessionEvent::Started {
            build: "80143f04-bfff-4673-950c-081d712f573d".into(),
            targets: vec![],
            jobs: None,
        }),
        BuildEvent::Session(SessionEvent::Finished {
            build: "80143f04-bfff-4673-950c-081d712f573d".into(),
            exit_code: 1,
            duration: 0.25,
            built: 3,
            failed: 1,
        }),
        BuildEvent::Target(TargetEvent::Started {
            target: "out/a.o".into(),
            do_file: "default.o.do".into(),
            level: 1,
        }),
        BuildEvent::Target(TargetEvent::Finished {
            target: "out/a.o".into(),
            do_file: "default.o.do".into(),
            duration: 0.01,
            level: 1,
            cached: false,
        }),
        BuildEvent::Target(TargetEvent::Finished {
            target: "out/b.o".into(),
            do_file: "default.o.do".into(),
            duration: 0.001,
            level: 1,
            cached: true,
        }),
        BuildEvent::Target(TargetEvent::Failed {
            target: "b".into(),
            do_file: Some("b.do".into()),
            error: "exit status 1".into(),
            level: 0,
            duration: Some(0.5),
            exit_code: Some(1),
        }),
        BuildEvent::Target(TargetEvent::Failed {
            target: "a".into(),
            do_file: None,
            error: "dependency cycle: a -> b -> a".into(),
            level: 0,
            duration: None,
            exit_code: None,
        }),
        BuildEvent::Stderr {
            target: "b".into(),
            line: "compiling".into(),
            continued: false,
            partial: true,
        },
        BuildEvent::Stderr {
            target: "b".into(),
            line: " done".into(),
            continued: true,
            partial: false,
        },
        BuildEvent::Warning {
            target: "x".into(),
            message: "x externally modified: not redoing".into(),
        },
        BuildEvent::Watch(WatchEvent::Waiting {
            exit_code: 0,
            inputs: 12,
        }),
    ]
}

#[test]
#[allow(clippy::unwrap_used)]
fn every_event_matches_the_published_schema() {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../contrib/events/redo-events.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for ev in one_of_each() {
        let line = line(&ev, 1_700_000_000.5);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
        assert_eq!(value["v"], 1);
    }
    // And the schema rejects what it should: the check above can fail.
    let bad = serde_json::json!({"v": 1, "time": 1.0, "type": "target", "event": "finished"});
    assert!(!validator.is_valid(&bad));
}

#[test]
#[allow(clippy::unwrap_used)]
fn optional_fields_are_left_out_not_null() {
    let ev = BuildEvent::Stderr {
        target: "t".into(),
        line: "x".into(),
        continued: false,
        partial: false,
    };
    let v: serde_json::Value = serde_json::from_slice(&line(&ev, 0.0)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"v": 1, "time": 0.0, "type": "stderr", "target": "t", "line": "x"})
    );
}
