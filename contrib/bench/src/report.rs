//! The human table and the JSON object (schema in `contrib/bench/README.md`).

use crate::bounds::{Bound, bounds, ratio, wide_bounds};
use crate::json::{self, Ms, Ordered};
use crate::run::{Client, Report, SizeResult, Stats, ToolResult, command_line};
use crate::wide::{self, WideResult};
use crate::{Case, DAEMON_CPU_BOUND_MS, Group, Tool, work};
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

fn mib(kib: u64) -> String {
    format!("{kib} KiB ({:.1} MiB)", kib as f64 / 1024.0)
}

/// The tools measured at this size (in `--tools` order), and those redo is compared with.
fn columns(size: &SizeResult) -> (Vec<Tool>, Vec<Tool>) {
    let tools: Vec<Tool> = size.tools.iter().map(|t| t.tool).collect();
    let others = match tools.contains(&Tool::Redo) {
        true => tools.iter().copied().filter(|&t| t != Tool::Redo).collect(),
        false => Vec::new(),
    };
    (tools, others)
}

/// The bounds as a small table: one row per bound, its value and whether it is met.
fn bounds_table(bounds: &[Bound]) -> String {
    let mut rows = vec![vec!["project target".to_string(), "value".to_string()]];
    for b in bounds {
        let unit = b.unit();
        let verdict = if b.met() { "met" } else { "NOT MET" };
        rows.push(vec![
            format!("{} at most {:.2}{unit}", b.name(), b.at_most),
            format!("{:.2}{unit}, {verdict}", b.value),
        ]);
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

/// The targets a case's clean build ran (for the daemon's CPU per target).
fn targets_of(case: Case, n: usize) -> usize {
    match case {
        Case::ScaleCleanJ2 => work::targets_built(n, "tree"),
        _ => work::targets_built(n, "all"),
    }
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".to_string())
}

/// The lines under a size's table about redo: the daemon's CPU and memory, the cache.
fn redo_lines(out: &mut String, n: usize, redo: &ToolResult) {
    let cpu: Vec<String> = (redo.daemon_cpu.iter())
        .map(|(case, s)| {
            let t = targets_of(*case, n);
            format!("{} ({t} targets) {} ms", case.label(), cell(s))
        })
        .collect();
    if !cpu.is_empty() {
        let _ = writeln!(
            out,
            "daemon CPU per target: redod's utime+stime over each timed clean build divided \
             by the targets it built: {} (median [min-max], target: at most \
             {DAEMON_CPU_BOUND_MS} ms)",
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
            "daemon: resident memory {} with the N = {n} graph loaded (read after the no-op, \
             which follows the clean builds; {} cached state files, {} cached hashes)",
            mib(mem.rss_kib),
            or_dash(mem.cached_state_files.map(|v| v.to_string())),
            or_dash(mem.cached_hashes.map(|v| v.to_string())),
        );
    }
    if let Some(m) = &redo.scale_memory {
        let _ = writeln!(
            out,
            "daemon, scale case: resident memory {} after the clean builds of tree ({} \
             targets), peak {} (VmHWM of the daemon the case's warm-up build started)",
            mib(m.rss_kib),
            m.targets,
            mib(m.peak_kib),
        );
    }
}

fn size_table(out: &mut String, r: &Report, size: &SizeResult) {
    let (tools, others) = columns(size);
    let _ = writeln!(
        out,
        "\nN = {}: wall-clock ms, median [min-max] of {} runs after 1 warm-up",
        size.n, r.options.runs
    );
    for note in &size.notes {
        let _ = writeln!(out, "{note}");
    }
    let mut rows = Vec::new();
    let mut head = vec!["case".to_string()];
    head.extend(tools.iter().map(|t| t.label().to_string()));
    head.extend(others.iter().map(|t| format!("redo/{}", t.label())));
    rows.push(head);
    for case in Case::ALL {
        if !size.tools.iter().any(|t| t.case(case).is_some()) {
            continue;
        }
        let mut row = vec![case.label().to_string()];
        for &t in &tools {
            row.push(or_dash(size.tool(t).and_then(|tr| tr.case(case)).map(cell)));
        }
        for &o in &others {
            row.push(or_dash(ratio(size, case, o).map(|x| format!("{x:.2}x"))));
        }
        rows.push(row);
    }
    if rows.len() > 1 {
        out.push_str(&render(&rows, 1));
    }
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
        redo_lines(out, size.n, redo);
    }
}

/// Each tool's median of the wide case over the ideal.
fn wide_ratios(w: &WideResult) -> Vec<(Tool, f64)> {
    (w.tools.iter())
        .filter_map(|t| Some((t.tool, t.case(Case::Wide)?.median() / w.ideal_ms())))
        .collect()
}

/// redo's daemon CPU per target in the wide case (median), when redo ran.
fn wide_cpu(w: &WideResult) -> Option<&Stats> {
    w.tool(Tool::Redo)?.daemon_cpu(Case::Wide)
}

fn wide_table(out: &mut String, r: &Report, w: &WideResult) {
    let _ = writeln!(
        out,
        "\nwide: {} targets that each sleep {} s, -j{}: wall-clock ms, median [min-max] of {} \
         runs after 1 warm-up; ideal {} x {} s / {} = {} ms",
        w.n,
        wide::SLEEP,
        w.jobs,
        r.options.runs,
        w.n,
        wide::SLEEP,
        w.jobs,
        ms(w.ideal_ms())
    );
    let mut rows = vec![vec![
        "tool".to_string(),
        "wall-clock".to_string(),
        "/ideal".to_string(),
    ]];
    for (tool, x) in wide_ratios(w) {
        let s = w.tool(tool).and_then(|t| t.case(Case::Wide));
        rows.push(vec![
            tool.label().to_string(),
            or_dash(s.map(cell)),
            format!("{x:.2}x"),
        ]);
    }
    out.push_str(&render(&rows, 1));
    let bounds = wide_bounds(w);
    if !bounds.is_empty() {
        out.push_str(&bounds_table(&bounds));
    }
    if let Some(cpu) = wide_cpu(w) {
        let _ = writeln!(
            out,
            "daemon CPU per target, wide ({} targets): {} ms (median [min-max]); at that rate \
             the daemon sustains {:.0} targets per second of its CPU time",
            work::targets_built(w.n, "all"),
            cell(cpu),
            wide::targets_per_cpu_second(cpu.median())
        );
    }
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
    for size in &r.sizes {
        size_table(&mut out, r, size);
    }
    if let Some(w) = &r.wide {
        wide_table(&mut out, r, w);
    }
    out.push_str("\nNotes:\n");
    for note in notes(r) {
        let _ = writeln!(out, "* {note}");
    }
    out
}

/// The notes on the cases that ran.
fn case_notes(r: &Report) -> Vec<String> {
    let has = |g: Group| r.options.has(g);
    let mut v = Vec::new();
    if has(Group::Cold) || has(Group::Scale) {
        v.push(
            "no-op, daemon just started (cold_noop, scale_cold_noop): before each of redo's \
             runs `redo --daemon-stop`, then the benchmark waits until the daemon's process is \
             gone; the timed command starts a new daemon, which knows nothing yet and checks \
             every dependency. ninja's no-op (it keeps no process) is timed in turns with it. \
             A witness (out/fN.out, and tree) must keep its mtime."
                .to_string(),
        );
    }
    if has(Group::Watch) {
        v.push(
            "watch: `redo --watch --events=json all` runs while the benchmark appends one \
             character to src/f1.in; each event line is stamped when the benchmark reads it \
             from the client's stdout. Timed: from the edit to `all`'s `target finished` \
             event, to the round's `watch waiting` event, and from the round's last `target \
             finished` to its `watch waiting`. The daemon waits for 50 ms of quiet after a \
             change before it builds. The source is restored (and that round awaited) \
             between runs; at the end the client is stopped with SIGINT."
                .to_string(),
        );
    }
    if has(Group::Scale) {
        v.push(
            "scale: the aggregation tree (`tree`: the N outputs, N/10 + N/100 groups, tree) \
             at every N, redo and ninja in turns: clean builds -j2, then the no-op (warm) and \
             the no-op with the daemon just started. redo's daemon is stopped before the \
             case: the warm-up clean build starts the one whose memory is read (VmRSS and \
             VmHWM of /proc/PID/status) after the measured clean builds."
                .to_string(),
        );
    }
    if let Some(w) = &r.wide {
        v.push(format!(
            "wide: its own trees (WORK/wide-TOOL): {} outputs whose rule runs `sleep {}` \
             before tr, `all` naming them all, built from nothing with -j{} by each tool in \
             turn (redo: redo-ifchange -j{} all; redo-c: redo-ifchange -j{} all, i.e. JOBS={}; \
             ninja -j{} all). The ideal is N x {} s / jobs: every job slot sleeping from \
             start to end, nothing else; as jobs come in waves of {}, no tool can go below \
             ceil(N / jobs) x {} s = {} ms.",
            w.n,
            wide::SLEEP,
            w.jobs,
            w.jobs,
            w.jobs,
            w.jobs,
            w.jobs,
            wide::SLEEP,
            w.jobs,
            wide::SLEEP,
            ms(w.n.div_ceil(w.jobs as usize) as f64 * wide::SLEEP_MS)
        ));
    }
    v
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
    let group = |g: Group| r.options.has(g) && (g == Group::Wide || !r.sizes.is_empty());
    let flat = r
        .sizes
        .iter()
        .any(|s| (s.tools.iter()).any(|t| t.cases.iter().any(|(c, _)| c.group().flat())));
    let incremental = group(Group::Incremental) && flat;
    if incremental && has(Tool::Redo) {
        v.extend([
            "redo runs with REDO_NO_SYNC=1 because make and ninja never fsync; the \
             \"no-op, fsync on\" row is the same no-op without it."
                .to_string(),
            "redo's no-op and changed rows run with the daemon's file watcher on (its \
             default): targets whose inputs no event has touched since they were last checked \
             are answered from memory. \"no-op, watcher off\" is the no-op with \
             REDO_NO_WATCH=1: every dependency is stat'ed and compared (compared with the \
             others' no-op)."
                .to_string(),
        ]);
    }
    if flat && has(Tool::Redo) {
        v.push(
            "redo's `all` has no output, so it is out of date every time (like .PHONY): each \
             `redo-ifchange all` runs all.do, whose one redo-ifchange names all N targets; its \
             state file is rewritten only when what it records changed."
                .to_string(),
        );
    }
    if has(Tool::Make) || has(Tool::MakeR) {
        v.push(
            "make is plain GNU make (its built-in implicit rules are searched for every file); \
             make -r is the same Makefile with -r (no built-in rules, none are needed)."
                .to_string(),
        );
    }
    if group(Group::Clean) && flat {
        v.push(
            "clean build: outputs and state (.redo dirs, redo-c's .dep/.lock files and \
             temporaries, .ninja_log) removed before each run; the redo daemon stays up \
             between runs (started by the first warm-up)."
                .to_string(),
        );
    }
    v.push(
        "The tools take turns in the clean builds, the no-ops of the cold and scale cases and \
         the wide builds: each run (after one warm-up round) runs every tool in the order of \
         --tools, so that what the machine remembers of the runs before (ext4 without a \
         journal scans the inodes freed in the last minutes at each file creation) weighs on \
         all alike."
            .to_string(),
    );
    if incremental {
        v.push(
            "1 source changed: one character appended to src/f1.in, then restored and rebuilt \
             untimed; the tree rows rebuild out/f1.out, t1/g0.t1, t2/g0.t2 and tree."
                .to_string(),
        );
    }
    v.push(
        "LC_ALL=C for every tool; ninja gets -j1 outside the clean builds (its default is not 1)."
            .to_string(),
    );
    v.extend(case_notes(r));
    if has(Tool::RedoC) {
        v.extend([
            "redo-c (Leah Neukirchen's, given with --redo-c or compiled from --redo-c-src) \
             runs the same .do files as redo, without a daemon; it never fsyncs. Its state is \
             .dep.TARGET files beside the targets (and .lock.TARGET, .depend.XXXXXX, \
             .target.XXXXXX while a target builds): the clean build removes them all, with \
             its outputs."
                .to_string(),
            "redo-c turns $3 into the target even when the .do wrote nothing, so its `all` is \
             an empty file and its no-op of `all` runs no .do at all (redo's runs all.do)."
                .to_string(),
        ]);
        if incremental {
            v.push(
                "redo-c compares ctimes in whole seconds (then the hash only when they \
                 differ): before editing a source for redo-c the benchmark waits, untimed, for \
                 the next second, else the change would not be seen."
                    .to_string(),
            );
        }
    }
    let cleans = [Group::Clean, Group::Scale, Group::Wide];
    if has(Tool::Redo) && cleans.into_iter().any(group) {
        let m = &r.machine;
        v.push(format!(
            "daemon CPU per target: utime+stime (fields 14 and 15 of /proc/PID/stat, the \
             daemon's own threads, not the .do processes) read just before and just after each \
             measured clean build, over the targets it built (N + 1 for all: the outputs and \
             all); {} ticks per second ({}), so one tick is {:.3} ms per target at the \
             smallest N.",
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
    let j = r.options.wide_j;
    for &t in &r.options.tools {
        v.push(format!(
            "{}: {} (clean), {} (no-op, changed), {} (tree)",
            t.label(),
            command_line(t, Case::CleanJ2, j).replace("-j2", "-jK"),
            command_line(t, Case::Noop, j),
            command_line(t, Case::TreeNoop, j),
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

fn targets_json(bounds: Vec<Bound>) -> Vec<json::Target> {
    bounds
        .into_iter()
        .map(|b| json::Target {
            case: b.case.to_string(),
            met: b.met(),
            measure: b.measure,
            value: Ms(b.value),
            at_most: Ms(b.at_most),
        })
        .collect()
}

/// `case` → tool key → times, for every case any of `tools` measured.
fn cases_json(tools: &[ToolResult]) -> Ordered<Ordered<json::Stats>> {
    Case::ALL
        .into_iter()
        .filter_map(|case| {
            let by_tool: Ordered<json::Stats> = (tools.iter())
                .filter_map(|t| Some((t.tool.key().to_string(), stats_json(t.case(case)?))))
                .collect();
            (!by_tool.0.is_empty()).then(|| (case.key().to_string(), by_tool))
        })
        .collect()
}

fn size_json(size: &SizeResult) -> json::Size {
    let (_, others) = columns(size);
    let ratios = Case::ALL
        .into_iter()
        .filter_map(|case| {
            let rs: Ordered<Ms> = (others.iter())
                .filter_map(|&o| Some((format!("redo/{}", o.key()), Ms(ratio(size, case, o)?))))
                .collect();
            (!rs.0.is_empty()).then(|| (case.key().to_string(), rs))
        })
        .collect();
    let redo = size.tool(Tool::Redo);
    let cpu: Ordered<Ms> = (redo.map(|t| t.daemon_cpu.as_slice()).unwrap_or_default())
        .iter()
        .map(|(c, s)| (c.key().to_string(), Ms(s.median())))
        .collect();
    json::Size {
        n: size.n,
        cases: cases_json(&size.tools),
        ratios,
        client: redo.and_then(|t| t.client.as_ref()).map(client_json),
        client_redo_c: (size.tool(Tool::RedoC))
            .and_then(|t| t.client.as_ref())
            .map(client_json),
        daemon_cpu_ms_per_target: (!cpu.0.is_empty()).then_some(cpu),
        targets: targets_json(bounds(size)),
        daemon: redo
            .and_then(|t| t.memory.as_ref())
            .map(|mem| json::Daemon {
                rss_kib: mem.rss_kib,
                pid: mem.pid,
                cached_state_files: mem.cached_state_files,
                cached_hashes: mem.cached_hashes,
            }),
        cache: (redo.map(|t| t.cache.as_slice()).unwrap_or_default())
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
            .collect(),
        scale_daemon: (redo.and_then(|t| t.scale_memory.as_ref())).map(|m| json::ScaleDaemon {
            pid: m.pid,
            targets: m.targets,
            rss_kib: m.rss_kib,
            peak_kib: m.peak_kib,
        }),
        notes: size.notes.clone(),
    }
}

fn wide_json(w: &WideResult) -> json::Wide {
    let ratios: Ordered<Ms> = (wide_ratios(w).into_iter())
        .map(|(t, x)| (format!("{}/ideal", t.key()), Ms(x)))
        .collect();
    let cpu = wide_cpu(w).map(Stats::median);
    json::Wide {
        n: w.n,
        jobs: w.jobs,
        sleep_ms: Ms(wide::SLEEP_MS),
        ideal_ms: Ms(w.ideal_ms()),
        cases: cases_json(&w.tools),
        ratios: Ordered(vec![(Case::Wide.key().to_string(), ratios)]),
        daemon_cpu_ms_per_target: cpu.map(Ms),
        daemon_targets_per_cpu_second: cpu.map(|c| Ms(wide::targets_per_cpu_second(c))),
        targets: targets_json(wide_bounds(w)),
    }
}

/// The report as the `--json` object.
pub fn json(r: &Report) -> json::Bench {
    let m = &r.machine;
    let j = r.options.wide_j;
    let commands = r
        .options
        .tools
        .iter()
        .map(|&t| {
            let cs = (Case::ALL.iter())
                .filter(|c| c.applies(t) && r.options.has(c.group()))
                .map(|&c| (c.key().to_string(), command_line(t, c, j)))
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
        cases: (r.options.groups.iter())
            .map(|g| g.key().to_string())
            .collect(),
        sizes: r.sizes.iter().map(size_json).collect(),
        wide: r.wide.as_ref().map(wide_json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Machine, ToolResult};
    use crate::scale::ScaleMemory;

    fn stats(v: &[f64]) -> Stats {
        Stats {
            samples: v.to_vec(),
        }
    }

    fn tool(tool: Tool, j1: f64, j2: f64) -> ToolResult {
        let mut r = ToolResult::new(tool);
        r.cases = vec![(Case::CleanJ1, stats(&[j1])), (Case::CleanJ2, stats(&[j2]))];
        r
    }

    /// Each bound as (case, measure, value, met).
    fn summary(bounds: &[Bound]) -> Vec<(&str, &str, f64, bool)> {
        (bounds.iter())
            .map(|b| (b.case, b.measure.as_str(), b.value, b.met()))
            .collect()
    }

    /// The table with its columns' padding squeezed to one space.
    fn squeezed(r: &Report) -> String {
        table(r)
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn report(tools: Vec<Tool>, sizes: Vec<SizeResult>) -> Report {
        let mut options = crate::parse_args(&[]).unwrap().unwrap();
        options.tools = tools;
        options.runs = 3;
        Report {
            options,
            machine: Machine {
                clk_tck: 100,
                clk_tck_read: true,
                steal: Some(0.25),
                ..Machine::default()
            },
            sizes,
            wide: None,
            skipped: vec!["something not measured".into()],
        }
    }

    /// A report with made-up numbers: the ratios, the bounds and the JSON fields they give.
    #[test]
    fn bounds_daemon_cpu_and_clients_in_table_and_json() {
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
        let r = report(
            vec![Tool::Redo, Tool::RedoC, Tool::Ninja],
            vec![SizeResult {
                n: 1000,
                tools: vec![redo, rc, tool(Tool::Ninja, 400.0, 400.0)],
                notes: Vec::new(),
            }],
        );
        let size = &r.sizes[0];
        assert_eq!(
            summary(&bounds(size)),
            [
                ("clean_j1", "redo/redo-c", 0.8, true),
                ("clean_j1", "redo/ninja", 2.0, false),
                ("clean_j1", "daemon_cpu_ms_per_target", 0.35, true),
                ("clean_j2", "redo/redo-c", 1.2, false),
                ("clean_j2", "redo/ninja", 1.5, true),
                ("clean_j2", "daemon_cpu_ms_per_target", 0.45, false),
            ]
        );

        let t = squeezed(&r);
        for line in [
            "project target value\n",
            "clean build -j1: redo/redo-c at most 1.00x 0.80x, met\n",
            "clean build -j1: redo/ninja at most 1.60x 2.00x, NOT MET\n",
            "clean build -j2: redo/ninja at most 1.60x 1.50x, met\n",
            "clean build -j2: daemon CPU per target at most 0.40 ms 0.45 ms, NOT MET\n",
            "one up-to-date redo-ifchange from a .do: this redo 1.20 ms, redo-c 1.50 ms, \
             /bin/true 1.00 ms per call (redo/redo-c 0.80x)",
            "divided by the targets it built: clean build -j1 (1001 targets) 0.35 [0.30-0.50] ms",
            "* something not measured",
            ", 25.0% of the CPU time stolen by the hypervisor\n",
            "* the hypervisor gave 25% of these CPUs' time to other guests",
        ] {
            assert!(t.contains(line), "no {line:?} in\n{t}");
        }
        // Rows only for the cases measured.
        assert!(!t.contains("\nno-op") && !t.contains("\nwatch:"), "{t}");

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
        assert_eq!(s.targets[3].at_most, Ms(1.0));
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
        assert!(back.wide.is_none() && s.scale_daemon.is_none());
        assert_eq!(
            back.cases[..2],
            ["clean".to_string(), "incremental".to_string()]
        );
    }

    /// The cold no-op, watch, scale and wide cases with made-up numbers: their rows, ratios,
    /// bounds and JSON.
    #[test]
    fn cold_watch_scale_and_wide_in_table_and_json() {
        let mut redo = ToolResult::new(Tool::Redo);
        redo.cases = vec![
            (Case::ColdNoop, stats(&[30.0, 20.0, 25.0])),
            (Case::WatchAllFinished, stats(&[70.0, 90.0, 60.0])),
            (Case::WatchWaiting, stats(&[75.0])),
            (Case::WatchWaitingAfterLast, stats(&[30.0])),
            (Case::ScaleCleanJ2, stats(&[300_000.0])),
            (Case::ScaleNoop, stats(&[5.0])),
            (Case::ScaleColdNoop, stats(&[500.0])),
        ];
        redo.daemon_cpu = vec![(Case::ScaleCleanJ2, stats(&[0.8]))];
        redo.scale_memory = Some(ScaleMemory {
            pid: 7,
            rss_kib: 100 * 1024,
            peak_kib: 160 * 1024,
            targets: 111_111,
        });
        let mut ninja = ToolResult::new(Tool::Ninja);
        ninja.cases = vec![
            (Case::ColdNoop, stats(&[50.0])),
            (Case::ScaleCleanJ2, stats(&[100_000.0])),
            (Case::ScaleNoop, stats(&[1000.0])),
            (Case::ScaleColdNoop, stats(&[1000.0])),
        ];
        let mut r = report(
            vec![Tool::Redo, Tool::RedoC, Tool::Ninja],
            vec![SizeResult {
                n: 100_000,
                tools: vec![redo.clone(), ninja],
                notes: vec!["N = 100000: clean not measured: too long".into()],
            }],
        );
        let mut w_redo = ToolResult::new(Tool::Redo);
        w_redo.cases = vec![(Case::Wide, stats(&[3500.0, 3400.0, 3600.0]))];
        w_redo.daemon_cpu = vec![(Case::Wide, stats(&[0.5]))];
        let mut w_ninja = ToolResult::new(Tool::Ninja);
        w_ninja.cases = vec![(Case::Wide, stats(&[3200.0]))];
        r.wide = Some(WideResult {
            n: 2000,
            jobs: 64,
            tools: vec![w_redo, w_ninja],
        });
        assert_eq!(
            summary(&bounds(&r.sizes[0])),
            [
                ("cold_noop", "redo/ninja", 0.5, true),
                ("scale_clean_j2", "redo/ninja", 3.0, false),
                ("scale_cold_noop", "redo/ninja", 0.5, true),
                ("watch_all_finished", "redo_ms", 70.0, true),
                ("watch_waiting_after_last_finished", "redo_ms", 30.0, false),
                ("scale_daemon", "peak_mib", 160.0, false),
            ]
        );

        let t = squeezed(&r);
        for line in [
            "N = 100000: clean not measured: too long\n",
            "case redo ninja redo/ninja\n",
            "no-op, daemon just started 25.0 [20.0-30.0] 50.0 [50.0-50.0] 0.50x\n",
            "watch: edit -> all finished 70.0 [60.0-90.0] - -\n",
            "scale: tree no-op 5.00 [5.00-5.00] 1000 [1000-1000] 0.01x\n",
            "watch: last finished -> waiting: redo at most 20.00 ms 30.00 ms, NOT MET\n",
            "scale: daemon peak memory (VmHWM) at most 150.00 MiB 160.00 MiB, NOT MET\n",
            "scale: tree clean -j2 (111001 targets) 0.80 [0.80-0.80] ms",
            "resident memory 102400 KiB (100.0 MiB) after the clean builds of tree (111111 \
             targets), peak 163840 KiB (160.0 MiB)",
            "wide: 2000 targets that each sleep 0.1 s, -j64: wall-clock ms, median [min-max] \
             of 3 runs after 1 warm-up; ideal 2000 x 0.1 s / 64 = 3125 ms\n",
            "redo 3500 [3400-3600] 1.12x\n",
            "ninja 3200 [3200-3200] 1.02x\n",
            "wide build: redo/ideal at most 1.10x 1.12x, NOT MET\n",
            "the daemon sustains 2000 targets per second of its CPU time",
            "no tool can go below ceil(N / jobs) x 0.1 s = 3200 ms",
        ] {
            assert!(t.contains(line), "no {line:?} in\n{t}");
        }
        // At N = 100000 redo-c did not run: no column of its own.
        assert!(!t.contains("redo/redo-c"), "{t}");

        let text = json::to_pretty(&json(&r)).unwrap();
        let back: json::Bench = serde_json::from_str(&text).unwrap();
        let s = &back.sizes[0];
        assert_eq!(
            s.cases.keys().collect::<Vec<_>>(),
            [
                "cold_noop",
                "watch_all_finished",
                "watch_waiting",
                "watch_waiting_after_last_finished",
                "scale_clean_j2",
                "scale_noop",
                "scale_cold_noop"
            ]
        );
        assert_eq!(
            s.cases
                .get("watch_waiting")
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["redo"]
        );
        assert!(s.ratios.get("watch_waiting").is_none());
        let cold = s.ratios.get("cold_noop").unwrap();
        assert_eq!(cold.0, [("redo/ninja".to_string(), Ms(0.5))]);
        let d = s.scale_daemon.as_ref().unwrap();
        assert_eq!(
            (d.rss_kib, d.peak_kib, d.targets),
            (102_400, 163_840, 111_111)
        );
        assert_eq!(s.notes.len(), 1);
        assert_eq!(s.targets.len(), 6);
        let w = back.wide.as_ref().unwrap();
        assert_eq!(
            (w.n, w.jobs, w.ideal_ms, w.sleep_ms),
            (2000, 64, Ms(3125.0), Ms(100.0))
        );
        assert_eq!(
            w.ratios.get("wide").unwrap().0,
            [
                ("redo/ideal".to_string(), Ms(1.12)),
                ("ninja/ideal".to_string(), Ms(1.024))
            ]
        );
        assert_eq!(w.daemon_cpu_ms_per_target, Some(Ms(0.5)));
        assert_eq!(w.daemon_targets_per_cpu_second, Some(Ms(2000.0)));
        assert_eq!(w.targets.len(), 1);
        assert_eq!(
            (
                &*w.targets[0].measure,
                w.targets[0].at_most,
                w.targets[0].met
            ),
            ("redo/ideal", Ms(1.1), false)
        );
        let commands = back.commands.get("redo").unwrap();
        assert_eq!(
            commands.get("cold_noop").map(String::as_str),
            Some(
                "redo --daemon-stop (and its exit awaited), then REDO_NO_SYNC=1 redo-ifchange all"
            )
        );
        assert_eq!(
            commands.get("wide").map(String::as_str),
            Some("REDO_NO_SYNC=1 redo-ifchange -j64 all")
        );
        assert_eq!(
            commands.get("watch_waiting").map(String::as_str),
            Some("REDO_NO_SYNC=1 redo --watch --events=json all")
        );
        assert!(
            back.commands
                .get("ninja")
                .unwrap()
                .get("watch_waiting")
                .is_none()
        );

        // Below N = 100000 the peak is reported but not held to the bound.
        r.sizes[0].n = 10_000;
        assert!(bounds(&r.sizes[0]).iter().all(|b| b.case != "scale_daemon"));
    }
}
