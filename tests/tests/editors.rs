#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The editor integrations of `contrib/editors`, run against real redo output: a C project
//! whose build fails with gcc/clang errors and warnings, built with `-j 1` and `-j 2` (where
//! redo prefixes each line of a `.do`'s stderr with `[target] `).
//!
//! * VS Code: `vscode/tasks.json` is parsed as plain JSON and its problem-matcher regexes are
//!   applied to the output the way VS Code does (including the watch task's begin/end patterns
//!   on a real `redo --watch --events=json` session);
//! * Vim: a headless `vim -N -u NONE -i NONE -es` loads the output with the compiler plugin
//!   (`:cgetfile`), runs `:make`, and runs `:RedoWatch` while a source is fixed;
//! * Emacs: `emacs --batch -Q -l contrib/editors/emacs/redo.el` runs `redo-compile`, parses a
//!   `-j 2` output in a compilation buffer, and runs `redo-watch` while a source is fixed.
//!
//! Every message an editor extracts is compared with what an independent parser finds in the
//! same output. Vim, Emacs and a C compiler must be installed (`tests/setup-and-test.sh` installs them).

use redo_tests::{Project, Run, bin_dir};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAIN_BAD: &str = "int main(void)\n{\n    int unused;\n    return missing;\n}\n";
const UTIL_BAD: &str = "int util(int x)\n{\n    return x +;\n}\n";
const MAIN_OK: &str = "int main(void)\n{\n    return 0;\n}\n";
const UTIL_OK: &str = "int util(int x)\n{\n    return x + 1;\n}\n";

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("contrib/editors")
}

#[track_caller]
fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin").join(program).is_file();
    assert!(
        found,
        "`{program}` is not installed: run tests/setup-and-test.sh (it installs {package}), or install {package}"
    );
}

/// A C project: `all` ← `main.o`, `lib/util.o`, compiled by one `default.o.do` at the top
/// (so compiler paths are relative to the project root). Built once successfully (so that a
/// watch knows its inputs from the start), then both sources broken.
fn c_project() -> Project {
    require("cc", "gcc");
    let p = Project::new();
    p.write(
        "default.o.do",
        "redo-ifchange \"$2.c\"\ncc -Wall -c -o \"$3\" \"$2.c\"\n",
    );
    p.write("all.do", "redo-ifchange main.o lib/util.o\n");
    p.write("main.c", MAIN_OK);
    p.write("lib/util.c", UTIL_OK);
    build(&p, &[]).ok();
    p.write("main.c", MAIN_BAD);
    p.write("lib/util.c", UTIL_BAD);
    p
}

/// `redo-ifchange args all` in the C locale (plain quotes in compiler messages).
fn build(p: &Project, args: &[&str]) -> Run {
    let mut c = p.command("redo-ifchange");
    c.args(args).arg("all").env("LC_ALL", "C");
    Run::from_output(c.output().unwrap())
}

/// The failing build's stderr at `-j 1` and `-j 2`.
#[track_caller]
fn failing_outputs(p: &Project) -> [String; 2] {
    let j1 = build(p, &["-j", "1"]).fails().stderr;
    let j2 = build(p, &["-j", "2"]).fails().stderr;
    assert!(
        j2.lines().any(|l| l.starts_with("[main.o] ")),
        "no [target] prefix at -j 2:\n{j2}"
    );
    [j1, j2]
}

/// An editor, with the project's environment (its own daemon, the redo binaries first on
/// PATH, the C locale).
fn editor(p: &Project, program: &str) -> Command {
    let mut c = Command::new(program);
    c.current_dir(&p.root)
        .env("XDG_RUNTIME_DIR", &p.rundir)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display()),
        )
        .env("REDO_NO_SYNC", "1")
        .env("REDO_DAEMON_IDLE", "120")
        .env("LC_ALL", "C")
        .env("HOME", p.root.join(".home"))
        .env("TERM", "dumb")
        .env_remove("REDO_SOCKET")
        .env_remove("REDO_JOB")
        .env_remove("REDO_JOBS")
        .env_remove("REDO_TOP_DIR")
        .env_remove("REDO_BUILD_UUID")
        .env_remove("MAKEFLAGS")
        .env_remove("VIMINIT")
        .env_remove("EXINIT")
        .stdin(Stdio::null());
    c
}

