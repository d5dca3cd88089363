use super::*;
use crate::fs::mem::MemFs;
use crate::store::recfile::Dep;

fn record(fs: &MemFs, path: &str, rel: &str) -> Dep {
    let m = fs.meta(path);
    Dep::Ifchange {
        target: rel.as_bytes().to_vec(),
        stamp: m.stamp,
        hash: Some(fs.hash(Path::new(path)).unwrap()),
    }
}

/// /p/out built by /p/out.do from /p/src; its state records exactly that.
fn tree() -> (MemFs, Rec) {
    let fs = MemFs::default();
    fs.write("/p/src", "source");
    fs.write("/p/out.do", "cat src");
    fs.write("/p/out", "SOURCE");
    fs.write("/p/.redo/out.rec", "Build: x\n");
    let rec = Rec {
        build: "x".into(),
        deps: vec![
            record(&fs, "/p/out.do", "out.do"),
            record(&fs, "/p/src", "src"),
            record(&fs, "/p/out", "out"),
        ],
    };
    (fs, rec)
}

fn checker<'a>(fs: &'a MemFs, hashes: &'a Hashes, trust: Trust) -> Checker<'a> {
    Checker {
        fs,
        hashes,
        trust,
        recs: None,
    }
}

fn decide(fs: &MemFs, rec: &Rec, trust: Trust) -> Step {
    let hashes = Hashes::default();
    let c = checker(fs, &hashes, trust);
    Walk::new(rec, Path::new("/p"), OsStr::new("out"))
        .next(&c)
        .unwrap()
}

#[test]
fn unchanged_tree_is_up_to_date() {
    let (fs, rec) = tree();
    assert_eq!(decide(&fs, &rec, Trust::Ctime), Step::UpToDate);
    assert_eq!(decide(&fs, &rec, Trust::None), Step::UpToDate);
}

#[test]
fn touched_but_identical_source_is_up_to_date() {
    let (fs, rec) = tree();
    fs.touch("/p/src");
    assert_eq!(decide(&fs, &rec, Trust::Ctime), Step::UpToDate);
    assert_eq!(decide(&fs, &rec, Trust::Mtime), Step::UpToDate);
}

#[test]
fn edited_source_or_do_is_out_of_date() {
    let (fs, rec) = tree();
    fs.rewrite("/p/src", "other!");
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::DepChanged("src".into()))
    );
    let (fs, rec) = tree();
    fs.rewrite("/p/out.do", "cat src | tr a-z A-Z");
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::DepChanged("out.do".into()))
    );
}

#[test]
fn same_size_rewrite_in_place_with_trust_none() {
    // Same size, same inode, new content: ctime differs so ctime mode hashes; none mode
    // hashes anyway. Both see the change.
    let (fs, rec) = tree();
    fs.rewrite("/p/src", "SOURCE");
    assert!(matches!(decide(&fs, &rec, Trust::None), Step::OutOfDate(_)));
    assert!(matches!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(_)
    ));
}

#[test]
fn missing_target_and_missing_dep() {
    let (fs, rec) = tree();
    fs.remove("/p/out");
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::Missing)
    );
    let (fs, rec) = tree();
    fs.remove("/p/src");
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::DepMissing("src".into()))
    );
}

#[test]
fn ifcreate_and_always() {
    let (fs, mut rec) = tree();
    rec.deps.insert(
        0,
        Dep::Ifcreate {
            target: b"default.do".to_vec(),
        },
    );
    assert_eq!(decide(&fs, &rec, Trust::Ctime), Step::UpToDate);
    fs.write("/p/default.do", "");
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::Created("default.do".into()))
    );
    let (fs, mut rec) = tree();
    rec.deps.push(Dep::Always);
    assert_eq!(
        decide(&fs, &rec, Trust::Ctime),
        Step::OutOfDate(Reason::Always)
    );
}

