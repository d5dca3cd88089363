//! Where a build's output goes (docs/BEHAVIOUR.md §15): to the nearest command that asked for it, which
//! writes it to its own stderr. A nested `redo` whose stderr a `.do` redirects (`$(redo x 2>&1)`,
//! `2>/dev/null`) gets the output of what it builds there, not on the top-level terminal; one
//! that is not redirected shows it on the terminal exactly once, as before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use redo_tests::{Project, Run, strip_duration, wait_until};
use std::process::Stdio;
use std::time::Duration;

const HANG: Duration = Duration::from_secs(20);

fn show(r: &Run) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

/// The text between `captured=[` and the last `]` ending a line, in a stderr (the `.do`s below
/// print what they captured that way, last).
fn captured(stderr: &str) -> Option<&str> {
    let start = stderr.find("captured=[")? + "captured=[".len();
    let len = stderr[start..].rfind("]\n")?;
    Some(&stderr[start..start + len])
}

/// Lines of `text` without durations.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(strip_duration).collect()
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

const X_DO: &str = "echo x-stderr >&2\necho x\n";

#[test]
fn command_substitution_captures_nested_output() {
    let p = Project::new();
    p.do_file("x.do", X_DO);
    p.do_file(
        "all.do",
        "out=$(redo x 2>&1)\necho \"captured=[$out]\" >&2\n",
    );
    let r = p.redo(&["all"]).ok();
    let inside = captured(&r.stderr).unwrap_or_else(|| panic!("no capture: {}", show(&r)));
    let inside_lines = lines(inside);
    assert_eq!(
        inside_lines,
        vec!["x-stderr".to_string(), "redo . x".to_string()],
        "the nested redo's stderr holds x's stderr and its completion line: {}",
        show(&r)
    );
    assert_eq!(
        r.stderr.matches("x-stderr").count(),
        1,
        "x's stderr reaches the terminal only inside the captured text: {}",
        show(&r)
    );
    assert_eq!(
        r.stderr.matches("redo . x").count(),
        1,
        "x's completion line only inside the captured text: {}",
        show(&r)
    );
    assert_eq!(count(&lines(&r.stderr), "redo all"), 1, "{}", show(&r));
    assert_eq!(p.read("x"), "x\n");
    assert_eq!(p.runs("x.do"), 1);
    assert_eq!(p.runs("all.do"), 1);
}

#[test]
fn redirected_nested_output_is_silenced() {
    let p = Project::new();
    p.do_file("y.do", "echo y-stderr >&2\necho y\n");
    p.do_file("z.do", "echo z-stderr >&2\necho z\n");
    p.do_file(
        "all.do",
        "redo-ifchange y >/dev/null 2>&1\nredo-ifchange z 2>/dev/null\necho all-done >&2\n",
    );
    let r = p.redo(&["all"]).ok();
    for t in ["y", "z"] {
        assert!(
            !r.stderr.contains(&format!("{t}-stderr")) && !r.stderr.contains(&format!(" {t} (")),
            "{t}'s output went to /dev/null with its requester's stderr: {}",
            show(&r)
        );
        assert_eq!(p.read(t), format!("{t}\n"), "{t} is built all the same");
        assert_eq!(p.runs(&format!("{t}.do")), 1);
    }
    assert_eq!(
        lines(&r.stderr),
        vec!["all-done".to_string(), "redo all".to_string()],
        "{}",
        show(&r)
    );
    assert_eq!(
        p.rec("all").matches("Target: y").count(),
        1,
        "y is recorded"
    );
}

