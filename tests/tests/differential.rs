#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The file watcher never changes an answer (docs/DESIGN.md §8: "the watcher only
//! accelerates"): a differential property test.
//!
//! Each case is a small random project (sources, targets whose `.do` files read sources and
//! earlier targets, write their output to stdout or `$3` or nothing or a `redo-stamp`, create
//! or remove files and then call `redo-ifchange` or `redo-ifcreate` on them, and fail when a
//! source says so) and a random sequence of steps (edit, create, delete, `touch`, `chmod`,
//! `cp -a` and `ln` of sources and outputs; new and deleted `.do` files; a file a `.do`
//! removes made again; the daemon stopped, so that the next build is a cold start; each
//! followed by a build: `redo-ifchange all`, a forced `redo` of one target, or
//! `redo-ifchange` of one). The same case runs in two copies of the project: one
//! with the daemon's watcher (its event thread made to lag, so that only the daemon's own
//! reads of the queue can make it see a change), one whose daemon has none
//! (`REDO_NO_WATCH=1`). At every step both must give the same exit code, the same messages,
//! the same files and the same `.do` runs.
//!
//! 256 cases by default (four tests of 64, so they run in parallel);
//! `REDO_DIFF_CASES=5000 cargo test -p redo-tests --test differential` makes a long run.
//! Every case it found is kept below as a `regression_*` test.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redo_tests::{Project, Run, strip_duration};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

// ------------------------------------------------------------------------------------------
// The model.

/// Sources, then targets; a target's `.do` may read sources and earlier targets only (no
/// cycle: their order of detection is not what this test is about).
const SOURCES: &[&str] = &["s0", "s1", "sub/s2"];
const TARGETS: &[&str] = &["t0", "t1", "t2", "sub/t3"];
const CONTENTS: &[&str] = &["a\n", "bb\n", "FAIL\n", "a\n\n"];

/// Where a `.do` puts its output.
#[derive(Clone, Copy, Debug)]
enum Out {
    Stdout,
    Arg3,
    Nothing,
    Stamp,
}

/// What a `.do` does besides reading its dependencies.
#[derive(Clone, Copy, Debug)]
enum Side {
    None,
    /// Writes `c_NAME`, then `redo-ifchange c_NAME`.
    CreateThenIfchange,
    /// Removes `c_NAME`, then `redo-ifcreate c_NAME`.
    RemoveThenIfcreate,
    /// `touch e; redo-ifcreate e` (must fail), `rm e; redo-ifcreate e` (must succeed).
    Flip,
    /// Writes a source (an index into [`SOURCES`]) that other targets may read: a `.do` that
    /// changes what a later check in the same build compares.
    WriteSource(usize),
}

#[derive(Clone, Debug)]
struct DoSpec {
    /// Indices into [`names`]: sources and earlier targets.
    deps: Vec<usize>,
    out: Out,
    side: Side,
    /// Fails when this source (an index into [`SOURCES`]) holds `FAIL`.
    fail_on: Option<usize>,
}

/// A file the steps act on: a source, a target's output, or a file a `.do` makes.
fn files() -> Vec<String> {
    let mut v: Vec<String> = SOURCES
        .iter()
        .chain(TARGETS)
        .map(|s| s.to_string())
        .collect();
    v.extend(TARGETS.iter().map(|t| side_file(t, "c_")));
    v
}

/// Sources, then targets.
fn names() -> Vec<&'static str> {
    SOURCES.iter().chain(TARGETS).copied().collect()
}

fn side_file(target: &str, prefix: &str) -> String {
    let p = Path::new(target);
    let name = p.file_name().unwrap().to_string_lossy();
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => format!("{}/{prefix}{name}", d.display()),
        None => format!("{prefix}{name}"),
    }
}

#[derive(Clone, Debug)]
enum Change {
    Edit(usize, usize),
    Remove(usize),
    Touch(usize),
    Chmod(usize),
    /// `cp -a f tmp; mv tmp f`: a new inode, the same content and times.
    CopyOver(usize),
    /// `ln f f.ln` (or, when it exists, `rm f.ln`).
    Link(usize),
    WriteDo(usize, DoSpec),
    RemoveDo(usize),
    /// The watched copy's daemon stopped: its next build is a cold start (from its snapshot),
    /// compared with the other copy's warm daemon.
    Restart,
    Nothing,
}

