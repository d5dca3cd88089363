#![allow(clippy::unwrap_used, clippy::expect_used)]
//! redo never overwrites a file it did not write, never leaves a target stale because a
//! file's metadata changed while its content did not, and runs a failed target once per
//! build (docs/BEHAVIOUR.md §9, §11). Each test runs twice: with the daemon's file watcher
//! and without it (`REDO_NO_WATCH=1`), since both must give the same answers.

use redo_tests::{Project, Run};
use std::fs;
use std::process::Command;

/// `fn NAME(p: Project)` run once with the watcher and once without.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn watched() {
                    super::$name(redo_tests::Project::watched(true));
                }
                #[test]
                fn unwatched() {
                    super::$name(redo_tests::Project::watched(false));
                }
            }
        )*
    };
}

both!(
    a_hard_linked_output_is_not_frozen,
    metadata_changes_of_outputs_do_not_freeze_them,
    a_copied_project_rebuilds_what_changed,
    an_edited_output_is_kept_and_says_how_to_have_it_rebuilt,
    a_file_redo_did_not_write_is_a_source_even_with_its_own_do,
    outputs_whose_state_was_lost_are_not_overwritten,
    a_file_made_where_a_phony_target_was_is_kept,
    a_target_whose_do_was_deleted_becomes_a_source,
    a_failed_target_runs_once_per_build,
    keep_going_summarises_the_failures,
    a_do_sees_what_it_just_removed,
);

fn sh(p: &Project, script: &str) {
    let st = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .current_dir(&p.root)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

fn warnings(r: &Run) -> Vec<&str> {
    r.stderr.lines().filter(|l| l.starts_with("warn")).collect()
}

fn errs(r: &Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("err"))
        .map(redo_tests::strip_duration)
        .collect()
}

/// The case: a `.do` hard-links its dependency (`ln x.o $3`, as a game's
/// precompiled-header rule does), which changes `x.o`'s ctime after redo recorded it.
fn a_hard_linked_output_is_not_frozen(p: Project) {
    p.write("x.src", "one\n");
    p.do_file("x.o.do", "redo-ifchange x.src\ncat x.src >$3\n");
    p.do_file("x.gch.do", "redo-ifchange x.o\nln x.o $3\n");
    p.write("all.do", "redo-ifchange x.gch\n");
    p.redo(&["all"]).ok();
    p.write("x.src", "two\n");
    let r = p.redo(&["all"]).ok();
    assert_eq!(warnings(&r), Vec::<&str>::new());
    assert_eq!(
        (p.read("x.o"), p.read("x.gch")),
        ("two\n".into(), "two\n".into())
    );
    assert_eq!((p.runs("x.o.do"), p.runs("x.gch.do")), (2, 2));
    // And again: the second link's ctime change does not freeze it either.
    p.write("x.src", "three\n");
    let r = p.redo(&["all"]).ok();
    assert_eq!(warnings(&r), Vec::<&str>::new());
    assert_eq!(p.read("x.gch"), "three\n");
}

/// `touch`, `chmod`, `chown` and a checkout of identical content (a new file, a new inode)
/// change an output's stat, not its content: it is rebuilt when its source changes.
fn metadata_changes_of_outputs_do_not_freeze_them(p: Project) {
    let root = nix::unistd::geteuid().is_root();
    let mut changes = vec![
        "touch out",
        "chmod a+x out",
        "cp out out.new && mv out.new out",
        "cp -a out out.new && mv out.new out",
        "ln out alias",
    ];
    if root {
        changes.push("chown 65534 out");
    }
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    for (i, change) in changes.iter().enumerate() {
        p.write("src", &format!("{i}\n"));
        p.ifchange(&["out"]).ok();
        sh(&p, change);
        p.write("src", &format!("{i} changed\n"));
        let r = p.ifchange(&["out"]).ok();
        assert_eq!(warnings(&r), Vec::<&str>::new(), "after `{change}`");
        assert_eq!(p.read("out"), format!("{i} changed\n"), "after `{change}`");
        let _ = fs::remove_file(p.path("alias"));
    }
    assert_eq!(p.runs("out.do"), 2 * changes.len());
}

/// `cp -a` of a whole built project: every stat differs in the copy, no content does. The
/// copy builds incrementally, and what did not change is not rebuilt.
fn a_copied_project_rebuilds_what_changed(p: Project) {
    p.write("a.src", "a\n").write("b.src", "b\n");
    p.do_file("a.out.do", "redo-ifchange a.src\ncat a.src\n");
    p.do_file("b.out.do", "redo-ifchange b.src\ncat b.src\n");
    p.write("all.do", "redo-ifchange a.out b.out\n");
    p.ifchange(&["all"]).ok();
    let copy = Project::watched(!p.is_unwatched());
    fs::remove_dir_all(&copy.root).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&p.root)
        .arg(&copy.root)
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_file(copy.path("runs.log")).unwrap();
    copy.write("a.src", "a2\n");
    let r = copy.ifchange(&["all"]).ok();
    assert_eq!(warnings(&r), Vec::<&str>::new());
    assert_eq!(copy.read("a.out"), "a2\n");
    assert_eq!((copy.runs("a.out.do"), copy.runs("b.out.do")), (1, 0));
}

