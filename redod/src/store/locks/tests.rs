use super::*;
use std::path::PathBuf;
use std::process::Command;

/// A target directory with its `.redo`; returns both.
fn scratch(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("redod-lock-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".redo")).unwrap();
    let redo = dir.join(".redo");
    (dir, redo)
}

/// What another process sees: python3's `fcntl.lockf` is a POSIX `F_SETLK`, which
/// conflicts with OFD locks on Linux. `None` when python3 is not there.
fn other_process_can_lock(file: &Path, start: i64, len: i64) -> Option<bool> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n fcntl.lockf(f, \
             fcntl.LOCK_EX|fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2])); print('got')\n\
             except OSError: print('busy')",
        )
        .arg(file)
        .arg(start.to_string())
        .arg(len.to_string())
        .output()
        .ok()?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "got" => Some(true),
        "busy" => Some(false),
        other => panic!(
            "python3 said {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn a_target_is_locked_against_other_processes_and_only_it() {
    let (dir, redo) = scratch("other");
    let held = try_lock(&dir, OsStr::new("a.o")).unwrap();
    assert!(matches!(held, TryLock::Acquired(_)));
    let file = redo.join(DIR_LOCK);
    let (a, b) = (offset(OsStr::new("a.o")), offset(OsStr::new("b.o")));
    assert_ne!(a, b);
    if let Some(got) = other_process_can_lock(&file, a, 1) {
        assert!(!got, "another process took a.o's byte while it was held");
        assert_eq!(other_process_can_lock(&file, b, 1), Some(true));
    }
    drop(held);
    if let Some(got) = other_process_can_lock(&file, a, 1) {
        assert!(got, "the byte was not released");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_targets_of_one_directory_are_held_at_once_and_released_alone() {
    let (dir, _) = scratch("two");
    let a = try_lock(&dir, OsStr::new("a")).unwrap();
    let b = try_lock(&dir, OsStr::new("b")).unwrap();
    assert!(matches!(a, TryLock::Acquired(_)) && matches!(b, TryLock::Acquired(_)));
    // The same target again (another flight would be a bug; another daemon is this).
    assert!(matches!(
        try_lock(&dir, OsStr::new("a")).unwrap(),
        TryLock::Held(None)
    ));
    // Releasing `a` keeps `b` (a POSIX lock would have lost both at the first close).
    drop(a);
    assert!(matches!(
        try_lock(&dir, OsStr::new("b")).unwrap(),
        TryLock::Held(None)
    ));
    assert!(matches!(
        try_lock(&dir, OsStr::new("a")).unwrap(),
        TryLock::Acquired(_)
    ));
    drop(b);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn goredos_lock_file_is_taken_when_it_exists_and_never_created() {
    let (dir, redo) = scratch("goredo");
    let held = try_lock(&dir, OsStr::new("t")).unwrap();
    assert!(matches!(held, TryLock::Acquired(_)));
    assert!(!redo.join("t.lock").exists(), "no per-target lock file");
    drop(held);
    std::fs::write(redo.join("t.lock"), "").unwrap();
    let held = try_lock(&dir, OsStr::new("t")).unwrap();
    assert!(matches!(held, TryLock::Acquired(_)));
    if let Some(got) = other_process_can_lock(&redo.join("t.lock"), 0, 0) {
        assert!(!got, "goredo's lock file was not locked");
    }
    drop(held);
    if let Some(got) = other_process_can_lock(&redo.join("t.lock"), 0, 0) {
        assert!(got);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offsets_are_stable_and_positive() {
    // Another daemon (another version, another run) must pick the same byte.
    assert_eq!(offset(OsStr::new("all")), offset(OsStr::new("all")));
    for n in ["", "a", "default.o", "x\u{e9}"] {
        assert!(offset(OsStr::new(n)) >= 0);
    }
}
