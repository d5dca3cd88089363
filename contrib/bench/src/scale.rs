//! The scale case: the aggregation tree (`tree`: the N outputs, N/10 + N/100 groups, `tree`)
//! at every N, also where the flat `all` cannot run. redo and ninja in turns: clean builds
//! with two jobs, then the daemon's memory, the warm no-op, and the no-op with the daemon
//! just started.

use crate::run::{Bench, ToolResult, cleans_in_turns, record_clean, result_of};
use crate::work::output_name;
use crate::{Case, Res, Tool, cold, daemon};

/// redo's daemon in the scale case: started by the warm-up clean build (the one before was
/// stopped), read after the measured clean builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleMemory {
    pub pid: u64,
    /// Resident memory after the clean builds (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// The most it was resident at once in its life so far (`VmHWM`), KiB.
    pub peak_kib: u64,
    /// The targets of one build of `tree`.
    pub targets: usize,
}

/// Runs the scale case for `benches` (redo and ninja, as chosen), adding to `results`.
pub(crate) fn measure(benches: &[&Bench], results: &mut [ToolResult]) -> Res<()> {
    let redo = benches.iter().find(|b| b.tool == Tool::Redo);
    if let Some(b) = redo {
        // A daemon of its own: its peak is the tree's, not the flat cases'.
        daemon::stop_and_wait(b)?;
    }
    for (b, clean) in benches
        .iter()
        .zip(cleans_in_turns(benches, Case::ScaleCleanJ2, "tree", 2)?)
    {
        record_clean(result_of(results, b.tool)?, clean);
    }
    if let Some(b) = redo {
        let (rss_kib, peak_kib, pid) = daemon::memory(b)?;
        result_of(results, Tool::Redo)?.scale_memory = Some(ScaleMemory {
            pid,
            rss_kib,
            peak_kib,
            targets: crate::work::targets_built(b.n, "tree"),
        });
    }
    let Some(first) = benches.first() else {
        return Ok(());
    };
    let last = output_name(first.n);
    let witnesses = ["tree", last.as_str()];
    for (case, fresh) in [(Case::ScaleNoop, false), (Case::ScaleColdNoop, true)] {
        let stats = cold::noops_in_turns(benches, case, "tree", &witnesses, fresh)?;
        for (b, s) in benches.iter().zip(stats) {
            result_of(results, b.tool)?.cases.push((case, s));
        }
    }
    Ok(())
}
