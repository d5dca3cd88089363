//! The human table and the JSON object (schema in `contrib/bench/README.md`).

use crate::json::{self, Ms, Ordered};
use crate::run::{Client, Report, SizeResult, Stats, command_line};
use crate::{CLEAN_BOUNDS, Case, DAEMON_CPU_BOUND_MS, Tool, work};
use std::fmt::Write as _;

/// Milliseconds with a precision that suits their size.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        "-".to_string()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn cell(s: &Stats) -> String {
    format!("{} [{}-{}]", ms(s.median()), ms(s.min()), ms(s.max()))
}

/// The tools redo is compared with, among those measured.
fn others(r: &Report) -> Vec<Tool> {
    if !r.options.tools.contains(&Tool::Redo) {
        return Vec::new();
    }
    r.options
        .tools
        .iter()
        .copied()
        .filter(|&t| t != Tool::Redo)
        .collect()
}

/// redo's median over `other`'s for one case, when both were measured; redo-only variants
/// of the no-op are compared with the other tool's no-op.
fn ratio(size: &SizeResult, case: Case, other: Tool) -> Option<f64> {
    let redo = size.tool(Tool::Redo)?.case(case)?.median();
    let o = size.tool(other)?.case(case.compared_with())?.median();
    (o > 0.0).then(|| redo / o)
}

/// One of the project's bounds checked against a size's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub case: Case,
    /// `redo/redo-c`, `redo/ninja` (ratios of medians) or `daemon_cpu_ms_per_target`.
    pub measure: String,
    pub value: f64,
    pub at_most: f64,
}

impl Bound {
    pub fn met(&self) -> bool {
        self.value <= self.at_most
    }
}

/// The bounds on the clean builds ([`CLEAN_BOUNDS`], [`DAEMON_CPU_BOUND_MS`]) that this
/// size's results let us check.
pub fn bounds(size: &SizeResult) -> Vec<Bound> {
    let mut v = Vec::new();
    for case in [Case::CleanJ1, Case::CleanJ2] {
        for (tool, at_most) in CLEAN_BOUNDS {
            if let Some(value) = ratio(size, case, tool) {
                let measure = format!("redo/{}", tool.key());
                v.push(Bound {
                    case,
                    measure,
                    value,
                    at_most,
                });
            }
        }
        let cpu = size.tool(Tool::Redo).and_then(|t| t.daemon_cpu(case));
        if let Some(value) = cpu.map(Stats::median).filter(|m| m.is_finite()) {
            v.push(Bound {
                case,
                measure: "daemon_cpu_ms_per_target".into(),
                value,
                at_most: DAEMON_CPU_BOUND_MS,
            });
        }
    }
    v
}

/// The bounds as a small table: one row per measure, one column per clean case.
fn bounds_table(bounds: &[Bound]) -> String {
    let cases = [Case::CleanJ1, Case::CleanJ2];
    let mut measures: Vec<&str> = Vec::new();
    for b in bounds {
        if !measures.contains(&b.measure.as_str()) {
            measures.push(&b.measure);
        }
    }
    let mut rows = vec![
        ["project target".to_string()]
            .into_iter()
            .chain(cases.iter().map(|c| c.label().to_string()))
            .collect::<Vec<_>>(),
    ];
    for m in measures {
        let of = |c: Case| bounds.iter().find(|b| b.measure == m && b.case == c);
        let Some(first) = cases.iter().find_map(|&c| of(c)) else {
            continue;
        };
        let (name, unit) = match m {
            "daemon_cpu_ms_per_target" => ("daemon CPU per target".to_string(), " ms"),
            _ => (m.to_string(), "x"),
        };
        let mut row = vec![format!("{name} at most {:.2}{unit}", first.at_most)];
        for &c in &cases {
            row.push(of(c).map_or_else(
                || "-".to_string(),
                |b| {
                    let verdict = if b.met() { "met" } else { "NOT MET" };
                    format!("{:.2}{unit}, {verdict}", b.value)
                },
            ));
        }
        rows.push(row);
    }
    render(&rows, 1)
}

