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
mod tests;