#[test]
fn nested_output_reaches_the_terminal_once_in_order() {
    let p = Project::new();
    p.do_file("x.do", "echo x-stderr >&2\nredo-ifchange w\necho x\n");
    p.do_file("w.do", "echo w-stderr >&2\necho w\n");
    p.do_file(
        "all.do",
        "echo before >&2\nredo-ifchange x\necho after >&2\n",
    );
    let r = p.redo(&["all"]).ok();
    assert_eq!(
        lines(&r.stderr),
        [
            "before",
            "x-stderr",
            "w-stderr",
            "redo . . w",
            "redo . x",
            "after",
            "redo all"
        ]
        .map(String::from)
        .to_vec(),
        "every line once, the .do's own stderr in order with its nested builds: {}",
        show(&r)
    );
    assert_eq!(p.runs("x.do"), 1);
    assert_eq!(p.runs("w.do"), 1);
}

#[test]
fn nested_failure_is_reported_once_where_it_was_asked() {
    let p = Project::new();
    p.do_file("bad.do", "echo bad-stderr >&2\nexit 3\n");
    p.do_file("all.do", "redo-ifchange bad\n");
    let r = p.redo(&["all"]).fails();
    let l = lines(&r.stderr);
    assert_eq!(
        count(&l, "err  . bad (bad.do): exit status 3"),
        1,
        "{}",
        show(&r)
    );
    assert_eq!(count(&l, "bad-stderr"), 1, "{}", show(&r));
    assert_eq!(
        count(&l, "err  all (all.do): exit status 1"),
        1,
        "{}",
        show(&r)
    );

    // The same failure, asked for by a command whose stderr is captured: reported there.
    p.do_file(
        "all.do",
        "out=$(redo-ifchange bad 2>&1) || { echo \"captured=[$out]\" >&2; exit 5; }\n",
    );
    let r = p.redo(&["all"]).fails();
    let inside = lines(captured(&r.stderr).unwrap_or_else(|| panic!("{}", show(&r))));
    assert_eq!(
        inside,
        ["bad-stderr", "err  . bad (bad.do): exit status 3"]
            .map(String::from)
            .to_vec(),
        "{}",
        show(&r)
    );
    assert_eq!(r.stderr.matches("err  . bad").count(), 1, "{}", show(&r));
    assert_eq!(r.stderr.matches("bad-stderr").count(), 1, "{}", show(&r));
    assert_eq!(
        count(&lines(&r.stderr), "err  all (all.do): exit status 5"),
        1,
        "{}",
        show(&r)
    );
}

#[test]
fn a_nested_command_shows_output_as_its_own_options_say() {
    let p = Project::new();
    p.do_file("x.do", X_DO);
    // `-s` silences x's stderr for this nested command only; its redo lines stay.
    p.do_file(
        "all.do",
        "out=$(redo -s x 2>&1)\necho \"captured=[$out]\" >&2\n",
    );
    let r = p.redo(&["all"]).ok();
    let inside = lines(captured(&r.stderr).unwrap_or_else(|| panic!("{}", show(&r))));
    assert_eq!(inside, vec!["redo . x".to_string()], "{}", show(&r));
    assert!(!r.stderr.contains("x-stderr"), "{}", show(&r));
    // `-d` asks this nested command for debug lines; the top-level one did not.
    p.do_file(
        "all.do",
        "out=$(redo -d x 2>&1)\necho \"captured=[$out]\" >&2\n",
    );
    let r = p.redo(&["all"]).ok();
    let inside = captured(&r.stderr).unwrap_or_else(|| panic!("{}", show(&r)));
    assert!(
        inside.contains("dbg  . ") && inside.contains("x-stderr"),
        "debug lines for the command that asked: {}",
        show(&r)
    );
    assert_eq!(
        r.stderr.matches("dbg ").count(),
        inside.matches("dbg ").count(),
        "no debug line outside the capture: {}",
        show(&r)
    );
    assert!(
        !inside.contains('\x1b'),
        "no colour off a terminal: {inside:?}"
    );
    // Not redirected: on the terminal, still as the nested command asked.
    p.do_file("all.do", "redo -d x\necho all-done >&2\n");
    let r = p.redo(&["all"]).ok();
    let l = lines(&r.stderr);
    assert!(
        l.iter().any(|l| l.starts_with("dbg  . x runs [")),
        "the nested command's debug lines: {}",
        show(&r)
    );
    assert_eq!(count(&l, "redo . x"), 1, "{}", show(&r));
    assert!(
        !l.iter().any(|l| l.starts_with("dbg  all")),
        "none for the top-level command's own target: {}",
        show(&r)
    );
}