#[derive(Clone, Copy, Debug)]
enum BuildKind {
    IfchangeAll,
    Redo(usize),
    Ifchange(usize),
}

#[derive(Clone, Debug)]
struct Case {
    dos: Vec<DoSpec>,
    steps: Vec<(Change, BuildKind)>,
}

// ------------------------------------------------------------------------------------------
// Strategies.

fn do_spec(target: usize) -> impl Strategy<Value = DoSpec> {
    let readable = SOURCES.len() + target;
    (
        prop::collection::vec(0..readable, 0..3),
        prop_oneof![
            3 => Just(Out::Stdout),
            2 => Just(Out::Arg3),
            1 => Just(Out::Nothing),
            1 => Just(Out::Stamp),
        ],
        prop_oneof![
            4 => Just(Side::None),
            1 => Just(Side::CreateThenIfchange),
            1 => Just(Side::RemoveThenIfcreate),
            1 => Just(Side::Flip),
            1 => (0..SOURCES.len()).prop_map(Side::WriteSource),
        ],
        prop::option::weighted(0.3, 0..SOURCES.len()),
    )
        .prop_map(|(mut deps, out, side, fail_on)| {
            deps.sort_unstable();
            deps.dedup();
            DoSpec {
                deps,
                out,
                side,
                fail_on,
            }
        })
}

fn change() -> impl Strategy<Value = Change> {
    let nfiles = files().len();
    prop_oneof![
        4 => (0..SOURCES.len(), 0..CONTENTS.len()).prop_map(|(s, c)| Change::Edit(s, c)),
        1 => (0..nfiles).prop_map(Change::Remove),
        1 => (0..nfiles).prop_map(Change::Touch),
        1 => (0..nfiles).prop_map(Change::Chmod),
        1 => (0..nfiles).prop_map(Change::CopyOver),
        1 => (0..nfiles).prop_map(Change::Link),
        2 => (0..TARGETS.len()).prop_flat_map(|t| do_spec(t).prop_map(move |d| Change::WriteDo(t, d))),
        1 => (0..TARGETS.len()).prop_map(Change::RemoveDo),
        1 => Just(Change::Restart),
        1 => Just(Change::Nothing),
    ]
}

fn build_kind() -> impl Strategy<Value = BuildKind> {
    prop_oneof![
        3 => Just(BuildKind::IfchangeAll),
        1 => (0..TARGETS.len()).prop_map(BuildKind::Redo),
        1 => (0..TARGETS.len()).prop_map(BuildKind::Ifchange),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0..TARGETS.len()).map(do_spec).collect::<Vec<_>>(),
        prop::collection::vec((change(), build_kind()), 1..7),
    )
        .prop_map(|(dos, steps)| Case { dos, steps })
}

// ------------------------------------------------------------------------------------------
// Running a case.

/// `name` as seen from the directory of target `from`'s `.do`.
fn rel_from(from: &str, name: &str) -> String {
    let up = Path::new(from).components().count() - 1;
    let mut s = "../".repeat(up);
    s.push_str(name);
    if let Some(rest) = Path::new(from)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .and_then(|d| Path::new(name).strip_prefix(d).ok())
    {
        s = rest.display().to_string();
    }
    s
}

fn do_text(target: &str, spec: &DoSpec) -> String {
    let all = names();
    let deps: Vec<String> = spec
        .deps
        .iter()
        .map(|&d| rel_from(target, all[d]))
        .collect();
    let name = Path::new(target).file_name().unwrap().to_string_lossy();
    let mut s = format!("echo {target} >>\"$RUNLOG\"\n");
    if !deps.is_empty() {
        s += &format!("redo-ifchange {}\n", deps.join(" "));
    }
    match spec.side {
        Side::None => {}
        Side::CreateThenIfchange => s += &format!("echo made >c_{name}\nredo-ifchange c_{name}\n"),
        Side::RemoveThenIfcreate => s += &format!("rm -f c_{name}\nredo-ifcreate c_{name}\n"),
        Side::WriteSource(src) => {
            s += &format!("echo from-{name} >{}\n", rel_from(target, SOURCES[src]))
        }
        Side::Flip => {
            s += &format!(
                "touch e_{name}\nredo-ifcreate e_{name} 2>/dev/null && exit 91\nrm e_{name}\n\
                 redo-ifcreate e_{name} || exit 92\n"
            )
        }
    }
    if let Some(f) = spec.fail_on {
        let src = rel_from(target, SOURCES[f]);
        s += &format!(
            "redo-ifchange {src}\nif grep -q FAIL {src}; then echo \"{target}: {src} says FAIL\" >&2; exit 1; fi\n"
        );
    }
    let body = format!(
        "echo {target}; for f in {} ; do if [ -f \"$f\" ]; then cat \"$f\"; fi; done",
        if deps.is_empty() {
            "/dev/null".to_string()
        } else {
            deps.join(" ")
        }
    );
    match spec.out {
        Out::Stdout => s += &format!("{body}\n"),
        Out::Arg3 => s += &format!("{{ {body}; }} >\"$3\"\n"),
        Out::Nothing => {}
        Out::Stamp => s += &format!("{{ {body}; }} | redo-stamp\n"),
    }
    s
}

