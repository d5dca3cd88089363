//! The data the report's page draws from, embedded in it as JSON. Field names are short
//! because a 10,000-target build repeats them 10,000 times; `report.js` is their one reader.
//! Times are whole microseconds from the build's start.

use crate::insight::concurrency::{self, Point};
use crate::insight::critical::critical_path;
use crate::insight::timeline::{Span, Timeline, Totals, micros};
use crate::insight::utc::Utc;
use serde::Serialize;
use std::time::Duration;

/// How many rows the table of slowest targets shows at most (the page says so).
pub const TABLE_ROWS: usize = 200;

#[derive(Debug, Serialize)]
pub struct Data<'a> {
    /// The project's name, for the heading.
    pub title: &'a str,
    /// When the build started (`2026-03-15 10:15:30 UTC`).
    pub started: String,
    pub wall: u64,
    /// `-j`; `null` for unlimited.
    pub jobs: Option<u32>,
    pub interrupted: bool,
    pub totals: Totals,
    /// Token wait summed over all spans.
    pub token_wait: u64,
    pub peak: u32,
    /// Average jobs holding a token.
    pub average: f64,
    pub table_rows: usize,
    pub spans: Vec<SpanData<'a>>,
    /// Indices into `spans`, first to last.
    pub critical: Vec<usize>,
    /// The concurrency curve: `[time, jobs]` steps.
    pub curve: Vec<[u64; 2]>,
}

/// One bar.
#[derive(Debug, Serialize)]
pub struct SpanData<'a> {
    /// Target.
    pub t: &'a str,
    /// Its `.do`, or `null`.
    pub d: Option<&'a str>,
    /// Lane (job slot, from 0).
    pub l: u32,
    /// Start and end.
    pub s: u64,
    pub e: u64,
    /// Outcome: `built`, `cached`, `failed` or `interrupted`.
    pub o: &'static str,
    /// Token wait.
    pub q: u64,
    /// Nested waits, `[start, end]`.
    pub w: Vec<[u64; 2]>,
    /// How many targets its nested requests named.
    pub f: usize,
}

impl<'a> Data<'a> {
    pub fn of(timeline: &'a Timeline, title: &'a str) -> Data<'a> {
        let points = concurrency::curve(timeline);
        let waits = concurrency::token_waits(timeline);
        let spans = timeline
            .spans
            .iter()
            .zip(&waits)
            .map(|(s, &q)| SpanData::of(s, q))
            .collect();
        Data {
            title,
            started: Utc::of(timeline.started_at).readable(),
            wall: micros(timeline.wall),
            jobs: timeline.jobs_limit,
            interrupted: timeline.interrupted,
            totals: timeline.totals(),
            token_wait: micros(waits.iter().sum()),
            peak: concurrency::peak(&points),
            average: concurrency::average(&points, timeline.wall),
            table_rows: TABLE_ROWS,
            spans,
            critical: critical_path(timeline),
            curve: points
                .iter()
                .map(|p: &Point| [micros(p.at), u64::from(p.jobs)])
                .collect(),
        }
    }
}

impl<'a> SpanData<'a> {
    fn of(s: &'a Span, token_wait: Duration) -> SpanData<'a> {
        SpanData {
            t: &s.target,
            d: s.do_file.as_deref(),
            l: s.lane,
            s: micros(s.start),
            e: micros(s.end),
            o: s.outcome.as_str(),
            q: micros(token_wait),
            w: s.waits
                .iter()
                .map(|w| [micros(w.start), micros(w.end)])
                .collect(),
            f: s.waits.iter().map(|w| w.for_targets.len()).sum(),
        }
    }
}
