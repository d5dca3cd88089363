#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--timings` and `--trace` on real builds (docs/timings.md): the real binaries build `.do`
//! trees whose `.do` files sleep for known times, and the files written are checked.
//!
//! * A `-j2` build of three targets whose sleeps make a known critical path: one trace event
//!   per target, each at least its sleep long, on exactly two job slots, named relative to the
//!   project root; the trace valid against `contrib/trace/trace-event.schema.json`; the HTML
//!   report's critical path is the chain the sleeps make. Files given relative to the client's
//!   directory land there.
//! * A failed build still writes both, with the failed target's outcome `failed`; `--timings`
//!   alone goes to `.redo/timings/` with `latest.html`.
//! * A build whose client is interrupted (SIGINT) still writes its trace, the run in progress
//!   `interrupted`.
//! * `--watch`: each round writes its own report.
//! * In headless Chromium (`/usr/bin/chromium`, which tests/setup-and-test.sh installs), the
//!   report of a real build shows every target, runs its script without error and draws.

use redo_tests::chromium::{Chromium, Picture, attribute};
use redo_tests::{Project, wait_until};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The target events of a trace (`cat` "target"), in the file's order.
fn targets(trace: &Value) -> Vec<&Value> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "target")
        .collect()
}

fn event<'a>(trace: &'a Value, name: &str) -> &'a Value {
    targets(trace)
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no event for {name} in {trace}"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn assert_valid(trace: &Value) {
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/trace/trace-event.schema.json");
    let schema: Value = read_json(&schema_path);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(trace)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "trace not valid: {errors:?}\n{trace}");
}