#[test]
fn captured_nested_output_is_drained() {
    let p = Project::new();
    // Far more than a pipe buffer and the daemon's per-client credit.
    p.do_file(
        "x.do",
        "i=0\nwhile [ $i -lt 5000 ]; do echo \"x-line $i\" >&2; i=$((i+1)); done\necho x\n",
    );
    p.do_file(
        "all.do",
        "out=$(redo-ifchange x 2>&1)\necho \"captured=[$(echo \"$out\" | grep -c x-line)]\" >&2\n\
         redo-ifchange x2 2>&1 | true\necho ok >&2\n",
    );
    p.do_file(
        "x2.do",
        "i=0\nwhile [ $i -lt 5000 ]; do echo \"x2-line $i\" >&2; i=$((i+1)); done\necho x2\n",
    );
    let mut c = p.command("redo");
    c.arg("all").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let done = wait_until(HANG, || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
    }
    let r = Run::from_output(child.wait_with_output().unwrap());
    assert!(done, "the build hung: {}", show(&r));
    let r = r.ok();
    assert_eq!(captured(&r.stderr), Some("5000"), "{}", show(&r));
    assert!(!r.stderr.contains("x-line"), "{}", show(&r));
    assert!(
        !r.stderr.contains("x2-line"),
        "a reader that went away: {}",
        show(&r)
    );
    assert_eq!(p.read("x2"), "x2\n");
    assert_eq!(count(&lines(&r.stderr), "ok"), 1);
}

#[test]
fn a_killed_nested_client_does_not_block_the_build() {
    let p = Project::new();
    p.do_file(
        "x.do",
        "echo x-early >&2\ntouch x.started\ni=0\nwhile [ ! -e go ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n\
         i=0\nwhile [ $i -lt 2000 ]; do echo \"x-line $i\" >&2; i=$((i+1)); done\necho x\n",
    );
    p.do_file(
        "all.do",
        "redo-ifchange x 2>xerr &\nvictim=$!\n\
         i=0\nwhile [ ! -e x.started ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n\
         redo-ifchange x &\nsecond=$!\nsleep 0.3\nkill -9 $victim\ntouch go\nwait $second\n\
         echo all-done >&2\n",
    );
    let mut c = p.command("redo");
    c.arg("all").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let done = wait_until(HANG, || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
    }
    let r = Run::from_output(child.wait_with_output().unwrap());
    assert!(done, "the build hung: {}", show(&r));
    let r = r.ok();
    assert_eq!(p.runs("x.do"), 1, "the remaining client kept x's build");
    assert_eq!(p.read("x"), "x\n");
    let l = lines(&r.stderr);
    assert_eq!(count(&l, "x-line 1999"), 1, "{}", show(&r));
    // Before the other client came, x's output was the first one's: it went to its file.
    assert!(!r.stderr.contains("x-early"), "{}", show(&r));
    assert_eq!(p.read("xerr"), "x-early\n");
    assert_eq!(count(&l, "redo . x"), 1, "{}", show(&r));
    assert_eq!(count(&l, "all-done"), 1, "{}", show(&r));
}