#[test]
fn dependency_recorded_as_absent_is_always_out_of_date() {
    let (fs, mut rec) = tree();
    fs.write("/p/phony-dep-now-exists", "x");
    fs.write("/p/.redo/phony-dep-now-exists.rec", "Build: y\n");
    rec.deps.insert(
        1,
        Dep::Ifchange {
            target: b"phony-dep-now-exists".to_vec(),
            stamp: Stamp::default(),
            hash: None,
        },
    );
    let hashes = Hashes::default();
    let c = checker(&fs, &hashes, Trust::Ctime);
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(
        w.next(&c).unwrap(),
        Step::Visit("/p/phony-dep-now-exists".into())
    );
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepChanged("phony-dep-now-exists".into()))
    );
}

#[test]
fn target_dependency_is_visited_then_compared() {
    // /p/out depends on /p/mid, a target; early cutoff: visiting it then finding the same
    // content means "up to date".
    let (fs, mut rec) = tree();
    fs.write("/p/mid", "m");
    fs.write("/p/.redo/mid.rec", "Build: x\n");
    rec.deps.insert(2, record(&fs, "/p/mid", "mid"));
    let hashes = Hashes::default();
    let c = checker(&fs, &hashes, Trust::Ctime);
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/mid".into()));
    fs.touch("/p/mid"); // "rebuilt" to identical content
    assert_eq!(w.next(&c).unwrap(), Step::UpToDate);
    // Rebuilt to different content: out of date.
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert!(matches!(w.next(&c).unwrap(), Step::Visit(_)));
    fs.rewrite("/p/mid", "M2");
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepChanged("mid".into()))
    );
}

/// `/p/config`: no output, stamped `stamp`, from `/p/configure.in`; its state as the
/// runner commits it.
fn stamped_config(fs: &MemFs, stamp: &str) -> Rec {
    fs.write("/p/configure.in", "CC=cc");
    fs.write("/p/config.do", "./configure | redo-stamp");
    let rec = Rec {
        build: "x".into(),
        deps: vec![
            record(fs, "/p/config.do", "config.do"),
            record(fs, "/p/configure.in", "configure.in"),
            Dep::Stamp {
                hash: *blake3::hash(stamp.as_bytes()).as_bytes(),
            },
            Dep::Ifcreate {
                target: b"config".to_vec(),
            },
        ],
    };
    fs.write(
        "/p/.redo/config.rec",
        std::str::from_utf8(&recfile::encode(&rec)).unwrap(),
    );
    rec
}

#[test]
fn stamped_target_without_output_is_up_to_date_while_its_dependencies_are() {
    let fs = MemFs::default();
    let hashes = Hashes::default();
    let c = checker(&fs, &hashes, Trust::Ctime);
    let mut rec = stamped_config(&fs, "CC=cc");
    let walk = |rec: &Rec| {
        Walk::new(rec, Path::new("/p"), OsStr::new("config"))
            .next(&c)
            .unwrap()
    };
    assert_eq!(walk(&rec), Step::UpToDate);
    fs.rewrite("/p/configure.in", "CC=clang");
    assert_eq!(
        walk(&rec),
        Step::OutOfDate(Reason::DepChanged("configure.in".into()))
    );
    // Without the stamp: goredo's rule, no file means out of date.
    rec.deps.retain(|d| !matches!(d, Dep::Stamp { .. }));
    assert_eq!(walk(&rec), Step::OutOfDate(Reason::Missing));
}

#[test]
fn dependant_of_a_stamped_target_compares_its_stamp_after_visiting_it() {
    let (fs, mut rec) = tree();
    stamped_config(&fs, "CC=cc");
    rec.deps.insert(
        2,
        Dep::Ifchange {
            target: b"config".to_vec(),
            stamp: Stamp::default(),
            hash: Some(*blake3::hash(b"CC=cc").as_bytes()),
        },
    );
    let hashes = Hashes::default();
    let recs = RecCache::default();
    for recs in [None, Some(&recs)] {
        let c = Checker {
            recs,
            ..checker(&fs, &hashes, Trust::Ctime)
        };
        let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
        assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/config".into()));
        assert_eq!(w.next(&c).unwrap(), Step::UpToDate, "same stamp");
    }
    // The visit re-ran it and it stamped something else: out of date.
    stamped_config(&fs, "CC=clang");
    let c = checker(&fs, &hashes, Trust::Ctime);
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/config".into()));
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepChanged("config".into()))
    );
    // It has a file now (even one whose hash is the stamp): not what the stamp stood for.
    stamped_config(&fs, "");
    fs.write("/p/config", "");
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/config".into()));
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepChanged("config".into()))
    );
}