/// Runs `c`, killing it after `limit`.
#[track_caller]
fn run_limited(mut c: Command, limit: Duration, what: &str) -> Run {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from_output(child.wait_with_output().unwrap())
}

// ---------------------------------------------------------------------------------------------
// What the output says, by an independent parser.

/// A compiler message: `file:line:col: error|warning|note: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Diag {
    file: String,
    line: u32,
    col: u32,
    /// `error`, `warning` or `note`.
    severity: String,
    message: String,
}

/// redo's failure line: `err  . target (do) (0.012s): message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ErrLine {
    target: String,
    do_file: String,
    /// What follows the duration.
    message: String,
    /// Everything after the nesting dots.
    text: String,
}

fn without_job_prefix(l: &str) -> &str {
    if l.starts_with('[') {
        if let Some(i) = l.find("] ") {
            return &l[i + 2..];
        }
    }
    l
}

fn parse_diag(l: &str) -> Option<Diag> {
    let l = without_job_prefix(l);
    let mut it = l.splitn(4, ':');
    let file = it.next()?;
    let line = it.next()?.parse().ok()?;
    let col = it.next()?.parse().ok()?;
    let rest = it.next()?.strip_prefix(' ')?;
    for (severity, key) in [
        ("error", "fatal error: "),
        ("error", "error: "),
        ("warning", "warning: "),
        ("note", "note: "),
    ] {
        if let Some(m) = rest.strip_prefix(key) {
            return Some(Diag {
                file: file.to_string(),
                line,
                col,
                severity: severity.into(),
                message: m.to_string(),
            });
        }
    }
    None
}

fn parse_err(l: &str) -> Option<ErrLine> {
    let mut rest = l.strip_prefix("err  ")?;
    while let Some(r) = rest.strip_prefix(". ") {
        rest = r;
    }
    let text = rest.to_string();
    let open = rest.find(" (")?;
    let target = &rest[..open];
    let after = &rest[open + 2..];
    let close = after.find(')')?;
    let do_file = &after[..close];
    if !do_file.ends_with(".do") {
        return None;
    }
    let mut tail = &after[close + 1..];
    if let Some(t) = tail.strip_prefix(" (") {
        let c = t.find(')')?;
        tail = &t[c + 1..];
    }
    Some(ErrLine {
        target: target.into(),
        do_file: do_file.into(),
        message: tail.strip_prefix(": ")?.into(),
        text,
    })
}

fn diags(out: &str) -> Vec<Diag> {
    out.lines().filter_map(parse_diag).collect()
}

fn errs(out: &str) -> Vec<ErrLine> {
    out.lines().filter_map(parse_err).collect()
}

/// The messages every C compiler gives for the two broken files.
#[track_caller]
fn assert_expected_diags(d: &[Diag], out: &str) {
    let has = |file: &str, line: u32, col: u32, sev: &str, word: &str| {
        d.iter().any(|x| {
            x.file == file
                && x.line == line
                && x.col == col
                && x.severity == sev
                && x.message.contains(word)
        })
    };
    assert!(has("main.c", 4, 12, "error", "missing"), "{d:#?}\n{out}");
    assert!(has("main.c", 3, 9, "warning", "unused"), "{d:#?}\n{out}");
    assert!(
        has("lib/util.c", 3, 15, "error", "expected"),
        "{d:#?}\n{out}"
    );
}

#[track_caller]
fn assert_expected_errs(e: &[ErrLine], out: &str) {
    let mut got: Vec<(&str, &str, &str)> = e
        .iter()
        .map(|x| (x.target.as_str(), x.do_file.as_str(), x.message.as_str()))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            ("all", "all.do", "exit status 1"),
            ("lib/util.o", "../default.o.do", "exit status 1"),
            ("main.o", "default.o.do", "exit status 1"),
        ],
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// VS Code.

