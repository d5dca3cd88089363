//! Keeps the benchmark working: the whole run at N = 50, one measured run per case, against
//! the debug binaries `cargo test --workspace` has just built. The benchmark itself checks
//! every build's outputs (out/fK.out is the upper-cased src/fK.in, tree is their
//! concatenation, a no-op rebuilds nothing) and fails if one is wrong.

use redo_bench::json::Json;
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
    for b in ["redo", "redo-ifchange", "redod"] {
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
    let j = Json::parse(&text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"));

    let tools: Vec<&str> = j["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tools, ["redo", "ninja", "make-r", "make"]);
    let sizes = j["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 1);
    let size = &sizes[0];
    assert_eq!(size["n"].as_f64(), Some(50.0));

    let positive = |v: &Json, what: &str| {
        let x = v
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: not a number: {v:?}"));
        assert!(x > 0.0 && x.is_finite(), "{what} = {x}");
    };
    let cases = [
        "clean_j1",
        "clean_j2",
        "noop",
        "changed",
        "tree_noop",
        "tree_changed",
    ];
    for case in cases {
        for tool in &tools {
            let s = &size["cases"][case][*tool];
            for k in ["median_ms", "min_ms", "max_ms"] {
                positive(&s[k], &format!("{case} {tool} {k}"));
            }
            assert_eq!(s["samples_ms"].as_array().map(<[Json]>::len), Some(1));
        }
        for other in ["ninja", "make-r", "make"] {
            positive(
                &size["ratios"][case][format!("redo/{other}").as_str()],
                &format!("{case} redo/{other}"),
            );
        }
    }
    for case in ["noop_sync", "noop_stat"] {
        positive(&size["cases"][case]["redo"]["median_ms"], case);
        positive(
            &size["ratios"][case]["redo/ninja"],
            &format!("{case} redo/ninja"),
        );
    }
    let client = &size["client"];
    assert_eq!(client["calls"].as_f64(), Some(100.0));
    positive(&client["redo_ifchange_per_call_ms"], "client per call");
    positive(&client["true_per_call_ms"], "/bin/true per call");
    assert!(client["difference_per_call_ms"].as_f64().is_some());
    positive(&size["daemon"]["rss_kib"], "daemon rss");
    assert!(!work.exists());
}