/// `calls` sequential up-to-date `redo-ifchange` (the tool's) from one `.do`.
fn client_line(tool: Tool, c: &Client, runs: usize) -> String {
    format!(
        "client, {}: {} sequential redo-ifchange ({}'s) of an up-to-date target from one .do: \
         {} ms per call; the same loop running /bin/true: {} ms per call; redo-ifchange costs \
         {} ms more than a bare exec (medians of {runs} runs)",
        tool.label(),
        c.calls,
        tool.label(),
        ms(c.ifchange_per_call()),
        ms(c.bare_per_call()),
        ms(c.ifchange_per_call() - c.bare_per_call()),
    )
}

fn render(rows: &[Vec<String>], right_from: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, s) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let w = width[c];
            if c >= right_from {
                let _ = write!(line, "{s:>w$}");
            } else {
                let _ = write!(line, "{s:<w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn table(r: &Report) -> String {
    let m = &r.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "redo-bench, {}: {} CPUs ({}), Linux {}, work dir on {}{}",
        m.date,
        m.cpus,
        m.cpu_model,
        m.kernel,
        m.work_fs,
        m.steal
            .map(|s| format!(
                ", {:.1}% of the CPU time stolen by the hypervisor",
                s * 100.0
            ))
            .unwrap_or_default()
    );
    for (t, v) in &m.versions {
        let _ = writeln!(out, "  {:<8} {v}", t.label());
    }
    let others = others(r);
    for size in &r.sizes {
        let _ = writeln!(
            out,
            "\nN = {}: wall-clock ms, median [min-max] of {} runs after 1 warm-up",
            size.n, r.options.runs
        );
        let mut rows = Vec::new();
        let mut head = vec!["case".to_string()];
        head.extend(r.options.tools.iter().map(|t| t.label().to_string()));
        head.extend(others.iter().map(|t| format!("redo/{}", t.label())));
        rows.push(head);
        for case in Case::ALL {
            if !r.options.tools.iter().any(|&t| case.applies(t)) {
                continue;
            }
            let mut row = vec![case.label().to_string()];
            for &t in &r.options.tools {
                row.push(
                    size.tool(t)
                        .and_then(|tr| tr.case(case))
                        .map(cell)
                        .unwrap_or_else(|| "-".to_string()),
                );
            }
            for &o in &others {
                row.push(
                    ratio(size, case, o)
                        .map(|x| format!("{x:.2}x"))
                        .unwrap_or_else(|| "-".to_string()),
                );
            }
            rows.push(row);
        }
        out.push_str(&render(&rows, 1));
        let bounds = bounds(size);
        if !bounds.is_empty() {
            out.push_str(&bounds_table(&bounds));
        }
        let clients: Vec<(Tool, &Client)> = (size.tools.iter())
            .filter_map(|t| t.client.as_ref().map(|c| (t.tool, c)))
            .collect();
        for (tool, c) in &clients {
            let _ = writeln!(out, "{}", client_line(*tool, c, r.options.runs));
        }
        if let [(Tool::Redo, redo), (Tool::RedoC, rc)] = clients[..] {
            let _ = writeln!(
                out,
                "one up-to-date redo-ifchange from a .do: this redo {} ms, redo-c {} ms, \
                 /bin/true {} ms per call (redo/redo-c {:.2}x)",
                ms(redo.ifchange_per_call()),
                ms(rc.ifchange_per_call()),
                ms(redo.bare_per_call()),
                redo.ifchange_per_call() / rc.ifchange_per_call()
            );
        }
        if let Some(redo) = size.tool(Tool::Redo) {
            let cpu: Vec<String> = (redo.daemon_cpu.iter())
                .map(|(case, s)| format!("{} {} ms", case.label(), cell(s)))
                .collect();
            if !cpu.is_empty() {
                let _ = writeln!(
                    out,
                    "daemon CPU per target: redod's utime+stime over each timed clean build \
                     divided by the {} targets it built: {} (median [min-max], target: at \
                     most {DAEMON_CPU_BOUND_MS} ms)",
                    work::targets_built(size.n, "all"),
                    cpu.join(", ")
                );
            }
            for c in &redo.cache {
                let (cold, warm) = cache_ratios(c);
                let _ = writeln!(
                    out,
                    "cache over {}: clean build -j1 from an empty cache, uploads on: {} ms, \
                     {cold:.2}x the build without a cache taken in turns with it ({} ms; \
                     target: at most 1.10x); second checkout from the warm cache: {} ms, \
                     {warm:.1}x faster than without (target: at least 4x), {} .do runs for \
                     out/ targets (target: 0)",
                    c.backend,
                    cell(&c.cold),
                    cell(&c.plain),
                    cell(&c.warm),
                    c.warm_do_runs
                );
            }
            for s in &redo.cache_skipped {
                let _ = writeln!(out, "{s}");
            }
            if let Some(mem) = &redo.memory {
                let _ = writeln!(
                    out,
                    "daemon: resident memory {} KiB ({:.1} MiB) with the N = {} graph loaded \
                     (read after the no-op, which follows the clean builds; {} cached state \
                     files, {} cached hashes)",
                    mem.rss_kib,
                    mem.rss_kib as f64 / 1024.0,
                    size.n,
                    mem.cached_state_files
                        .map_or_else(|| "?".to_string(), |v| v.to_string()),
                    mem.cached_hashes
                        .map_or_else(|| "?".to_string(), |v| v.to_string()),
                );
            }
        }
    }
    out.push_str("\nNotes:\n");
    for note in notes(r) {
        let _ = writeln!(out, "* {note}");
    }
    out
}