/// The data a report embeds (`<script type="application/json" id="timings-data">`).
fn report_data(html: &str) -> Value {
    let open = "id=\"timings-data\">";
    let start = html.find(open).expect("no timings data in the report") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// The report's critical path, as target names, first to last.
fn critical_path(data: &Value) -> Vec<String> {
    let spans = data["spans"].as_array().unwrap();
    data["critical"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            spans[i.as_u64().unwrap() as usize]["t"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// `a` sleeps 0.6 s, `b` 0.2 s, `c` asks for `a` then sleeps 0.3 s; asked for as `a b c` at
/// `-j2`, `a` and `b` start at once, `c` takes `b`'s slot when it ends and waits for `a`.
/// The build takes about 0.9 s and its critical path is `a`, then `c`.
fn sleepy(p: &Project) {
    p.do_file("a.do", "sleep 0.6\necho a >\"$3\"\n");
    p.do_file("b.do", "sleep 0.2\necho b >\"$3\"\n");
    p.do_file("c.do", "redo-ifchange a\nsleep 0.3\necho c >\"$3\"\n");
    std::fs::create_dir_all(p.path("sub")).unwrap();
}

#[test]
fn a_parallel_build_traces_each_target_on_two_slots_with_its_critical_path() {
    let p = Project::new();
    sleepy(&p);
    let r = p
        .run_in(
            "sub",
            "redo-ifchange",
            &[
                "-j2",
                "--trace=t.json",
                "--timings=r.html",
                "../a",
                "../b",
                "../c",
            ],
        )
        .ok();
    // Relative to the client's directory, and said so.
    assert!(
        r.stderr
            .contains("redo-ifchange: trace written to t.json\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("redo-ifchange: timings written to r.html\n"),
        "{}",
        r.stderr
    );
    let trace = read_json(&p.path("sub/t.json"));
    assert_valid(&trace);
    let names: Vec<&str> = targets(&trace)
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().copied().collect::<BTreeSet<_>>(),
        ["a", "b", "c"].into(),
        "one event per target: {names:?}"
    );
    assert_eq!(names.len(), 3, "{names:?}");
    for (name, sleep_us) in [("a", 600_000), ("b", 200_000), ("c", 300_000)] {
        let e = event(&trace, name);
        assert!(
            e["dur"].as_u64().unwrap() >= sleep_us,
            "{name} shorter than its sleep: {e}"
        );
        assert_eq!(e["args"]["target"], name, "{e}");
        assert_eq!(e["args"]["do"], format!("{name}.do"), "{e}");
        assert_eq!(e["args"]["outcome"], "built", "{e}");
    }
    let tids: BTreeSet<u64> = targets(&trace)
        .iter()
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(tids, [1, 2].into(), "two job slots at -j2");
    // c waited for a inside its .do.
    let waits: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "wait")
        .collect();
    assert!(
        waits
            .iter()
            .any(|w| w["args"]["target"] == "c" && w["args"]["for"] == serde_json::json!(["a"])),
        "{waits:?}"
    );
    let critical: Vec<&str> = targets(&trace)
        .iter()
        .filter(|e| e["args"]["critical"] == true)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(critical, ["a", "c"]);
    assert_eq!(trace["otherData"]["jobs"], 2);
    assert_eq!(trace["otherData"]["built"], 3);

    let data = report_data(&std::fs::read_to_string(p.path("sub/r.html")).unwrap());
    assert_eq!(critical_path(&data), ["a", "c"]);
    assert_eq!(data["jobs"], 2);
    assert_eq!(data["totals"]["lanes"], 2);

    // Nothing to do: no run, the targets counted up to date.
    let r = p
        .run_in(
            "sub",
            "redo-ifchange",
            &["--trace=t2.json", "../a", "../b", "../c"],
        )
        .ok();
    assert!(
        r.stderr.contains("trace written to t2.json"),
        "{}",
        r.stderr
    );
    let trace = read_json(&p.path("sub/t2.json"));
    assert_valid(&trace);
    assert!(targets(&trace).is_empty(), "{trace}");
    assert_eq!(trace["otherData"]["up_to_date"], 3, "{trace}");
}

#[test]
fn a_failed_build_still_writes_its_trace_and_report() {
    let p = Project::new();
    p.do_file("all.do", "redo-ifchange sub/x.o bad\n");
    p.do_file("sub/default.o.do", "sleep 0.1\necho \"$2\" >\"$3\"\n");
    p.do_file("bad.do", "echo broken >&2\nexit 1\n");
    let r = p
        .redo(&["-j2", "--timings", "--trace=t.json", "all"])
        .fails();
    let trace = read_json(&p.path("t.json"));
    assert_valid(&trace);
    let bad = event(&trace, "bad");
    assert_eq!(bad["args"]["outcome"], "failed", "{bad}");
    assert_eq!(bad["args"]["do"], "bad.do");
    let x = event(&trace, "sub/x.o");
    assert_eq!(
        x["args"]["do"], "sub/default.o.do",
        "paths from the project root: {x}"
    );
    assert_eq!(x["args"]["outcome"], "built");
    assert_eq!(event(&trace, "all")["args"]["outcome"], "failed");
    assert_eq!(trace["otherData"]["failed"], 2, "{trace}");

    // The default report: timestamped under .redo/timings/, latest.html the same file.
    let line = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("redo: timings written to "))
        .unwrap_or_else(|| panic!("no timings line: {}", r.stderr));
    assert!(
        line.starts_with(".redo/timings/timings-") && line.ends_with(".html"),
        "{line}"
    );
    let report = std::fs::read_to_string(p.path(line)).unwrap();
    assert_eq!(
        report,
        std::fs::read_to_string(p.path(".redo/timings/latest.html")).unwrap()
    );
    let data = report_data(&report);
    assert_eq!(data["totals"]["failed"], 2);
    let spans: Vec<&str> = data["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["t"].as_str().unwrap())
        .collect();
    assert!(
        spans.contains(&"bad") && spans.contains(&"sub/x.o"),
        "{spans:?}"
    );

    // A file that cannot be written is said, with its name, and the command fails.
    let r = p.redo(&["--trace=no/such/dir/t.json", "sub/x.o"]).fails();
    assert!(
        r.stderr.contains("cannot write the trace") && r.stderr.contains("no/such/dir"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_interrupted_build_writes_what_ran() {
    let p = Project::new();
    p.do_file("quick.do", "echo q >\"$3\"\n");
    p.do_file("slow.do", "redo-ifchange quick\nsleep 30\necho s >\"$3\"\n");
    let mut child = p
        .command("redo-ifchange")
        .args(["--trace=t.json", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || p.runs("slow.do") == 1
            && p.exists("quick")),
        "slow.do never started"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || p.exists("t.json")),
        "no trace after the client was interrupted\n{}",
        p.daemon_log()
    );
    let trace = read_json(&p.path("t.json"));
    assert_valid(&trace);
    assert_eq!(event(&trace, "slow")["args"]["outcome"], "interrupted");
    assert_eq!(event(&trace, "quick")["args"]["outcome"], "built");
    assert_eq!(trace["otherData"]["interrupted"], true);
}

#[test]
fn each_watch_round_writes_its_report() {
    let p = Project::new();
    p.write("src", "1\n");
    p.do_file("out.do", "redo-ifchange src\ncat src >\"$3\"\n");
    let mut child = p
        .command("redo")
        .args(["--watch", "--timings", "out"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reports = || {
        std::fs::read_dir(p.path(".redo/timings"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("timings-"))
                    .count()
            })
            .unwrap_or(0)
    };
    let first = wait_until(Duration::from_secs(10), || reports() == 1);
    // A new name even within one millisecond; the clock's tick is finer than the rounds.
    std::thread::sleep(Duration::from_millis(50));
    p.write("src", "22\n");
    let second = first && wait_until(Duration::from_secs(10), || reports() == 2);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        first && second,
        "reports: {}\n{}",
        reports(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.read("out"), "22\n");
    let latest = report_data(&p.read(".redo/timings/latest.html"));
    let spans = latest["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{latest}");
    assert_eq!(spans[0]["t"], "out");
}

/// The report of a real build, in a real browser.
#[test]
fn the_report_of_a_real_build_opens_in_chromium() {
    let chromium = Chromium::require();
    let p = Project::new();
    sleepy(&p);
    p.do_file("all.do", "redo-ifchange a b c lib/util.o\n");
    p.do_file("lib/default.o.do", "sleep 0.1\necho \"$2\" >\"$3\"\n");
    p.redo(&["-j2", "--timings=report.html", "all"]).ok();
    let page: PathBuf = p.path("report.html");
    let dom = chromium.dump_dom(&page).unwrap();
    assert_eq!(attribute(&dom, "data-status"), Some("ok"), "{dom:.3000}");
    let errors = &dom[dom.find("id=\"errors\"").unwrap()..];
    let errors = &errors[..errors.find("</ul>").unwrap()];
    assert!(!errors.contains("<li"), "script errors: {errors}");
    assert_eq!(
        attribute(&dom, "data-bars"),
        Some("5"),
        "one bar per target"
    );
    for name in ["all", "a", "b", "c", "lib/util.o"] {
        assert!(
            dom.contains(&format!(">{name}</td>")),
            "{name} not in the page's table"
        );
    }
    let shot = chromium
        .screenshot(&page, &p.path("report.png"), 1200, 800)
        .unwrap();
    let picture = Picture::of(&shot.png).unwrap();
    assert!(picture.is_drawn(0.02), "blank report: {picture:?}");
}

/// The options reach the daemon only from a build command: the others refuse them.
#[test]
fn only_the_build_commands_take_the_options() {
    let p = Project::new();
    let r = p.run("redo-targets", &["--timings"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = p.redo(&["--trace"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--trace=FILE"), "{}", r.stderr);
}
