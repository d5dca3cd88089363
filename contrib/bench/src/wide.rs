//! The wide case: `--wide-n` targets (default 2000) that each sleep 0.1 s, built from nothing
//! with `--wide-j` jobs (default 64) by redo, ninja and redo-c in turns, against the ideal
//! N × 0.1 s / jobs. The sleeps cost no CPU, so what a tool adds to the ideal is its own cost
//! of starting, tracking and finishing jobs; for redo, the daemon's CPU time per target and
//! the targets per second of daemon CPU it could sustain. Its own trees (`WORK/wide-TOOL`,
//! the flat tree with a `sleep` in the outputs' rule), measured once, not per N.

use crate::run::{Bench, Env, ToolResult, cleans_in_turns, dispose, progress, record_clean};
use crate::{Case, Options, Res, Tool, work};
use std::path::Path;

/// What each target's rule sleeps, as given to `sleep`, and in milliseconds.
pub const SLEEP: &str = "0.1";
pub const SLEEP_MS: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct WideResult {
    pub n: usize,
    pub jobs: u32,
    /// Each tool's `wide` case (and, for redo, the daemon's CPU per target).
    pub tools: Vec<ToolResult>,
}

impl WideResult {
    /// N × sleep / jobs: every job slot busy sleeping from start to end, nothing else.
    pub fn ideal_ms(&self) -> f64 {
        ideal_ms(self.n, self.jobs)
    }

    pub fn tool(&self, tool: Tool) -> Option<&ToolResult> {
        self.tools.iter().find(|t| t.tool == tool)
    }
}

/// N × [`SLEEP_MS`] / jobs.
pub fn ideal_ms(n: usize, jobs: u32) -> f64 {
    n as f64 * SLEEP_MS / f64::from(jobs)
}

/// Targets per second of daemon CPU time, from its milliseconds per target.
pub fn targets_per_cpu_second(ms_per_target: f64) -> f64 {
    1000.0 / ms_per_target
}

/// Runs the wide case in `work` with the tools chosen among redo, ninja and redo-c.
pub(crate) fn measure(opts: &Options, env: &Env, work: &Path, clk_tck: u64) -> Res<WideResult> {
    let n = opts.wide_n;
    let benches: Vec<Bench> = (opts.tools.iter())
        .filter(|&&t| Case::Wide.applies(t))
        .map(|&t| {
            let dir = work.join(format!("wide-{}", t.key()));
            Bench::new(opts, env, t, dir, n, clk_tck)
        })
        .collect();
    let part: Vec<&Bench> = benches.iter().collect();
    let measured = (|| -> Res<Vec<ToolResult>> {
        for b in &part {
            progress(
                n,
                b.tool,
                &format!("generating the wide tree, -j{}", opts.wide_j),
                None,
            );
            work::generate_with(b.tool, &b.dir, n, opts.calls, Some(SLEEP))?;
        }
        let cleans = cleans_in_turns(&part, Case::Wide, "all", opts.wide_j)?;
        Ok(part
            .iter()
            .zip(cleans)
            .map(|(b, clean)| {
                let mut r = ToolResult::new(b.tool);
                record_clean(&mut r, clean);
                r
            })
            .collect())
    })();
    dispose(&benches);
    Ok(WideResult {
        n,
        jobs: opts.wide_j,
        tools: measured?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_and_throughput() {
        assert_eq!(ideal_ms(2000, 64), 3125.0);
        assert_eq!(ideal_ms(20, 4), 500.0);
        assert_eq!(targets_per_cpu_second(0.5), 2000.0);
    }
}
