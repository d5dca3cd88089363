#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Build semantics, end to end: the behaviours of docs/BEHAVIOUR.md §7-§14, §15 as a user
//! sees them (file contents, exit codes, exact messages, `.rec` contents and how many times each
//! `.do` ran).
//!
//! Every edit of a file a build depends on changes its size: file timestamps come from a coarse
//! kernel clock, so a same-size rewrite within one tick is (rightly, with the default
//! `REDO_INODE_TRUST=ctime`) not seen as a change.

use redo_tests::{Project, Run, os, strip_duration, wait_until};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers

/// One recfile record: `(field name, value)` in file order; continuation lines (`+ `) joined
/// into the value with `\n`.
type Record = Vec<(String, Vec<u8>)>;

/// Parses the recfile subset goredo writes (docs/BEHAVIOUR.md §12).
fn parse_rec(bytes: &[u8]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut cur: Record = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(b"#") || line.starts_with(b"%") {
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"+") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            let last = cur
                .last_mut()
                .unwrap_or_else(|| panic!("continuation line without a field in {bytes:?}"));
            last.1.push(b'\n');
            last.1.extend_from_slice(rest);
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .unwrap_or_else(|| panic!("not a field line: {:?}", String::from_utf8_lossy(line)));
        let name = String::from_utf8(line[..colon].to_vec()).unwrap();
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        cur.push((name, value.to_vec()));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn get<'a>(r: &'a Record, name: &str) -> Option<&'a [u8]> {
    r.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

fn get_str<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    get(r, name).map(|v| std::str::from_utf8(v).unwrap())
}

/// The dependency records of a `.rec` as `(Type, Target)` pairs, in file order (Target empty
/// for `always`/`stamp`).
fn deps(recs: &[Record]) -> Vec<(String, Vec<u8>)> {
    recs.iter()
        .skip(1)
        .map(|r| {
            (
                get_str(r, "Type").unwrap_or("").to_string(),
                get(r, "Target").unwrap_or(b"").to_vec(),
            )
        })
        .collect()
}

fn dep(ty: &str, target: &str) -> (String, Vec<u8>) {
    (ty.to_string(), target.as_bytes().to_vec())
}

fn has_dep(recs: &[Record], ty: &str, target: &[u8]) -> bool {
    deps(recs)
        .iter()
        .any(|(t, n)| t == ty && n.as_slice() == target)
}

/// The record `Type: ty` / `Target: target`.
fn find_dep<'a>(recs: &'a [Record], ty: &str, target: &[u8]) -> &'a Record {
    recs.iter()
        .skip(1)
        .find(|r| get_str(r, "Type") == Some(ty) && get(r, "Target") == Some(target))
        .unwrap_or_else(|| {
            panic!(
                "no {ty} record for {:?} in {recs:?}",
                String::from_utf8_lossy(target)
            )
        })
}

/// Path of `.redo/NAME.rec` for a target given as raw bytes relative to the root.
fn rec_path(p: &Project, target: &[u8]) -> PathBuf {
    let t = Path::new(OsStr::from_bytes(target));
    let dir = t.parent().unwrap_or(Path::new(""));
    let mut name = t.file_name().unwrap().as_bytes().to_vec();
    name.extend_from_slice(b".rec");
    p.root
        .join(dir)
        .join(".redo")
        .join(OsStr::from_bytes(&name))
}

fn rec_bytes(p: &Project, target: &[u8]) -> Vec<u8> {
    let path = rec_path(p, target);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn recs(p: &Project, target: &str) -> Vec<Record> {
    parse_rec(&rec_bytes(p, target.as_bytes()))
}

/// The `Build` UUID of a target's `.rec` (asserting it is the first record's only field).
fn build_uuid(p: &Project, target: &str) -> String {
    let r = recs(p, target);
    assert_eq!(r[0].len(), 1, "first record must hold only Build: {r:?}");
    get_str(&r[0], "Build").unwrap().to_string()
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

fn is_hex64(v: &[u8]) -> bool {
    v.len() == 64
        && v.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn ino(p: &Project, rel: &str) -> u64 {
    fs::metadata(p.path(rel)).unwrap().ino()
}

fn exec(mut c: Command) -> Run {
    Run::from_output(c.output().unwrap())
}

/// Every stderr line with durations stripped.
fn lines(r: &Run) -> Vec<String> {
    r.stderr.lines().map(strip_duration).collect()
}

/// Stderr lines of the `err  ` category, durations stripped.
fn errs(r: &Run) -> Vec<String> {
    lines(r)
        .into_iter()
        .filter(|l| l.starts_with("err "))
        .collect()
}

/// Every file or directory beneath the root whose name starts with `.redo.` (the temp prefix),
/// inside `.redo/` directories or not.
fn temps(p: &Project) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if e.file_name().as_bytes().starts_with(b".redo.") {
                out.push(path.clone());
            }
            if e.file_type().unwrap().is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&p.root, &mut out);
    out
}

#[track_caller]
fn assert_no_temps(p: &Project) {
    let t = temps(p);
    assert!(t.is_empty(), "temporary files left behind: {t:?}");
}

/// Writes an executable file from a short-lived child process. `Project::write_exec` writes it
/// from this (multi-threaded) test process, where a `fork` by a parallel test can inherit the
/// open write descriptor for a moment and make the daemon's `exec` of the `.do` fail with
/// ETXTBSY ("Text file busy").
fn write_exec_in_child(p: &Project, rel: &str, content: &str) {
    let st = Command::new("/bin/sh")
        .arg("-c")
        .arg("printf '%s' \"$1\" >\"$2\" && chmod 755 \"$2\"")
        .arg("sh")
        .arg(content)
        .arg(p.path(rel))
        .status()
        .unwrap();
    assert!(st.success());
}

/// Number of lines in a counter file a `.do` appends to (for names `do_file` cannot log).
fn count(p: &Project, rel: &Path) -> usize {
    fs::read(p.root.join(rel))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// 1. Unchanged output keeps the old file (docs/BEHAVIOUR.md §9)

/// a -> b -> src; b's output is the first line of src with digits removed.
fn cutoff_project() -> Project {
    let p = Project::new();
    p.do_file("a.do", "redo-ifchange b\necho \"a of $(cat b)\"\n");
    p.do_file("b.do", "redo-ifchange src\nhead -n 1 src | tr -d 0-9\n");
    p.write("src", "x\n");
    p
}

#[test]
fn same_output_keeps_inode_and_dependant_is_not_rebuilt() {
    let p = cutoff_project();
    p.ifchange(&["a"]).ok();
    assert_eq!(p.read("a"), "a of x\n");
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (1, 1));
    let b_ino = ino(&p, "b");
    let b_hash = get(find_dep(&recs(&p, "b"), "ifchange", b"b"), "Hash")
        .unwrap()
        .to_vec();

    // src changes, b's output does not: b reruns, a does not (early cutoff).
    p.write("src", "x123\n");
    p.ifchange(&["a"]).ok();
    assert_eq!(p.runs("b.do"), 2, "b depends on the edited src");
    assert_eq!(
        p.runs("a.do"),
        1,
        "b's output did not change: a must not rerun"
    );
    assert_eq!(p.read("b"), "x\n");
    assert_eq!(p.read("a"), "a of x\n");
    assert_eq!(
        ino(&p, "b"),
        b_ino,
        "identical output must keep the old file"
    );
    let b_recs = recs(&p, "b");
    let own = find_dep(&b_recs, "ifchange", b"b");
    assert_eq!(get(own, "Hash").unwrap(), b_hash.as_slice());
    assert_eq!(get_str(own, "InodeNum").unwrap(), b_ino.to_string());

    // And now everything is up to date.
    let r = p.ifchange(&["a"]).ok();
    assert_eq!(r.stderr, "");
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (1, 2));
}

#[test]
fn dependency_rebuilt_identically_earlier_does_not_make_dependant_out_of_date() {
    let p = cutoff_project();
    p.ifchange(&["a"]).ok();
    let b_ino = ino(&p, "b");

    // Rebuild b alone (identical output), then ask for a: a's record of b still matches.
    p.write("src", "x9\n");
    p.ifchange(&["b"]).ok();
    assert_eq!(p.runs("b.do"), 2);
    assert_eq!(ino(&p, "b"), b_ino);
    let r = p.ifchange(&["a"]).ok();
    assert_eq!(r.stderr, "");
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (1, 2));
}

