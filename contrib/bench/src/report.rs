//! The human table and the JSON object (schema in `contrib/bench/README.md`).

use crate::json::{self, Ms, Ordered};
use crate::run::{Report, SizeResult, Stats, command_line};
use crate::{Case, Tool};
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
        "redo-bench, {}: {} CPUs ({}), Linux {}, work dir on {}",
        m.date, m.cpus, m.cpu_model, m.kernel, m.work_fs
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
        if let Some(redo) = size.tool(Tool::Redo) {
            if let Some(c) = &redo.client {
                let _ = writeln!(
                    out,
                    "client: {} sequential redo-ifchange of an up-to-date target from one .do: \
                     {} ms per call; the same loop running /bin/true: {} ms per call; \
                     redo-ifchange costs {} ms more than a bare exec (medians of {} runs)",
                    c.calls,
                    ms(c.ifchange_per_call()),
                    ms(c.bare_per_call()),
                    ms(c.ifchange_per_call() - c.bare_per_call()),
                    r.options.runs
                );
            }
            for c in &redo.cache {
                let (cold, warm) = cache_ratios(redo, c);
                let _ = writeln!(
                    out,
                    "cache over {}: clean build -j1 from an empty cache, uploads on: {} ms, \
                     {cold:.2}x the build without a cache (target: at most 1.10x); second \
                     checkout from the warm cache: {} ms, {warm:.1}x faster than without \
                     (target: at least 4x), {} .do runs for out/ targets (target: 0)",
                    c.backend,
                    cell(&c.cold),
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
    let mut v = vec![
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
        "clean build: outputs and state (.redo dirs, .ninja_log) removed before each run; the \
         redo daemon stays up between runs (started by the first warm-up)."
            .to_string(),
        "1 source changed: one character appended to src/f1.in, then restored and rebuilt \
         untimed; the tree rows rebuild out/f1.out, t1/g0.t1, t2/g0.t2 and tree."
            .to_string(),
        "LC_ALL=C for every tool; ninja gets -j1 outside the clean builds (its default is not 1)."
            .to_string(),
    ];
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

/// The cache case against redo's clean build -j1 without a cache: (cold with uploads over
/// clean, clean over warm second checkout).
fn cache_ratios(redo: &crate::run::ToolResult, c: &crate::run::CacheCase) -> (f64, f64) {
    let clean = redo.case(Case::CleanJ1).map_or(f64::NAN, Stats::median);
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
            json::Size {
                n: size.n,
                cases: Ordered(cases),
                ratios: Ordered(ratios),
                client: redo.and_then(|t| t.client.as_ref()).map(|c| json::Client {
                    calls: c.calls,
                    redo_ifchange_per_call_ms: Ms(c.ifchange_per_call()),
                    true_per_call_ms: Ms(c.bare_per_call()),
                    difference_per_call_ms: Ms(c.ifchange_per_call() - c.bare_per_call()),
                    redo_ifchange_loop_ms: stats_json(&c.ifchange),
                    true_loop_ms: stats_json(&c.bare),
                }),
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
                                let (cold, warm) = cache_ratios(t, c);
                                json::Cache {
                                    backend: c.backend.to_string(),
                                    cold_ms: stats_json(&c.cold),
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