fn tasks_json() -> Value {
    let path = contrib().join("vscode/tasks.json");
    let text = fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not plain JSON ({e}); VS Code accepts comments there, but keep it plain",
            path.display()
        )
    })
}

fn task<'a>(tasks: &'a Value, label: &str) -> &'a Value {
    tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no task {label:?} in tasks.json"))
}

/// One problem as VS Code would report it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    file: String,
    line: Option<u32>,
    col: Option<u32>,
    /// `error`, `warning` or `info`.
    severity: String,
    message: String,
}

struct Matcher {
    re: regex::Regex,
    file: usize,
    line: Option<usize>,
    column: Option<usize>,
    severity: Option<usize>,
    message: usize,
    whole_file: bool,
    default_severity: String,
    begins: Option<regex::Regex>,
    ends: Option<regex::Regex>,
    active_on_start: bool,
}

fn group(pattern: &Value, key: &str) -> Option<usize> {
    pattern[key].as_u64().map(|n| n as usize)
}

fn matchers(task: &Value) -> Vec<Matcher> {
    let list = match &task["problemMatcher"] {
        Value::Array(a) => a.clone(),
        m @ Value::Object(_) => vec![m.clone()],
        other => panic!("problemMatcher {other}"),
    };
    list.iter()
        .map(|m| {
            assert_eq!(
                m["fileLocation"],
                serde_json::json!(["relative", "${workspaceFolder}"]),
                "{m}"
            );
            let pat = &m["pattern"];
            let bg = &m["background"];
            let re = |v: &Value| {
                v.as_str()
                    .map(|s| regex::Regex::new(s).unwrap_or_else(|e| panic!("{s}: {e}")))
            };
            Matcher {
                re: re(&pat["regexp"]).expect("pattern.regexp"),
                file: group(pat, "file").expect("pattern.file"),
                line: group(pat, "line"),
                column: group(pat, "column"),
                severity: group(pat, "severity"),
                message: group(pat, "message").expect("pattern.message"),
                whole_file: pat["kind"] == "file",
                default_severity: m["severity"].as_str().unwrap_or("error").to_string(),
                begins: re(&bg["beginsPattern"]),
                ends: re(&bg["endsPattern"]),
                active_on_start: bg["activeOnStart"] == true,
            }
        })
        .collect()
}

/// VS Code's severity rules (`Severity.fromValue`, then its fallbacks).
fn vscode_severity(value: Option<&str>, default: &str) -> String {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("error") | Some("e") => "error".into(),
        Some("warning") | Some("warn") | Some("w") => "warning".into(),
        Some("info") | Some("i") | Some("note") | Some("hint") => "info".into(),
        _ => default.into(),
    }
}

fn problem(m: &Matcher, line: &str) -> Option<Problem> {
    let c = m.re.captures(line)?;
    let get = |i: Option<usize>| i.and_then(|i| c.get(i)).map(|x| x.as_str());
    let num = |i: Option<usize>| get(i).map(|s| s.parse::<u32>().unwrap());
    Some(Problem {
        file: get(Some(m.file))?.to_string(),
        line: if m.whole_file { None } else { num(m.line) },
        col: if m.whole_file { None } else { num(m.column) },
        severity: vscode_severity(get(m.severity), &m.default_severity),
        message: get(Some(m.message))?.to_string(),
    })
}

/// The problems of an output, asserting no line gives two.
#[track_caller]
fn vscode_problems(ms: &[Matcher], out: &str) -> Vec<Problem> {
    let mut v = Vec::new();
    for l in out.lines() {
        let found: Vec<Problem> = ms.iter().filter_map(|m| problem(m, l)).collect();
        assert!(found.len() <= 1, "two matchers took {l:?}: {found:?}");
        v.extend(found);
    }
    v
}