fn an_edited_output_is_kept_and_says_how_to_have_it_rebuilt(p: Project) {
    p.write("src", "one\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    p.ifchange(&["out"]).ok();
    p.write("out", "my edit\n");
    p.write("src", "two\n");
    let r = p.ifchange(&["out"]).ok();
    assert_eq!(
        warnings(&r),
        [
            "warn out externally modified: not redoing (its content is not what redo wrote; \
          remove it to have it rebuilt, or set REDO_STOP_IF_MODIFIED=1 to make this an error)"
        ]
    );
    assert_eq!((p.read("out"), p.runs("out.do")), ("my edit\n".into(), 1));
    // The way out it names works.
    fs::remove_file(p.path("out")).unwrap();
    let r = p.ifchange(&["out"]).ok();
    assert_eq!(warnings(&r), Vec::<&str>::new());
    assert_eq!((p.read("out"), p.runs("out.do")), ("two\n".into(), 2));
}

/// lua-redo's README: `echo linux > platform && redo`, where `platform.do` only prints that
/// advice and fails.
fn a_file_redo_did_not_write_is_a_source_even_with_its_own_do(p: Project) {
    p.do_file(
        "platform.do",
        "echo 'say which platform: echo linux > platform' >&2\nexit 1\n",
    );
    p.do_file("a.do", "redo-ifchange platform\necho a-$(cat platform)\n");
    p.do_file("b.do", "redo-ifchange platform\necho b-$(cat platform)\n");
    p.write("all.do", "redo-ifchange a b\n");
    p.ifchange(&["all"]).fails();
    assert_eq!(p.runs("platform.do"), 1);

    p.write("platform", "linux\n");
    let r = p.redo(&["all"]).ok();
    let warned = "platform exists and redo did not build it: taking it as a source, not \
                  overwriting it (remove it to have platform.do build it)";
    assert_eq!(
        warnings(&r),
        [format!("warn . . {warned}")],
        "one warning per build, though two targets need it"
    );
    assert_eq!(
        (p.read("a"), p.read("b")),
        ("a-linux\n".into(), "b-linux\n".into())
    );
    assert_eq!(p.runs("platform.do"), 1);

    // Asked for by name, forced: not overwritten either.
    let r = p.redo(&["platform"]).ok();
    assert_eq!(warnings(&r), [format!("warn {warned}")]);
    assert_eq!(
        (p.read("platform"), p.runs("platform.do")),
        ("linux\n".into(), 1)
    );

    // It is a source: its edits rebuild its dependants.
    p.write("platform", "bsd\n");
    p.ifchange(&["all"]).ok();
    assert_eq!(p.read("a"), "a-bsd\n");
    assert_eq!(p.read("platform"), "bsd\n");
}

/// `rm -rf .redo`: every output is a file redo has no record of.
fn outputs_whose_state_was_lost_are_not_overwritten(p: Project) {
    p.write("src", "one\n");
    p.do_file("x.do", "redo-ifchange src\ncat src\n");
    p.do_file("default.out.do", "redo-ifchange src\ncat src\n");
    p.ifchange(&["x", "y.out"]).ok();
    fs::remove_dir_all(p.path(".redo")).unwrap();
    fs::create_dir(p.path(".redo")).unwrap();
    fs::write(p.path(".redo/top"), "").unwrap();
    p.write("src", "two\n");
    let r = p.redo(&["x"]).ok();
    assert_eq!(
        warnings(&r),
        [
            "warn x exists and redo did not build it: taking it as a source, not overwriting it \
          (remove it to have x.do build it)"
        ]
    );
    assert!(!r.stderr.contains("explicitly touched"), "{r:?}");
    assert_eq!((p.read("x"), p.runs("x.do")), ("one\n".into(), 1));
    // Removing it lets its .do build it.
    fs::remove_file(p.path("x")).unwrap();
    p.redo(&["x"]).ok();
    assert_eq!((p.read("x"), p.runs("x.do")), ("two\n".into(), 2));
    // One its own `.do` does not build is a plain source, as in goredo.
    let r = p.ifchange(&["y.out"]).ok();
    assert_eq!(r.stderr, "");
    assert_eq!(p.read("y.out"), "one\n");
}

/// A phony target (its `.do` writes nothing) and then a file of that name made by hand: the
/// next build that runs the `.do` would have removed it.
fn a_file_made_where_a_phony_target_was_is_kept(p: Project) {
    p.write("src", "1\n");
    p.do_file("ph.do", "redo-ifchange src\n");
    p.ifchange(&["ph"]).ok();
    p.write("ph", "mine\n");
    p.write("src", "2\n");
    let r = p.ifchange(&["ph"]).ok();
    assert_eq!(
        warnings(&r),
        [
            "warn ph exists and redo did not build it: taking it as a source, not overwriting it \
          (remove it to have ph.do build it)"
        ]
    );
    assert_eq!((p.read("ph"), p.runs("ph.do")), ("mine\n".into(), 1));
}

/// apenwarr's redo's t/350-deps: a target whose `.do` is deleted is a source from then on.
fn a_target_whose_do_was_deleted_becomes_a_source(p: Project) {
    p.do_file("gen2.do", "echo generated\n");
    p.do_file("user.do", "redo-ifchange gen2\ncat gen2\n");
    p.ifchange(&["user"]).ok();
    fs::remove_file(p.path("gen2.do")).unwrap();
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(
        warnings(&r),
        ["warn . gen2: no .do builds it any more: it is a source from now on"]
    );
    assert_eq!(p.read("gen2"), "generated\n");
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(r.stderr, "");
    p.write("gen2", "edited\n");
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(r.built_names(), ["redo user"]);
    assert_eq!(p.read("user"), "edited\n");
    assert_eq!((p.runs("gen2.do"), p.runs("user.do")), (1, 2));
}

/// `a` fails, `b` and `c` need it: `a.do` runs once, its error is printed once, and each
/// dependant says why it failed.
fn a_failed_target_runs_once_per_build(p: Project) {
    p.do_file("a.do", "echo 'a.c:1: error: oops' >&2\nexit 1\n");
    p.do_file("b.do", "redo-ifchange a\necho b\n");
    p.do_file("c.do", "redo-ifchange a\necho c\n");
    p.write("all.do", "redo-ifchange b c\n");
    // First build: the dependants' `.do` files ask for `a` themselves.
    let r = p.ifchange(&["all"]).fails();
    assert_eq!(p.runs("a.do"), 1, "{r:?}");
    assert_eq!(r.stderr.matches("a.c:1: error: oops").count(), 1, "{r:?}");
    assert_eq!(
        errs(&r),
        [
            "err  . . a (a.do): exit status 1",
            "err  . b (b.do): exit status 1",
            "err  . c (c.do): exit status 1",
            "err  all (all.do): exit status 1",
        ]
    );
    // Later builds: their state names `a`, and they are not run at all.
    p.do_file("a.do", "echo a\n");
    p.ifchange(&["all"]).ok();
    p.do_file("a.do", "echo 'a.c:1: error: oops' >&2\nexit 1\n");
    let r = p.ifchange(&["all"]).fails();
    assert_eq!(p.runs("a.do"), 3, "{r:?}");
    assert_eq!(r.stderr.matches("a.c:1: error: oops").count(), 1, "{r:?}");
    assert_eq!(
        errs(&r),
        [
            "err  . . a (a.do): exit status 1",
            "err  . b: dependency a failed",
            "err  . c: dependency a failed",
            "err  all (all.do): exit status 1",
        ]
    );
    assert_eq!((p.runs("b.do"), p.runs("c.do")), (2, 2));
    // The next build tries it again.
    p.do_file("a.do", "echo a2\n");
    p.ifchange(&["all"]).ok();
    assert_eq!(p.read("a"), "a2\n");
}

fn keep_going_summarises_the_failures(p: Project) {
    p.do_file("a.do", "exit 1\n");
    p.do_file("b.do", "redo-ifchange a\necho b\n");
    p.do_file("c.do", "redo-ifchange a\necho c\n");
    p.do_file("d.do", "echo d\n");
    p.write("all.do", "redo-ifchange b c d\n");
    let r = p.run("redo", &["--keep-going", "all"]).fails();
    assert_eq!(p.read("d"), "d\n");
    assert_eq!(p.runs("a.do"), 1, "{r:?}");
    let summary: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("err  failed: "))
        .collect();
    assert_eq!(
        summary,
        [
            "err  failed: a (needed by b, c)",
            "err  failed: b (needed by all)",
            "err  failed: c (needed by all)",
            "err  failed: all",
        ],
        "{r:?}"
    );
    // Without --keep-going, no summary.
    let r = p.redo(&["all"]).fails();
    assert!(!r.stderr.contains("err  failed: "), "{r:?}");
}

/// The case: the second `redo-ifcreate` must see that `e` is gone.
fn a_do_sees_what_it_just_removed(p: Project) {
    p.write(
        "all.do",
        "touch e\nredo-ifcreate e 2>/dev/null && exit 91\nrm e\nredo-ifcreate e || exit 92\necho done\n",
    );
    let r = p.redo(&["all"]);
    assert_eq!(r.code, 0, "{r:?}");
    // And the record holds: creating `e` makes `all` out of date.
    let r = p.ifchange(&["all"]).ok();
    assert_eq!(r.built_names(), Vec::<String>::new());
    fs::write(p.path("e"), "").unwrap();
    let r = p.ifchange(&["all"]).ok();
    assert_eq!(r.built_names(), ["redo all"]);
}