#[test]
fn changed_output_rebuilds_dependant() {
    let p = cutoff_project();
    p.ifchange(&["a"]).ok();
    let b_ino = ino(&p, "b");

    p.write("src", "yy\n");
    p.ifchange(&["a"]).ok();
    assert_eq!(p.read("b"), "yy\n");
    assert_eq!(p.read("a"), "a of yy\n");
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (2, 2));
    assert_ne!(ino(&p, "b"), b_ino, "new output is renamed onto the target");
}

#[test]
fn forced_redo_with_same_output_keeps_inode() {
    let p = Project::new();
    p.do_file("x.do", "echo same\n");
    p.do_file("y.do", "echo same >\"$3\"\n");
    p.redo(&["x", "y"]).ok();
    let (x, y) = (ino(&p, "x"), ino(&p, "y"));
    p.redo(&["x", "y"]).ok();
    assert_eq!((p.runs("x.do"), p.runs("y.do")), (2, 2));
    assert_eq!((ino(&p, "x"), ino(&p, "y")), (x, y));
    assert_eq!(
        (p.read("x"), p.read("y")),
        ("same\n".into(), "same\n".into())
    );
    assert_no_temps(&p);
}

// ---------------------------------------------------------------------------------------------
// 2. Empty output means "no target" (docs/BEHAVIOUR.md §6, §9)

#[test]
fn empty_output_deletes_target_and_is_always_out_of_date() {
    let p = Project::new();
    p.do_file("x.do", "if [ -e want ]; then echo content; fi\n");
    p.do_file("dep.do", "redo-ifchange x\necho dep\n");
    p.write("want", "");

    p.redo(&["x"]).ok();
    assert_eq!(p.read("x"), "content\n");
    assert!(has_dep(&recs(&p, "x"), "ifchange", b"x"));

    fs::remove_file(p.path("want")).unwrap();
    p.redo(&["x"]).ok();
    assert!(!p.exists("x"), "no output: the existing target is deleted");
    let r = recs(&p, "x");
    assert!(has_dep(&r, "ifcreate", b"x"), "{r:?}");
    assert!(!has_dep(&r, "ifchange", b"x"), "{r:?}");
    assert_eq!(p.runs("x.do"), 2);

    // Always out of date.
    p.ifchange(&["x"]).ok();
    p.ifchange(&["x"]).ok();
    assert_eq!(p.runs("x.do"), 4);
    assert!(!p.exists("x"));

    // And so is a dependant, every time; x is built once per session.
    p.ifchange(&["dep"]).ok();
    assert_eq!((p.runs("dep.do"), p.runs("x.do")), (1, 5));
    p.ifchange(&["dep"]).ok();
    assert_eq!((p.runs("dep.do"), p.runs("x.do")), (2, 6));
    assert_eq!(p.read("dep"), "dep\n");
    assert_no_temps(&p);
}

