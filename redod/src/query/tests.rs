use super::*;
use crate::fs::mem::MemFs;
use crate::store::recfile::{self, Rec};

/// /p/all ← /p/sub/x.o ← (/p/sub/x.c, /p/default.o.do, ifcreate /p/sub/x.o.do); /p/all is
/// phony (no file); /p/other ← /p/other.in with `always`.
fn tree() -> MemFs {
    let fs = MemFs::default();
    let rec = |fs: &MemFs, target: &str, deps: Vec<Dep>| {
        let p = Path::new(target);
        let text = recfile::encode(&Rec {
            build: "b".into(),
            deps,
        });
        fs.write(
            crate::store::layout::rec_path(p.parent().unwrap(), p.file_name().unwrap())
                .to_str()
                .unwrap(),
            std::str::from_utf8(&text).unwrap(),
        );
    };
    let ch = |fs: &MemFs, path: &str, rel: &str| {
        let m = fs.meta(path);
        Dep::Ifchange {
            target: rel.into(),
            stamp: m.stamp,
            hash: Some(fs.hash(Path::new(path)).unwrap()),
        }
    };
    fs.write("/p/sub/x.c", "int x;");
    fs.write("/p/default.o.do", "cc");
    fs.write("/p/sub/x.o", "OBJ");
    fs.write("/p/all.do", "redo-ifchange sub/x.o");
    fs.write("/p/other.in", "o");
    fs.write("/p/other.do", "x");
    fs.write("/p/other", "O");
    let deps = vec![
        Dep::Ifcreate {
            target: b"x.o.do".to_vec(),
        },
        ch(&fs, "/p/default.o.do", "../default.o.do"),
        ch(&fs, "/p/sub/x.c", "x.c"),
        ch(&fs, "/p/sub/x.o", "x.o"),
    ];
    rec(&fs, "/p/sub/x.o", deps);
    let deps = vec![
        ch(&fs, "/p/all.do", "all.do"),
        ch(&fs, "/p/sub/x.o", "sub/x.o"),
        Dep::Ifcreate {
            target: b"all".to_vec(),
        },
    ];
    rec(&fs, "/p/all", deps);
    let deps = vec![
        ch(&fs, "/p/other.do", "other.do"),
        ch(&fs, "/p/other.in", "other.in"),
        Dep::Always,
        ch(&fs, "/p/other", "other"),
    ];
    rec(&fs, "/p/other", deps);
    fs
}

fn query(fs: &MemFs, kind: QueryKind, cwd: &str, args: &[&str]) -> String {
    let (recs, hashes) = (RecCache::default(), Hashes::default());
    let g = Graph {
        fs,
        recs: &recs,
        hashes: &hashes,
        trust: Trust::Ctime,
        attempts: None,
    };
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    String::from_utf8(run(&g, kind, Path::new(cwd), &args).unwrap()).unwrap()
}

#[test]
fn targets_relative_and_sorted() {
    let fs = tree();
    assert_eq!(
        query(&fs, QueryKind::Targets, "/p", &[]),
        "all\nother\nsub/x.o\n"
    );
    assert_eq!(query(&fs, QueryKind::Targets, "/p/sub", &[]), "x.o\n");
    assert_eq!(
        query(&fs, QueryKind::Targets, "/p/sub", &[".."]),
        "../all\n../other\nx.o\n"
    );
}

#[test]
fn sources_include_do_files_not_targets_or_ifcreates() {
    let fs = tree();
    assert_eq!(
        query(&fs, QueryKind::Sources, "/p", &["all"]),
        "all.do\ndefault.o.do\nsub/x.c\n"
    );
    assert_eq!(
        query(&fs, QueryKind::Sources, "/p", &[]),
        "all.do\ndefault.o.do\nother.do\nother.in\nsub/x.c\n"
    );
}

#[test]
fn ood_follows_what_a_build_would_decide() {
    let fs = tree();
    // all is phony and other is `always`: out of date; x.o is up to date.
    assert_eq!(query(&fs, QueryKind::Ood, "/p", &[]), "all\nother\n");
    fs.rewrite("/p/sub/x.c", "int y;");
    assert_eq!(query(&fs, QueryKind::Ood, "/p", &["sub/x.o"]), "sub/x.o\n");
    // Identical content after a touch: not out of date.
    let fs = tree();
    fs.touch("/p/default.o.do");
    assert_eq!(query(&fs, QueryKind::Ood, "/p", &["sub/x.o"]), "");
    fs.write("/p/sub/x.o.do", "more specific");
    assert_eq!(query(&fs, QueryKind::Ood, "/p", &["sub/x.o"]), "sub/x.o\n");
}

