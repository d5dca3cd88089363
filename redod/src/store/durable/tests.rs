//! The writes on the real disk (the same code under the in-memory tree, with every step
//! failed in turn, is `exec::commit::tests`).

use super::*;
use crate::fs::DiskFs;
use crate::store::recfile::Dep;
use std::fs;
use std::os::unix::fs::MetadataExt;

/// The real disk, as the daemon holds it.
fn disk() -> Arc<dyn Disk> {
    Arc::new(DiskFs)
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redod-durable-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".redo")).unwrap();
    dir
}

#[test]
fn rec_written_atomically_without_leftovers() {
    let dir = scratch("rec");
    let gate = UmaskGate::new(0o022);
    let path = dir.join(".redo/t.rec");
    let rec = Rec {
        build: "b".into(),
        deps: vec![Dep::Always],
    };
    for sync in [true, false] {
        write_rec(&DiskFs, &path, &rec, sync, &gate, 0o022).unwrap();
        assert_eq!(recfile::parse(&fs::read(&path).unwrap()).unwrap(), rec);
    }
    assert_eq!(
        fs::read_dir(dir.join(".redo")).unwrap().count(),
        1,
        "no temp file left"
    );
    // A `.redo` a `.do` removed is made again.
    let again = dir.join("gone/.redo/t.rec");
    write_rec(&DiskFs, &again, &rec, false, &gate, 0o022).unwrap();
    assert_eq!(recfile::parse(&fs::read(&again).unwrap()).unwrap(), rec);
    // Unwritable destination: an error naming the path, no temp left behind.
    fs::write(dir.join("plain"), "a file, not a directory").unwrap();
    let err = write_rec(&DiskFs, &dir.join("plain/t.rec"), &rec, false, &gate, 0o022).unwrap_err();
    assert!(err.to_string().contains("plain"), "{err}");
    assert_eq!(fs::read_dir(dir.join(".redo")).unwrap().count(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_temporary_made_ahead_is_used_removed_or_made_again() {
    let dir = scratch("ahead");
    let gate = UmaskGate::new(0o022);
    let rec_path = dir.join(".redo/t.rec");
    let tmp = rec_temp_path(&rec_path);
    let entries = || fs::read_dir(dir.join(".redo")).unwrap().count();
    let rec = test_rec("b", b"t");
    // Made while the `.do` runs, empty, then the commit's.
    let mut ahead = RecTemp::create(&disk(), &rec_path, &gate, 0o022).unwrap();
    let ino = fs::metadata(&tmp).unwrap().ino();
    let w = RecWriter::begin_in(
        &DiskFs,
        Some(&mut ahead),
        &rec_path,
        &rec,
        false,
        &gate,
        0o022,
    )
    .unwrap();
    assert_eq!(
        fs::metadata(&tmp).unwrap().ino(),
        ino,
        "not the file made ahead"
    );
    drop(ahead);
    assert!(
        tmp.exists(),
        "the commit's pending record went with its RecTemp"
    );
    w.finish(None).unwrap();
    assert_eq!(fs::metadata(&rec_path).unwrap().ino(), ino);
    assert_eq!(entries(), 1, "no temp file left");
    // A job that does not commit (its `.do` failed) leaves nothing.
    drop(RecTemp::create(&disk(), &rec_path, &gate, 0o022).unwrap());
    assert_eq!(entries(), 1, "an unused temporary was left");
    // The `.do` removed `.redo` meanwhile: the pending record goes to a new file, with a
    // name, where a crash would leave it.
    let mut ahead = RecTemp::create(&disk(), &rec_path, &gate, 0o022).unwrap();
    fs::remove_dir_all(dir.join(".redo")).unwrap();
    let w = RecWriter::begin_in(
        &DiskFs,
        Some(&mut ahead),
        &rec_path,
        &rec,
        false,
        &gate,
        0o022,
    )
    .unwrap();
    assert_eq!(recfile::parse(&fs::read(&tmp).unwrap()).unwrap(), rec);
    drop(ahead);
    w.finish(None).unwrap();
    assert_eq!(recfile::parse(&fs::read(&rec_path).unwrap()).unwrap(), rec);
    assert_eq!(entries(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_commit_is_finished_or_rolled_back() {
    let dir = scratch("pending");
    let gate = UmaskGate::new(0o022);
    let (target, rec_path) = (dir.join("t"), dir.join(".redo/t.rec"));
    let rec = test_rec;
    write_rec(&DiskFs, &rec_path, &rec("old", b"old"), false, &gate, 0o022).unwrap();
    fs::write(&target, "old").unwrap();
    // The daemon began the state file, renamed the new target, then died.
    let w = RecWriter::begin(&DiskFs, &rec_path, &rec("new", b"new"), false, &gate, 0o022).unwrap();
    std::mem::forget(w);
    fs::write(&target, "new").unwrap();
    assert!(interrupted_commit(&DiskFs, &rec_path, b"t", &target).is_some());
    assert!(settle_pending(&DiskFs, &rec_path, &target, false, &gate, 0o022).unwrap());
    let now = recfile::parse(&fs::read(&rec_path).unwrap()).unwrap();
    assert_eq!(now.build, "new");
    assert_eq!(
        now.own(b"t").unwrap().0,
        &stamp_of(&DiskFs, &target).unwrap(),
        "the target as it is now"
    );
    assert!(!rec_temp_path(&rec_path).exists());
    // Died before the rename: the old target stays, the pending record goes.
    let w = RecWriter::begin(
        &DiskFs,
        &rec_path,
        &rec("newer", b"newer"),
        false,
        &gate,
        0o022,
    )
    .unwrap();
    std::mem::forget(w);
    assert!(interrupted_commit(&DiskFs, &rec_path, b"t", &target).is_none());
    assert!(!settle_pending(&DiskFs, &rec_path, &target, false, &gate, 0o022).unwrap());
    assert_eq!(
        recfile::parse(&fs::read(&rec_path).unwrap()).unwrap().build,
        "new"
    );
    assert!(!rec_temp_path(&rec_path).exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rec_writer_rewrites_its_pending_record_in_place() {
    let dir = scratch("writer");
    let gate = UmaskGate::new(0o022);
    let rec_path = dir.join(".redo/t.rec");
    let long = Rec {
        build: "long-build-name".into(),
        deps: vec![Dep::Always],
    };
    let short = Rec {
        build: "b".into(),
        deps: vec![],
    };
    for sync in [false, true] {
        let w = RecWriter::begin(&DiskFs, &rec_path, &long, sync, &gate, 0o022).unwrap();
        assert_eq!(
            recfile::parse(&fs::read(rec_temp_path(&rec_path)).unwrap()).unwrap(),
            long
        );
        w.finish(Some(&short)).unwrap();
        assert_eq!(
            recfile::parse(&fs::read(&rec_path).unwrap()).unwrap(),
            short
        );
        assert!(!rec_temp_path(&rec_path).exists());
    }
    RecWriter::begin(&DiskFs, &rec_path, &long, false, &gate, 0o022)
        .unwrap()
        .abandon();
    assert!(!rec_temp_path(&rec_path).exists());
    assert_eq!(
        recfile::parse(&fs::read(&rec_path).unwrap()).unwrap(),
        short
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_capture_is_written_out_whole_from_its_start() {
    use std::io::Write;
    let dir = scratch("capture");
    let gate = UmaskGate::new(0o022);
    // The fallback: a capture without a name, nothing to see in its directory.
    let mut u = unnamed_in(&dir).unwrap();
    u.write_all(b"spilled").unwrap();
    copy_capture(&DiskFs, &u, &dir.join("spilled"), false, &gate, 0o022).unwrap();
    assert_eq!(fs::read(dir.join("spilled")).unwrap(), b"spilled");
    fs::remove_file(dir.join("spilled")).unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only .redo");
    let mut c = capture(&dir).unwrap();
    let data = vec![b'x'; 3 << 20];
    c.write_all(&data).unwrap();
    assert_eq!(hash_capture(&c).unwrap(), *blake3::hash(&data).as_bytes());
    let dst = dir.join("out");
    copy_capture(&DiskFs, &c, &dst, false, &gate, 0o022).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), data);
    // Never over an existing file, and nothing left behind by a failure.
    let err = copy_capture(&DiskFs, &c, &dst, false, &gate, 0o022).unwrap_err();
    assert!(err.to_string().contains("out"), "{err}");
    assert!(copy_capture(&DiskFs, &c, &dir.join("missing/out"), false, &gate, 0o022).is_err());
    assert!(!dir.join("missing").exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replace_puts_files_links_and_directories_over_each_other() {
    let dir = scratch("replace");
    let t = dir.join("t");
    let new = dir.join(".redo.t.new");
    let make_dir = |p: &Path, f: &str| {
        fs::create_dir_all(p.join("sub")).unwrap();
        fs::write(p.join("sub").join(f), f).unwrap();
    };
    // Nothing there yet, then a file over a file.
    fs::write(&new, "one").unwrap();
    replace(&DiskFs, &new, &t).unwrap();
    fs::write(&new, "two").unwrap();
    replace(&DiskFs, &new, &t).unwrap();
    assert_eq!(fs::read(&t).unwrap(), b"two");
    // A directory over a file, over a non-empty directory; a file and a link over a
    // directory. The old one never stays behind under the temporary's name.
    make_dir(&new, "a");
    replace(&DiskFs, &new, &t).unwrap();
    assert!(t.join("sub/a").exists());
    make_dir(&new, "b");
    replace(&DiskFs, &new, &t).unwrap();
    assert!(t.join("sub/b").exists() && !t.join("sub/a").exists());
    fs::write(&new, "three").unwrap();
    replace(&DiskFs, &new, &t).unwrap();
    assert_eq!(fs::read(&t).unwrap(), b"three");
    make_dir(&t.with_extension("d"), "c");
    fs::remove_file(&t).unwrap();
    fs::rename(t.with_extension("d"), &t).unwrap();
    std::os::unix::fs::symlink("nowhere", &new).unwrap();
    replace(&DiskFs, &new, &t).unwrap();
    assert_eq!(fs::read_link(&t).unwrap(), Path::new("nowhere"));
    assert!(fs::symlink_metadata(&new).is_err());
    assert_eq!(
        crate::fs::hash_entry(&DiskFs, &t).unwrap(),
        *blake3::hash(b"nowhere").as_bytes()
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// A state file rewritten (`redo-depfix`, a settled commit) on the in-memory disk, crashed at
/// each step: the old state or the new one, whole, and no temporary once swept.
#[test]
fn a_state_file_rewritten_is_old_or_new_after_a_crash_at_any_step() {
    use crate::fs::Fs;
    use crate::fs::mem::{Fault, MemFs};
    let gate = UmaskGate::new(0o022);
    let rec_path = Path::new("/p/.redo/t.rec");
    let (old, new) = (test_rec("old", b"old"), test_rec("new", b"new"));
    let world = || {
        let fs = MemFs::default();
        fs.write(
            "/p/.redo/t.rec",
            std::str::from_utf8(&recfile::encode(&old)).unwrap(),
        );
        fs
    };
    let steps = {
        let fs = world();
        fs.count_from_here();
        write_rec(&fs, rec_path, &new, true, &gate, 0o022).unwrap();
        fs.log().len()
    };
    for k in 0..=steps {
        let fs = world();
        fs.fail(Fault {
            op: None,
            after: k,
            crash: true,
        });
        assert_eq!(
            write_rec(&fs, rec_path, &new, true, &gate, 0o022).is_ok(),
            k == steps
        );
        fs.crash();
        let now = recfile::parse(&fs.read(rec_path).unwrap().unwrap()).unwrap();
        assert!(now == old || now == new, "crash at {k}: {now:?}");
        if k == steps {
            assert_eq!(now, new);
        }
        // The sweep's part: the pending record of a state without a target proves nothing.
        settle_pending(&fs, rec_path, Path::new("/p/t"), true, &gate, 0o022).unwrap();
        assert_eq!(fs.stat(&rec_temp_path(rec_path)).unwrap(), None);
    }
}
