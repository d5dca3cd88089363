//! The project's targets for redo (issue 26 and before), checked against one run's results:
//! each a measure (a ratio of medians, a median in milliseconds, or MiB) and the most it may
//! be.

use crate::run::{SizeResult, Stats};
use crate::wide::WideResult;
use crate::{
    CLEAN_BOUNDS, COLD_NOOP_BOUND, Case, DAEMON_CPU_BOUND_MS, SCALE_CLEAN_BOUND,
    SCALE_PEAK_BOUND_FROM_N, SCALE_PEAK_BOUND_MIB, Tool, WATCH_ALL_FINISHED_BOUND_MS,
    WATCH_WAITING_AFTER_LAST_BOUND_MS, WIDE_BOUND,
};

/// One of the project's bounds checked against a run's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The case key it is on (`clean_j1`, `cold_noop`, ..., `wide`), or `scale_daemon`.
    pub case: &'static str,
    /// The case as the table names it.
    pub label: &'static str,
    /// `redo/TOOL` and `redo/ideal` (ratios of medians), `daemon_cpu_ms_per_target`,
    /// `redo_ms` (redo's median) or `peak_mib`.
    pub measure: String,
    pub value: f64,
    pub at_most: f64,
}

impl Bound {
    pub fn met(&self) -> bool {
        self.value <= self.at_most
    }

    /// The unit `value` and `at_most` are in, as the table writes it after them.
    pub fn unit(&self) -> &'static str {
        match self.measure.as_str() {
            "daemon_cpu_ms_per_target" | "redo_ms" => " ms",
            "peak_mib" => " MiB",
            _ => "x",
        }
    }

    /// What the table calls the measure.
    pub fn name(&self) -> String {
        let what = match self.measure.as_str() {
            "daemon_cpu_ms_per_target" => "daemon CPU per target",
            "redo_ms" => "redo",
            "peak_mib" => "daemon peak memory (VmHWM)",
            m => m,
        };
        format!("{}: {what}", self.label)
    }
}

/// redo's median of `case` over `other`'s (of the case it is compared with), when both ran.
pub fn ratio(size: &SizeResult, case: Case, other: Tool) -> Option<f64> {
    let redo = size.tool(Tool::Redo)?.case(case)?.median();
    let o = size.tool(other)?.case(case.compared_with()?)?.median();
    (o > 0.0).then(|| redo / o)
}

fn redo_median(size: &SizeResult, case: Case) -> Option<f64> {
    Some(size.tool(Tool::Redo)?.case(case)?.median()).filter(|m| m.is_finite())
}

/// The bounds this size's results let us check, in table order.
pub fn bounds(size: &SizeResult) -> Vec<Bound> {
    let mut v = Vec::new();
    let mut push = |case: Case, measure: String, value: Option<f64>, at_most: f64| {
        if let Some(value) = value {
            v.push(Bound {
                case: case.key(),
                label: case.label(),
                measure,
                value,
                at_most,
            });
        }
    };
    let over = |tool: Tool| format!("redo/{}", tool.key());
    for case in [Case::CleanJ1, Case::CleanJ2] {
        for (tool, at_most) in CLEAN_BOUNDS {
            push(case, over(tool), ratio(size, case, tool), at_most);
        }
        let cpu = size.tool(Tool::Redo).and_then(|t| t.daemon_cpu(case));
        let value = cpu.map(Stats::median).filter(|m| m.is_finite());
        push(
            case,
            "daemon_cpu_ms_per_target".into(),
            value,
            DAEMON_CPU_BOUND_MS,
        );
    }
    for (case, at_most) in [
        (Case::ColdNoop, COLD_NOOP_BOUND),
        (Case::ScaleCleanJ2, SCALE_CLEAN_BOUND),
        (Case::ScaleColdNoop, COLD_NOOP_BOUND),
    ] {
        let tool = Tool::Ninja;
        push(case, over(tool), ratio(size, case, tool), at_most);
    }
    for (case, at_most) in [
        (Case::WatchAllFinished, WATCH_ALL_FINISHED_BOUND_MS),
        (
            Case::WatchWaitingAfterLast,
            WATCH_WAITING_AFTER_LAST_BOUND_MS,
        ),
    ] {
        push(case, "redo_ms".into(), redo_median(size, case), at_most);
    }
    let peak = size.tool(Tool::Redo).and_then(|t| t.scale_memory.as_ref());
    if let Some(m) = peak.filter(|_| size.n >= SCALE_PEAK_BOUND_FROM_N) {
        v.push(Bound {
            case: "scale_daemon",
            label: "scale",
            measure: "peak_mib".into(),
            value: m.peak_kib as f64 / 1024.0,
            at_most: SCALE_PEAK_BOUND_MIB,
        });
    }
    v
}

/// The wide case's bound: redo's median at most [`WIDE_BOUND`] times the ideal.
pub fn wide_bounds(w: &WideResult) -> Vec<Bound> {
    let redo = w.tool(Tool::Redo).and_then(|t| t.case(Case::Wide));
    redo.map(|s| Bound {
        case: Case::Wide.key(),
        label: Case::Wide.label(),
        measure: "redo/ideal".into(),
        value: s.median() / w.ideal_ms(),
        at_most: WIDE_BOUND,
    })
    .into_iter()
    .collect()
}