/// What VS Code should find, from the independent parse.
fn expected_problems(out: &str) -> Vec<Problem> {
    let mut v = Vec::new();
    for l in out.lines() {
        if let Some(d) = parse_diag(l) {
            v.push(Problem {
                file: d.file,
                line: Some(d.line),
                col: Some(d.col),
                severity: vscode_severity(Some(&d.severity), "error"),
                message: d.message,
            });
        } else if let Some(e) = parse_err(l) {
            v.push(Problem {
                file: e.do_file,
                line: None,
                col: None,
                severity: "error".into(),
                message: e.text,
            });
        }
    }
    v
}

#[test]
fn vscode_tasks_problem_matchers_extract_real_redo_output() {
    let tasks = tasks_json();
    assert_eq!(tasks["version"], "2.0.0");
    let build_task = task(&tasks, "redo");
    assert_eq!(build_task["command"], "redo-ifchange");
    assert_eq!(build_task["args"], serde_json::json!(["all"]));
    assert_eq!(build_task["group"]["kind"], "build");
    let watch_task = task(&tasks, "redo watch");
    assert_eq!(watch_task["command"], "redo");
    assert_eq!(watch_task["isBackground"], true);
    let args: Vec<&str> = watch_task["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--watch") && args.last() == Some(&"all"),
        "{args:?}"
    );

    let p = c_project();
    let build_ms = matchers(build_task);
    let watch_ms = matchers(watch_task);
    assert!(
        watch_ms
            .iter()
            .all(|m| m.begins.is_some() && m.ends.is_some())
    );
    for (j, out) in failing_outputs(&p).iter().enumerate() {
        let want = expected_problems(out);
        assert_expected_diags(&diags(out), out);
        assert_expected_errs(&errs(out), out);
        for (name, ms) in [("redo", &build_ms), ("redo watch", &watch_ms)] {
            let got = vscode_problems(ms, out);
            assert_eq!(got, want, "task {name:?}, -j {}:\n{out}", j + 1);
        }
        // The compiler paths are right relative to the workspace (the .do runs at the top).
        for pr in want.iter().filter(|pr| pr.line.is_some()) {
            assert!(p.path(&pr.file).is_file(), "{pr:?}");
        }
        let severities: Vec<&str> = want.iter().map(|p| p.severity.as_str()).collect();
        assert!(severities.contains(&"warning") && severities.contains(&"error"));
    }
    // redo's own lines never pass for problems.
    for l in [
        "redo . main.o (default.o.do) (0.012s)",
        "redo: failed; watching 8 inputs for changes (Ctrl-C to stop)",
        "warn out externally modified: not redoing",
        r#"{"line":"main.c:4:12: error: x","target":"main.o","time":1.0,"type":"stderr","v":1}"#,
    ] {
        assert!(vscode_problems(&build_ms, l).is_empty(), "{l}");
    }
}

