//! The timeline model: what one build did, as the recorder closed it. Plain data, built by
//! [`super::record::Recorder::finish`] and read by the analyses (critical path, concurrency)
//! and the writers (HTML report, Chrome trace). Times are offsets from the recorder's epoch
//! (the build's start), so a timeline is the same wherever and whenever it is read.

use std::time::{Duration, SystemTime};

/// Whole microseconds (saturating): the unit of the report's data and of the trace.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How a target's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Its `.do` ran and its output was committed.
    Built,
    /// Restored from the shared build cache instead of running its `.do`.
    Cached,
    /// Its `.do` failed (or it could not be started or committed).
    Failed,
    /// Still running when the build stopped (interrupted, or the build ended around it).
    Interrupted,
}

impl Outcome {
    /// The word the report, the trace and their schema use.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Cached => "cached",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// A stretch of a running target's `.do` blocked in a nested request (`redo-ifchange` in the
/// `.do`), its job token lent back meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub start: Duration,
    pub end: Duration,
    /// The targets it asked for, as the nested request named them.
    pub for_targets: Vec<String>,
}

/// One run of one target, on one lane (a job slot) from `start` to `end`.
///
/// Invariant: two spans on the same lane never overlap (`[start, end)` intervals); each wait
/// lies within its span, and the waits are in time order without overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The target, relative to the project root (absolute when outside it).
    pub target: String,
    /// The `.do` that built it; `None` for a cache restore or when none was known.
    pub do_file: Option<String>,
    /// The job slot, from 0. Lanes are given out lowest-free-first when a span starts.
    pub lane: u32,
    /// When it started waiting for a job token, if it did.
    pub queued: Option<Duration>,
    pub start: Duration,
    pub end: Duration,
    pub outcome: Outcome,
    pub waits: Vec<Wait>,
    /// Targets it depended on: checked before its `.do` ran ([`depends`]) and those its
    /// nested requests named ([`waiting`]), in the order first seen, without repeats.
    ///
    /// [`depends`]: super::record::Recorder::depends
    /// [`waiting`]: super::record::Recorder::waiting
    pub deps: Vec<String>,
}

impl Span {
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// Time between asking for a job token and getting it, before the `.do` started.
    pub fn queue_wait(&self) -> Duration {
        self.queued
            .map_or(Duration::ZERO, |q| self.start.saturating_sub(q))
    }
}

/// One build, closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// In start order.
    pub spans: Vec<Span>,
    /// The build's wall time (at least the end of the last span).
    pub wall: Duration,
    /// `-j`: `None` for unlimited.
    pub jobs_limit: Option<u32>,
    /// The build was interrupted (SIGINT, a lost client, `-k` off after a failure).
    pub interrupted: bool,
    /// Targets found up to date without running anything.
    pub up_to_date: u64,
    /// When the build started, for the report's heading.
    pub started_at: SystemTime,
}

/// The build's totals, as the report's header shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Totals {
    pub built: u64,
    pub cached: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub up_to_date: u64,
    /// Lanes used: the most job slots in use at once, nested parents included.
    pub lanes: u32,
}

impl Timeline {
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            up_to_date: self.up_to_date,
            ..Totals::default()
        };
        for s in &self.spans {
            match s.outcome {
                Outcome::Built => t.built += 1,
                Outcome::Cached => t.cached += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::Interrupted => t.interrupted += 1,
            }
            t.lanes = t.lanes.max(s.lane + 1);
        }
        t
    }
}

#[cfg(test)]
pub(crate) mod tests;