#[test]
fn empty_dollar3_makes_an_empty_up_to_date_target() {
    let p = Project::new();
    p.do_file("y.do", "touch \"$3\"\n");
    p.ifchange(&["y"]).ok();
    assert!(p.exists("y"));
    assert_eq!(p.read("y"), "");
    let r = recs(&p, "y");
    let own = find_dep(&r, "ifchange", b"y");
    assert_eq!(get_str(own, "Size"), Some("0"));
    assert_eq!(
        get_str(own, "Hash"),
        Some("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
        "BLAKE3 of the empty string"
    );
    assert!(!has_dep(&r, "ifcreate", b"y"));

    let again = p.ifchange(&["y"]).ok();
    assert_eq!(again.stderr, "");
    assert_eq!(p.runs("y.do"), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. .do search side effects (docs/BEHAVIOUR.md §7)

#[test]
fn default_do_in_parent_directory_arguments_cwd_and_records() {
    let p = Project::new();
    p.do_file(
        "default.o.do",
        "printf '%s|%s|%s|%s\\n' \"$1\" \"$2\" \"$3\" \"$(pwd -P)\" >args.txt\necho \"root $1\"\n",
    );
    fs::create_dir_all(p.path("sub")).unwrap();

    let r = p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(r.built_names(), ["redo sub/foo.o (../default.o.do)"]);
    assert_eq!(p.read("sub/foo.o"), "root sub/foo.o\n");

    // The .do ran in its own directory (the root), with DIRPREFIX-ed arguments.
    let args = p.read("args.txt");
    let parts: Vec<&str> = args.trim_end_matches('\n').split('|').collect();
    assert_eq!(parts.len(), 4, "{args:?}");
    assert_eq!(parts[0], "sub/foo.o");
    assert_eq!(parts[1], "sub/foo");
    let hex = parts[2]
        .strip_prefix("sub/.redo.foo.o.")
        .and_then(|s| s.strip_suffix(".3"))
        .unwrap_or_else(|| panic!("$3 = {:?}", parts[2]));
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "$3 = {:?}",
        parts[2]
    );
    assert_eq!(
        Path::new(parts[3]),
        fs::canonicalize(&p.root).unwrap(),
        "cwd of the .do"
    );

    // Records: missing candidates as ifcreate, the used .do as ifchange, paths relative to sub/.
    let rr = recs(&p, "sub/foo.o");
    assert_eq!(
        deps(&rr),
        [
            dep("ifcreate", "foo.o.do"),
            dep("ifcreate", "default.o.do"),
            dep("ifcreate", "default.do"),
            dep("ifchange", "../default.o.do"),
            dep("ifchange", "foo.o"),
        ]
    );
    let do_rec = find_dep(&rr, "ifchange", b"../default.o.do");
    assert_eq!(
        get_str(do_rec, "Size").unwrap(),
        fs::metadata(p.path("default.o.do"))
            .unwrap()
            .len()
            .to_string()
    );
    assert!(is_hex64(get(do_rec, "Hash").unwrap()));

    // Up to date, also when asked from the subdirectory.
    assert_eq!(p.ifchange(&["sub/foo.o"]).ok().stderr, "");
    assert_eq!(p.run_in("sub", "redo-ifchange", &["foo.o"]).ok().stderr, "");
    assert_eq!(p.runs("default.o.do"), 1);
}

#[test]
fn editing_the_used_do_and_creating_more_specific_ones_rebuilds() {
    let p = Project::new();
    p.do_file("default.o.do", "echo \"root $1\"\n");
    fs::create_dir_all(p.path("sub")).unwrap();
    p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(p.runs("default.o.do"), 1);

    // Editing the used .do.
    p.do_file("default.o.do", "echo \"root2 $1\"\n");
    let r = p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(r.built_names(), ["redo sub/foo.o (../default.o.do)"]);
    assert_eq!(p.read("sub/foo.o"), "root2 sub/foo.o\n");
    assert_eq!(p.runs("default.o.do"), 2);
    assert_eq!(p.ifchange(&["sub/foo.o"]).ok().stderr, "");

    // A more specific default .do appears in the target's directory.
    p.do_file("sub/default.o.do", "echo \"sub $1 $2\"\n");
    let r = p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(r.built_names(), ["redo sub/foo.o (default.o.do)"]);
    assert_eq!(p.read("sub/foo.o"), "sub foo.o foo\n");
    assert_eq!((p.runs("default.o.do"), p.runs("sub/default.o.do")), (2, 1));
    let rr = recs(&p, "sub/foo.o");
    assert!(has_dep(&rr, "ifchange", b"default.o.do"), "{rr:?}");
    assert!(!has_dep(&rr, "ifchange", b"../default.o.do"), "{rr:?}");
    assert!(has_dep(&rr, "ifcreate", b"foo.o.do"), "{rr:?}");
    assert_eq!(p.ifchange(&["sub/foo.o"]).ok().stderr, "");

    // The target's own .do appears.
    p.do_file("sub/foo.o.do", "echo \"own $1 $2\"\n");
    let r = p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(r.built_names(), ["redo sub/foo.o"]);
    assert_eq!(p.read("sub/foo.o"), "own foo.o foo.o\n");
    assert_eq!(
        deps(&recs(&p, "sub/foo.o")),
        [dep("ifchange", "foo.o.do"), dep("ifchange", "foo.o")]
    );
    assert_eq!(p.ifchange(&["sub/foo.o"]).ok().stderr, "");

    // Editing it rebuilds; the default ones are no longer involved.
    p.do_file("sub/foo.o.do", "echo \"own2 $1\"\n");
    p.do_file("sub/default.o.do", "echo \"sub2 $1\"\n");
    p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(p.read("sub/foo.o"), "own2 foo.o\n");
    assert_eq!(
        (
            p.runs("default.o.do"),
            p.runs("sub/default.o.do"),
            p.runs("sub/foo.o.do")
        ),
        (2, 1, 2)
    );
    assert_no_temps(&p);
}

#[test]
fn dollar2_strips_the_matched_extension() {
    let p = Project::new();
    p.write("default.c.do", "echo \"$1 $2\"\n");
    p.redo(&["a.b.c"]).ok();
    assert_eq!(p.read("a.b.c"), "a.b.c a.b\n");
    p.write("default.b.c.do", "echo \"$1 $2\"\n");
    p.redo(&["a.b.c"]).ok();
    assert_eq!(p.read("a.b.c"), "a.b.c a\n");
    p.write("default.do", "echo \"$1 $2\"\n");
    p.redo(&["x.y.z"]).ok();
    assert_eq!(p.read("x.y.z"), "x.y.z x.y.z\n");
    p.write("a.b.c.do", "echo \"$1 $2\"\n");
    p.redo(&["a.b.c"]).ok();
    assert_eq!(p.read("a.b.c"), "a.b.c a.b.c\n");
}

// ---------------------------------------------------------------------------------------------
// 4. Build UUID and redo-always (docs/BEHAVIOUR.md §11, §14)

#[test]
fn redo_always_runs_once_per_session_and_builds_share_the_uuid() {
    let p = Project::new();
    p.do_file("clock.do", "redo-always\necho tick\n");
    p.do_file("a.do", "redo-ifchange clock\necho a\n");
    p.do_file("b.do", "redo-ifchange clock\necho b\n");
    p.do_file("all.do", "redo-ifchange a b\n");

    p.redo(&["a", "b"]).ok();
    assert_eq!(p.runs("clock.do"), 1, "once in one session");
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (1, 1));
    let u = build_uuid(&p, "clock");
    assert!(is_uuid_v4(&u), "{u:?}");
    assert_eq!(build_uuid(&p, "a"), u);
    assert_eq!(build_uuid(&p, "b"), u);
    assert!(has_dep(&recs(&p, "clock"), "always", b""));
    let first_line = String::from_utf8(rec_bytes(&p, b"clock")).unwrap();
    assert_eq!(first_line.lines().next().unwrap(), format!("Build: {u}"));

    // Next session: again, once.
    p.redo(&["a", "b"]).ok();
    assert_eq!(p.runs("clock.do"), 2);
    let u2 = build_uuid(&p, "clock");
    assert!(is_uuid_v4(&u2));
    assert_ne!(u2, u);
    assert_eq!(build_uuid(&p, "a"), u2);

    // Through redo-ifchange, in parallel.
    p.run("redo-ifchange", &["-j", "2", "a", "b"]).ok();
    assert_eq!(p.runs("clock.do"), 3);
    assert_ne!(build_uuid(&p, "clock"), u2);

    // Nested: all -> a, b -> clock.
    p.redo(&["all"]).ok();
    assert_eq!(p.runs("clock.do"), 4);
    let u4 = build_uuid(&p, "all");
    assert_eq!(build_uuid(&p, "clock"), u4);
}

// ---------------------------------------------------------------------------------------------
// 5. External modification guard (docs/BEHAVIOUR.md §9)

const MODIFIED: &str = "warn x externally modified: not redoing (its content is not what redo wrote; remove it to have it rebuilt, or set REDO_STOP_IF_MODIFIED=1 to make this an error)";

#[test]
fn externally_modified_target_is_not_redone() {
    let p = Project::new();
    p.do_file("x.do", "redo-ifchange src\ncat src\n");
    p.do_file("user.do", "redo-ifchange x\ncat x\n");
    p.write("src", "one\n");
    p.ifchange(&["x"]).ok();
    assert_eq!(p.read("x"), "one\n");
    let rec_before = rec_bytes(&p, b"x");

    // Another size than the built content, so the edit is seen even within one timestamp tick.
    p.write("x", "mine\n");
    p.write("src", "two two\n");
    let r = p.ifchange(&["x"]).ok();
    assert!(r.stderr.lines().any(|l| l == MODIFIED), "{r:?}");
    assert_eq!(r.built_names(), Vec::<String>::new());
    assert_eq!(p.read("x"), "mine\n");
    assert_eq!(p.runs("x.do"), 1);
    assert_eq!(rec_bytes(&p, b"x"), rec_before);

    // Forced, too.
    let r = p.redo(&["x"]).ok();
    assert!(r.stderr.lines().any(|l| l == MODIFIED), "{r:?}");
    assert_eq!((p.read("x"), p.runs("x.do")), ("mine\n".into(), 1));

    // A dependant proceeds with the user's content.
    let r = p.ifchange(&["user"]).ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l == format!("warn . {}", &MODIFIED[5..])),
        "{r:?}"
    );
    assert_eq!(p.read("user"), "mine\n");

    // REDO_STOP_IF_MODIFIED=1: a hard error.
    let mut c = p.command("redo-ifchange");
    c.env("REDO_STOP_IF_MODIFIED", "1").arg("x");
    let r = exec(c).fails();
    assert!(r.stderr.contains("x externally modified"), "{r:?}");
    assert!(!r.stderr.contains("not redoing"), "{r:?}");
    assert!(r.stderr.contains("remove it to have it rebuilt"), "{r:?}");
    assert_eq!((p.read("x"), p.runs("x.do")), ("mine\n".into(), 1));
    assert_eq!(rec_bytes(&p, b"x"), rec_before);
    assert_no_temps(&p);
}

// ---------------------------------------------------------------------------------------------
// 6. Post-run checks (docs/BEHAVIOUR.md §9, §15)

/// Builds `x` with a good .do, swaps in `bad`, runs `redo x` and returns the run plus the
/// `.rec` bytes before.
fn build_then_fail(bad: &str) -> (Project, Run, Vec<u8>) {
    let p = Project::new();
    p.do_file("x.do", "echo good\n");
    p.redo(&["x"]).ok();
    assert_eq!(p.read("x"), "good\n");
    let before = rec_bytes(&p, b"x");
    p.do_file("x.do", bad);
    let r = p.redo(&["x"]).fails();
    assert_eq!(p.runs("x.do"), 2);
    (p, r, before)
}

#[test]
fn writing_dollar1_directly_fails() {
    let (p, r, before) = build_then_fail("echo touched >\"$1\"\necho out\n");
    assert_eq!(
        errs(&r),
        [
            "err  x (x.do): x.do wrote x itself: write to $3 or to stdout instead (redo renames $3 \
          to x when the .do succeeds)"
        ]
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.built_names(), Vec::<String>::new());
    assert_eq!(rec_bytes(&p, b"x"), before, "nothing committed");
    assert_eq!(
        p.read("x"),
        "touched\n",
        "stdout must not be renamed onto x"
    );
    assert_no_temps(&p);

    // Also when there was no target (nor record) before.
    p.do_file("new.do", "echo hi >\"$1\"\n");
    let r = p.redo(&["new"]).fails();
    assert_eq!(
        errs(&r),
        [
            "err  new (new.do): new.do wrote new itself: write to $3 or to stdout instead (redo \
          renames $3 to new when the .do succeeds)"
        ]
    );
    assert!(!rec_path(&p, b"new").exists());
    assert_no_temps(&p);
}

#[test]
fn writing_both_stdout_and_dollar3_fails() {
    let (p, r, before) = build_then_fail("echo out\necho three >\"$3\"\n");
    assert_eq!(
        errs(&r),
        [
            "err  x (x.do): x.do wrote both $3 and stdout: write the output to one of them only, and \
          messages to stderr (>&2)"
        ]
    );
    assert_eq!(r.code, 1);
    assert_eq!(p.read("x"), "good\n");
    assert_eq!(rec_bytes(&p, b"x"), before);
    assert_no_temps(&p);
}

