#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The example C project of `contrib/examples/hello`, built end to end with a real C compiler:
//! first build, no-op rebuild, header dependencies recorded from `cc -MD`, a generated header,
//! forced `redo`, and `redo clean`; and the README's "Try it" command, which runs the `redo`
//! binary straight from cargo.

use redo_tests::{Project, Run, build_dir};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The directories the `.do` scripts search for `cc` (the harness's PATH, after the redo binaries).
const SYSTEM_PATH: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];

const OBJECTS: [&str; 3] = ["main.o", "greet.o", "about.o"];

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/examples/hello")
}

/// Whether a file name is something the example builds (or redo's state / temporaries).
fn is_build_product(name: &str) -> bool {
    name == ".redo"
        || name.starts_with(".redo.")
        || name.ends_with(".o")
        || name.ends_with(".d")
        || ["hello", "all", "version.h"].contains(&name)
}

/// Copies the example's sources (not its build products or state) into `to`.
fn copy_sources(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if is_build_product(&name) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&dst).unwrap();
            copy_sources(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Fails (rather than skips) without a C compiler: the example is the point of this test.
fn require_cc() {
    let found = SYSTEM_PATH.iter().any(|d| {
        fs::metadata(Path::new(d).join("cc"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    assert!(
        found,
        "no C compiler: `cc` is not in {} — this test builds contrib/examples/hello and needs \
         one (install gcc or clang)",
        SYSTEM_PATH.join(":")
    );
}

/// A fresh project holding a copy of the example.
fn example_project() -> Project {
    require_cc();
    let p = Project::new();
    let dir = example_dir();
    assert!(
        dir.join("all.do").exists(),
        "the example is missing: {}",
        dir.display()
    );
    copy_sources(&dir, &p.root);
    p
}

/// Runs `tool args` in the project root with the example's default compiler settings (the
/// caller's `CC`/`CFLAGS`/... must not change what is built).
fn run(p: &Project, tool: &str, args: &[&str]) -> Run {
    run_command(p.command(tool), args)
}

/// Runs `c args` with the example's default compiler settings.
fn run_command(mut c: Command, args: &[&str]) -> Run {
    c.args(args);
    for v in ["CC", "CFLAGS", "LDFLAGS", "LIBS"] {
        c.env_remove(v);
    }
    Run::from_output(c.output().unwrap())
}

/// Everything the example builds, as [`built`] names it.
fn everything() -> Vec<String> {
    OBJECTS
        .iter()
        .map(|o| obj(o))
        .chain(["version.h", "hello", "all"].map(String::from))
        .collect()
}

/// Names of the targets a run built, in completion order, without the `redo ` tag, the
/// `. ` level indentation and the duration: `main.o (default.o.do)`, `hello`, ...
fn built(r: &Run) -> Vec<String> {
    r.built_names()
        .iter()
        .map(|l| {
            let mut s = l.strip_prefix("redo ").unwrap();
            while let Some(rest) = s.strip_prefix(". ") {
                s = rest;
            }
            s.to_string()
        })
        .collect()
}

fn obj(name: &str) -> String {
    format!("{name} (default.o.do)")
}

/// Asserts that the run built exactly `expected` (in any order, each once).
#[track_caller]
fn assert_built(r: &Run, expected: &[String], what: &str) {
    let got = built(r);
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(sorted, want, "{what}: built {got:?}\nstderr:\n{}", r.stderr);
}

/// Asserts that `first` completed before `then` in the run (dependencies before dependants).
#[track_caller]
fn assert_before(r: &Run, first: &str, then: &str) {
    let got = built(r);
    let pos = |n: &str| {
        got.iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} was not built: {got:?}"))
    };
    assert!(
        pos(first) < pos(then),
        "{first} should complete before {then}: {got:?}"
    );
}

/// The `Target`s of the `Type: ifchange` records of a `.rec` file.
fn ifchange_deps(rec: &str) -> Vec<String> {
    rec.split("\n\n")
        .filter_map(|record| {
            let mut ty = None;
            let mut target = None;
            for line in record.lines() {
                if let Some((k, v)) = line.split_once(": ") {
                    match k {
                        "Type" => ty = Some(v),
                        "Target" => target = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            (ty == Some("ifchange")).then_some(target).flatten()
        })
        .collect()
}

/// What `./hello` prints for a greeting word and a version.
fn greeting(word: &str, version: &str) -> String {
    format!("{word}, world! This is hello {version}.\n")
}

/// Runs the built program and returns its output.
fn run_hello(p: &Project) -> String {
    let out = Command::new(p.path("hello"))
        .current_dir(&p.root)
        .output()
        .expect("./hello cannot be run");
    assert!(out.status.success(), "./hello failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Replaces `from` by `to` in a file (which must contain it).
fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let text = p.read(rel);
    assert!(text.contains(from), "{rel} does not contain {from:?}");
    p.write(rel, &text.replace(from, to));
}

/// The README's "Try it" command, after its `cargo build --release && cd contrib/examples/hello`.
const TRY_IT: &str = "cargo run --release -q --bin redo -- all && cat all";

/// What `cargo run --bin redo -- all` does, with the debug build: the `redo` binary by its own
/// path (so called `redo`), and no redo command on `PATH` (nothing is installed): the
/// `redo-ifchange` in the `.do` files are the daemon's command links.
#[test]
fn readme_try_it_command_works_straight_from_cargo() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    assert!(
        readme.contains(&format!(
            "cargo build --release && cd contrib/examples/hello && {TRY_IT}"
        )),
        "the README's Try it command is not the one this test runs: {TRY_IT}"
    );
    let p = example_project();
    let try_it = || {
        let mut c = p.command_at(&build_dir().join("redo"));
        c.env("PATH", SYSTEM_PATH.join(":"));
        run_command(c, &["all"])
    };
    let r = try_it().ok();
    assert_built(&r, &everything(), "first run of the Try it command");
    let expected = greeting("Hello", p.read("VERSION").trim());
    assert_eq!(p.read("all"), expected);
    // Again: `redo all` rebuilds `all` (redo runs what it is given), nothing below it.
    let r = try_it().ok();
    assert_eq!(built(&r), ["all"], "stderr:\n{}", r.stderr);
    assert_eq!(p.read("all"), expected);
}

#[test]
fn hello_example_builds_and_tracks_headers() {
    let p = example_project();
    let version = p.read("VERSION").trim().to_string();
    assert!(!version.is_empty(), "VERSION is empty");

    // 1. First build: everything, bottom-up; the program greets with the version.
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    let all_built = everything();
    assert_built(&r, &all_built, "first build");
    assert_before(&r, "version.h", &obj("about.o"));
    for o in OBJECTS {
        assert_before(&r, &obj(o), "hello");
    }
    assert_before(&r, "hello", "all");
    // Nothing else on stderr: the example compiles without warnings.
    let noise: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("redo "))
        .collect();
    assert!(noise.is_empty(), "unexpected stderr: {noise:?}");
    assert!(p.exists("hello"), "hello was not built");
    let expected = greeting("Hello", &version);
    assert_eq!(run_hello(&p), expected);
    assert_eq!(p.read("all"), expected);
    assert!(
        p.read("version.h")
            .contains(&format!("#define HELLO_VERSION \"{version}\"")),
        "version.h:\n{}",
        p.read("version.h")
    );
    // No temporary dependency file left behind.
    for e in fs::read_dir(&p.root).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(".d") && !name.starts_with(".redo."),
            "leftover file {name}"
        );
    }

    // 2. Nothing changed: nothing built, nothing printed.
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_eq!(r.stderr, "", "second build should be silent");

    // 3a. Touching sources without changing them rebuilds nothing (content, not time, counts).
    for src in ["main.c", "greet.c", "about.c", "greet.h", "VERSION"] {
        fs::File::options()
            .write(true)
            .open(p.path(src))
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
    }
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_eq!(r.stderr, "", "touching sources should rebuild nothing");

    // 3b. greet.h is included by main.c and greet.c, not about.c.
    edit(&p, "greet.h", "\"Hello\"", "\"Greetings\"");
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_built(
        &r,
        &[obj("main.o"), obj("greet.o"), "hello".into(), "all".into()],
        "after editing greet.h",
    );
    assert_before(&r, &obj("greet.o"), "hello");
    assert_before(&r, "hello", "all");
    let expected = greeting("Greetings", &version);
    assert_eq!(run_hello(&p), expected);
    assert_eq!(p.read("all"), expected);

    // 3c. VERSION → version.h, included by about.c only.
    let new_version = format!("{version}.1");
    p.write("VERSION", &format!("{new_version}\n"));
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_built(
        &r,
        &[
            "version.h".into(),
            obj("about.o"),
            "hello".into(),
            "all".into(),
        ],
        "after editing VERSION",
    );
    assert_before(&r, "version.h", &obj("about.o"));
    assert_before(&r, &obj("about.o"), "hello");
    assert_before(&r, "hello", "all");
    let expected = greeting("Greetings", &new_version);
    assert_eq!(run_hello(&p), expected);
    assert_eq!(p.read("all"), expected);
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_eq!(r.stderr, "", "rebuild after the edits should be silent");

    // 4. The objects' state lists the headers the compiler read as ifchange dependencies.
    let deps = |o: &str| {
        let rec = p.rec(o);
        let deps = ifchange_deps(&rec);
        (deps, rec)
    };
    let (main_deps, rec) = deps("main.o");
    for want in ["default.o.do", "main.c", "greet.h", "main.o"] {
        assert!(
            main_deps.iter().any(|d| d == want),
            "main.o.rec lacks ifchange {want}:\n{rec}"
        );
    }
    for unwanted in ["version.h", "about.h"] {
        assert!(
            !main_deps.iter().any(|d| d == unwanted),
            "main.o.rec should not depend on {unwanted}:\n{rec}"
        );
    }
    let (greet_deps, rec) = deps("greet.o");
    for want in ["greet.c", "greet.h", "about.h"] {
        assert!(
            greet_deps.iter().any(|d| d == want),
            "greet.o.rec lacks ifchange {want}:\n{rec}"
        );
    }
    assert!(
        greet_deps.iter().any(|d| d.ends_with("/stdio.h")),
        "greet.o.rec lacks the system header stdio.h (cc -MD):\n{rec}"
    );
    assert!(
        !greet_deps.iter().any(|d| d == "version.h"),
        "greet.o.rec should not depend on version.h:\n{rec}"
    );
    let (about_deps, rec) = deps("about.o");
    for want in ["about.c", "about.h", "version.h"] {
        assert!(
            about_deps.iter().any(|d| d == want),
            "about.o.rec lacks ifchange {want}:\n{rec}"
        );
    }
    let (vh_deps, rec) = deps("version.h");
    assert!(
        vh_deps.iter().any(|d| d == "VERSION"),
        "version.h.rec lacks ifchange VERSION:\n{rec}"
    );

    // 5. `redo` = forced `all`: all.do runs again, everything below it is up to date.
    let r = run(&p, "redo", &[]).ok();
    assert_eq!(built(&r), ["all"], "stderr:\n{}", r.stderr);
    assert_eq!(p.read("all"), expected);

    // 6. `redo clean` removes the products and their state (not .redo/top); all rebuilds.
    run(&p, "redo", &["clean"]).ok();
    for gone in ["hello", "all", "version.h", "main.o", "greet.o", "about.o"] {
        assert!(!p.exists(gone), "{gone} survived redo clean");
        assert!(
            !p.exists(&format!(".redo/{gone}.rec")),
            ".redo/{gone}.rec survived redo clean"
        );
    }
    assert!(p.exists(".redo/top"), "redo clean removed .redo/top");
    let r = run(&p, "redo-ifchange", &["all"]).ok();
    assert_built(&r, &all_built, "build after clean");
    assert_eq!(p.read("all"), expected);
}
