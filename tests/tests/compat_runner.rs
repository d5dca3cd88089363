#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What `.do` files written for apenwarr's redo expect of the runner, end to end: a `#!` line
//! in a non-executable `.do` names its interpreter; stdout is captured outside the target's
//! directory (a `.do` may remove and re-create that directory); a directory or a symbolic link
//! can be a target. docs/differences.md lists these.

use redo_tests::Project;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Writes a non-executable `.do` whose first line is `#!<interp>`, then a line counting its
/// runs (as `Project::do_file` does, in any sh-like language), then `body`.
fn shebang_do(p: &Project, rel: &str, interp: &str, body: &str) {
    p.write(rel, &format!("#!{interp}\necho {rel} >> runs.log\n{body}"));
}

/// `.redo.*` temporaries anywhere in the project but the `.redo` directories.
fn temps(p: &Project) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if name.starts_with(".redo.") {
                out.push(e.path().display().to_string());
            } else if ft.is_dir() && name != ".redo" {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&p.root, &mut out);
    out
}

fn errs(r: &redo_tests::Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("err "))
        .map(redo_tests::strip_duration)
        .collect()
}

#[test]
fn a_bash_do_with_arrays_runs_under_bash() {
    let p = Project::new();
    shebang_do(
        &p,
        "arr.do",
        "/bin/bash",
        "words=(alpha beta gamma)\necho \"${words[1]} ${#words[@]}\"\n",
    );
    p.ifchange(&["arr"]).ok();
    assert_eq!(p.read("arr"), "beta 3\n");
    assert_eq!(
        p.ifchange(&["arr"]).ok().built_names(),
        Vec::<String>::new()
    );
    assert_eq!(p.runs("arr.do"), 1);
}

#[test]
fn sh_shebang_lines_keep_sh_e_and_pass_their_options() {
    let p = Project::new();
    // A bare `#!/bin/sh` is goredo's `sh -e`: the failing line stops the .do.
    shebang_do(&p, "stops.do", "/bin/sh", "false\necho not reached\n");
    let r = p.redo(&["stops"]).fails();
    assert_eq!(errs(&r), ["err  stops (stops.do): exit status 1"]);
    assert!(!p.exists("stops"), "no target from a failed .do");
    assert_eq!(p.runs("stops.do"), 1);
    // `#!/bin/sh -e` means the same.
    shebang_do(&p, "stops_e.do", "/bin/sh -e", "false\necho not reached\n");
    p.redo(&["stops_e"]).fails();
    assert!(!p.exists("stops_e"));
    // Any other option is the .do's own: `-x` traces (and, as with apenwarr's redo, there
    // is no `-e` unless the line says so).
    shebang_do(&p, "traced.do", "/bin/sh -x", "false\necho traced-output\n");
    let r = p.redo(&["traced"]).ok();
    assert!(r.stderr.contains("+ echo traced-output"), "{}", r.stderr);
    assert_eq!(p.read("traced"), "traced-output\n");
}

