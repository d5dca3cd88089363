use super::*;

fn text(fs: &MemFs, p: &str) -> Option<String> {
    fs.read(Path::new(p))
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap())
}

/// A new file renamed over an old one: after a crash, the old one unless the new one's
/// content and its directory were both synced.
#[test]
fn a_crash_keeps_only_what_was_synced() {
    let p = |s: &str| PathBuf::from(s);
    for (sync_file, sync_dir, expect) in [
        (false, false, "old"),
        (true, false, "old"),
        // Renamed durably, content not: the empty file of a delayed allocation.
        (false, true, ""),
        (true, true, "new"),
    ] {
        let fs = MemFs::default();
        fs.write("/d/t", "old");
        let f = fs.create_new(&p("/d/t.tmp")).unwrap();
        fs.write_at(&f, b"new", 0).unwrap();
        if sync_file {
            fs.sync(&f).unwrap();
        }
        fs.rename(&p("/d/t.tmp"), &p("/d/t")).unwrap();
        assert_eq!(text(&fs, "/d/t").as_deref(), Some("new"));
        if sync_dir {
            fs.sync_path(&p("/d")).unwrap();
        }
        fs.crash();
        assert_eq!(
            text(&fs, "/d/t").as_deref(),
            Some(expect),
            "{sync_file} {sync_dir}"
        );
        assert_eq!(text(&fs, "/d/t.tmp"), None);
    }
}

#[test]
fn a_directory_sync_covers_its_own_entries_only() {
    let fs = MemFs::default();
    fs.mkdir("/d");
    fs.create_dir_all(Path::new("/d/.redo")).unwrap();
    let f = fs.create_new(Path::new("/d/.redo/x")).unwrap();
    fs.sync(&f).unwrap();
    fs.sync_path(Path::new("/d")).unwrap();
    fs.crash();
    assert!(fs.stat(Path::new("/d/.redo")).unwrap().is_some());
    assert_eq!(fs.stat(Path::new("/d/.redo/x")).unwrap(), None);
}

#[test]
fn renames_replace_files_and_refuse_what_rename_2_refuses() {
    let fs = MemFs::default();
    fs.write("/d/a", "a");
    fs.write("/d/b", "b");
    fs.write("/d/dir/x", "x");
    let before = fs.meta("/d/a").stamp;
    fs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
    let after = fs.meta("/d/b").stamp;
    assert_eq!((after.ino, after.size), (before.ino, before.size));
    assert_ne!(
        after.ctime_sec, before.ctime_sec,
        "a rename changes the ctime"
    );
    assert!(fs.rename(Path::new("/d/b"), Path::new("/d/dir")).is_err());
    assert!(fs.rename(Path::new("/d/gone"), Path::new("/d/b")).is_err());
    fs.exchange(Path::new("/d/b"), Path::new("/d/dir")).unwrap();
    assert_eq!(text(&fs, "/d/dir/x"), None);
    assert_eq!(text(&fs, "/d/b/x").as_deref(), Some("x"));
    assert_eq!(text(&fs, "/d/dir").as_deref(), Some("a"));
}

#[test]
fn a_fault_fails_one_operation_and_a_crash_every_later_one() {
    let fs = MemFs::default();
    fs.write("/d/a", "a");
    fs.fail(Fault {
        op: Some(Op::Rename),
        after: 1,
        crash: false,
    });
    fs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
    assert!(fs.rename(Path::new("/d/b"), Path::new("/d/c")).is_err());
    fs.rename(Path::new("/d/b"), Path::new("/d/c")).unwrap();
    fs.fail(Fault {
        op: None,
        after: 1,
        crash: true,
    });
    fs.set_times_now(Path::new("/d/c")).unwrap();
    assert!(fs.remove_file(Path::new("/d/c")).is_err());
    assert!(fs.set_times_now(Path::new("/d/c")).is_err(), "dead");
    assert_eq!(fs.log().len(), 1);
    fs.crash();
    // The renames were never synced: the tree is as it was set up.
    assert_eq!(text(&fs, "/d/a").as_deref(), Some("a"));
    assert_eq!(text(&fs, "/d/c"), None);
}