#[test]
fn non_zero_exit_fails_and_keeps_old_target() {
    let (p, r, before) = build_then_fail("echo partial\necho partial3 >\"$3\"\nexit 3\n");
    assert_eq!(errs(&r), ["err  x (x.do): exit status 3"]);
    assert_eq!(p.read("x"), "good\n");
    assert_eq!(rec_bytes(&p, b"x"), before);
    assert_no_temps(&p);

    // The failure committed nothing: with the original .do content back, x is up to date.
    p.do_file("x.do", "echo good\n");
    assert_eq!(p.ifchange(&["x"]).ok().stderr, "");
    assert_eq!((p.read("x"), p.runs("x.do")), ("good\n".into(), 2));
}

#[test]
fn failure_inside_nested_do_propagates() {
    let p = Project::new();
    p.do_file("top.do", "redo-ifchange mid\necho top\n");
    p.do_file("mid.do", "redo-ifchange bad\necho mid\n");
    p.do_file("bad.do", "exit 2\n");
    let r = p.redo(&["top"]).fails();
    assert_eq!(
        errs(&r),
        [
            "err  . . bad (bad.do): exit status 2",
            "err  . mid (mid.do): exit status 1",
            "err  top (top.do): exit status 1",
        ]
    );
    assert!(!p.exists("top") && !p.exists("mid") && !p.exists("bad"));
    assert!(!rec_path(&p, b"top").exists());
    assert_no_temps(&p);
}

// ---------------------------------------------------------------------------------------------
// 7. redo vs redo-ifchange (docs/BEHAVIOUR.md §8, §11)

#[test]
fn redo_is_sequential_and_stops_at_first_failure() {
    let p = Project::new();
    p.do_file("a.do", "echo a\n");
    p.do_file("b.do", "exit 1\n");
    p.do_file("c.do", "echo c\n");
    let r = p.redo(&["a", "b", "c"]).fails();
    assert_eq!((p.runs("a.do"), p.runs("b.do"), p.runs("c.do")), (1, 1, 0));
    assert_eq!(r.built_names(), ["redo a"]);
    assert_eq!(errs(&r), ["err  b (b.do): exit status 1"]);
    assert_eq!(
        lines(&r),
        ["redo a", "err  b (b.do): exit status 1"],
        "in command-line order"
    );
    assert!(p.exists("a") && !p.exists("c"));
}

#[test]
fn redo_is_forced() {
    let p = Project::new();
    p.do_file("a.do", "echo a\n");
    p.redo(&["a"]).ok();
    let r = p.redo(&["a"]).ok();
    assert_eq!(r.built_names(), ["redo a"]);
    assert_eq!(p.runs("a.do"), 2);
    assert_eq!(p.ifchange(&["a"]).ok().stderr, "");
    assert_eq!(p.runs("a.do"), 2);
}

#[test]
fn ifchange_deduplicates_targets() {
    let p = Project::new();
    p.do_file("x.do", "echo x\n");
    p.do_file("y.do", "echo y\n");
    p.ifchange(&["x", "x", "y", "./x", "y"]).ok();
    assert_eq!((p.runs("x.do"), p.runs("y.do")), (1, 1));

    // Inside a .do as well.
    p.do_file("z.do", "redo-ifchange w w ./w\necho z\n");
    p.do_file("w.do", "echo w\n");
    p.ifchange(&["z"]).ok();
    assert_eq!(p.runs("w.do"), 1);
    let zr = recs(&p, "z");
    assert!(has_dep(&zr, "ifchange", b"w"), "{zr:?}");
}

#[test]
fn ifchange_lets_siblings_finish_after_a_failure() {
    for order in [["bad", "good"], ["good", "bad"]] {
        let p = Project::new();
        p.do_file("bad.do", "exit 4\n");
        p.do_file("good.do", "echo fine\n");
        let r = p.ifchange(&order).fails();
        assert_eq!(p.read("good"), "fine\n", "{order:?}: {r:?}");
        assert_eq!((p.runs("bad.do"), p.runs("good.do")), (1, 1));
        assert_eq!(r.built_names(), ["redo good"]);
        assert_eq!(errs(&r), ["err  bad (bad.do): exit status 4"]);
    }
}

#[test]
fn sources_are_never_built_even_when_a_default_do_matches() {
    let p = Project::new();
    p.do_file("default.do", "echo generated\n");
    p.do_file("user.do", "redo-ifchange src.txt\ncat src.txt\n");
    p.write("src.txt", "hand\n");

    let r = p.ifchange(&["src.txt"]).ok();
    assert_eq!(r.stderr, "");
    assert_eq!(p.read("src.txt"), "hand\n");
    assert_eq!(p.runs("default.do"), 0);
    assert!(!rec_path(&p, b"src.txt").exists());

    // Not even `redo` (forced) builds a source; being asked for by name, it says why.
    let r = p.redo(&["src.txt"]).ok();
    assert_eq!(
        r.stderr,
        "warn src.txt exists and redo did not build it: taking it as a source, not \
         overwriting it (remove it to have default.do build it)\n"
    );
    assert_eq!(
        (p.read("src.txt"), p.runs("default.do")),
        ("hand\n".into(), 0)
    );
    assert!(!rec_path(&p, b"src.txt").exists());

    p.ifchange(&["user"]).ok();
    assert_eq!(p.read("user"), "hand\n");
    assert_eq!(p.runs("default.do"), 0);
    let ur = recs(&p, "user");
    let src = find_dep(&ur, "ifchange", b"src.txt");
    assert!(is_hex64(get(src, "Hash").unwrap()));

    // Editing the source rebuilds its dependant, still without building the source.
    p.write("src.txt", "hand2\n");
    p.ifchange(&["user"]).ok();
    assert_eq!(p.read("user"), "hand2\n");
    assert_eq!((p.runs("default.do"), p.runs("user.do")), (0, 2));
    assert!(!rec_path(&p, b"src.txt").exists());
}