#[test]
fn how_a_do_runs_follows_its_edits_and_its_mode_within_one_daemon() {
    let p = Project::new();
    // `#!/bin/sh` alone in a non-executable `.do`: goredo's `sh -e`, so `false` fails it.
    p.write("u.do", "#!/bin/sh\nfalse\necho after\n");
    let r = p.redo(&["u"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Made executable: it runs as itself, without `-e`. The daemon, which remembers how each
    // `.do` runs, must see the mode change (a new ctime).
    let mut perm = fs::metadata(p.path("u.do")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs::set_permissions(p.path("u.do"), perm).unwrap();
    p.redo(&["u"]).ok();
    assert_eq!(p.read("u"), "after\n");
    // Edited to another interpreter: that one runs.
    p.write("u.do", "#!/usr/bin/env python3\nprint('python')\n");
    p.redo(&["u"]).ok();
    assert_eq!(p.read("u"), "python\n");
    // And back to plain shell, no longer executable.
    p.write("u.do", "echo plain\n");
    let mut perm = fs::metadata(p.path("u.do")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
    fs::set_permissions(p.path("u.do"), perm).unwrap();
    p.redo(&["u"]).ok();
    assert_eq!(p.read("u"), "plain\n");
}

#[test]
fn env_interpreter_arguments_are_split_on_blanks() {
    let p = Project::new();
    // The kernel would run `env 'bash -e'` and fail; split on blanks (apenwarr's redo) it is
    // `env bash -e`: bash syntax works and a failing line stops the .do.
    shebang_do(
        &p,
        "ok.do",
        "/usr/bin/env bash -e",
        "[[ -n yes ]] && echo \"${BASH_VERSINFO[0]}\" | tr 0-9 N\n",
    );
    p.redo(&["ok"]).ok();
    assert!(p.read("ok").starts_with('N'), "{:?}", p.read("ok"));
    shebang_do(&p, "fail.do", "/usr/bin/env bash -e", "false\necho no\n");
    p.redo(&["fail"]).fails();
    assert!(!p.exists("fail"));
    // A missing interpreter names the .do and the fix.
    shebang_do(&p, "missing.do", "/nonexistent/interp -q", "echo no\n");
    let r = p.redo(&["missing"]).fails();
    let e = errs(&r).join("\n");
    assert!(
        e.contains("/nonexistent/interp") && e.contains("#! line") && e.contains("missing.do"),
        "{e}"
    );
    assert!(!p.exists("missing"));
    assert_eq!(p.runs("missing.do"), 0);
}

#[test]
fn stdout_is_not_captured_beside_the_target() {
    let p = Project::new();
    fs::create_dir_all(p.path("sub")).unwrap();
    p.do_file("sub/t.do", "ls -A > ../seen\necho out\n");
    p.ifchange(&["sub/t"]).ok();
    assert_eq!(p.read("sub/t"), "out\n");
    assert!(
        !p.read("seen").contains(".redo.t."),
        "a temp beside the target while the .do ran: {}",
        p.read("seen")
    );
    assert_eq!(temps(&p), Vec::<String>::new());
    // Still goredo's commit: unchanged output keeps the old file, a large one arrives whole.
    p.write("src", "a\n");
    p.do_file("t.do", "redo-ifchange src\necho same\n");
    p.ifchange(&["t"]).ok();
    let ino = fs::metadata(p.path("t")).unwrap().ino();
    p.write("src", "ab\n");
    p.ifchange(&["t"]).ok();
    assert_eq!(p.runs("t.do"), 2);
    assert_eq!(fs::metadata(p.path("t")).unwrap().ino(), ino);
    assert_eq!(p.read("t"), "same\n");
    // A large output goes through the commit whole.
    p.do_file(
        "big.do",
        "i=0; while [ $i -lt 20000 ]; do echo \"line $i ........\"; i=$((i+1)); done\n",
    );
    p.redo(&["big"]).ok();
    let big = p.read("big");
    assert_eq!(big.lines().count(), 20000);
    assert!(big.ends_with("line 19999 ........\n"));
    assert_eq!(temps(&p), Vec::<String>::new());
}

#[test]
fn a_do_that_recreates_its_targets_directory_builds() {
    let p = Project::new();
    p.write("src", "data\n");
    p.do_file(
        "default.do",
        "redo-ifchange src\n\
         case $1 in\n\
         out/x) rm -rf out; mkdir out; cat src ;;\n\
         state/y) rm -rf state; mkdir -p state/.redo; cat src ;;\n\
         esac\n",
    );
    fs::create_dir_all(p.path("out")).unwrap();
    fs::write(p.path("out/old"), "stale").unwrap();
    p.ifchange(&["out/x"]).ok();
    assert_eq!(p.read("out/x"), "data\n");
    assert!(!p.exists("out/old"), "the .do removed the directory");
    assert!(p.rec("out/x").contains("Target: x"), "{}", p.rec("out/x"));
    // The next build is a no-op.
    assert_eq!(
        p.ifchange(&["out/x"]).ok().built_names(),
        Vec::<String>::new()
    );
    assert_eq!(p.runs("default.do"), 1);
    // A dependency changes: rebuilt through the same removal.
    p.write("src", "data 2\n");
    p.ifchange(&["out/x"]).ok();
    assert_eq!(p.read("out/x"), "data 2\n");
    assert_eq!(p.runs("default.do"), 2);
    // Removing and re-creating `.redo` in there too.
    p.ifchange(&["state/y"]).ok();
    assert_eq!(p.read("state/y"), "data 2\n");
    p.ifchange(&["state/y"]).ok();
    assert_eq!(p.runs("default.do"), 3);
    assert_eq!(temps(&p), Vec::<String>::new());
}

#[test]
fn a_directory_made_at_dollar1_is_the_target() {
    let p = Project::new();
    p.write("src", "one\n");
    p.do_file(
        "outdir.do",
        "redo-ifchange src\nrm -rf \"$1\"\nmkdir \"$1\"\ncp src \"$1/copy\"\n",
    );
    p.ifchange(&["outdir"]).ok();
    assert!(p.path("outdir").is_dir());
    assert_eq!(p.read("outdir/copy"), "one\n");
    assert_eq!(
        p.ifchange(&["outdir"]).ok().built_names(),
        Vec::<String>::new()
    );
    assert_eq!(p.runs("outdir.do"), 1);
    // An entry added by hand is no "external modification": still up to date.
    fs::write(p.path("outdir/extra"), "x").unwrap();
    p.ifchange(&["outdir"]).ok();
    assert_eq!(p.runs("outdir.do"), 1);
    p.write("src", "two!\n");
    let r = p.ifchange(&["outdir"]).ok();
    assert_eq!(r.built_names(), ["redo outdir"]);
    assert_eq!(p.read("outdir/copy"), "two!\n");
    assert_eq!(p.runs("outdir.do"), 2);
    // Gone: rebuilt.
    fs::remove_dir_all(p.path("outdir")).unwrap();
    p.ifchange(&["outdir"]).ok();
    assert_eq!(p.runs("outdir.do"), 3);
    assert!(p.path("outdir/copy").exists());
    // A directory and stdout at once is an error naming both.
    p.do_file("both.do", "mkdir \"$1\"\necho out\n");
    let r = p.redo(&["both"]).fails();
    let e = errs(&r).join("\n");
    assert!(e.contains("is a directory") && e.contains("stdout"), "{e}");
}

#[test]
fn a_directory_made_at_dollar3_replaces_the_target() {
    let p = Project::new();
    p.write("src", "one\n");
    p.do_file(
        "tree.do",
        "redo-ifchange src\nmkdir -p \"$3/sub\"\ncp src \"$3/sub/copy\"\n",
    );
    p.ifchange(&["tree"]).ok();
    assert_eq!(p.read("tree/sub/copy"), "one\n");
    p.ifchange(&["tree"]).ok();
    assert_eq!(p.runs("tree.do"), 1);
    // Rebuilt over the old directory (a rename cannot do that; an exchange can).
    p.write("src", "two!\n");
    p.ifchange(&["tree"]).ok();
    assert_eq!(p.runs("tree.do"), 2);
    assert_eq!(p.read("tree/sub/copy"), "two!\n");
    assert_eq!(temps(&p), Vec::<String>::new());
    // From a file target to a directory one and back.
    p.do_file("flip.do", "redo-ifchange src\nif grep -q two src; then mkdir \"$3\"; echo d > \"$3/f\"; else echo file; fi\n");
    p.ifchange(&["flip"]).ok();
    assert!(p.path("flip/f").exists());
    p.write("src", "one again\n");
    p.ifchange(&["flip"]).ok();
    assert_eq!(p.read("flip"), "file\n");
    assert_eq!(temps(&p), Vec::<String>::new());
}

#[test]
fn a_symlink_made_at_dollar3_is_the_target() {
    let p = Project::new();
    p.write("src", "nowhere-1\n");
    // The link points nowhere: it is compared as the link, never followed.
    p.do_file(
        "link.do",
        "redo-ifchange src\nln -s \"$(cat src)\" \"$3\"\n",
    );
    p.ifchange(&["link"]).ok();
    let link = p.path("link");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("nowhere-1"));
    assert_eq!(
        p.ifchange(&["link"]).ok().built_names(),
        Vec::<String>::new()
    );
    assert_eq!(p.runs("link.do"), 1);
    // Also with content hashes only.
    let mut c = p.command("redo-ifchange");
    c.arg("link").env("REDO_INODE_TRUST", "none");
    assert_eq!(c.status().unwrap().code(), Some(0));
    assert_eq!(p.runs("link.do"), 1);
    p.write("src", "nowhere-22\n");
    p.ifchange(&["link"]).ok();
    assert_eq!(p.runs("link.do"), 2);
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("nowhere-22"));
    // A link to a file: what it points at changing does not make the link out of date.
    p.write("pointee", "a\n");
    p.write("src", "pointee\n");
    p.ifchange(&["link"]).ok();
    assert_eq!(p.runs("link.do"), 3);
    p.write("pointee", "changed\n");
    p.ifchange(&["link"]).ok();
    assert_eq!(p.runs("link.do"), 3);
    // A dependant of the link target: built once, then up to date.
    p.do_file("uses.do", "redo-ifchange link\nreadlink link\n");
    p.ifchange(&["uses"]).ok();
    assert_eq!(p.read("uses"), "pointee\n");
    p.ifchange(&["uses"]).ok();
    assert_eq!(p.runs("uses.do"), 1, "{}", p.rec("uses"));
    p.write("src", "nowhere-333\n");
    p.ifchange(&["uses"]).ok();
    assert_eq!(p.read("uses"), "nowhere-333\n");
    assert_eq!((p.runs("link.do"), p.runs("uses.do")), (4, 2));
    assert_eq!(temps(&p), Vec::<String>::new());
}
