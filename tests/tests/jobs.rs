#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Parallel builds, end to end (docs/BEHAVIOUR.md §8, §13, §15; docs/DESIGN.md §6): how many `.do` files
//! really run at once under `-j`, GNU make sharing the build's job tokens both ways (make run
//! by a `.do`, redo run by make), nesting, builds shared by two clients, failures among
//! parallel siblings, and the terminal output of parallel builds (status line, `[target] `
//! prefixes).
//!
//! Concurrency is *measured*: the jobs record their own start and end times (`date +%s.%N`)
//! or bump a shared counter (under `flock`(1)) around their work, and the tests assert on
//! those records only, never on how long a client took, so that a loaded machine does not
//! make them fail.
//!
//! The FIFO-jobserver tests need GNU make >= 4.4: `$REDO_TEST_MAKE44`, else
//! `target/ci-tools/bin/make44` (built by `tests/setup-and-test.sh`), else `make` on PATH if it is new enough.

use redo_tests::{Project, Run, strip_duration, wait_until};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Longest any single command of these tests may take before it is considered hung.
const HANG: Duration = Duration::from_secs(60);

/// A command for any program (make, script, ...) with the project's environment and directory.
fn tool(p: &Project, program: impl AsRef<OsStr>) -> Command {
    p.command_at(Path::new(program.as_ref()))
}

/// Runs a command to completion, failing the test (after killing it) if it hangs.
fn run_cmd(mut c: Command) -> Run {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{c:?}");
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = i32::try_from(child.id()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG) {
        Ok(out) => Run::from_output(out.unwrap()),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what} did not finish within {HANG:?}");
        }
    }
}

/// `tool args` with the project's environment, guarded against hangs.
fn run(p: &Project, tool_name: &str, args: &[&str]) -> Run {
    let mut c = p.command(tool_name);
    c.args(args);
    run_cmd(c)
}

