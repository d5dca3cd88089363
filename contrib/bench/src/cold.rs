//! No-ops timed with the tools in turns, and the no-op with redo's daemon just started: the
//! daemon stopped (and its exit awaited) before each run, so that the timed command starts a
//! new one, which knows nothing yet (no parsed state, no stat cache, no watcher verdicts) and
//! must check every dependency. The other tools keep no process between builds: their no-op,
//! taken in turns with it, is the comparison.

use crate::run::{Bench, Knobs, Stats, in_turns, mtime, progress, timed};
use crate::{Case, Res, Tool, daemon};

/// `runs` measured no-ops of `target` (after a warm-up round), each tool in turn; with `cold`,
/// redo's daemon is stopped before each of redo's. `witnesses` (paths relative to each tree)
/// must keep their mtimes: a no-op that rebuilt something is an error.
pub(crate) fn noops_in_turns(
    benches: &[&Bench],
    case: Case,
    target: &str,
    witnesses: &[&str],
    cold: bool,
) -> Res<Vec<Stats>> {
    let Some(runs) = benches.first().map(|b| b.opts.runs) else {
        return Ok(Vec::new());
    };
    let mtimes =
        |b: &Bench| -> Res<Vec<_>> { (witnesses.iter()).map(|w| mtime(&b.dir.join(w))).collect() };
    let before: Vec<_> = benches.iter().map(|b| mtimes(b)).collect::<Res<_>>()?;
    let samples = in_turns(benches, runs, case.label(), |b| {
        if cold && b.tool == Tool::Redo {
            daemon::stop_and_wait(b)?;
        }
        timed(b.build(target, None, Knobs::Plain))
    })?;
    let mut out = Vec::new();
    for ((b, before), samples) in benches.iter().zip(before).zip(samples) {
        if mtimes(b)? != before {
            return Err(format!(
                "N={} {}, {}: one of {} was rebuilt by a no-op",
                b.n,
                b.tool.key(),
                case.label(),
                witnesses.join(", ")
            ));
        }
        let s = Stats { samples };
        progress(b.n, b.tool, case.label(), Some(&s));
        out.push(s);
    }
    Ok(out)
}