#[test]
fn stamped_target_without_output_is_not_ood_and_decides_by_its_stamp() {
    let fs = tree();
    let stamp = |s: &str| *blake3::hash(s.as_bytes()).as_bytes();
    let write = |target: &str, deps: Vec<Dep>| {
        let text = recfile::encode(&Rec {
            build: "b".into(),
            deps,
        });
        fs.write(target, std::str::from_utf8(&text).unwrap());
    };
    fs.write("/p/config.do", "./configure | redo-stamp");
    fs.write("/p/prog.do", "redo-ifchange config");
    fs.write("/p/prog", "P");
    let ch = |path: &str, rel: &str| Dep::Ifchange {
        target: rel.into(),
        stamp: fs.meta(path).stamp,
        hash: Some(fs.hash(Path::new(path)).unwrap()),
    };
    let config = |s: &str| {
        vec![
            ch("/p/config.do", "config.do"),
            Dep::Stamp { hash: stamp(s) },
            Dep::Ifcreate {
                target: b"config".to_vec(),
            },
        ]
    };
    write("/p/.redo/config.rec", config("one"));
    let prog = vec![
        ch("/p/prog.do", "prog.do"),
        Dep::Ifchange {
            target: b"config".to_vec(),
            stamp: Default::default(),
            hash: Some(stamp("one")),
        },
        ch("/p/prog", "prog"),
    ];
    write("/p/.redo/prog.rec", prog);
    assert_eq!(query(&fs, QueryKind::Ood, "/p", &["config", "prog"]), "");
    assert_eq!(
        query(&fs, QueryKind::Sources, "/p", &["prog"]),
        "config.do\nprog.do\n"
    );
    assert_eq!(
        query(&fs, QueryKind::Affects, "/p", &["config.do"]),
        "config\nprog\n"
    );
    let d = query(&fs, QueryKind::Dot, "/p", &["prog"]);
    assert!(d.contains("\"prog\" -> \"config\";"), "{d}");
    assert!(d.contains("label=\"config\\n(stamp)\""), "{d}");
    // Another stamp now: prog is out of date, config is not.
    write("/p/.redo/config.rec", config("two"));
    assert_eq!(
        query(&fs, QueryKind::Ood, "/p", &["config", "prog"]),
        "prog\n"
    );
}

#[test]
fn affects_is_transitive_and_excludes_its_arguments() {
    let fs = tree();
    assert_eq!(
        query(&fs, QueryKind::Affects, "/p", &["sub/x.c"]),
        "all\nsub/x.o\n"
    );
    assert_eq!(query(&fs, QueryKind::Affects, "/p", &["sub/x.o"]), "all\n");
    assert_eq!(
        query(&fs, QueryKind::Affects, "/p", &["other.in"]),
        "other\n"
    );
    // An ifcreate dependency: creating the more specific .do affects the object.
    assert_eq!(
        query(&fs, QueryKind::Affects, "/p", &["sub/x.o.do"]),
        "all\nsub/x.o\n"
    );
    assert_eq!(query(&fs, QueryKind::Affects, "/p", &["unrelated"]), "");
}

#[test]
fn dot_marks_edges_and_nodes() {
    let fs = tree();
    let d = query(&fs, QueryKind::Dot, "/p", &[]);
    assert!(
        d.starts_with("digraph redo {\n") && d.ends_with("}\n"),
        "{d}"
    );
    assert!(d.contains("  \"all\" -> \"sub/x.o\";\n"), "{d}");
    assert!(
        d.contains("  \"sub/x.o\" -> \"sub/x.o.do\" [style=dotted];\n"),
        "{d}"
    );
    assert!(d.contains("  \"sub/x.c\" [shape=ellipse];\n"), "{d}");
    assert!(
        d.contains("\"other\" [shape=box, style=bold, label=\"other\\n(always)\"]"),
        "{d}"
    );
    assert!(
        !d.contains("\"all\" -> \"all\""),
        "a target's own record is not an edge"
    );
    assert_eq!(dot_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
}