#[test]
fn two_clients_sharing_a_build_both_get_captured_output() {
    let p = Project::new();
    p.do_file(
        "x.do",
        "i=0\nwhile [ ! -e go ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n\
         echo x-stderr >&2\necho x\n",
    );
    p.do_file(
        "all.do",
        "touch all.started\nout=$(redo-ifchange x 2>&1)\necho \"captured=[$out]\" >&2\n",
    );
    let spawn = || {
        let mut c = p.command("redo-ifchange");
        c.arg("all").stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn();
    let started = wait_until(HANG, || p.exists("all.started"));
    let b = spawn();
    // B's request is in (it joined all's build).
    std::thread::sleep(Duration::from_millis(300));
    p.write("go", "");
    let a = Run::from_output(a.wait_with_output().unwrap());
    let b = Run::from_output(b.wait_with_output().unwrap());
    assert!(started);
    assert_eq!(p.runs("all.do"), 1, "one build of all");
    assert_eq!(p.runs("x.do"), 1);
    for (who, r) in [("A", &a), ("B", &b)] {
        assert_eq!(r.code, 0, "client {who}: {}", show(r));
        let inside = lines(captured(&r.stderr).unwrap_or_else(|| panic!("{who}: {}", show(r))));
        assert_eq!(
            inside,
            ["x-stderr", "redo . x"].map(String::from).to_vec(),
            "client {who}: {}",
            show(r)
        );
        assert_eq!(
            r.stderr.matches("x-stderr").count(),
            1,
            "{who}: {}",
            show(r)
        );
        assert_eq!(
            count(&lines(&r.stderr), "redo all"),
            1,
            "{who}: {}",
            show(r)
        );
    }
}

#[test]
fn events_stay_complete() {
    let p = Project::new();
    p.do_file("x.do", X_DO);
    p.do_file("z.do", "echo z-stderr >&2\necho z\n");
    p.do_file(
        "all.do",
        "out=$(redo-ifchange x 2>&1)\necho \"captured=[$out]\" >&2\nredo-ifchange z\n",
    );
    let r = p.ifchange(&["--events=json", "all"]).ok();
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().filter(|e| f(e)).count();
    for t in ["x", "z"] {
        assert_eq!(
            has(&|e| e["type"] == "target" && e["event"] == "finished" && e["target"] == t),
            1,
            "{t} finished: {}",
            r.stdout
        );
        let line = format!("{t}-stderr");
        assert_eq!(
            has(&|e| e["type"] == "stderr" && e["line"] == line.as_str()),
            1,
            "{t}'s stderr once, as its own: {}",
            r.stdout
        );
        assert_eq!(
            has(&|e| e["type"] == "stderr" && e["line"] == line.as_str() && e["target"] == t),
            1,
            "{}",
            r.stdout
        );
    }
    assert_eq!(
        has(&|e| e["type"] == "stderr"
            && e["target"] == "all"
            && e["line"] == "captured=[x-stderr"),
        1,
        "what all.do captured and printed is all's stderr: {}",
        r.stdout
    );
    assert_eq!(count(&lines(&r.stderr), "z-stderr"), 1, "{}", show(&r));
}

#[test]
fn kept_logs_hold_each_jobs_own_stderr() {
    let p = Project::new();
    p.do_file("x.do", X_DO);
    p.do_file("z.do", "echo z-stderr >&2\necho z\n");
    p.do_file(
        "all.do",
        "out=$(redo-ifchange x 2>&1)\necho \"captured=[$out]\" >&2\nredo-ifchange z\n",
    );
    let r = p.redo(&["-k", "all"]).ok();
    let x_log = p.read(".redo/x.log");
    assert!(x_log.contains(" x-stderr\n"), "x.log: {x_log}");
    let all_log = p.read(".redo/all.log");
    assert!(
        all_log.contains(" captured=[x-stderr\n"),
        "all.log has what all.do printed: {all_log}"
    );
    assert!(
        !all_log.contains("z-stderr") && !all_log.contains("redo . z"),
        "z's output is z's, not all's: {all_log}"
    );
    assert!(p.read(".redo/z.log").contains(" z-stderr\n"));
    assert_eq!(count(&lines(&r.stderr), "z-stderr"), 1, "{}", show(&r));
}