/// The watch task on a real `redo --watch --events=json` session (stdout and stderr merged in
/// order, as in VS Code's terminal): each round is one problem-collection cycle.
#[test]
fn vscode_watch_task_delimits_each_round() {
    let tasks = tasks_json();
    let watch_task = task(&tasks, "redo watch");
    let ms = matchers(watch_task);
    let p = c_project();
    let args: Vec<String> = watch_task["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut c = p.command("redo");
    c.args(&args)
        .env("LC_ALL", "C")
        .env("REDO_NO_STATUS", "1")
        .stdout(Stdio::from(w.try_clone().unwrap()))
        .stderr(Stdio::from(w));
    let mut child = c.spawn().unwrap();
    drop(c);
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(fs::File::from(r)).lines() {
            let Ok(l) = l else { return };
            l2.lock().unwrap().push(l);
        }
    });
    let ends = |n: usize| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let count = lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("redo: ") && l.contains("; watching "))
                .count();
            if count >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    };
    let fixes = [("main.c", MAIN_OK), ("lib/util.c", UTIL_OK)];
    let mut ok = ends(1);
    for (i, (f, c)) in fixes.iter().enumerate() {
        if !ok {
            break;
        }
        p.write(f, c);
        ok = ends(i + 2);
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = child.wait();
    reader.join().unwrap();
    let transcript = lines.lock().unwrap().join("\n");
    assert!(ok, "the watch did not run 3 rounds:\n{transcript}");

    // VS Code's background collector: a begin line (while inactive) opens a cycle, an end
    // line closes it; lines that match begin or end are not problems.
    let mut active = ms[0].active_on_start;
    let mut cycles: Vec<Vec<Problem>> = vec![Vec::new()];
    let mut closed = 0;
    for l in transcript.lines() {
        if !active && ms.iter().any(|m| m.begins.as_ref().unwrap().is_match(l)) {
            active = true;
            cycles.push(Vec::new());
            continue;
        }
        if active && ms.iter().any(|m| m.ends.as_ref().unwrap().is_match(l)) {
            active = false;
            closed += 1;
            continue;
        }
        cycles.last_mut().unwrap().extend(vscode_problems(&ms, l));
    }
    assert_eq!(closed, 3, "{transcript}");
    assert_eq!(cycles.len(), 3, "each round opens a cycle:\n{transcript}");
    let files = |c: &[Problem]| -> Vec<String> {
        let mut f: Vec<String> = c
            .iter()
            .filter(|p| p.line.is_some() && p.severity == "error")
            .map(|p| p.file.clone())
            .collect();
        f.sort();
        f.dedup();
        f
    };
    assert_eq!(files(&cycles[0]), ["lib/util.c", "main.c"], "{transcript}");
    assert_eq!(files(&cycles[1]), ["lib/util.c"], "{transcript}");
    assert!(cycles[2].is_empty(), "{:?}\n{transcript}", cycles[2]);
}

// ---------------------------------------------------------------------------------------------
// Vim.

fn vim_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs a Vim script headless in the project; the lines it wrote to `result`.
#[track_caller]
fn run_vim(p: &Project, script: &str) -> Vec<String> {
    require("vim", "vim-nox");
    let result = p.root.join(".vim-result");
    let _ = fs::remove_file(&result);
    let file = p.root.join(".test.vim");
    let full = format!(
        "set rtp^={dir}\nlet g:result = {res}\nlet g:out = []\n{script}\ncall writefile(g:out, g:result)\nqa!\n",
        dir = contrib().join("vim").display(),
        res = vim_string(&result.to_string_lossy()),
    );
    fs::write(&file, full).unwrap();
    let mut c = editor(p, "vim");
    c.args(["-N", "-u", "NONE", "-i", "NONE", "-es", "-S"])
        .arg(&file);
    let r = run_limited(c, Duration::from_secs(120), "vim");
    let text = fs::read_to_string(&result).unwrap_or_else(|e| {
        panic!("vim wrote no result ({e}); it said:\n{r:?}\nscript:\n{script}")
    });
    text.lines().map(str::to_string).collect()
}

const VIM_DUMP: &str = r#"
function! Dump(tag) abort
  call add(g:out, '== ' . a:tag)
  for e in getqflist()
    call add(g:out, printf('%s|%d|%d|%s|%s|%s|%d', bufname(e.bufnr), e.lnum, e.col, e.type, get(e, 'module', ''), e.text, e.valid))
  endfor
endfunction
"#;

