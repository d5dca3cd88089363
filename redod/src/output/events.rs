//! The `--events=json` stream: one typed value per event, written as one JSON line with the
//! envelope `{"v": 1, "time": <seconds>, ...}`.
//!
//! The shapes are `contrib/events/redo-events.schema.json`'s; the unit test below validates one
//! of each against that file, so the two cannot drift apart. A change that removes or changes
//! a field bumps [`EVENTS_VERSION`] (and the schema's `v`).

use serde::Serialize;

/// Schema version of the event stream (`v` in every event).
pub const EVENTS_VERSION: u32 = 1;

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum BuildEvent {
    Session(SessionEvent),
    Target(TargetEvent),
    /// One line the `.do` wrote to stderr.
    Stderr {
        target: String,
        line: String,
        /// The line continues one already sent (a long line read in two chunks).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        continued: bool,
        /// The line is not finished yet: the rest follows with `continued`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        partial: bool,
    },
    Warning {
        target: String,
        message: String,
    },
    Watch(WatchEvent),
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(crate) enum SessionEvent {
    Started {
        build: String,
        targets: Vec<String>,
        /// `None`: a make jobserver's limit.
        jobs: Option<u32>,
    },
    Finished {
        build: String,
        exit_code: i32,
        duration: f64,
        built: usize,
        failed: usize,
    },
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(crate) enum TargetEvent {
    Started {
        target: String,
        #[serde(rename = "do")]
        do_file: String,
        level: usize,
    },
    Finished {
        target: String,
        #[serde(rename = "do")]
        do_file: String,
        duration: f64,
        level: usize,
        /// Served from the shared cache: no `.do` ran.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cached: bool,
    },
    Failed {
        target: String,
        #[serde(rename = "do", skip_serializing_if = "Option::is_none")]
        do_file: Option<String>,
        error: String,
        level: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(crate) enum WatchEvent {
    /// A `--watch` round is over; waiting for one of `inputs` files to change.
    Waiting { exit_code: i32, inputs: usize },
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    time: f64,
    #[serde(flatten)]
    event: &'a BuildEvent,
}

/// `event` as one JSON line, stamped with the schema version and `time` (seconds since the
/// Unix epoch).
pub(crate) fn line(event: &BuildEvent, time: f64) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Envelope {
        v: EVENTS_VERSION,
        time,
        event,
    })
    // Serialising these plain structs (strings, numbers) cannot fail.
    .unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
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
            "../../../contrib/events/redo-events.schema.json"
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
}