/// `(major, minor)` of a GNU make.
fn make_version(make: &Path) -> Option<(u32, u32)> {
    let out = Command::new(make)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.lines().next()?.strip_prefix("GNU Make ")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn is_make44(make: &Path) -> bool {
    make_version(make).is_some_and(|v| v >= (4, 4))
}

/// A GNU make >= 4.4 (FIFO jobserver), or a failure telling how to get one.
fn make44() -> PathBuf {
    if let Some(p) = std::env::var_os("REDO_TEST_MAKE44") {
        let p = PathBuf::from(p);
        assert!(
            is_make44(&p),
            "REDO_TEST_MAKE44={} is not GNU make >= 4.4",
            p.display()
        );
        return p;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-tools/bin/make44");
    if is_make44(&built) {
        return built;
    }
    if is_make44(Path::new("make")) {
        return PathBuf::from("make");
    }
    panic!(
        "no GNU make >= 4.4 for the FIFO jobserver tests: run tests/setup-and-test.sh (it builds {}) or set \
         REDO_TEST_MAKE44 to one",
        built.display()
    );
}

/// The system make (the pipe jobserver form).
fn system_make() -> PathBuf {
    let m = PathBuf::from("make");
    assert!(
        make_version(&m).is_some(),
        "GNU make is not installed: run tests/setup-and-test.sh"
    );
    m
}

/// Writes `count.sh LABEL SECONDS` into the project: one unit of work that bumps a shared
/// counter of running units, sleeps, and decrements it, logging every new value. Returns the
/// command that runs it (an absolute path, usable from any directory and from make recipes).
fn counter(p: &Project) -> String {
    let base = p.path("count");
    let script = format!(
        r#"#!/bin/sh
set -e
c='{}'
bump() {{
    exec 8>>"$c.lock"
    flock 8
    n=$(cat "$c.cur" 2>/dev/null || echo 0)
    n=$((n + $1))
    echo "$n" > "$c.cur"
    echo "$n $2" >> "$c.log"
    exec 8>&-
}}
bump 1 "+$1"
sleep "$2"
bump -1 "-$1"
"#,
        base.display()
    );
    p.write("count.sh", &script);
    format!("sh '{}'", p.path("count.sh").display())
}

/// The counter's log and its peak value; also checks every unit ended.
fn peak(p: &Project) -> (usize, String) {
    let log = fs::read_to_string(p.path("count.log")).unwrap_or_default();
    let values: Vec<i64> = log
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(!values.is_empty(), "no job ran the counter");
    assert_eq!(
        values.last(),
        Some(&0),
        "the counter does not end at 0:\n{log}"
    );
    let max = values.iter().copied().max().unwrap();
    (usize::try_from(max).unwrap(), log)
}

/// A `.do` for `NAME` that records its start and end time around one second of work.
fn timed_do(p: &Project, name: &str) {
    p.do_file(
        &format!("{name}.do"),
        "date +%s.%N > \"$1.start\"\nsleep 1\ndate +%s.%N > \"$1.end\"\necho done\n",
    );
}

/// `(start, end)` recorded by a [`timed_do`] job.
fn interval(p: &Project, name: &str) -> (f64, f64) {
    let read = |ext: &str| -> f64 {
        let text = p.read(&format!("{name}.{ext}"));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}.{ext}: {text:?}: {e}"))
    };
    (read("start"), read("end"))
}

fn intervals(p: &Project, names: &[&str]) -> Vec<(f64, f64)> {
    names.iter().map(|n| interval(p, n)).collect()
}

fn span(iv: &[(f64, f64)]) -> f64 {
    let start = iv.iter().map(|i| i.0).fold(f64::INFINITY, f64::min);
    let end = iv.iter().map(|i| i.1).fold(f64::NEG_INFINITY, f64::max);
    end - start
}

/// All intervals share one instant.
fn all_overlap(iv: &[(f64, f64)]) -> bool {
    let latest_start = iv.iter().map(|i| i.0).fold(f64::NEG_INFINITY, f64::max);
    let earliest_end = iv.iter().map(|i| i.1).fold(f64::INFINITY, f64::min);
    latest_start < earliest_end
}

/// No two intervals overlap.
fn disjoint(iv: &[(f64, f64)]) -> bool {
    let mut v = iv.to_vec();
    v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    v.windows(2).all(|w| w[0].1 <= w[1].0)
}

fn assert_built_once(p: &Project, names: &[&str]) {
    for n in names {
        assert_eq!(p.runs(&format!("{n}.do")), 1, "{n}.do ran once");
        assert_eq!(p.read(n), "done\n", "{n} was built");
    }
}

/// A run's exit code and output, for assertion messages.
fn show(r: &Run) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

/// Shell-quotes one word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `argv` under a pseudo-terminal (util-linux `script`) with the project's environment;
/// returns everything written to the terminal.
fn under_pty(p: &Project, env: &[(&str, &str)], argv: &[&str]) -> String {
    let cmdline: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
    let mut c = tool(p, "script");
    c.args(["-qfec", &cmdline.join(" "), "/dev/null"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "under a pty: {argv:?}\n{}", show(&r));
    r.stdout
}

// ---------------------------------------------------------------------------------------------
// a. -j N runs N jobs at once

#[test]
fn j2_runs_two_jobs_at_once() {
    let p = Project::new();
    timed_do(&p, "a");
    timed_do(&p, "b");
    let r = run(&p, "redo-ifchange", &["-j", "2", "a", "b"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert_built_once(&p, &["a", "b"]);
    let iv = intervals(&p, &["a", "b"]);
    assert!(
        span(&iv) < 1.8,
        "two 1-second jobs at -j 2 took {:.3}s from first start to last end: {iv:?}",
        span(&iv)
    );
}

#[test]
fn j1_runs_one_job_at_a_time() {
    let p = Project::new();
    timed_do(&p, "a");
    timed_do(&p, "b");
    let r = run(&p, "redo-ifchange", &["-j", "1", "a", "b"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert_built_once(&p, &["a", "b"]);
    let iv = intervals(&p, &["a", "b"]);
    assert!(disjoint(&iv), "jobs overlap at -j 1: {iv:?}");
}

#[test]
fn redo_jobs_variable_is_the_default_limit() {
    let p = Project::new();
    timed_do(&p, "a");
    timed_do(&p, "b");
    let mut c = p.command("redo-ifchange");
    c.env("REDO_JOBS", "2").args(["a", "b"]);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert_built_once(&p, &["a", "b"]);
    let iv = intervals(&p, &["a", "b"]);
    assert!(
        span(&iv) < 1.8,
        "two 1-second jobs with REDO_JOBS=2 took {:.3}s: {iv:?}",
        span(&iv)
    );
}

#[test]
fn j0_is_unlimited() {
    let p = Project::new();
    let names = ["a", "b", "c", "d"];
    for n in names {
        timed_do(&p, n);
    }
    let r = run(&p, "redo-ifchange", &["-j", "0", "a", "b", "c", "d"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert_built_once(&p, &names);
    let iv = intervals(&p, &names);
    assert!(
        all_overlap(&iv),
        "4 jobs at -j 0 do not all overlap: {iv:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// b. never more than N

#[test]
fn peak_concurrency_is_exactly_the_limit() {
    let p = Project::new();
    let count = counter(&p);
    let names: Vec<String> = (1..=8).map(|i| format!("t{i}")).collect();
    for n in &names {
        p.do_file(&format!("{n}.do"), &format!("{count} $1 0.4\necho done\n"));
    }
    let mut args = vec!["-j", "3"];
    args.extend(names.iter().map(String::as_str));
    let r = run(&p, "redo-ifchange", &args);
    assert_eq!(r.code, 0, "{}", show(&r));
    for n in &names {
        assert_eq!(p.read(n), "done\n");
    }
    let (max, log) = peak(&p);
    assert_eq!(
        max, 3,
        "8 jobs at -j 3 must run 3 at a time, no more:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// c, d. make run by a .do draws from the build's tokens

/// `withmake.do` runs `make_cmd -f sub.mk` (6 counted recipes) next to two other counted jobs,
/// at `-j 3`. Returns the run and the MAKEFLAGS the .do saw.
fn make_in_do(make_cmd: &str, redo_make: Option<&str>) -> (Project, Run, String) {
    let p = Project::new();
    let count = counter(&p);
    let mut mk = String::from("all: r1 r2 r3 r4 r5 r6\n.PHONY: all r1 r2 r3 r4 r5 r6\n");
    mk.push_str(&format!("r1 r2 r3 r4 r5 r6:\n\t@{count} make-$@ 0.4\n"));
    p.write("sub.mk", &mk);
    p.do_file(
        "withmake.do",
        &format!(
            "printf '%s\\n' \"$MAKEFLAGS\" > makeflags.txt\n{make_cmd} -f sub.mk >&2\necho done\n"
        ),
    );
    for n in ["other1", "other2"] {
        p.do_file(&format!("{n}.do"), &format!("{count} $1 0.6\necho done\n"));
    }
    let mut c = p.command("redo-ifchange");
    if let Some(style) = redo_make {
        c.env("REDO_MAKE", style);
    }
    c.args(["-j", "3", "withmake", "other1", "other2"]);
    let r = run_cmd(c);
    let mf = fs::read_to_string(p.path("makeflags.txt")).unwrap_or_default();
    (p, r, mf)
}

fn check_make_in_do(p: &Project, r: &Run, mf: &str) {
    assert_eq!(r.code, 0, "{}", show(r));
    assert_built_once(p, &["withmake", "other1", "other2"]);
    for bad in [
        "jobserver unavailable",
        "resetting jobserver",
        "invalid --jobserver-auth",
        "warning",
    ] {
        assert!(
            !r.stderr.contains(bad),
            "make complains ({bad}); MAKEFLAGS={mf}\n{}",
            show(r)
        );
    }
    let (max, log) = peak(p);
    assert!(
        max <= 3,
        "make in a .do and two other jobs ran {max} units at once at -j 3 (MAKEFLAGS={mf}):\n{log}"
    );
    assert_eq!(
        max, 3,
        "make's recipes did not run in parallel with the build's tokens (MAKEFLAGS={mf}):\n{log}"
    );
}

#[test]
fn make_in_a_do_shares_the_tokens_pipe_form() {
    let make = system_make();
    let (p, r, mf) = make_in_do(&sh_quote(&make.display().to_string()), None);
    check_make_in_do(&p, &r, &mf);
    assert!(mf.contains("--jobserver-auth="), "MAKEFLAGS: {mf}");
    assert!(!mf.contains("fifo:"), "pipe form by default: {mf}");
}

#[test]
fn make_in_a_do_shares_the_tokens_fifo_form() {
    let make = make44();
    let (p, r, mf) = make_in_do(&sh_quote(&make.display().to_string()), Some("fifo"));
    check_make_in_do(&p, &r, &mf);
    assert!(mf.contains("--jobserver-auth=fifo:"), "MAKEFLAGS: {mf}");
}

// ---------------------------------------------------------------------------------------------
// e. redo run by make draws from make's tokens

/// A Makefile run with `make -j3 extra...`: six recipes `+redo-ifchange tK`, or one recipe
/// `+redo-ifchange t1 ... t6` (`plus` is the `+`, or nothing); every `tK.do` is a counted
/// unit. Returns the run and the peak.
fn redo_under_make(
    make: &Path,
    extra: &[&str],
    one_recipe: bool,
    plus: &str,
) -> (Run, usize, String) {
    let p = Project::new();
    let count = counter(&p);
    let names: Vec<String> = (1..=6).map(|i| format!("t{i}")).collect();
    for n in &names {
        p.do_file(&format!("{n}.do"), &format!("{count} $1 0.4\necho done\n"));
    }
    let mut mk = String::new();
    if one_recipe {
        mk.push_str(&format!(
            ".PHONY: all\nall:\n\t{plus}redo-ifchange t1 t2 t3 t4 t5 t6\n"
        ));
    } else {
        mk.push_str(".PHONY: all r1 r2 r3 r4 r5 r6\nall: r1 r2 r3 r4 r5 r6\n");
        for i in 1..=6 {
            mk.push_str(&format!("r{i}:\n\t{plus}redo-ifchange t{i}\n"));
        }
    }
    p.write("Makefile", &mk);
    let mut c = tool(&p, make);
    c.arg("-j3").args(extra);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{} -j3 {extra:?}: {}", make.display(), show(&r));
    for n in &names {
        assert_eq!(p.read(n), "done\n");
        assert_eq!(p.runs(&format!("{n}.do")), 1);
    }
    for bad in [
        "jobserver unavailable",
        "resetting jobserver",
        "warn ",
        "warning",
        "make's jobserver",
    ] {
        assert!(
            !r.stderr.contains(bad),
            "{bad:?} in the output of {} -j3 {extra:?}\n{}",
            make.display(),
            show(&r)
        );
    }
    let (max, log) = peak(&p);
    (r, max, log)
}

fn check_redo_under_make(make: &Path, extra: &[&str]) {
    let (_, max, log) = redo_under_make(make, extra, false, "+");
    assert!(
        max <= 3,
        "six `+redo-ifchange tK` recipes under make -j3 {extra:?} ran {max} jobs at once:\n{log}"
    );
    let (_, max, log) = redo_under_make(make, extra, true, "+");
    assert_eq!(
        max, 3,
        "`+redo-ifchange t1 ... t6` under make -j3 {extra:?} must run 3 jobs at once (make's \
         implicit token plus two from its jobserver):\n{log}"
    );
}

#[test]
fn redo_run_by_make_uses_makes_tokens_pipe_form() {
    let make = system_make();
    // make >= 4.4 would use a FIFO unless told otherwise.
    let extra: &[&str] = if is_make44(&make) {
        &["--jobserver-style=pipe"]
    } else {
        &[]
    };
    check_redo_under_make(&make, extra);
}

#[test]
fn redo_run_by_make44_uses_makes_tokens_fifo_form() {
    check_redo_under_make(&make44(), &[]);
}

#[test]
fn redo_run_by_make44_uses_makes_tokens_pipe_style() {
    check_redo_under_make(&make44(), &["--jobserver-style=pipe"]);
}

#[test]
fn redo_run_by_make44_needs_no_plus_with_the_fifo() {
    // make passes its pipe descriptors only to recursive (`+`) recipes; its FIFO is a path.
    let (_, max, log) = redo_under_make(&make44(), &[], true, "");
    assert_eq!(
        max, 3,
        "`redo-ifchange t1 ... t6` (no `+`) under make 4.4 -j3 must run 3 jobs at once:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// f. nesting never deadlocks

#[test]
fn five_levels_of_nesting_at_j1_finish() {
    let p = Project::new();
    for i in 1..5 {
        p.do_file(
            &format!("t{i}.do"),
            &format!("redo-ifchange t{}\necho {i}\n", i + 1),
        );
    }
    p.do_file("t5.do", "echo 5\n");
    let r = run(&p, "redo-ifchange", &["-j", "1", "t1"]);
    assert_eq!(r.code, 0, "{}\n{}", show(&r), p.daemon_log());
    for i in 1..=5 {
        assert_eq!(p.read(&format!("t{i}")), format!("{i}\n"));
        assert_eq!(p.runs(&format!("t{i}.do")), 1);
    }
}

#[test]
fn nested_j_uses_the_builds_pool_and_a_waiting_parent_lends_its_token() {
    let p = Project::new();
    let count = counter(&p);
    let names: Vec<String> = (1..=6).map(|i| format!("c{i}")).collect();
    for n in &names {
        p.do_file(&format!("{n}.do"), &format!("{count} $1 0.4\necho done\n"));
    }
    p.do_file(
        "top.do",
        &format!("redo-ifchange -j 8 {}\necho done\n", names.join(" ")),
    );
    let r = run(&p, "redo-ifchange", &["-j", "2", "top"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert_eq!(p.read("top"), "done\n");
    let (max, log) = peak(&p);
    // docs/differences.md: "-j given to a nested command does not create a new pool"; docs/BEHAVIOUR.md §13: a .do
    // waiting for its dependencies does not occupy a slot.
    assert_eq!(
        max, 2,
        "children of a .do at -j 2 (nested -j 8) must run 2 at a time:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// g. two clients, overlapping targets

#[test]
fn two_clients_share_overlapping_targets() {
    let p = Project::new();
    // The shared targets wait until the test says both clients asked for them.
    for n in ["shared1", "shared2"] {
        p.do_file(
            &format!("{n}.do"),
            "i=0\nwhile [ ! -e go ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\necho done\n",
        );
    }
    p.do_file("own_a.do", "touch started-a\necho done\n");
    p.do_file(
        "own_b.do",
        "touch started-b\necho 'own_b fails' >&2\nexit 4\n",
    );
    // A request's targets start in argument order: at -j 3 each one once the one before it
    // has its job token (or is a flight already running). So a client's own target, last,
    // starts only after that client has started or joined both shared ones.
    let spawn = |own: &str| {
        let mut c = p.command("redo-ifchange");
        c.args(["-j", "3", "shared1", "shared2", own])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn("own_a");
    let b = spawn("own_b");
    // Both clients wait for both shared targets once their own ones have started.
    let started = wait_until(HANG, || p.exists("started-a") && p.exists("started-b"));
    p.write("go", "");
    let a = Run::from_output(a.wait_with_output().unwrap());
    let b = Run::from_output(b.wait_with_output().unwrap());
    assert!(started, "the clients' own targets never started");
    assert_eq!(a.code, 0, "client A: {}", show(&a));
    assert_eq!(b.code, 1, "client B (its own target fails): {}", show(&b));
    assert_eq!(p.runs("shared1.do"), 1, "shared1 built once");
    assert_eq!(p.runs("shared2.do"), 1, "shared2 built once");
    assert_eq!(p.runs("own_a.do"), 1);
    assert_eq!(p.runs("own_b.do"), 1);
    for (who, r) in [("A", &a), ("B", &b)] {
        let names = r.built_names();
        for t in ["shared1", "shared2"] {
            assert!(
                names.iter().any(|l| l == &format!("redo {t}")),
                "client {who} does not show the completion of {t}: {names:?}\n{}",
                show(r)
            );
        }
    }
    assert!(a.built_names().contains(&"redo own_a".to_string()));
    let b_err: Vec<String> = b.stderr.lines().map(strip_duration).collect();
    assert!(
        b_err.contains(&"err  own_b (own_b.do): exit status 4".to_string()),
        "client B shows its failure: {}",
        show(&b)
    );
    assert!(
        !a.stderr.contains("own_b"),
        "client A sees nothing of B's own target: {}",
        show(&a)
    );
}

// ---------------------------------------------------------------------------------------------
// h. a failure among parallel siblings

#[test]
fn failed_job_lets_started_siblings_finish() {
    let p = Project::new();
    for n in ["slow1", "slow2"] {
        p.do_file(
            &format!("{n}.do"),
            "touch \"$1.started\"\nsleep 1\necho done\n",
        );
    }
    p.do_file(
        "bad.do",
        "i=0\nwhile { [ ! -e slow1.started ] || [ ! -e slow2.started ]; } && [ $i -lt 1000 ]; do \
         sleep 0.01; i=$((i+1)); done\nexit 3\n",
    );
    let r = run(&p, "redo-ifchange", &["-j", "3", "slow1", "bad", "slow2"]);
    assert_eq!(r.code, 1, "{}", show(&r));
    assert!(p.exists("slow1.started") && p.exists("slow2.started"));
    assert_eq!(p.read("slow1"), "done\n", "started sibling finished");
    assert_eq!(p.read("slow2"), "done\n", "started sibling finished");
    assert!(!p.exists("bad"));
    let lines: Vec<String> = r.stderr.lines().map(strip_duration).collect();
    let n = lines
        .iter()
        .filter(|l| *l == "err  bad (bad.do): exit status 3")
        .count();
    assert_eq!(n, 1, "the failure is reported exactly once: {}", show(&r));
    let names = r.built_names();
    assert!(
        names.contains(&"redo slow1".to_string()) && names.contains(&"redo slow2".to_string()),
        "{}",
        show(&r)
    );
}

// ---------------------------------------------------------------------------------------------
// i. terminal output of parallel builds

/// Two jobs long enough for the status line (redrawn every 100 ms) to show.
fn status_project() -> Project {
    let p = Project::new();
    for n in ["s1", "s2"] {
        p.do_file(
            &format!("{n}.do"),
            "echo \"chatter from $1\" >&2\nsleep 0.6\necho done\n",
        );
    }
    p
}

fn redo_ifchange_path() -> String {
    redo_tests::bin("redo-ifchange").display().to_string()
}

#[test]
fn status_line_on_a_terminal() {
    let p = status_project();
    let out = under_pty(&p, &[], &[&redo_ifchange_path(), "-j", "2", "s1", "s2"]);
    assert!(out.contains("/2 done"), "no status line: {out:?}");
    assert!(out.contains("running: s"), "no status line: {out:?}");
    assert!(out.contains('\r'), "no carriage return: {out:?}");
    assert!(
        out.contains("redo s1") && out.contains("redo s2"),
        "{out:?}"
    );
    assert!(
        out.contains("\x1b[3"),
        "colours on a terminal without NO_COLOR: {out:?}"
    );
}

/// The second build of the same five targets: the line counts against the five of the first
/// one, estimates the time left from it, and names the `.do` running (only that one: the
/// nested `redo-ifchange` of `all.do` waits, it does not run).
#[test]
fn status_line_counts_against_the_last_build_and_names_what_runs() {
    let p = Project::new();
    let names = ["t1", "t2", "t3", "t4"];
    for n in names {
        p.do_file(&format!("{n}.do"), "redo-always\nsleep 0.4\necho $1\n");
    }
    p.do_file("all.do", "redo-ifchange t1 t2 t3 t4\n");
    let redo = redo_tests::bin("redo").display().to_string();
    let r = run(&p, "redo", &["all"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(
        !r.stderr.contains(" done"),
        "no status line piped: {}",
        show(&r)
    );
    assert!(!r.stderr.contains('\r'), "{}", show(&r));
    let out = under_pty(&p, &[], &[&redo, "all"]);
    // At -j 1: t1, t2, t3 done, t4 running, then all.do again.
    assert!(
        out.contains("3/5 done"),
        "done/total of the last build: {out:?}"
    );
    assert!(
        out.contains("left | running: t4.do"),
        "an estimate, what runs: {out:?}"
    );
    assert!(
        !out.contains("running: all.do"),
        "all.do waits in a nested request, it does not run: {out:?}"
    );
    assert!(out.ends_with("\r\x1b[K"), "erased at the end: {out:?}");
}

#[test]
fn no_status_line_when_disabled() {
    let p = status_project();
    let out = under_pty(
        &p,
        &[("REDO_NO_STATUS", "1")],
        &[&redo_ifchange_path(), "-j", "2", "s1", "s2"],
    );
    assert!(!out.contains(" done"), "REDO_NO_STATUS=1: {out:?}");
    assert!(out.contains("redo s1"), "{out:?}");
    let p = status_project();
    let out = under_pty(
        &p,
        &[],
        &[&redo_ifchange_path(), "-no-status", "-j", "2", "s1", "s2"],
    );
    assert!(!out.contains(" done"), "-no-status: {out:?}");
    assert!(out.contains("redo s1"), "{out:?}");
}

#[test]
fn no_status_line_and_no_escapes_when_stderr_is_a_file() {
    let p = status_project();
    let r = run(&p, "redo-ifchange", &["-j", "2", "s1", "s2"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(!r.stderr.contains(" done"), "{}", show(&r));
    assert!(!r.stderr.contains("running: "), "{}", show(&r));
    assert!(!r.stderr.contains('\x1b'), "{}", show(&r));
    assert!(!r.stderr.contains('\r'), "{}", show(&r));
}

#[test]
fn no_color_keeps_the_status_line_without_colours() {
    let p = status_project();
    let out = under_pty(
        &p,
        &[("NO_COLOR", "1")],
        &[&redo_ifchange_path(), "-j", "2", "s1", "s2"],
    );
    assert!(!out.contains("\x1b[3"), "colour with NO_COLOR=1: {out:?}");
    assert!(
        out.contains("/2 done"),
        "status line with NO_COLOR=1: {out:?}"
    );
    assert!(out.contains("redo s1"), "{out:?}");
}

#[test]
fn silent_hides_do_stderr() {
    let p = status_project();
    let r = run(&p, "redo", &["-s", "-j", "2", "s1", "s2"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(!r.stderr.contains("chatter"), "-s: {}", show(&r));
    assert!(
        r.built_names().contains(&"redo s1".to_string()),
        "{}",
        show(&r)
    );
    let r = run(&p, "redo", &["-j", "2", "s1", "s2"]);
    assert!(r.stderr.contains("chatter from s1"), "{}", show(&r));
}

#[test]
fn parallel_stderr_lines_are_prefixed_with_the_target() {
    let p = status_project();
    let r = run(&p, "redo-ifchange", &["-j", "2", "s1", "s2"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    let lines: Vec<&str> = r.stderr.lines().collect();
    for t in ["s1", "s2"] {
        let want = format!("[{t}] chatter from {t}");
        assert!(lines.contains(&want.as_str()), "-j 2: {}", show(&r));
    }
    let r = run(&p, "redo", &["-j", "1", "s1", "s2"]);
    assert_eq!(r.code, 0, "{}", show(&r));
    let lines: Vec<&str> = r.stderr.lines().collect();
    for t in ["s1", "s2"] {
        let want = format!("chatter from {t}");
        assert!(lines.contains(&want.as_str()), "-j 1: {}", show(&r));
    }
    assert!(!r.stderr.contains('['), "no prefix at -j 1: {}", show(&r));
}
