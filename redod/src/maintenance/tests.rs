use super::*;

#[test]
fn cleanup_modes() {
    let root = std::env::temp_dir().join(format!("redod-cleanup-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    for f in [
        ".redo/top",
        ".redo/a.rec",
        ".redo/a.lock",
        ".redo/a.log",
        ".redo/a.log-rec",
        ".redo/.redo.a.rec.0123",
        "sub/.redo/b.rec",
        "sub/.redo.b.0123",
        "sub/b",
        "a",
    ] {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "x").unwrap();
    }
    let names = |c: Cleaned| {
        c.removed
            .iter()
            .map(|p| paths::show(&paths::relative(&root, p)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(cleanup(&root, &[CleanupWhat::Tmp], true).unwrap()),
        [".redo/.redo.a.rec.0123", "sub/.redo.b.0123"]
    );
    assert!(
        root.join("sub/.redo.b.0123").exists(),
        "dry run removes nothing"
    );
    assert_eq!(
        names(cleanup(&root, &[CleanupWhat::Log, CleanupWhat::Lock], false).unwrap()),
        [".redo/a.lock", ".redo/a.log", ".redo/a.log-rec"]
    );
    assert!(!root.join(".redo/a.log").exists());
    assert_eq!(
        names(cleanup(&root, &[CleanupWhat::Full], false).unwrap()),
        [
            ".redo/.redo.a.rec.0123",
            ".redo/a.rec",
            "sub/.redo.b.0123",
            "sub/.redo/b.rec"
        ]
    );
    assert!(root.join(".redo/top").exists() && !root.join("sub/.redo").exists());
    assert!(
        root.join("a").exists() && root.join("sub/b").exists(),
        "files the state does not describe are kept"
    );
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn depfix_keeps_changed_files_out_of_date() {
    use crate::fs::mem::MemFs;
    use crate::store::recfile::{self, Rec};
    let fs_ = MemFs::default();
    fs_.write("/p/a", "same");
    fs_.write("/p/b", "old");
    let rec_of = |fs_: &MemFs, p: &str, rel: &str| {
        let m = fs_.meta(p);
        Dep::Ifchange {
            target: rel.into(),
            stamp: m.stamp,
            hash: Some(fs_.hash(Path::new(p)).unwrap()),
        }
    };
    let rec = Rec {
        build: "b".into(),
        deps: vec![rec_of(&fs_, "/p/a", "a"), rec_of(&fs_, "/p/b", "b")],
    };
    fs_.write(
        "/p/.redo/t.rec",
        std::str::from_utf8(&recfile::encode(&rec)).unwrap(),
    );
    // A "copy": a gets a new inode with the same content, b new content.
    fs_.write("/p/a", "same");
    fs_.write("/p/b", "new");
    let (recs, hashes) = (RecCache::default(), Hashes::default());
    let gate = UmaskGate::new(0o022);
    let d = Depfix {
        fs: &fs_,
        disk: &fs_,
        recs: &recs,
        hashes: &hashes,
        gate: &gate,
        umask: 0o022,
        sync: false,
    };
    let fixed = d
        .fix(Path::new("/p"), &rec)
        .unwrap()
        .expect("a needs fixing");
    let Dep::Ifchange { stamp, .. } = &fixed.deps[0] else {
        panic!()
    };
    assert_eq!(
        *stamp,
        fs_.meta("/p/a").stamp,
        "unchanged a: new inode data recorded"
    );
    assert_eq!(
        fixed.deps[1], rec.deps[1],
        "changed b: record kept, so it stays out of date"
    );
    assert_eq!(
        d.fix(Path::new("/p"), &fixed).unwrap(),
        None,
        "nothing left to fix"
    );
}