/// Quickfix entries per `== tag` section.
fn sections(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines {
        if let Some(t) = l.strip_prefix("== ") {
            out.push((t.to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(l.clone());
        }
    }
    out
}

/// The quickfix entries Vim should make of an output.
fn expected_qf(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    for l in out.lines() {
        if let Some(d) = parse_diag(l) {
            v.push(format!(
                "{}|{}|{}|{}||{}|1",
                d.file,
                d.line,
                d.col,
                &d.severity[..1],
                d.message
            ));
        } else if let Some(e) = parse_err(l) {
            v.push(format!("{}|0|0|e|{}|{}|1", e.do_file, e.target, e.message));
        }
    }
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn vim_compiler_plugin_fills_the_quickfix_list() {
    let p = c_project();
    let outs = failing_outputs(&p);
    for (i, o) in outs.iter().enumerate() {
        fs::write(p.root.join(format!(".out-j{}.txt", i + 1)), o).unwrap();
    }
    let script = format!(
        "{VIM_DUMP}\nsource {compiler}\ncall add(g:out, '== makeprg')\ncall add(g:out, &l:makeprg)\n\
         cgetfile .out-j1.txt\ncall Dump('j1')\ncgetfile .out-j2.txt\ncall Dump('j2')\n\
         silent make!\ncall Dump('make')\n",
        compiler = contrib().join("vim/compiler/redo.vim").display()
    );
    let got = sections(&run_vim(&p, &script));
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["makeprg", "j1", "j2", "make"], "{got:#?}");
    assert_eq!(got[0].1, ["redo-ifchange $*"]);
    for (i, o) in outs.iter().enumerate() {
        assert_expected_diags(&diags(o), o);
        assert_expected_errs(&errs(o), o);
        assert_eq!(got[i + 1].1, expected_qf(o), "-j {}:\n{o}", i + 1);
    }
    // :make runs redo-ifchange (all) itself: the same entries as the -j 1 output, in the
    // order that build happened to print them.
    assert_eq!(
        sorted(got[3].1.clone()),
        sorted(expected_qf(&outs[0])),
        "{got:#?}"
    );
}

#[test]
fn vim_redo_watch_follows_the_rounds() {
    let p = c_project();
    let script = format!(
        "{VIM_DUMP}\nruntime plugin/redo.vim\n\
         function! Wait(n) abort\n  let i = 0\n  while g:redo_watch_rounds < a:n && i < 6000\n    sleep 10m\n    let i += 1\n  endwhile\nendfunction\n\
         RedoWatch all\ncall Wait(1)\ncall Dump('round 1: ' . g:redo_watch_status)\n\
         call writefile({main}, 'main.c')\ncall Wait(2)\ncall Dump('round 2: ' . g:redo_watch_status)\n\
         call writefile({util}, 'lib/util.c')\ncall Wait(3)\ncall Dump('round 3: ' . g:redo_watch_status)\n\
         call add(g:out, '== watching ' . redo#watching())\nRedoWatchStop\ncall add(g:out, '== stopped ' . redo#watching())\n",
        main = vim_list(MAIN_OK),
        util = vim_list(UTIL_OK),
    );
    let got = sections(&run_vim(&p, &script));
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 5, "{got:#?}");
    assert!(
        names[0].starts_with("round 1: redo: failed; watching"),
        "{got:#?}"
    );
    assert!(
        names[1].starts_with("round 2: redo: failed; watching"),
        "{got:#?}"
    );
    assert!(
        names[2].starts_with("round 3: redo: built; watching"),
        "{got:#?}"
    );
    assert_eq!(&names[3..], ["watching 1", "stopped 0"]);
    let errors_in = |entries: &[String]| -> Vec<String> {
        let mut f: Vec<String> = entries
            .iter()
            .filter(|e| e.split('|').nth(3) == Some("e") && e.split('|').nth(1) != Some("0"))
            .map(|e| e.split('|').next().unwrap().to_string())
            .collect();
        f.sort();
        f.dedup();
        f
    };
    assert_eq!(errors_in(&got[0].1), ["lib/util.c", "main.c"], "{got:#?}");
    assert!(
        got[0]
            .1
            .iter()
            .any(|e| e.starts_with("main.c|3|9|w||unused variable")),
        "{got:#?}"
    );
    assert_eq!(errors_in(&got[1].1), ["lib/util.c"], "{got:#?}");
    assert!(got[2].1.is_empty(), "{got:#?}");
}

fn vim_list(text: &str) -> String {
    let items: Vec<String> = text.lines().map(vim_string).collect();
    format!("[{}]", items.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Emacs.

fn elisp_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Helpers: `(redo-test-dump TAG FROM)` writes every message parsed after position FROM in
/// the current buffer, one per line: `file|line|col|type|line text`.
const ELISP_HELPERS: &str = r#"
(defvar redo-test-out nil)
(defun redo-test-dump (tag from)
  (compilation--ensure-parse (point-max))
  (push (concat "== " tag) redo-test-out)
  (save-excursion
    (goto-char from)
    (while (not (eobp))
      (let ((msgs nil) (p (line-beginning-position)))
        (while (< p (line-end-position))
          (let ((m (get-text-property p 'compilation-message)))
            (when (and m (not (memq m msgs))) (push m msgs)))
          (setq p (1+ p)))
        (dolist (msg (nreverse msgs))
          (let* ((loc (compilation--message->loc msg))
                 (fs (compilation--loc->file-struct loc)))
            (push (format "%s|%s|%s|%s|%s" (caar fs)
                          (or (compilation--loc->line loc) 0)
                          (or (compilation--loc->col loc) 0)
                          (compilation--message->type msg)
                          (buffer-substring-no-properties (line-beginning-position)
                                                          (line-end-position)))
                  redo-test-out))))
      (forward-line 1))))
(defun redo-test-wait (buf pred)
  (let ((n 0))
    (while (and (< n 1200) (not (with-current-buffer buf (funcall pred))))
      (accept-process-output nil 0.05)
      (setq n (1+ n)))))
(defun redo-test-rounds ()
  (save-excursion
    (goto-char (point-min))
    (let ((n 0))
      (while (re-search-forward "^redo: \\(built\\|failed\\); watching " nil t)
        (setq n (1+ n)))
      n)))
"#;

#[track_caller]
fn run_emacs(p: &Project, body: &str) -> Vec<String> {
    require("emacs", "emacs-nox");
    let result = p.root.join(".emacs-result");
    let _ = fs::remove_file(&result);
    let file = p.root.join(".test.el");
    let full = format!(
        "{ELISP_HELPERS}\n(setq default-directory {dir})\n(condition-case err (progn {body}) (error (push (format \"== lisp error %S\" err) redo-test-out)))\n\
         (with-temp-file {res} (insert (mapconcat #'identity (nreverse redo-test-out) \"\\n\")))\n",
        dir = elisp_string(&format!("{}/", p.root.display())),
        res = elisp_string(&result.to_string_lossy()),
    );
    fs::write(&file, full).unwrap();
    let mut c = editor(p, "emacs");
    c.args(["--batch", "-Q", "-l"])
        .arg(contrib().join("emacs/redo.el"))
        .arg("-l")
        .arg(&file);
    let r = run_limited(c, Duration::from_secs(120), "emacs");
    let text = fs::read_to_string(&result)
        .unwrap_or_else(|e| panic!("emacs wrote no result ({e}); it said:\n{r:?}"));
    text.lines().map(str::to_string).collect()
}

/// The messages Emacs should parse from an output: `file|line|col|type|text`, with the .do of
/// an `err` line resolved against its target's directory.
fn expected_emacs(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    for l in out.lines() {
        if let Some(d) = parse_diag(l) {
            let ty = match d.severity.as_str() {
                "error" => 2,
                "warning" => 1,
                _ => 0,
            };
            v.push(format!("{}|{}|{}|{ty}|{l}", d.file, d.line, d.col));
        } else if let Some(e) = parse_err(l) {
            let dir = Path::new(&e.target).parent().unwrap();
            let mut resolved = PathBuf::new();
            for c in dir.join(&e.do_file).components() {
                match c {
                    std::path::Component::ParentDir => {
                        resolved.pop();
                    }
                    std::path::Component::Normal(n) => resolved.push(n),
                    _ => {}
                }
            }
            v.push(format!("{}|0|0|2|{l}", resolved.display()));
        }
    }
    v
}

#[test]
fn emacs_compile_integration_parses_real_redo_output() {
    let p = c_project();
    let outs = failing_outputs(&p);
    fs::write(p.root.join(".out-j2.txt"), &outs[1]).unwrap();
    let body = r#"
(redo-compile "all")
(let ((buf (get-buffer "*compilation*")))
  (redo-test-wait buf (lambda () (not (get-buffer-process (current-buffer)))))
  (with-current-buffer buf
    (push (concat "== mode " (symbol-name major-mode)) redo-test-out)
    (redo-test-dump "compile" (point-min))
    (push "== text" redo-test-out)
    (dolist (l (split-string (buffer-substring-no-properties (point-min) (point-max)) "\n"))
      (push l redo-test-out))))
(with-current-buffer (get-buffer-create "*j2*")
  (insert-file-contents ".out-j2.txt")
  (compilation-mode)
  (redo-test-dump "j2" (point-min)))
(push (concat "== command " (redo--command redo-ifchange-program "all")) redo-test-out)
"#;
    let got = sections(&run_emacs(&p, body));
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 5, "{got:#?}");
    assert_eq!(
        &names[..4],
        ["mode compilation-mode", "compile", "text", "j2"],
        "{got:#?}"
    );
    assert!(
        names[4].starts_with("command env NO_COLOR") && names[4].ends_with("redo-ifchange all"),
        "{}",
        names[4]
    );
    // redo-compile: every message of the real output in the buffer is parsed, the .do of
    // `lib/util.o` resolved to the one at the top; nothing else is.
    let compile = &got[1].1;
    let text = got[2].1.join("\n");
    assert_expected_diags(&diags(&text), &text);
    assert_expected_errs(&errs(&text), &text);
    assert_eq!(compile, &expected_emacs(&text), "{text}");
    assert!(
        compile
            .iter()
            .any(|e| e.starts_with("default.o.do|0|0|2|err  . lib/util.o (../default.o.do)")),
        "{compile:#?}"
    );
    assert!(compile.iter().any(|e| e.starts_with("main.c|4|12|2|")));
    assert!(compile.iter().any(|e| e.starts_with("main.c|3|9|1|")));
    // A -j 2 output: the `[target] ` prefix is not part of the file name.
    assert_eq!(got[3].1, expected_emacs(&outs[1]), "{}", outs[1]);
    assert!(
        got[3]
            .1
            .iter()
            .any(|e| e.starts_with("lib/util.c|3|15|2|[lib/util.o] "))
    );
}

#[test]
fn emacs_redo_watch_parses_each_round() {
    let p = c_project();
    let body = format!(
        r#"
(redo-watch "all")
(let ((buf (get-buffer "*redo-watch*")) (start nil))
  (redo-test-wait buf (lambda () (>= (redo-test-rounds) 1)))
  (with-current-buffer buf (redo-test-dump "round 1" (point-min)) (setq start (point-max)))
  (with-temp-file "main.c" (insert {main}))
  (redo-test-wait buf (lambda () (>= (redo-test-rounds) 2)))
  (with-current-buffer buf
    (redo-test-dump "round 2" start)
    (push (format "== rounds %d" (redo-test-rounds)) redo-test-out))
  (interrupt-process (get-buffer-process buf))
  (redo-test-wait buf (lambda () (not (get-buffer-process (current-buffer)))))
  (push (format "== stopped %s" (null (get-buffer-process buf))) redo-test-out))
"#,
        main = elisp_string(MAIN_OK)
    );
    let got = sections(&run_emacs(&p, &body));
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["round 1", "round 2", "rounds 2", "stopped t"],
        "{got:#?}"
    );
    let files = |entries: &[String]| -> Vec<String> {
        let mut f: Vec<String> = entries
            .iter()
            .filter(|e| e.split('|').nth(3) == Some("2") && e.split('|').nth(1) != Some("0"))
            .map(|e| e.split('|').next().unwrap().to_string())
            .collect();
        f.sort();
        f.dedup();
        f
    };
    assert_eq!(files(&got[0].1), ["lib/util.c", "main.c"], "{got:#?}");
    assert_eq!(files(&got[1].1), ["lib/util.c"], "{got:#?}");
    // The failure lines point at the .do files, resolved.
    assert!(
        got[1]
            .1
            .iter()
            .any(|e| e.starts_with("default.o.do|0|0|2|err  . lib/util.o")),
        "{got:#?}"
    );
}
