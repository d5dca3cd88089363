use super::*;

#[test]
fn clean_and_resolve() {
    assert_eq!(clean(Path::new("/a/./b/../../c")), PathBuf::from("/c"));
    assert_eq!(
        resolve(Path::new("/p/q"), "../x//y/"),
        PathBuf::from("/p/x/y")
    );
    assert_eq!(resolve(Path::new("/p"), "/abs"), PathBuf::from("/abs"));
}

#[test]
fn relative_paths() {
    assert_eq!(
        relative(Path::new("/p/sub"), Path::new("/p/default.o.do")),
        PathBuf::from("../default.o.do")
    );
    assert_eq!(
        relative(Path::new("/p"), Path::new("/p/sub/foo.c")),
        PathBuf::from("sub/foo.c")
    );
    assert_eq!(
        relative(Path::new("/p"), Path::new("/p")),
        PathBuf::from(".")
    );
    assert_eq!(
        relative(Path::new("/a/b"), Path::new("/c/d")),
        PathBuf::from("../../c/d")
    );
    assert_eq!(
        relative(Path::new("/"), Path::new("/x")),
        PathBuf::from("x")
    );
    assert_eq!(
        relative(Path::new("/a/b"), Path::new("/a")),
        PathBuf::from("..")
    );
    assert_eq!(relative(Path::new("/"), Path::new("/")), PathBuf::from("."));
    assert_eq!(
        relative(Path::new("/p/ab"), Path::new("/p/a/c")),
        PathBuf::from("../a/c"),
        "components, not byte prefixes"
    );
}

#[test]
fn shown_is_absolute_outside_the_root() {
    let (root, cwd) = (Some(Path::new("/p")), Path::new("/p/a/b"));
    assert_eq!(
        shown_in(root, cwd, Path::new("/usr/include/stdio.h")),
        PathBuf::from("/usr/include/stdio.h")
    );
    assert_eq!(
        shown_in(root, cwd, Path::new("/p/c.h")),
        PathBuf::from("../../c.h")
    );
    assert_eq!(shown_in(root, cwd, Path::new("/p")), PathBuf::from("../.."));
    assert_eq!(
        shown_in(root, cwd, Path::new("/pq/x")),
        PathBuf::from("/pq/x"),
        "components, not byte prefixes"
    );
    assert_eq!(
        shown_in(None, cwd, Path::new("/usr/x")),
        PathBuf::from("../../../usr/x")
    );
}

#[test]
fn split_matches_parent_and_file_name() {
    for p in ["/a/b", "/a", "/", "/a/b/c.do", "/x/.redo"] {
        let p = Path::new(p);
        assert_eq!(split(p), p.parent().zip(p.file_name()), "{}", p.display());
    }
}

#[test]
fn non_utf8_survives() {
    let p = resolve(Path::new("/p"), OsStr::from_bytes(b"a\xff b\n"));
    assert_eq!(bytes(&p), b"/p/a\xff b\n");
    assert_eq!(split(&p).unwrap().1.as_bytes(), b"a\xff b\n");
}

#[test]
fn a_relative_path_is_allocated_exactly() {
    for (base, target) in [
        ("/p/sub", "/p/default.o.do"),
        ("/p/long/directory/name", "/p/src/f1.in"),
        ("/p", "/p"),
        ("/a/b", "/c/d"),
    ] {
        let rel = relative(Path::new(base), Path::new(target)).into_os_string();
        assert_eq!(rel.capacity(), rel.len(), "{base} -> {target}");
    }
}