fn notes(r: &Report) -> Vec<String> {
    let has = |t: Tool| r.options.tools.contains(&t);
    let mut v: Vec<String> = r.skipped.clone();
    if let Some(s) = r.machine.steal.filter(|s| *s >= 0.02) {
        v.push(format!(
            "the hypervisor gave {:.0}% of these CPUs' time to other guests during the run \
             (steal, /proc/stat): times vary more from run to run than on an idle host, and \
             a process holding a kernel lock can be descheduled while the other CPU spins on \
             it; compare the tools within this run, not with another run's figures.",
            s * 100.0
        ));
    }
    v.extend([
        "redo runs with REDO_NO_SYNC=1 because make and ninja never fsync; the \
         \"no-op, fsync on\" row is the same no-op without it."
            .to_string(),
        "redo's no-op and changed rows run with the daemon's file watcher on (its default): \
         targets whose inputs no event has touched since they were last checked are answered \
         from memory. \"no-op, watcher off\" is the no-op with REDO_NO_WATCH=1: every \
         dependency is stat'ed and compared (compared with the others' no-op)."
            .to_string(),
        "redo's `all` has no output, so it is out of date every time (like .PHONY): each \
         `redo-ifchange all` runs all.do, whose one redo-ifchange names all N targets; its \
         state file is rewritten only when what it records changed."
            .to_string(),
        "make is plain GNU make (its built-in implicit rules are searched for every file); \
         make -r is the same Makefile with -r (no built-in rules, none are needed)."
            .to_string(),
        "clean build: outputs and state (.redo dirs, redo-c's .dep/.lock files and \
         temporaries, .ninja_log) removed before each run; the redo daemon stays up between \
         runs (started by the first warm-up). The tools take turns: each run (after one \
         warm-up round) builds with every tool in the order of --tools, so that what the \
         filesystem remembers of the cleans before (ext4 without a journal scans the inodes \
         freed in the last minutes at each file creation) weighs on all alike."
            .to_string(),
        "1 source changed: one character appended to src/f1.in, then restored and rebuilt \
         untimed; the tree rows rebuild out/f1.out, t1/g0.t1, t2/g0.t2 and tree."
            .to_string(),
        "LC_ALL=C for every tool; ninja gets -j1 outside the clean builds (its default is not 1)."
            .to_string(),
    ]);
    if has(Tool::RedoC) {
        v.extend([
            "redo-c (Leah Neukirchen's, vendored in contrib/bench/peers/redo-c) runs the same \
             .do files as redo, without a daemon; it never fsyncs. Its state is .dep.TARGET \
             files beside the targets (and .lock.TARGET, .depend.XXXXXX, .target.XXXXXX \
             while a target builds): the clean build removes them all, with its outputs."
                .to_string(),
            "redo-c turns $3 into the target even when the .do wrote nothing, so its `all` is \
             an empty file and its no-op of `all` runs no .do at all (redo's runs all.do)."
                .to_string(),
            "redo-c compares ctimes in whole seconds (then the hash only when they differ): \
             before editing a source for redo-c the benchmark waits, untimed, for the next \
             second, else the change would not be seen."
                .to_string(),
        ]);
    }
    if has(Tool::Redo) {
        let m = &r.machine;
        v.push(format!(
            "daemon CPU per target: utime+stime (fields 14 and 15 of /proc/PID/stat, the \
             daemon's own threads, not the .do processes) read just before and just after each \
             measured clean build, over N + 1 targets (the outputs and all); {} ticks per \
             second ({}), so one tick is {:.3} ms per target at the smallest N.",
            m.clk_tck,
            if m.clk_tck_read {
                "getconf CLK_TCK"
            } else {
                "assumed: getconf CLK_TCK failed"
            },
            r.options
                .ns
                .iter()
                .min()
                .map_or(f64::NAN, |&n| crate::run::ms_per_target(
                    1,
                    m.clk_tck,
                    work::targets_built(n, "all")
                )),
        ));
    }
    for &t in &r.options.tools {
        v.push(format!(
            "{}: {} (clean), {} (no-op, changed), {} (tree)",
            t.label(),
            command_line(t, Case::CleanJ2).replace("-j2", "-jK"),
            command_line(t, Case::Noop),
            command_line(t, Case::TreeNoop),
        ));
    }
    v
}