#[test]
fn missing_dependency_that_is_a_target_is_visited_then_compared() {
    let (fs, mut rec) = tree();
    fs.write("/p/mid", "m");
    fs.write("/p/.redo/mid.rec", "Build: x\n");
    rec.deps.insert(2, record(&fs, "/p/mid", "mid"));
    let hashes = Hashes::default();
    let c = checker(&fs, &hashes, Trust::Ctime);
    fs.remove("/p/mid");
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/mid".into()));
    fs.write("/p/mid", "m"); // rebuilt to identical content, as a new file
    assert_eq!(w.next(&c).unwrap(), Step::UpToDate);
    // Rebuilt to other content, or not rebuilt at all: out of date.
    fs.remove("/p/mid");
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert!(matches!(w.next(&c).unwrap(), Step::Visit(_)));
    fs.write("/p/mid", "M2");
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepChanged("mid".into()))
    );
    fs.remove("/p/mid");
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert!(matches!(w.next(&c).unwrap(), Step::Visit(_)));
    assert_eq!(
        w.next(&c).unwrap(),
        Step::OutOfDate(Reason::DepMissing("mid".into()))
    );
    // Its own .do makes it a target too, state file or not.
    fs.remove("/p/.redo/mid.rec");
    fs.write("/p/mid.do", "echo m");
    let mut w = Walk::new(&rec, Path::new("/p"), OsStr::new("out"));
    assert_eq!(w.next(&c).unwrap(), Step::Visit("/p/mid".into()));
}

#[test]
fn externally_modified_target_is_out_of_date() {
    let (fs, rec) = tree();
    fs.rewrite("/p/out", "hand edit");
    assert!(
        matches!(decide(&fs, &rec, Trust::Ctime), Step::OutOfDate(Reason::DepChanged(p)) if p == Path::new("out"))
    );
}

#[test]
fn sources_versus_targets() {
    let fs = MemFs::default();
    let hashes = Hashes::default();
    let c = checker(&fs, &hashes, Trust::Ctime);
    fs.write("/p/a.c", "");
    fs.write("/p/default.c.do", "");
    let m = fs.stat(Path::new("/p/a.c")).unwrap();
    assert!(
        c.is_source(Path::new("/p/a.c"), m.as_ref()).unwrap(),
        "default*.do does not make a target"
    );
    fs.write("/p/a.c.do", "");
    assert!(
        c.is_source(Path::new("/p/a.c"), m.as_ref()).unwrap(),
        "a file redo did not write is a source, even with its own .do"
    );
    assert!(c.own_do(Path::new("/p/a.c")).unwrap());
    fs.remove("/p/a.c.do");
    fs.write("/p/.redo/a.c.rec", "Build: b\n");
    assert!(!c.is_source(Path::new("/p/a.c"), m.as_ref()).unwrap());
    assert!(!c.is_source(Path::new("/p/missing"), None).unwrap());
}

#[test]
fn trust_modes() {
    let a = Stamp {
        size: 1,
        ino: 2,
        ctime_sec: 3,
        ctime_nsec: 4,
        mtime_sec: 5,
        mtime_nsec: 6,
    };
    let mut b = a;
    b.mtime_nsec = 7;
    assert!(same_file(&a, &b, Trust::Ctime));
    assert!(!same_file(&a, &b, Trust::Mtime));
    assert!(same_file(&a, &b, Trust::None));
    b.ino = 9;
    assert!(!same_file(&a, &b, Trust::None));
}
