//! Keeps the benchmark working: every case at a small N, one measured run per case, against
//! the debug binaries `cargo test --workspace` has just built (and redo-c, compiled from its
//! source beside the checkout, `../shared/peers/redo-c` or `$REDO_C_SRC`, when there is one
//! and `cc` is installed; else the note that it was skipped). The benchmark itself checks
//! every build's outputs (out/fK.out is the upper-cased src/fK.in, tree is their
//! concatenation, a no-op rebuilds nothing, a watch round rebuilt the source edited) and fails
//! if one is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use redo_bench::json::{Bench, Ms, Stats};
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// redo-c's source when it can be compiled here.
fn redo_c_source() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    redo_bench::redo_c::source_near(&root).filter(|_| have("cc"))
}

/// Runs `redo-bench --json --runs 1` with the debug binaries, `args` and redo-c's source when
/// there is one, in a work directory of its own (checked gone afterwards); returns the JSON
/// and its text, and whether redo-c was given.
fn bench(name: &str, args: &[&str]) -> (Bench, String, bool) {
    for (prog, package) in [("make", "make"), ("ninja", "ninja-build")] {
        assert!(
            have(prog),
            "`{prog}` is missing: the benchmark smoke test compares redo with GNU make and \
             ninja; run tests/setup-and-test.sh (it installs {package}) or apt-get install {package}"
        );
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_redo-bench"));
    let bin_dir = exe.parent().unwrap().to_path_buf();
    for b in ["redo", "redod"] {
        assert!(
            bin_dir.join(b).exists(),
            "{b} is missing from {}: run `cargo test --workspace` (or `cargo build`) first",
            bin_dir.display()
        );
    }
    let work = std::env::temp_dir().join(format!("redo-bench-{name}-{}", std::process::id()));
    let mut c = Command::new(&exe);
    c.args(["--runs", "1", "--json"])
        .args(args)
        .arg("--redo-dir")
        .arg(&bin_dir)
        .arg("--work")
        .arg(&work);
    let src = redo_c_source();
    if let Some(src) = &src {
        c.arg("--redo-c-src").arg(src);
    }
    let out = c.output().unwrap();
    let _ = std::fs::remove_dir_all(&work);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redo-bench failed:\n{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let j: Bench =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"));
    assert_eq!(j.benchmark, "redo-bench");
    assert_eq!(j.schema, 1);
    assert_eq!(j.runs, 1);
    if src.is_some() {
        assert!(j.versions.get("redo-c").unwrap().contains("cc -O2"));
    } else {
        // Without its source (or a compiler) redo-c is skipped, and said so.
        assert!(!j.tools.iter().any(|t| t == "redo-c"), "{:?}", j.tools);
        assert!(
            j.notes
                .iter()
                .any(|n| n.starts_with("redo-c not measured: give --redo-c DIR")),
            "{:?}",
            j.notes
        );
    }
    assert!(!work.exists());
    (j, text, src.is_some())
}

fn positive(v: Ms, what: &str) {
    assert!(v.0 > 0.0 && v.0.is_finite(), "{what} = {}", v.0);
}

#[test]
fn benchmark_runs_at_n_50() {
    let (j, text, with_rc) = bench(
        "smoke",
        &[
            "--n",
            "50",
            "--calls",
            "100",
            "--cases",
            "clean,incremental,client,cache",
        ],
    );
    assert_eq!(j.cases, ["clean", "incremental", "client", "cache"]);
    assert!(j.wide.is_none());
    let tools: Vec<&str> = j.tools.iter().map(String::as_str).collect();
    if with_rc {
        assert_eq!(tools, ["redo", "redo-c", "ninja", "make-r", "make"]);
    } else {
        assert_eq!(tools, ["redo", "ninja", "make-r", "make"]);
    }
    let others: Vec<&str> = tools[1..].to_vec();
    assert_eq!(j.versions.keys().collect::<Vec<_>>(), tools);
    assert_eq!(j.commands.keys().collect::<Vec<_>>(), tools);
    assert_eq!(j.sizes.len(), 1);
    let size = &j.sizes[0];
    assert_eq!(size.n, 50);

    let cases = [
        "clean_j1",
        "clean_j2",
        "noop",
        "changed",
        "tree_noop",
        "tree_changed",
    ];
    let stats = |case: &str, tool: &str| -> &Stats {
        size.cases
            .get(case)
            .and_then(|c| c.get(tool))
            .unwrap_or_else(|| panic!("no {case} {tool} in\n{text}"))
    };
    let ratio = |case: &str, other: &str| -> Ms {
        *size
            .ratios
            .get(case)
            .and_then(|c| c.get(&format!("redo/{other}")))
            .unwrap_or_else(|| panic!("no {case} redo/{other} in\n{text}"))
    };
    for case in cases {
        for tool in &tools {
            let s = stats(case, tool);
            for (k, v) in [
                ("median_ms", s.median_ms),
                ("min_ms", s.min_ms),
                ("max_ms", s.max_ms),
            ] {
                positive(v, &format!("{case} {tool} {k}"));
            }
            assert_eq!(s.samples_ms.len(), 1);
        }
        for other in &others {
            positive(ratio(case, other), &format!("{case} redo/{other}"));
        }
    }
    for case in ["noop_sync", "noop_stat"] {
        positive(stats(case, "redo").median_ms, case);
        positive(ratio(case, "ninja"), &format!("{case} redo/ninja"));
        assert!(size.cases.get(case).unwrap().get("redo-c").is_none());
    }
    // The ratios are the medians' (one run: the samples').
    let r = ratio("clean_j1", "ninja").0;
    let want = stats("clean_j1", "redo").median_ms.0 / stats("clean_j1", "ninja").median_ms.0;
    assert!((r - want).abs() < 0.002, "{r} vs {want}");

    // The daemon's CPU time per target of redo's clean builds, and the project's bounds.
    let cpu = size
        .daemon_cpu_ms_per_target
        .as_ref()
        .unwrap_or_else(|| panic!("no daemon_cpu_ms_per_target in\n{text}"));
    assert_eq!(cpu.keys().collect::<Vec<_>>(), ["clean_j1", "clean_j2"]);
    for (case, v) in &cpu.0 {
        // 10 ms ticks over 51 targets: 0 is possible, a negative or missing value is not.
        assert!(v.0.is_finite() && v.0 >= 0.0, "{case} daemon CPU {}", v.0);
    }
    assert_eq!(j.machine.clk_tck, 100, "CLK_TCK on Linux");
    let mut measures = vec!["redo/ninja", "daemon_cpu_ms_per_target"];
    if with_rc {
        measures.insert(0, "redo/redo-c");
    }
    for case in ["clean_j1", "clean_j2"] {
        let got: Vec<&str> = (size.targets.iter())
            .filter(|t| t.case == case)
            .map(|t| t.measure.as_str())
            .collect();
        assert_eq!(got, measures, "{case} targets in\n{text}");
    }
    for t in &size.targets {
        let want = match t.measure.as_str() {
            "daemon_cpu_ms_per_target" => *cpu.get(&t.case).unwrap(),
            m => ratio(&t.case, m.strip_prefix("redo/").unwrap()),
        };
        assert_eq!(t.value, want, "{t:?}");
        let bound = match t.measure.as_str() {
            "redo/redo-c" => 1.0,
            "redo/ninja" => 1.6,
            _ => 0.4,
        };
        assert_eq!(t.at_most.0, bound);
        assert_eq!(t.met, t.value.0 <= bound);
    }
    let client = size.client.as_ref().expect("no client object");
    assert_eq!(client.calls, 100);
    positive(client.redo_ifchange_per_call_ms, "client per call");
    positive(client.true_per_call_ms, "/bin/true per call");
    assert!(client.difference_per_call_ms.0.is_finite());
    match (&size.client_redo_c, with_rc) {
        (Some(c), true) => {
            assert_eq!(c.calls, 100);
            positive(c.redo_ifchange_per_call_ms, "redo-c client per call");
            positive(c.true_per_call_ms, "redo-c's /bin/true per call");
            assert_eq!(c.redo_ifchange_loop_ms.samples_ms.len(), 1);
        }
        (None, false) => {}
        (c, _) => panic!("client_redo_c {c:?} with redo-c: {with_rc}"),
    }
    let daemon = size.daemon.as_ref().expect("no daemon object");
    assert!(daemon.rss_kib > 0, "daemon rss");
    let backends: Vec<&str> = size.cache.iter().map(|c| c.backend.as_str()).collect();
    assert_eq!(
        backends,
        ["file", "nginx"],
        "the cache case, over both backends"
    );
    for c in &size.cache {
        positive(c.cold_ms.median_ms, "cache cold");
        let plain = c
            .plain_ms
            .as_ref()
            .expect("the build without a cache, in turns");
        assert_eq!(
            plain.samples_ms.len(),
            c.cold_ms.samples_ms.len(),
            "one build without a cache per cold run"
        );
        positive(plain.median_ms, "cache plain");
        positive(c.warm_ms.median_ms, "cache warm");
        positive(c.clean_over_warm, "clean/warm");
        assert_eq!(
            c.warm_do_runs, 0,
            "{} warm build ran .do files:\n{text}",
            c.backend
        );
    }
    // None of the newer cases ran.
    for case in ["cold_noop", "watch_waiting", "scale_clean_j2"] {
        assert!(size.cases.get(case).is_none(), "{case} in\n{text}");
    }
}

/// The cold no-op, watch and scale cases at N = 10 and the wide case with 20 targets at -j4:
/// what each gives, and the bounds checked against it.
#[test]
fn newer_cases_at_tiny_sizes() {
    let (j, text, with_rc) = bench(
        "smoke-new",
        &[
            "--n",
            "10",
            "--cases",
            "cold,watch,scale,wide",
            "--tools",
            "redo,redo-c,ninja",
            "--wide-n",
            "20",
            "--wide-j",
            "4",
        ],
    );
    assert_eq!(j.cases, ["cold", "watch", "scale", "wide"]);
    let size = &j.sizes[0];
    assert_eq!(size.n, 10);
    let stats = |case: &str, tool: &str| -> &Stats {
        size.cases
            .get(case)
            .and_then(|c| c.get(tool))
            .unwrap_or_else(|| panic!("no {case} {tool} in\n{text}"))
    };
    // Only redo and ninja take part in the cold and scale cases, only redo in watch.
    for case in [
        "cold_noop",
        "scale_clean_j2",
        "scale_noop",
        "scale_cold_noop",
    ] {
        let tools: Vec<&str> = size.cases.get(case).unwrap().keys().collect();
        assert_eq!(tools, ["redo", "ninja"], "{case}");
        for tool in tools {
            positive(stats(case, tool).median_ms, &format!("{case} {tool}"));
        }
        let r = size.ratios.get(case).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), ["redo/ninja"], "{case}");
        let want = stats(case, "redo").median_ms.0 / stats(case, "ninja").median_ms.0;
        assert!(
            (r.get("redo/ninja").unwrap().0 - want).abs() < 0.002,
            "{case}"
        );
    }
    let watch = [
        "watch_all_finished",
        "watch_waiting",
        "watch_waiting_after_last_finished",
    ];
    for case in watch {
        assert_eq!(
            size.cases.get(case).unwrap().keys().collect::<Vec<_>>(),
            ["redo"]
        );
        assert!(size.ratios.get(case).is_none());
    }
    // The round waits for 50 ms of quiet after the edit before it builds, and its `watch
    // waiting` comes after `all` finished.
    let all = stats("watch_all_finished", "redo").median_ms.0;
    let waiting = stats("watch_waiting", "redo").median_ms.0;
    assert!(all >= 50.0 && waiting >= all, "{all} {waiting}");
    assert!(
        stats("watch_waiting_after_last_finished", "redo")
            .median_ms
            .0
            <= waiting - all + 0.01
    );

    let d = size.scale_daemon.as_ref().expect("no scale_daemon");
    assert_eq!(d.targets, 13, "10 outputs, 1 + 1 groups, tree");
    assert!(d.rss_kib > 0 && d.peak_kib >= d.rss_kib, "{d:?}");
    let cpu = size.daemon_cpu_ms_per_target.as_ref().unwrap();
    assert_eq!(cpu.keys().collect::<Vec<_>>(), ["scale_clean_j2"]);
    let got: Vec<(&str, &str)> = (size.targets.iter())
        .map(|t| (t.case.as_str(), t.measure.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cold_noop", "redo/ninja"),
            ("scale_clean_j2", "redo/ninja"),
            ("scale_cold_noop", "redo/ninja"),
            ("watch_all_finished", "redo_ms"),
            ("watch_waiting_after_last_finished", "redo_ms"),
        ],
        "no peak memory bound below N = 100000"
    );
    for t in &size.targets {
        assert_eq!(t.met, t.value.0 <= t.at_most.0, "{t:?}");
    }

    let w = j.wide.as_ref().expect("no wide");
    assert_eq!((w.n, w.jobs, w.ideal_ms), (20, 4, Ms(500.0)));
    let mut tools = vec!["redo", "redo-c", "ninja"];
    if !with_rc {
        tools.remove(1);
    }
    let wide = w.cases.get("wide").unwrap();
    assert_eq!(wide.keys().collect::<Vec<_>>(), tools);
    let ratios = w.ratios.get("wide").unwrap();
    for tool in &tools {
        // Five waves of four 0.1 s sleeps: no tool can take less than the ideal.
        let s = wide.get(tool).unwrap();
        assert!(s.min_ms.0 >= 500.0, "{tool} wide in {} ms", s.min_ms.0);
        let x = ratios.get(&format!("{tool}/ideal")).unwrap().0;
        assert!((x - s.median_ms.0 / 500.0).abs() < 0.002, "{tool}: {x}");
    }
    let per_target = w.daemon_cpu_ms_per_target.unwrap().0;
    assert!(per_target.is_finite() && per_target >= 0.0);
    assert_eq!(w.targets.len(), 1);
    assert_eq!(
        (w.targets[0].measure.as_str(), w.targets[0].at_most),
        ("redo/ideal", Ms(1.1))
    );
}

#[test]
fn unusable_redo_c_dir_is_an_error() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_redo-bench"));
    let work = std::env::temp_dir().join(format!("redo-bench-smoke-rc-{}", std::process::id()));
    // `--redo-c` naming a directory without redo-c, and `--redo-c-src` one without redo.c.
    for (option, message) in [
        ("--redo-c", "redo is not an executable file"),
        ("--redo-c-src", "redo.c is not a file"),
    ] {
        let out = Command::new(&exe)
            .args(["--n", "5", "--runs", "1", "--tools", "redo-c", option])
            .arg(&work)
            .arg("--work")
            .arg(&work)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{option}: ")) && stderr.contains(message),
            "{stderr}"
        );
        // The work directory given is kept, what the run made in it is not.
        assert!(!work.join("runtime").exists() && !work.join("redo-c").exists());
    }
    let _ = std::fs::remove_dir_all(&work);
}
