//! Keeps the benchmark working: the whole run at N = 50, one measured run per case, against
//! the debug binaries `cargo test --workspace` has just built (and redo-c, compiled from the
//! vendored source, when `cc` is installed). The benchmark itself checks every build's
//! outputs (out/fK.out is the upper-cased src/fK.in, tree is their concatenation, a no-op
//! rebuilds nothing) and fails if one is wrong.

use redo_bench::json::{Bench, Ms, Stats};
use std::path::PathBuf;
use std::process::Command;

fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn benchmark_runs_at_n_50() {
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
    let work = std::env::temp_dir().join(format!("redo-bench-smoke-{}", std::process::id()));
    let out = Command::new(&exe)
        .args([
            "--n",
            "50",
            "--runs",
            "1",
            "--calls",
            "100",
            "--json",
            "--redo-dir",
        ])
        .arg(&bin_dir)
        .arg("--work")
        .arg(&work)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&work);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redo-bench failed:\n{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let j: Bench =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"));
    assert_eq!(j.benchmark, "redo-bench");
    assert_eq!(j.schema, 1);
    assert_eq!(j.runs, 1);

    let tools: Vec<&str> = j.tools.iter().map(String::as_str).collect();
    let with_cc = have("cc");
    if with_cc {
        assert_eq!(tools, ["redo", "redo-c", "ninja", "make-r", "make"]);
        assert!(j.versions.get("redo-c").unwrap().contains("vendored"));
    } else {
        // Without a compiler redo-c is skipped, and said so.
        assert_eq!(tools, ["redo", "ninja", "make-r", "make"]);
        assert!(
            j.notes
                .iter()
                .any(|n| n.starts_with("redo-c not measured: no cc")),
            "{:?}",
            j.notes
        );
    }
    let others: Vec<&str> = tools[1..].to_vec();
    assert_eq!(j.versions.keys().collect::<Vec<_>>(), tools);
    assert_eq!(j.commands.keys().collect::<Vec<_>>(), tools);
    assert_eq!(j.sizes.len(), 1);
    let size = &j.sizes[0];
    assert_eq!(size.n, 50);

    let positive = |v: Ms, what: &str| {
        assert!(v.0 > 0.0 && v.0.is_finite(), "{what} = {}", v.0);
    };
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
    if with_cc {
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
            "redo/redo-c" => 0.9,
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
    match (&size.client_redo_c, with_cc) {
        (Some(c), true) => {
            assert_eq!(c.calls, 100);
            positive(c.redo_ifchange_per_call_ms, "redo-c client per call");
            positive(c.true_per_call_ms, "redo-c's /bin/true per call");
            assert_eq!(c.redo_ifchange_loop_ms.samples_ms.len(), 1);
        }
        (None, false) => {}
        (c, _) => panic!("client_redo_c {c:?} with cc: {with_cc}"),
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
    assert!(!work.exists());
}

#[test]
fn unusable_redo_c_dir_is_an_error() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_redo-bench"));
    let work = std::env::temp_dir().join(format!("redo-bench-smoke-rc-{}", std::process::id()));
    let out = Command::new(&exe)
        .args(["--n", "5", "--runs", "1", "--tools", "redo-c", "--redo-c"])
        .arg(&work)
        .arg("--work")
        .arg(&work)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--redo-c: ") && stderr.contains("redo is not an executable file"),
        "{stderr}"
    );
    // The work directory given is kept, what the run made in it is not.
    assert!(!work.join("runtime").exists() && !work.join("redo-c").exists());
    let _ = std::fs::remove_dir_all(&work);
}