/// One copy of the project, with or without the watcher.
struct Tree {
    p: Project,
    watched: bool,
    runlog: std::path::PathBuf,
}

impl Tree {
    fn new(watched: bool) -> Tree {
        let p = Project::new();
        let runlog = p.rundir.parent().unwrap().join("runs.txt");
        Tree { p, watched, runlog }
    }

    fn write_do(&self, t: usize, spec: &DoSpec) {
        self.p
            .write(&format!("{}.do", TARGETS[t]), &do_text(TARGETS[t], spec));
    }

    fn setup(&self, case: &Case) {
        for (i, s) in SOURCES.iter().enumerate() {
            self.p.write(s, CONTENTS[i % 2]);
        }
        for (t, spec) in case.dos.iter().enumerate() {
            self.write_do(t, spec);
        }
        self.p
            .write("all.do", &format!("redo-ifchange {}\n", TARGETS.join(" ")));
    }

    fn apply(&self, change: &Change) {
        let all = files();
        let path = |i: usize| self.p.path(&all[i]);
        match change {
            Change::Edit(s, c) => {
                self.p.write(SOURCES[*s], CONTENTS[*c]);
            }
            Change::Remove(f) => {
                let _ = fs::remove_file(path(*f));
            }
            Change::Touch(f) => {
                if path(*f).exists() {
                    sh(&format!("touch '{}'", path(*f).display()));
                }
            }
            Change::Chmod(f) => {
                if path(*f).exists() {
                    sh(&format!("chmod a+x '{}'", path(*f).display()));
                }
            }
            Change::CopyOver(f) => {
                if path(*f).exists() {
                    let p = path(*f).display().to_string();
                    sh(&format!("cp -a '{p}' '{p}.tmp' && mv '{p}.tmp' '{p}'"));
                }
            }
            Change::Link(f) => {
                let p = path(*f).display().to_string();
                if Path::new(&format!("{p}.ln")).exists() {
                    sh(&format!("rm '{p}.ln'"));
                } else if path(*f).exists() {
                    sh(&format!("ln '{p}' '{p}.ln'"));
                }
            }
            Change::WriteDo(t, spec) => self.write_do(*t, spec),
            Change::RemoveDo(t) => {
                let _ = fs::remove_file(self.p.path(&format!("{}.do", TARGETS[*t])));
            }
            Change::Restart if self.watched => {
                let _ = self.p.run("redo", &["--daemon-stop"]);
                let gone = redo_tests::wait_until(std::time::Duration::from_secs(10), || {
                    self.p
                        .daemon_pid()
                        .is_none_or(|pid| !redo_tests::alive(pid))
                });
                assert!(gone, "the daemon did not stop");
            }
            Change::Restart | Change::Nothing => {}
        }
    }

    fn build(&self, kind: BuildKind) -> Run {
        let (tool, arg) = match kind {
            BuildKind::IfchangeAll => ("redo-ifchange", "all"),
            BuildKind::Redo(t) => ("redo", TARGETS[t]),
            BuildKind::Ifchange(t) => ("redo-ifchange", TARGETS[t]),
        };
        let mut c = self.p.command(tool);
        c.env("RUNLOG", &self.runlog).arg(arg);
        if self.watched {
            // Only the daemon's own reads of the event queue may make it see a change.
            c.env("REDO_WATCH_LAG_MS", "300");
        } else {
            c.env("REDO_NO_WATCH", "1");
        }
        Run::from_output(c.output().unwrap())
    }