#[test]
fn non_existent_dependency_makes_dependant_always_out_of_date() {
    let p = Project::new();
    p.do_file("missing-phony.do", "true\n");
    p.do_file("t.do", "redo-ifchange missing-phony\necho t\n");

    p.ifchange(&["t"]).ok();
    assert_eq!(p.read("t"), "t\n");
    assert!(!p.exists("missing-phony"));
    let tr = recs(&p, "t");
    let d = find_dep(&tr, "ifchange", b"missing-phony");
    for f in [
        "Size",
        "InodeNum",
        "CtimeSec",
        "CtimeNsec",
        "MtimeSec",
        "MtimeNsec",
    ] {
        assert_eq!(get_str(d, f), Some("0"), "{f} in {d:?}");
    }
    assert_eq!(get(d, "Hash"), None, "{d:?}");
    assert!(has_dep(
        &recs(&p, "missing-phony"),
        "ifcreate",
        b"missing-phony"
    ));

    for n in 2..=4 {
        let r = p.ifchange(&["t"]).ok();
        assert_eq!(
            (p.runs("t.do"), p.runs("missing-phony.do")),
            (n, n),
            "{r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Parallelism basics (docs/BEHAVIOUR.md §13)

#[test]
fn nested_build_with_one_job_does_not_deadlock() {
    let p = Project::new();
    for i in 1..5 {
        p.do_file(
            &format!("t{i}.do"),
            &format!(
                "redo-ifchange t{}\necho \"t{i} $(cat t{})\"\n",
                i + 1,
                i + 1
            ),
        );
    }
    p.do_file("t5.do", "echo leaf\n");

    let mut c = p.command("redo-ifchange");
    c.args(["-j", "1", "t1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut status = None;
    let finished = wait_until(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
        panic!("redo-ifchange -j 1 with nesting hangs\n{}", p.daemon_log());
    }
    let r = Run::from_output(child.wait_with_output().unwrap()).ok();
    assert_eq!(p.read("t1"), "t1 t2 t3 t4 leaf\n");
    assert_eq!(
        r.built_names(),
        [
            "redo . . . . t5",
            "redo . . . t4",
            "redo . . t3",
            "redo . t2",
            "redo t1"
        ]
    );
    for i in 1..=5 {
        assert_eq!(p.runs(&format!("t{i}.do")), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Atomic commit (docs/BEHAVIOUR.md §9)

#[test]
fn commit_with_fsync_enabled() {
    let p = Project::new();
    p.do_file("all.do", "redo-ifchange sub/x.o y\n");
    p.do_file("default.o.do", "redo-ifchange src\ncat src\n");
    p.do_file("y.do", "redo-ifchange src\ncat src >\"$3\"\n");
    p.write("src", "v1\n");
    fs::create_dir_all(p.path("sub")).unwrap();
    let synced = |tool: &str, args: &[&str]| {
        let mut c = p.command(tool);
        c.env_remove("REDO_NO_SYNC").args(args);
        exec(c)
    };

    let r = synced("redo-ifchange", &["all"]).ok();
    let mut names = r.built_names();
    names.sort();
    assert_eq!(
        names,
        ["redo . sub/x.o (../default.o.do)", "redo . y", "redo all"]
    );
    assert_eq!(
        (p.read("sub/x.o"), p.read("y")),
        ("v1\n".into(), "v1\n".into())
    );
    assert_no_temps(&p);

    let xr = recs(&p, "sub/x.o");
    let u = get_str(&xr[0], "Build").unwrap().to_string();
    assert!(is_uuid_v4(&u));
    assert_eq!(build_uuid(&p, "y"), u);
    assert_eq!(build_uuid(&p, "all"), u);
    assert_eq!(
        deps(&xr),
        [
            dep("ifcreate", "x.o.do"),
            dep("ifcreate", "default.o.do"),
            dep("ifcreate", "default.do"),
            dep("ifchange", "../default.o.do"),
            dep("ifchange", "../src"),
            dep("ifchange", "x.o"),
        ]
    );
    let own = find_dep(&xr, "ifchange", b"x.o");
    let md = fs::metadata(p.path("sub/x.o")).unwrap();
    assert_eq!(get_str(own, "Size").unwrap(), md.len().to_string());
    assert_eq!(get_str(own, "InodeNum").unwrap(), md.ino().to_string());
    assert_eq!(get_str(own, "CtimeSec").unwrap(), md.ctime().to_string());
    assert_eq!(
        get_str(own, "CtimeNsec").unwrap(),
        md.ctime_nsec().to_string()
    );
    assert_eq!(get_str(own, "MtimeSec").unwrap(), md.mtime().to_string());
    assert_eq!(
        get_str(own, "MtimeNsec").unwrap(),
        md.mtime_nsec().to_string()
    );
    assert!(is_hex64(get(own, "Hash").unwrap()));
    let mut all_deps = deps(&recs(&p, "all"));
    all_deps.sort();
    assert_eq!(
        all_deps,
        [
            dep("ifchange", "all.do"),
            dep("ifchange", "sub/x.o"),
            dep("ifchange", "y"),
            dep("ifcreate", "all"),
        ]
    );

    // Same output (kept file) and new output (renamed), both with fsync.
    let y_ino = ino(&p, "y");
    let x_ino = ino(&p, "sub/x.o");
    synced("redo", &["sub/x.o", "y"]).ok();
    assert_eq!((ino(&p, "sub/x.o"), ino(&p, "y")), (x_ino, y_ino));
    assert_eq!((p.runs("default.o.do"), p.runs("y.do")), (2, 2));
    assert_no_temps(&p);
    p.write("src", "v22\n");
    synced("redo-ifchange", &["all"]).ok();
    assert_eq!(
        (p.read("sub/x.o"), p.read("y")),
        ("v22\n".into(), "v22\n".into())
    );
    assert_no_temps(&p);
    assert_eq!(
        synced("redo-ifchange", &["all"]).ok().built_names(),
        ["redo all"]
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Output conventions (docs/BEHAVIOUR.md §15)

/// a -> b -> c, each `.do` writing to stderr before (and a also after) its nested build.
fn chain_with_stderr() -> Project {
    let p = Project::new();
    p.do_file(
        "a.do",
        "echo 'a says hi' >&2\nredo-ifchange b\nprintf '  \\tindented, trailing  \\n' >&2\necho a\n",
    );
    p.do_file("b.do", "echo 'b says hi' >&2\nredo-ifchange c\necho b\n");
    p.do_file("c.do", "echo 'redo not a completion line' >&2\necho c\n");
    p
}

#[test]
fn completion_lines_are_bottom_up_and_do_stderr_is_relayed() {
    let p = chain_with_stderr();
    let r = p.redo(&["a"]).ok();
    let l = lines(&r);
    // Completion lines: bottom-up, indented by level.
    let completions: Vec<&String> = l
        .iter()
        .filter(|x| x.starts_with("redo ") && *x != "redo not a completion line")
        .collect();
    assert_eq!(completions, ["redo . . c", "redo . b", "redo a"], "{l:?}");
    // Relayed lines: unchanged, each exactly once.
    let pos = |want: &str| {
        let found: Vec<usize> = (0..l.len()).filter(|&i| l[i] == want).collect();
        assert_eq!(found.len(), 1, "{want:?} in {l:?}");
        found[0]
    };
    assert_eq!(l.len(), 7, "{l:?}");
    assert!(r.stderr.contains("\n  \tindented, trailing  \n"), "{r:?}");
    // A .do's stderr comes before its own completion line, and what a wrote after its nested
    // build finished comes after that build's completion line.
    assert!(pos("a says hi") < pos("redo a"));
    assert!(pos("b says hi") < pos("redo . b"));
    assert!(pos("redo not a completion line") < pos("redo . . c"));
    assert!(pos("redo . b") < pos("  \tindented, trailing  "));
    assert!(pos("  \tindented, trailing  ") < pos("redo a"));
}

/// What a `.do` wrote to stderr before starting a nested build is shown before that build's
/// output, as with goredo (where the nested process writes into the same pipe). The order
/// check is repeated because a wrong implementation only loses it when the daemon is slow to
/// read the parent's pipe; a correct one never does.
#[test]
fn do_stderr_written_before_a_nested_build_comes_first() {
    let p = chain_with_stderr();
    for round in 0..20 {
        // Missing targets are out of date: the whole chain runs every round.
        for t in ["b", "c"] {
            let _ = fs::remove_file(p.path(t));
        }
        let r = p.redo(&["a"]).ok();
        assert_eq!(
            lines(&r),
            [
                "a says hi",
                "b says hi",
                "redo not a completion line",
                "redo . . c",
                "redo . b",
                "  \tindented, trailing  ",
                "redo a",
            ],
            "round {round}"
        );
    }
}

#[test]
fn default_do_names_in_completion_lines() {
    let p = Project::new();
    p.do_file("all.do", "redo-ifchange x.txt sub/y.txt\n");
    p.do_file("default.txt.do", "echo \"$1\"\n");
    fs::create_dir_all(p.path("sub")).unwrap();
    let r = p.redo(&["all"]).ok();
    let mut names = r.built_names();
    names.sort();
    assert_eq!(
        names,
        [
            "redo . sub/y.txt (../default.txt.do)",
            "redo . x.txt (default.txt.do)",
            "redo all",
        ]
    );
    assert_eq!(r.built_names().last().unwrap(), "redo all");
    // From the subdirectory, names are relative to the client's cwd.
    let r = p.run_in("sub", "redo", &["y.txt"]).ok();
    assert_eq!(r.built_names(), ["redo y.txt (../default.txt.do)"]);
    assert_eq!(p.read("sub/y.txt"), "sub/y.txt\n");
}

// ---------------------------------------------------------------------------------------------
// Auxiliary commands and errors

#[test]
fn dependency_commands_outside_a_do_fail_clearly() {
    let p = Project::new();
    p.write("f", "");
    for tool in ["redo-ifcreate", "redo-always", "redo-stamp"] {
        let args: &[&str] = if tool == "redo-ifcreate" { &["g"] } else { &[] };
        let r = p.run(tool, args);
        assert_eq!(r.code, 1, "{tool}: {r:?}");
        assert_eq!(
            r.stderr,
            format!(
                "{tool}: {tool} only works inside a .do: it records a dependency of the target \
                 that .do builds; put it in a .do file (run from a shell, there is no such \
                 target)\n"
            ),
            "{tool} must say it only works inside a .do"
        );
        assert!(!r.stderr.contains("REDO_JOB"), "{r:?}");
        assert_eq!(r.stdout, "");
    }
    assert!(!p.exists("g"));
}

#[test]
fn ifcreate_records_and_rebuilds_when_the_file_appears() {
    let p = Project::new();
    p.do_file(
        "t.do",
        "if [ ! -e later ]; then redo-ifcreate later; fi\necho t\n",
    );
    p.ifchange(&["t"]).ok();
    assert!(has_dep(&recs(&p, "t"), "ifcreate", b"later"));
    assert_eq!(p.ifchange(&["t"]).ok().stderr, "");
    assert_eq!(p.runs("t.do"), 1);
    p.write("later", "x");
    let r = p.ifchange(&["t"]).ok();
    assert_eq!(r.built_names(), ["redo t"]);
    assert_eq!(p.runs("t.do"), 2);
    assert!(!has_dep(&recs(&p, "t"), "ifcreate", b"later"));
    assert_eq!(p.ifchange(&["t"]).ok().stderr, "");
    assert_eq!(p.runs("t.do"), 2);
}

#[test]
fn ifcreate_of_an_existing_file_fails() {
    let p = Project::new();
    p.write("exists.txt", "here\n");
    p.do_file("t.do", "redo-ifcreate exists.txt\necho t\n");
    let r = p.redo(&["t"]).fails();
    assert!(r.stderr.contains("exists.txt"), "{r:?}");
    assert_eq!(
        errs(&r).last().unwrap(),
        "err  t (t.do): exit status 1",
        "{r:?}"
    );
    assert!(!p.exists("t"));
    assert!(!rec_path(&p, b"t").exists());
    assert_no_temps(&p);
}

#[test]
fn redo_stamp_records_blake3_of_stdin() {
    let p = Project::new();
    p.write("data", "abc");
    p.do_file("t.do", "redo-ifchange data\nredo-stamp <data\necho t\n");
    p.ifchange(&["t"]).ok();
    let tr = recs(&p, "t");
    let stamp = tr
        .iter()
        .find(|r| get_str(r, "Type") == Some("stamp"))
        .unwrap_or_else(|| panic!("no stamp record: {tr:?}"));
    let h = get_str(stamp, "Hash").unwrap();
    assert_eq!(
        h, "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        "BLAKE3(\"abc\")"
    );
    assert_eq!(
        get_str(find_dep(&tr, "ifchange", b"data"), "Hash"),
        Some(h),
        "same content, same hash"
    );
    assert_eq!(get(stamp, "Target"), None);
    // The stamp is stored, not consulted: still up to date.
    assert_eq!(p.ifchange(&["t"]).ok().stderr, "");
    assert_eq!(p.runs("t.do"), 1);
}

#[test]
fn redo_whichdo_lists_candidates() {
    let p = Project::new();
    p.write("default.o.do", "echo\n");
    fs::create_dir_all(p.path("sub")).unwrap();

    let r = p.run("redo-whichdo", &["sub/foo.o"]).ok();
    assert_eq!(
        r.stdout,
        "sub/foo.o.do\nsub/default.o.do\nsub/default.do\ndefault.o.do\n"
    );
    let r = p.run_in("sub", "redo-whichdo", &["foo.o"]).ok();
    assert_eq!(
        r.stdout,
        "foo.o.do\ndefault.o.do\ndefault.do\n../default.o.do\n"
    );

    // Nothing found: every candidate up to the top, exit 1.
    let r = p.run("redo-whichdo", &["sub/x.y.z"]).fails();
    assert_eq!(
        r.stdout,
        "sub/x.y.z.do\nsub/default.y.z.do\nsub/default.z.do\nsub/default.do\n\
         default.y.z.do\ndefault.z.do\ndefault.do\n"
    );
}

/// A missing dependency names the file and who needs it; the `.do` candidates tried are a
/// `-d` line; the search stops at the project's root (here a git repository's), so a stray
/// `default.do` above it builds nothing.
#[test]
fn missing_dependency_says_what_and_who_and_the_search_stops_at_the_root() {
    let p = Project::new();
    fs::remove_file(p.path(".redo/top")).unwrap();
    fs::create_dir(p.path(".git")).unwrap();
    let stray = p.root.parent().unwrap().join("default.do");
    fs::write(&stray, "echo stray >&2\nexit 7\n").unwrap();
    p.do_file("prog.do", "redo-ifchange nothere.c\necho prog\n");
    let r = p.redo(&["prog"]).fails();
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "err  . nothere.c: no such file, and no .do builds it (needed by prog)"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("stray") && !r.stderr.contains("tried"),
        "{r:?}"
    );
    let r = p.redo(&["-d", "prog"]).fails();
    assert!(
        r.stderr.lines().any(|l| l
            .contains("nothere.c: .do candidates tried: nothere.c.do, default.c.do, default.do")),
        "{r:?}"
    );
    assert!(!r.stderr.contains("../default.do"), "{r:?}");
    fs::remove_file(&stray).unwrap();
}

#[test]
fn target_without_do_fails() {
    let p = Project::new();
    let r = p.redo(&["nothing"]).fails();
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "err  nothing: no such file, and no .do builds it"),
        "{r:?}"
    );
    assert!(!p.exists("nothing"));
    assert!(!rec_path(&p, b"nothing").exists());

    let r = p.ifchange(&["nothing"]).fails();
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "err  nothing: no such file, and no .do builds it"),
        "{r:?}"
    );
    assert_no_temps(&p);
}

#[test]
fn environment_is_the_requesters() {
    let p = Project::new();
    p.do_file("x.do", "echo \"$FOO\"\n");
    let mut c = p.command("redo");
    c.env("FOO", "1").arg("x");
    exec(c).ok();
    assert_eq!(p.read("x"), "1\n");
    let mut c = p.command("redo");
    c.env("FOO", "2").arg("x");
    exec(c).ok();
    assert_eq!(p.read("x"), "2\n");
    // And an unset variable is unset, not the daemon's or a previous client's.
    p.redo(&["x"]).ok();
    assert_eq!(p.read("x"), "\n");
}

// ---------------------------------------------------------------------------------------------
// Odd file names (docs/DESIGN.md §7; docs/BEHAVIOUR.md §12 continuation lines)

#[test]
fn odd_file_names_build_and_are_tracked() {
    let p = Project::new();
    let names: [&[u8]; 5] = [
        b"with space",
        b"new\nline",
        "é日本".as_bytes(),
        b"raw\xffbyte",
        b"d i r/x \xc3\xa9.o",
    ];
    let own_do = "echo r >>\"$1.count\"\nredo-ifchange \"$1.in\"\ncat \"$1.in\"\n";
    for n in &names[..4] {
        let mut d = n.to_vec();
        d.extend_from_slice(b".do");
        p.write_bytes(Path::new(os(&d)), own_do.as_bytes());
    }
    // The last one in a directory with a space, built by a default .do in the root.
    p.write(
        "default.o.do",
        "echo r >>\"$1.count\"\nredo-ifchange \"$2.in\"\ncat \"$2.in\"\n",
    );
    let input = |n: &[u8]| {
        let mut i = n.to_vec();
        if let Some(stem) = n.strip_suffix(b".o") {
            i = stem.to_vec();
        }
        i.extend_from_slice(b".in");
        i
    };
    let content = |n: &[u8], v: u32| {
        let mut c = b"content of ".to_vec();
        c.extend_from_slice(n);
        // Each version has another size (see the note at the top).
        c.extend_from_slice(format!(" {}\n", "v".repeat(v as usize)).as_bytes());
        c
    };
    for n in names {
        p.write_bytes(Path::new(os(&input(n))), &content(n, 1));
    }
    let counter = |n: &[u8]| {
        let mut c = n.to_vec();
        c.extend_from_slice(b".count");
        PathBuf::from(os(&c))
    };
    let ifchange = || {
        let mut c = p.command("redo-ifchange");
        for n in names {
            c.arg(os(n));
        }
        exec(c)
    };

    let r = ifchange().ok();
    assert_eq!(r.built().len(), 5, "{r:?}");
    for n in names {
        assert_eq!(fs::read(p.root.join(os(n))).unwrap(), content(n, 1));
        assert_eq!(count(&p, &counter(n)), 1, "{:?}", os(n));
        let raw = rec_bytes(&p, n);
        let rr = parse_rec(&raw);
        let base = Path::new(os(n)).file_name().unwrap().as_bytes();
        let own = find_dep(&rr, "ifchange", base);
        assert!(is_hex64(get(own, "Hash").unwrap()));
        let inp = input(n);
        let base_in = Path::new(os(&inp)).file_name().unwrap().as_bytes();
        find_dep(&rr, "ifchange", base_in);
        if n.contains(&b'\n') {
            assert!(
                raw.windows(b"Target: new\n+ line".len())
                    .any(|w| w == b"Target: new\n+ line"),
                "{:?}",
                String::from_utf8_lossy(&raw)
            );
        }
    }
    assert!(has_dep(
        &parse_rec(&rec_bytes(&p, names[4])),
        "ifchange",
        b"../default.o.do"
    ));
    assert!(has_dep(
        &parse_rec(&rec_bytes(&p, names[1])),
        "ifchange",
        b"new\nline.do"
    ));

    // Up to date.
    let r = ifchange().ok();
    assert_eq!(r.stderr, "");
    for n in names {
        assert_eq!(count(&p, &counter(n)), 1);
    }

    // Changing one source rebuilds exactly its target.
    for (i, n) in names.iter().enumerate() {
        let n: &[u8] = n;
        p.write_bytes(Path::new(os(&input(n))), &content(n, 2));
        let r = ifchange().ok();
        assert_eq!(r.built().len(), 1, "{:?}: {r:?}", os(n));
        assert_eq!(fs::read(p.root.join(os(n))).unwrap(), content(n, 2));
        for (j, m) in names.iter().enumerate() {
            let want = if j <= i { 2 } else { 1 };
            assert_eq!(count(&p, &counter(m)), want, "{:?}", os(m));
        }
    }
    assert_no_temps(&p);
}

// ---------------------------------------------------------------------------------------------
// More of the runner and the recording rules

#[test]
fn dependency_paths_are_relative_to_the_target_directory() {
    let p = Project::new();
    fs::create_dir_all(p.path("sub")).unwrap();
    p.write("config.h", "c\n");
    p.write("sub/x.in", "x\n");
    p.write("sub/y.in", "y\n");
    // Runs in the root (DIRPREFIX sub), changes directory in the middle.
    p.do_file(
        "default.o.do",
        "cd sub\nredo-ifchange x.in ../config.h\ncd ..\nredo-ifchange sub/y.in\ncat sub/x.in sub/y.in config.h\n",
    );
    p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(p.read("sub/foo.o"), "x\ny\nc\n");
    assert_eq!(
        deps(&recs(&p, "sub/foo.o")),
        [
            dep("ifcreate", "foo.o.do"),
            dep("ifcreate", "default.o.do"),
            dep("ifcreate", "default.do"),
            dep("ifchange", "../default.o.do"),
            dep("ifchange", "x.in"),
            dep("ifchange", "../config.h"),
            dep("ifchange", "y.in"),
            dep("ifchange", "foo.o"),
        ]
    );
    assert_eq!(p.ifchange(&["sub/foo.o"]).ok().stderr, "");
    p.write("config.h", "c2\n");
    p.ifchange(&["sub/foo.o"]).ok();
    assert_eq!(p.read("sub/foo.o"), "x\ny\nc2\n");
    assert_eq!(p.runs("default.o.do"), 2);
}

#[test]
fn redo_inside_a_do_records_a_dependency_and_directories_are_not_recorded() {
    let p = Project::new();
    fs::create_dir_all(p.path("somedir")).unwrap();
    p.do_file("p.do", "redo child\nredo-ifchange somedir\necho p\n");
    p.do_file("child.do", "cat child.in\n");
    p.write("child.in", "1\n");
    p.redo(&["p"]).ok();
    assert_eq!(
        deps(&recs(&p, "p")),
        [
            dep("ifchange", "p.do"),
            dep("ifchange", "child"),
            dep("ifchange", "p"),
        ]
    );
    // child is recorded: changing what it produces makes p out of date.
    assert_eq!(p.ifchange(&["p"]).ok().stderr, "");
    p.do_file("child.do", "echo 2\n");
    p.redo(&["child"]).ok();
    p.ifchange(&["p"]).ok();
    assert_eq!(p.runs("p.do"), 2);
}

#[test]
fn do_runs_directly_when_executable_else_with_sh_and_stdin_is_null() {
    let p = Project::new();
    write_exec_in_child(&p, "ex.do", "#!/bin/sh\necho \"$0\"\n");
    p.write("nx.do", "echo \"$0\"\nfalse\necho not reached\n");
    p.write("in.do", "cat\n");
    // Executable without a `#!` line: the kernel cannot run it; the message says what to do.
    write_exec_in_child(&p, "bare.do", "echo bare\n");
    let r = p.redo(&["bare"]).fails();
    assert_eq!(r.code, 1);
    assert_eq!(
        errs(&r),
        [format!(
            "err  bare (bare.do): cannot run {}: it is executable but does not start with a #! \
             line; make its first line one (e.g. #!/bin/sh), or chmod -x it and redo runs it \
             with /bin/sh -e",
            p.path("bare.do").display()
        )]
    );
    assert!(!r.stderr.contains("os error"), "{r:?}");
    p.redo(&["ex"]).ok();
    assert_eq!(
        Path::new(p.read("ex").trim_end()),
        p.path("ex.do"),
        "an executable .do is run by its absolute path"
    );
    // Not executable: `/bin/sh -e nx.do`, so `false` stops it.
    let r = p.redo(&["nx"]).fails();
    assert_eq!(errs(&r), ["err  nx (nx.do): exit status 1"]);
    p.write("nx.do", "echo \"$0\"\n");
    p.redo(&["nx"]).ok();
    assert_eq!(p.read("nx"), "nx.do\n");

    // The client's stdin is not the .do's: an empty output, hence no target.
    let mut c = p.command("redo");
    c.arg("in").stdin(std::process::Stdio::piped());
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"from the client\n");
    }
    Run::from_output(child.wait_with_output().unwrap()).ok();
    assert!(!p.exists("in"));
}

#[test]
fn simultaneous_ifcreate_and_ifchange_warns() {
    let p = Project::new();
    p.do_file("gen.do", "echo g\n");
    p.do_file("t.do", "redo-ifcreate gen\nredo-ifchange gen\necho t\n");
    let r = p.redo(&["t"]).ok();
    assert_eq!(
        lines(&r),
        [
            "redo . gen",
            "warn simultaneous ifcreate and ifchange records: gen",
            "redo t",
        ]
    );
    assert_eq!(p.read("t"), "t\n");
    let tr = recs(&p, "t");
    assert!(has_dep(&tr, "ifcreate", b"gen") && has_dep(&tr, "ifchange", b"gen"));
}

#[test]
fn removed_do_makes_the_target_a_source_and_removed_target_is_rebuilt() {
    let p = Project::new();
    p.do_file("x.do", "echo x\n");
    p.do_file("user.do", "redo-ifchange x\ncat x\n");
    p.ifchange(&["user"]).ok();
    // Deleting the target is not an external modification: it is simply rebuilt.
    fs::remove_file(p.path("x")).unwrap();
    let r = p.ifchange(&["x"]).ok();
    assert_eq!(r.built_names(), ["redo x"]);
    assert_eq!((p.read("x"), p.runs("x.do")), ("x\n".into(), 2));

    // Deleting the .do: the target redo built is a source from now on (apenwarr's redo's
    // t/350-deps), with one warning; its dependants build with it and follow its edits.
    fs::remove_file(p.path("x.do")).unwrap();
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(
        lines(&r),
        ["warn . x: no .do builds it any more: it is a source from now on"]
    );
    assert!(!rec_path(&p, b"x").exists());
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(r.stderr, "", "one warning, not one per build");
    p.write("x", "edited\n");
    let r = p.ifchange(&["user"]).ok();
    assert_eq!(r.built_names(), ["redo user"]);
    assert_eq!(
        (p.read("x"), p.read("user")),
        ("edited\n".into(), "edited\n".into())
    );
    assert_eq!((p.runs("x.do"), p.runs("user.do")), (2, 2));

    // Without its file, a target with no .do is what the build needs and cannot have.
    fs::remove_file(p.path("x")).unwrap();
    let r = p.ifchange(&["user"]).fails();
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "err  . x: no such file, and no .do builds it (needed by user)"),
        "{r:?}"
    );
    assert_no_temps(&p);
}

#[test]
fn failed_target_runs_once_per_session() {
    let p = Project::new();
    p.do_file("bad.do", "echo bad failed >&2\nexit 1\n");
    p.do_file(
        "a.do",
        "redo-ifchange bad || true\nredo-ifchange bad || echo again: $? >&2\necho a\n",
    );
    let r = p.redo(&["a"]).ok();
    assert_eq!(p.runs("bad.do"), 1, "a failure runs once per build: {r:?}");
    assert_eq!(errs(&r), ["err  . bad (bad.do): exit status 1"]);
    assert_eq!(
        r.stderr.matches("bad failed").count(),
        1,
        "its error is printed once: {r:?}"
    );
    assert!(r.stderr.contains("again: 1"), "{r:?}");
    assert_eq!(r.built_names(), ["redo a"]);

    // The next build tries again.
    p.redo(&["a"]).ok();
    assert_eq!(p.runs("bad.do"), 2);
}

#[test]
fn shared_dependency_is_built_once_per_session() {
    let p = Project::new();
    p.do_file("all.do", "redo-ifchange a b\n");
    p.do_file("a.do", "redo-ifchange common\necho a\n");
    p.do_file("b.do", "redo-ifchange common\necho b\n");
    p.do_file("common.do", "redo-ifchange src\ncat src\n");
    p.write("src", "1\n");
    p.redo(&["all"]).ok();
    assert_eq!(p.runs("common.do"), 1);
    p.write("src", "22\n");
    p.run("redo-ifchange", &["-j", "2", "all"]).ok();
    assert_eq!(
        (p.runs("common.do"), p.runs("a.do"), p.runs("b.do")),
        (2, 2, 2)
    );
    assert_eq!((p.read("a"), p.read("b")), ("a\n".into(), "b\n".into()));
}

#[test]
fn do_stderr_partial_and_long_lines_are_relayed_whole() {
    let p = Project::new();
    p.write("x.do", "printf 'partial' >&2\necho x\n");
    let r = p.redo(&["x"]).ok();
    assert_eq!(lines(&r), ["partial", "redo x"]);

    p.write(
        "y.do",
        "head -c 100000 /dev/zero | tr '\\0' a >&2\necho >&2\necho y\n",
    );
    let r = p.redo(&["y"]).ok();
    let l = lines(&r);
    assert_eq!(l.len(), 2, "{:?}", r.stderr.len());
    assert_eq!(l[0], "a".repeat(100_000));
    assert_eq!(l[1], "redo y");
}

#[test]
fn do_stderr_unterminated_last_line_is_terminated_after_a_pause() {
    let p = Project::new();
    // Progress output: a partial line completed later stays one line.
    p.write(
        "y.do",
        "printf 'progress...' >&2\nsleep 0.3\necho ' done' >&2\necho y\n",
    );
    let r = p.redo(&["y"]).ok();
    assert_eq!(lines(&r), ["progress... done", "redo y"]);
    // A last line left without a newline, even one already shown, is terminated before the
    // next message (goredo relays line by line, always adding the newline).
    p.write("x.do", "printf 'partial' >&2\nsleep 0.3\necho x\n");
    let r = p.redo(&["x"]).ok();
    assert_eq!(lines(&r), ["partial", "redo x"], "{:?}", r.stderr);
}

#[test]
fn outputs_are_created_with_the_requesters_umask() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.write("u.do", "echo u\n");
    p.write("v.do", "echo v >\"$3\"\n");
    let with_umask = |mask: &str, tool: &str, target: &str| {
        // `command` with an absolute path runs that program with the project's environment.
        let mut c = p.command("/bin/sh");
        c.args(["-c", &format!("umask {mask}; exec {tool} {target}")]);
        exec(c)
    };
    let mode = |rel: &str| fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o777;
    with_umask("077", "redo", "u").ok();
    with_umask("077", "redo", "v").ok();
    assert_eq!((mode("u"), mode("v")), (0o600, 0o600));
    fs::remove_file(p.path("u")).unwrap();
    fs::remove_file(p.path("v")).unwrap();
    with_umask("002", "redo-ifchange", "u").ok();
    with_umask("002", "redo-ifchange", "v").ok();
    assert_eq!((mode("u"), mode("v")), (0o664, 0o664));
}

#[test]
fn target_in_a_directory_that_does_not_exist_yet() {
    let p = Project::new();
    p.do_file("default.do", "echo \"$1\"\n");
    let r = p.ifchange(&["newdir/x"]).ok();
    assert_eq!(r.built_names(), ["redo newdir/x (../default.do)"]);
    assert_eq!(p.read("newdir/x"), "newdir/x\n");
    assert!(has_dep(&recs(&p, "newdir/x"), "ifchange", b"../default.do"));
    assert_eq!(p.ifchange(&["newdir/x"]).ok().stderr, "");
}

/// Two `.do` files that each wait (bounded) for the other to have started: they only both
/// succeed if they run at the same time.
fn rendezvous(p: &Project) {
    for (me, other) in [("p", "q"), ("q", "p")] {
        p.do_file(
            &format!("{me}.do"),
            &format!(
                "touch {me}.started\ni=0\nwhile [ ! -e {other}.started ]; do\n  \
                 i=$((i+1)); [ $i -lt 500 ] || exit 9\n  sleep 0.01\ndone\necho {me}\n"
            ),
        );
    }
}

#[test]
fn ifchange_with_two_jobs_runs_two_dos_at_once() {
    let p = Project::new();
    rendezvous(&p);
    p.run("redo-ifchange", &["-j", "2", "p", "q"]).ok();
    assert_eq!((p.read("p"), p.read("q")), ("p\n".into(), "q\n".into()));

    // REDO_JOBS is the default for -j; and a .do's nested redo-ifchange shares the pool.
    let p = Project::new();
    rendezvous(&p);
    p.do_file("all.do", "redo-ifchange p q\n");
    let mut c = p.command("redo");
    c.env("REDO_JOBS", "2").arg("all");
    exec(c).ok();
    assert_eq!((p.runs("p.do"), p.runs("q.do")), (1, 1));
}

/// A phony target (its `.do` writes nothing) runs in every build. When it declares exactly
/// what its state file already says, only `Build` would change, so the file is left alone
/// (a large `all.rec` is not rewritten and re-read by each no-op); any other difference
/// rewrites it.
#[test]
fn phony_state_file_is_rewritten_only_when_its_dependencies_change() {
    let p = Project::new();
    p.write("a", "1\n").write("b", "2\n");
    p.do_file("all.do", "redo-ifchange $(cat list)\n");
    p.write("list", "a\n");
    p.ifchange(&["all"]).ok();
    let first = rec_bytes(&p, b"all");
    let ino0 = ino(&p, ".redo/all.rec");
    p.clear_runs();
    p.ifchange(&["all"]).ok();
    assert_eq!(p.runs("all.do"), 1, "a phony target runs every time");
    assert_eq!(
        rec_bytes(&p, b"all"),
        first,
        "same dependencies: state left alone"
    );
    assert_eq!(ino(&p, ".redo/all.rec"), ino0);
    // Another dependency: rewritten, with this build's id.
    p.write("list", "a b\n");
    p.ifchange(&["all"]).ok();
    let recs_ = recs(&p, "all");
    assert!(has_dep(&recs_, "ifchange", b"b"), "{recs_:?}");
    assert_ne!(
        build_uuid(&p, "all"),
        get_str(&parse_rec(&first)[0], "Build").unwrap()
    );
    // A dependency's content changed: its recorded hash differs, so rewritten.
    let before = rec_bytes(&p, b"all");
    p.write("a", "changed\n");
    p.ifchange(&["all"]).ok();
    assert_ne!(rec_bytes(&p, b"all"), before);
    let a = find_dep(&recs(&p, "all"), "ifchange", b"a").clone();
    assert!(get(&a, "Hash").is_some());
}
