//! The build as Chrome trace-event JSON (`redo --trace=FILE`), which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open. The subset written, which
//! `contrib/trace/trace-event.schema.json` describes and the tests validate against:
//!
//! ```text
//! {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {totals}}
//! M  process_name (pid 1: "redo build"), thread_name and thread_sort_index per lane
//!    ("slot N", tid N, from 1)
//! X  one per target run: name = the target, cat "target", ts/dur in µs from the build's
//!    start, tid = its lane; args {target, do, outcome, token_wait_us, critical}
//! X  one per nested wait, inside its target's event on the same thread: name "waiting",
//!    cat "wait", args {target, for}
//! C  "jobs": the jobs holding a token, at each change (Perfetto draws it as a counter track)
//! ```

use super::Error;
use super::concurrency;
use super::critical::critical_path;
use super::timeline::{Timeline, micros};
use serde_json::{Value, json};

const PID: u32 = 1;

/// The trace of `timeline` as a JSON value.
pub fn trace(timeline: &Timeline) -> Value {
    let mut events = metadata(timeline);
    let waits = concurrency::token_waits(timeline);
    let mut critical = vec![false; timeline.spans.len()];
    for i in critical_path(timeline) {
        critical[i] = true;
    }
    for (i, s) in timeline.spans.iter().enumerate() {
        let tid = s.lane + 1;
        events.push(json!({
            "name": s.target, "cat": "target", "ph": "X", "pid": PID, "tid": tid,
            "ts": micros(s.start), "dur": micros(s.duration()),
            "args": {
                "target": s.target, "do": s.do_file, "outcome": s.outcome.as_str(),
                "token_wait_us": micros(waits[i]), "critical": critical[i],
            },
        }));
        for w in &s.waits {
            events.push(json!({
                "name": "waiting", "cat": "wait", "ph": "X", "pid": PID, "tid": tid,
                "ts": micros(w.start), "dur": micros(w.end.saturating_sub(w.start)),
                "args": { "target": s.target, "for": w.for_targets },
            }));
        }
    }
    for p in concurrency::curve(timeline) {
        events.push(json!({
            "name": "jobs", "ph": "C", "pid": PID, "tid": 0, "ts": micros(p.at),
            "args": { "jobs": p.jobs },
        }));
    }
    let t = timeline.totals();
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "wall_us": micros(timeline.wall), "jobs": timeline.jobs_limit,
            "interrupted": timeline.interrupted, "built": t.built, "cached": t.cached,
            "failed": t.failed, "up_to_date": t.up_to_date,
        },
    })
}

/// [`trace`] as bytes, ready for a file.
pub fn to_bytes(timeline: &Timeline) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&trace(timeline)).map_err(Error::Json)
}

fn metadata(timeline: &Timeline) -> Vec<Value> {
    let meta = |name: &str, tid: u32, args: Value| json!({ "name": name, "ph": "M", "pid": PID, "tid": tid, "args": args });
    let mut events = vec![meta("process_name", 0, json!({ "name": "redo build" }))];
    for lane in 1..=timeline.totals().lanes {
        events.push(meta(
            "thread_name",
            lane,
            json!({ "name": format!("slot {lane}") }),
        ));
        events.push(meta(
            "thread_sort_index",
            lane,
            json!({ "sort_index": lane }),
        ));
    }
    events
}

#[cfg(test)]
mod tests;