    /// What one build did: its exit code, its messages, which `.do` files ran, and every file
    /// of the project but redo's state.
    fn observe(&self, r: &Run) -> Observed {
        let runs = fs::read_to_string(&self.runlog).unwrap_or_default();
        let _ = fs::remove_file(&self.runlog);
        let mut files = BTreeMap::new();
        snapshot(&self.p.root, &self.p.root, &mut files);
        Observed {
            code: r.code,
            stderr: r
                .stderr
                .lines()
                .map(strip_duration)
                .collect::<Vec<_>>()
                .join("\n"),
            runs,
            files,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    code: i32,
    stderr: String,
    runs: String,
    files: BTreeMap<String, String>,
}

fn snapshot(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name == ".redo" {
            continue;
        }
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            snapshot(root, &p, out);
        } else {
            let content = fs::read(&p).map(|b| String::from_utf8_lossy(&b).into_owned());
            out.insert(rel, content.unwrap_or_else(|e| format!("<{e}>")));
        }
    }
}

fn sh(script: &str) {
    let st = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// Runs `case` in both copies; the first step where they differ, if any.
fn differs(case: &Case) -> Result<(), String> {
    let (w, n) = (Tree::new(true), Tree::new(false));
    w.setup(case);
    n.setup(case);
    let first = (Change::Nothing, BuildKind::IfchangeAll);
    for (i, (change, kind)) in std::iter::once(&first).chain(&case.steps).enumerate() {
        w.apply(change);
        n.apply(change);
        let (rw, rn) = (w.build(*kind), n.build(*kind));
        let (ow, on) = (w.observe(&rw), n.observe(&rn));
        if ow != on {
            return Err(format!(
                "step {i} ({change:?}, {kind:?}) differs:\nwith the watcher: {ow:#?}\n\
                 without: {on:#?}\nwatched daemon's log:\n{}",
                w.p.daemon_log()
            ));
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("REDO_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A quarter of the cases, in a runner of its own (four tests share the load).
fn quarter(seed: u8) {
    let config = Config {
        cases: cases().div_ceil(4),
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[seed; 32],
        ),
    );
    let result = runner.run(&case(), |c| {
        differs(&c).map_err(proptest::test_runner::TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_watcher_never_changes_an_answer_1() {
    quarter(1);
}

#[test]
fn the_watcher_never_changes_an_answer_2() {
    quarter(2);
}

#[test]
fn the_watcher_never_changes_an_answer_3() {
    quarter(3);
}

#[test]
fn the_watcher_never_changes_an_answer_4() {
    quarter(4);
}

// ------------------------------------------------------------------------------------------
// Cases the property found, kept.

fn spec(deps: &[usize], out: Out, side: Side, fail_on: Option<usize>) -> DoSpec {
    DoSpec {
        deps: deps.to_vec(),
        out,
        side,
        fail_on,
    }
}

#[track_caller]
fn regression(case: Case) {
    if let Err(e) = differs(&case) {
        panic!("{e}");
    }
}

/// The issue's own case: a `.do` that removes a file it created and then asks
/// `redo-ifcreate` for it (the second `redo-ifcreate` read a stale answer of the first).
#[test]
fn regression_a_do_removes_a_file_and_then_redo_ifcreates_it() {
    let plain = spec(&[], Out::Stdout, Side::None, None);
    regression(Case {
        dos: vec![
            spec(&[0], Out::Stdout, Side::Flip, None),
            plain.clone(),
            plain.clone(),
            plain,
        ],
        steps: vec![(Change::Edit(0, 1), BuildKind::IfchangeAll)],
    });
}

/// `all.do` asks for `t0 t1 t2`; `t0.do` writes a source `t2` reads. `t2` must be judged
/// after `t0` was built (the verdicts of a request's later targets were answered before its
/// earlier ones were built; and what a `.do` changed was only queued when it exited).
#[test]
fn regression_a_do_writes_a_source_a_later_target_reads() {
    let plain = spec(&[], Out::Stdout, Side::None, None);
    regression(Case {
        dos: vec![
            plain.clone(),
            plain.clone(),
            spec(&[2], Out::Stdout, Side::None, None),
            plain.clone(),
        ],
        steps: vec![(
            Change::WriteDo(0, spec(&[], Out::Stdout, Side::WriteSource(2), None)),
            BuildKind::IfchangeAll,
        )],
    });
}
