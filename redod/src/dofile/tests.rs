use super::*;
use crate::fs::mem::MemFs;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn default_candidates() {
    let n: Vec<String> = default_names(b"base.a.b")
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect();
    assert_eq!(n, ["default.a.b.do", "default.b.do", "default.do"]);
    assert_eq!(default_names(b"plain"), vec![b"default.do".to_vec()]);
}

#[test]
fn parent_default_with_dirprefix() {
    // docs/BEHAVIOUR.md §7: /p/sub/foo.o, only /p/default.o.do exists.
    let fs = MemFs::default();
    fs.write("/p/default.o.do", "");
    fs.write("/p/.redo/top", "");
    let l = find(&fs, Path::new("/p/sub"), OsStr::new("foo.o"), None).unwrap();
    assert_eq!(
        l.missing,
        vec![p("foo.o.do"), p("default.o.do"), p("default.do")]
    );
    let d = l.found.unwrap();
    assert_eq!(d.rel, p("../default.o.do"));
    assert_eq!(d.dir, p("/p"));
    assert_eq!(d.dir_prefix, p("sub"));
    assert_eq!(d.arg1, p("sub/foo.o"));
    assert_eq!(d.arg2, p("sub/foo"));
    assert!(d.is_default);
}

#[test]
fn arg2_table_from_rules() {
    // docs/BEHAVIOUR.md §7: /p/a.b.c with the various .do files.
    for (do_name, arg2) in [
        ("default.c.do", "a.b"),
        ("default.b.c.do", "a"),
        ("default.do", "a.b.c"),
        ("a.b.c.do", "a.b.c"),
    ] {
        let fs = MemFs::default();
        fs.write(&format!("/p/{do_name}"), "");
        let d = find(&fs, Path::new("/p"), OsStr::new("a.b.c"), None)
            .unwrap()
            .found
            .unwrap();
        assert_eq!(d.arg2, p(arg2), "{do_name}");
        assert_eq!(d.arg1, p("a.b.c"));
        assert_eq!(d.is_default, do_name.starts_with("default"));
    }
}

#[test]
fn two_levels_up() {
    let fs = MemFs::default();
    fs.write("/p/default.c.do", "");
    let d = find(&fs, Path::new("/p/x/y"), OsStr::new("z.c"), None)
        .unwrap()
        .found
        .unwrap();
    assert_eq!(d.dir_prefix, p("x/y"));
    assert_eq!((d.arg1, d.arg2), (p("x/y/z.c"), p("x/y/z")));
    assert_eq!(d.rel, p("../../default.c.do"));
}

#[test]
fn stops_at_top_dir_and_redo_top_and_root() {
    let fs = MemFs::default();
    fs.write("/default.do", "");
    // REDO_TOP_DIR=/p: /p is searched, / is not.
    let l = find(
        &fs,
        Path::new("/p/q"),
        OsStr::new("t"),
        Some(Path::new("/p")),
    )
    .unwrap();
    assert!(l.found.is_none());
    assert_eq!(
        l.missing,
        vec![p("t.do"), p("default.do"), p("../default.do")]
    );
    // .redo/top in /p/q stops there.
    fs.write("/p/q/.redo/top", "");
    let l = find(&fs, Path::new("/p/q"), OsStr::new("t"), None).unwrap();
    assert_eq!(l.missing, vec![p("t.do"), p("default.do")]);
    // Without bounds the search reaches /.
    fs.remove("/p/q/.redo/top");
    let l = find(&fs, Path::new("/p/q"), OsStr::new("t"), None).unwrap();
    assert_eq!(l.found.unwrap().rel, p("../../default.do"));
    // A git repository's root stops it; a `.git` file (a submodule's) does not.
    fs.write("/p/.git", "gitdir: ../.git/modules/p");
    let l = find(&fs, Path::new("/p/q"), OsStr::new("t"), None).unwrap();
    assert_eq!(l.found.unwrap().rel, p("../../default.do"));
    fs.remove("/p/.git");
    fs.mkdir("/p/.git");
    let l = find(&fs, Path::new("/p/q"), OsStr::new("t"), None).unwrap();
    assert!(l.found.is_none());
    assert_eq!(
        l.missing,
        vec![p("t.do"), p("default.do"), p("../default.do")]
    );
}

#[test]
fn own_do_only_in_target_dir() {
    let fs = MemFs::default();
    fs.write("/p/t.do", "");
    let l = find(
        &fs,
        Path::new("/p/sub"),
        OsStr::new("t"),
        Some(Path::new("/p")),
    )
    .unwrap();
    assert!(l.found.is_none());
}

#[test]
fn directory_named_like_a_do_is_not_a_do() {
    let fs = MemFs::default();
    fs.mkdir("/p/t.do");
    fs.write("/p/default.do", "");
    let d = find(&fs, Path::new("/p"), OsStr::new("t"), None)
        .unwrap()
        .found
        .unwrap();
    assert_eq!(d.name, OsString::from("default.do"));
}

#[test]
fn shebang_lines() {
    let d = Path::new("/p/t.do");
    let words = |h: &str| {
        interpreter(h.as_bytes(), d).unwrap().map(|w| {
            w.into_iter()
                .map(|w| w.into_string().unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(words("echo hi\n"), None);
    assert_eq!(words("#!/bin/sh\nfalse\n"), None);
    assert_eq!(words("#!/bin/sh -e\n"), None);
    assert_eq!(words("#! /bin/sh\r\n"), None);
    assert_eq!(words("#!/bin/bash\n").unwrap(), ["/bin/bash"]);
    assert_eq!(words("#!/bin/sh -x\n").unwrap(), ["/bin/sh", "-x"]);
    assert_eq!(
        words("#!/usr/bin/env  python3 -u\t-B\nprint()").unwrap(),
        ["/usr/bin/env", "python3", "-u", "-B"]
    );
    assert_eq!(
        words("#!/bin/bash").unwrap(),
        ["/bin/bash"],
        "no newline at all"
    );
    let long = format!("#!/bin/{}", "x".repeat(SHEBANG_MAX));
    let err = interpreter(&long.as_bytes()[..SHEBANG_MAX], d)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/p/t.do") && err.contains("executable"),
        "{err}"
    );
}