fn stats_json(s: &Stats) -> json::Stats {
    json::Stats {
        median_ms: Ms(s.median()),
        min_ms: Ms(s.min()),
        max_ms: Ms(s.max()),
        samples_ms: s.samples.iter().map(|&x| Ms(x)).collect(),
    }
}

fn client_json(c: &Client) -> json::Client {
    json::Client {
        calls: c.calls,
        redo_ifchange_per_call_ms: Ms(c.ifchange_per_call()),
        true_per_call_ms: Ms(c.bare_per_call()),
        difference_per_call_ms: Ms(c.ifchange_per_call() - c.bare_per_call()),
        redo_ifchange_loop_ms: stats_json(&c.ifchange),
        true_loop_ms: stats_json(&c.bare),
    }
}

/// The cache case against the clean build -j1 without a cache taken in turns with it:
/// (cold with uploads over clean, clean over warm second checkout).
fn cache_ratios(c: &crate::run::CacheCase) -> (f64, f64) {
    let clean = c.plain.median();
    (c.cold.median() / clean, clean / c.warm.median())
}

/// The report as the `--json` object.
pub fn json(r: &Report) -> json::Bench {
    let m = &r.machine;
    let others = others(r);
    let sizes = r
        .sizes
        .iter()
        .map(|size| {
            let mut cases = Vec::new();
            let mut ratios = Vec::new();
            for case in Case::ALL {
                let tools: Ordered<json::Stats> = size
                    .tools
                    .iter()
                    .filter_map(|t| {
                        t.case(case)
                            .map(|s| (t.tool.key().to_string(), stats_json(s)))
                    })
                    .collect();
                if tools.0.is_empty() {
                    continue;
                }
                cases.push((case.key().to_string(), tools));
                let rs: Ordered<Ms> = others
                    .iter()
                    .filter_map(|&o| {
                        ratio(size, case, o).map(|x| (format!("redo/{}", o.key()), Ms(x)))
                    })
                    .collect();
                if !rs.0.is_empty() {
                    ratios.push((case.key().to_string(), rs));
                }
            }
            let redo = size.tool(Tool::Redo);
            let cpu: Ordered<Ms> = (redo.map(|t| t.daemon_cpu.as_slice()).unwrap_or_default())
                .iter()
                .map(|(c, s)| (c.key().to_string(), Ms(s.median())))
                .collect();
            json::Size {
                n: size.n,
                cases: Ordered(cases),
                ratios: Ordered(ratios),
                client: redo.and_then(|t| t.client.as_ref()).map(client_json),
                client_redo_c: (size.tool(Tool::RedoC))
                    .and_then(|t| t.client.as_ref())
                    .map(client_json),
                daemon_cpu_ms_per_target: (!cpu.0.is_empty()).then_some(cpu),
                targets: bounds(size)
                    .into_iter()
                    .map(|b| json::Target {
                        case: b.case.key().to_string(),
                        met: b.met(),
                        measure: b.measure,
                        value: Ms(b.value),
                        at_most: Ms(b.at_most),
                    })
                    .collect(),
                daemon: redo
                    .and_then(|t| t.memory.as_ref())
                    .map(|mem| json::Daemon {
                        rss_kib: mem.rss_kib,
                        pid: mem.pid,
                        cached_state_files: mem.cached_state_files,
                        cached_hashes: mem.cached_hashes,
                    }),
                cache: redo
                    .map(|t| {
                        t.cache
                            .iter()
                            .map(|c| {
                                let (cold, warm) = cache_ratios(c);
                                json::Cache {
                                    backend: c.backend.to_string(),
                                    cold_ms: stats_json(&c.cold),
                                    plain_ms: Some(stats_json(&c.plain)),
                                    warm_ms: stats_json(&c.warm),
                                    cold_over_clean: Ms(cold),
                                    clean_over_warm: Ms(warm),
                                    warm_do_runs: c.warm_do_runs,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let commands = r
        .options
        .tools
        .iter()
        .map(|&t| {
            let cs = Case::ALL
                .iter()
                .filter(|c| c.applies(t))
                .map(|&c| (c.key().to_string(), command_line(t, c)))
                .collect();
            (t.key().to_string(), cs)
        })
        .collect();
    json::Bench {
        benchmark: "redo-bench".into(),
        schema: 1,
        date: m.date.clone(),
        machine: json::Machine {
            cpus: m.cpus,
            cpu_model: m.cpu_model.clone(),
            kernel: m.kernel.clone(),
            work_fs: m.work_fs.clone(),
            clk_tck: m.clk_tck,
            steal_percent: m.steal.map(|s| (s * 1000.0).round() / 10.0),
        },
        versions: m
            .versions
            .iter()
            .map(|(t, v)| (t.key().to_string(), v.clone()))
            .collect(),
        runs: r.options.runs,
        warmup_runs: 1,
        tools: r
            .options
            .tools
            .iter()
            .map(|t| t.key().to_string())
            .collect(),
        commands,
        notes: notes(r),
        sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Machine, ToolResult};

    fn stats(v: &[f64]) -> Stats {
        Stats {
            samples: v.to_vec(),
        }
    }

    fn tool(tool: Tool, j1: f64, j2: f64) -> ToolResult {
        ToolResult {
            tool,
            cases: vec![(Case::CleanJ1, stats(&[j1])), (Case::CleanJ2, stats(&[j2]))],
            daemon_cpu: Vec::new(),
            client: None,
            memory: None,
            cache: Vec::new(),
            cache_skipped: Vec::new(),
        }
    }

    /// A report with made-up numbers: the ratios, the bounds and the JSON fields they give.
    #[test]
    fn bounds_daemon_cpu_and_clients_in_table_and_json() {
        let mut options = crate::parse_args(&[]).unwrap().unwrap();
        options.tools = vec![Tool::Redo, Tool::RedoC, Tool::Ninja];
        options.runs = 3;
        let mut redo = tool(Tool::Redo, 800.0, 600.0);
        redo.daemon_cpu = vec![
            (Case::CleanJ1, stats(&[0.5, 0.3, 0.35])),
            (Case::CleanJ2, stats(&[0.41, 0.45, 0.6])),
        ];
        redo.client = Some(Client {
            calls: 1000,
            ifchange: stats(&[1200.0]),
            bare: stats(&[1000.0]),
        });
        let mut rc = tool(Tool::RedoC, 1000.0, 500.0);
        rc.client = Some(Client {
            calls: 1000,
            ifchange: stats(&[1500.0]),
            bare: stats(&[900.0]),
        });
        let r = Report {
            options,
            machine: Machine {
                clk_tck: 100,
                clk_tck_read: true,
                steal: Some(0.25),
                ..Machine::default()
            },
            sizes: vec![SizeResult {
                n: 1000,
                tools: vec![redo, rc, tool(Tool::Ninja, 400.0, 400.0)],
            }],
            skipped: vec!["something not measured".into()],
        };
        let size = &r.sizes[0];
        let bounds = bounds(size);
        let b: Vec<(Case, &str, f64, bool)> = (bounds.iter())
            .map(|b| (b.case, b.measure.as_str(), b.value, b.met()))
            .collect();
        assert_eq!(
            b,
            [
                (Case::CleanJ1, "redo/redo-c", 0.8, true),
                (Case::CleanJ1, "redo/ninja", 2.0, false),
                (Case::CleanJ1, "daemon_cpu_ms_per_target", 0.35, true),
                (Case::CleanJ2, "redo/redo-c", 1.2, false),
                (Case::CleanJ2, "redo/ninja", 1.5, true),
                (Case::CleanJ2, "daemon_cpu_ms_per_target", 0.45, false),
            ]
        );

        // The table with its columns' padding squeezed to one space.
        let t = table(&r)
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for line in [
            "project target clean build -j1 clean build -j2\n",
            "redo/redo-c at most 0.90x 0.80x, met 1.20x, NOT MET\n",
            "redo/ninja at most 1.60x 2.00x, NOT MET 1.50x, met\n",
            "daemon CPU per target at most 0.40 ms 0.35 ms, met 0.45 ms, NOT MET\n",
            "one up-to-date redo-ifchange from a .do: this redo 1.20 ms, redo-c 1.50 ms, \
             /bin/true 1.00 ms per call (redo/redo-c 0.80x)",
            "divided by the 1001 targets it built: clean build -j1 0.35 [0.30-0.50] ms",
            "* something not measured",
            ", 25.0% of the CPU time stolen by the hypervisor\n",
            "* the hypervisor gave 25% of these CPUs' time to other guests",
        ] {
            assert!(t.contains(line), "no {line:?} in\n{t}");
        }

        let j = json(&r);
        let text = json::to_pretty(&j).unwrap();
        let back: json::Bench = serde_json::from_str(&text).unwrap();
        assert_eq!(back.sizes.len(), j.sizes.len());
        let s = &back.sizes[0];
        let cpu = s.daemon_cpu_ms_per_target.as_ref().unwrap();
        assert_eq!(cpu.get("clean_j1"), Some(&Ms(0.35)));
        assert_eq!(cpu.get("clean_j2"), Some(&Ms(0.45)));
        let ratios = s.ratios.get("clean_j2").unwrap();
        assert_eq!(
            ratios.keys().collect::<Vec<_>>(),
            ["redo/redo-c", "redo/ninja"]
        );
        assert_eq!(ratios.get("redo/redo-c"), Some(&Ms(1.2)));
        assert_eq!(s.targets.len(), 6);
        assert_eq!(
            (
                &*s.targets[3].case,
                &*s.targets[3].measure,
                s.targets[3].met
            ),
            ("clean_j2", "redo/redo-c", false)
        );
        assert_eq!(s.targets[3].at_most, Ms(0.9));
        let c = s.client_redo_c.as_ref().unwrap();
        assert_eq!(
            (
                c.redo_ifchange_per_call_ms,
                c.true_per_call_ms,
                c.difference_per_call_ms
            ),
            (Ms(1.5), Ms(0.9), Ms(0.6))
        );
        assert_eq!(
            s.client.as_ref().unwrap().redo_ifchange_per_call_ms,
            Ms(1.2)
        );
        assert_eq!(back.machine.clk_tck, 100);
        assert_eq!(back.machine.steal_percent, Some(25.0));
        assert!(text.contains("\"daemon_cpu_ms_per_target\": {\n        \"clean_j1\": 0.35,"));
    }
}
