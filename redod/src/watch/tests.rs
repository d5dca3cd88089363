use super::*;
use crate::store::snapshot::StatGroup;
use std::ffi::OsStr;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("redod-watch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::canonicalize(&d).unwrap()
}

fn hits(w: &Watcher) -> usize {
    w.shared.hits.load(Ordering::Relaxed)
}

#[test]
fn cached_until_changed_and_seen_by_sync() {
    let d = scratch("cache");
    // The event thread lags: only `sync` can make the stats below right.
    let w = Watcher::start(&d, Duration::from_secs(30)).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    let f = d.join("src/a.c");
    std::fs::write(&f, "one").unwrap();
    let m1 = fs.stat(&f).unwrap().unwrap();
    let before = hits(&w);
    assert_eq!(fs.stat(&f).unwrap().unwrap(), m1);
    assert_eq!(hits(&w), before + 1, "second stat from memory");
    // A change, then a request: sync reads the queue, so it is seen before anything.
    for round in 0..50 {
        std::fs::write(&f, "x".repeat(round + 4)).unwrap();
        w.sync();
        assert_eq!(fs.stat(&f).unwrap().unwrap().stamp.size, round as u64 + 4);
    }
    std::fs::remove_file(&f).unwrap();
    w.sync();
    assert!(fs.stat(&f).unwrap().is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn off_and_overflow_fall_back_to_the_disk() {
    let d = scratch("off");
    let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    let f = d.join("src/b.c");
    std::fs::write(&f, "x").unwrap();
    fs.stat(&f).unwrap();
    w.simulate_overflow();
    assert!(
        lock(&w.shared.stats).is_empty(),
        "overflow forgets everything"
    );
    w.set_enabled(false);
    std::fs::write(&f, "xyz").unwrap();
    // No sync, watcher off: still right, straight from the disk.
    assert_eq!(fs.stat(&f).unwrap().unwrap().stamp.size, 3);
    w.set_enabled(true);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn symlinks_and_paths_outside_the_root_are_never_cached() {
    let d = scratch("link");
    let w = Watcher::start(&d.join("src"), Duration::ZERO).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::fs::write(d.join("elsewhere/real"), "1").unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere/real"), d.join("src/link")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("src/dirlink")).unwrap();
    fs.stat(&d.join("src/link")).unwrap();
    fs.stat(&d.join("src/dirlink/real")).unwrap();
    fs.stat(&d.join("elsewhere/real")).unwrap();
    // The target changes in a directory outside the root.
    std::fs::write(d.join("elsewhere/real"), "1234").unwrap();
    let before = hits(&w);
    for p in ["src/link", "src/dirlink/real", "elsewhere/real"] {
        assert_eq!(fs.stat(&d.join(p)).unwrap().unwrap().stamp.size, 4, "{p}");
    }
    assert_eq!(hits(&w), before);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn renamed_or_replaced_directories_drop_what_is_below() {
    let d = scratch("rename");
    let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    let deep = d.join("src/a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let f = deep.join("f.c");
    std::fs::write(&f, "v1").unwrap();
    assert_eq!(fs.stat(&f).unwrap().unwrap().stamp.size, 2);
    // An ancestor is renamed away and recreated with other content, twice.
    for (round, content) in ["v2-", "v3--"].iter().enumerate() {
        std::fs::rename(d.join("src/a"), d.join(format!("src/old{round}"))).unwrap();
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(&f, content).unwrap();
        w.sync();
        assert_eq!(
            fs.stat(&f).unwrap().unwrap().stamp.size,
            content.len() as u64,
            "round {round}"
        );
        // And it is watched again: a later change is seen too.
        std::fs::write(&f, "changed again").unwrap();
        w.sync();
        assert_eq!(
            fs.stat(&f).unwrap().unwrap().stamp.size,
            13,
            "round {round}"
        );
    }
    // The directory is replaced by a file and back.
    std::fs::remove_dir_all(d.join("src/a")).unwrap();
    w.sync();
    assert!(fs.stat(&f).unwrap().is_none());
    std::fs::write(d.join("src/a"), "now a file").unwrap();
    w.sync();
    assert!(fs.stat(&f).is_err() || fs.stat(&f).unwrap().is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn do_listings_survive_other_files_but_not_new_do_files() {
    let d = scratch("names");
    let w = Watcher::start(&d, Duration::from_secs(30)).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    let src = d.join("src");
    std::fs::write(src.join("a.do"), "").unwrap();
    let names = |fs: &WatchedFs| {
        let mut n: Vec<String> = fs
            .build_names(&src)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&fs), ["a.do"]);
    let cached = || lock(&w.shared.listings).contains_key(&src);
    assert!(cached());
    // Temporaries and outputs come and go: still cached.
    std::fs::write(src.join(".redo.t.0123"), "").unwrap();
    std::fs::rename(src.join(".redo.t.0123"), src.join("t")).unwrap();
    w.sync();
    assert!(cached());
    // A new .do, a .redo directory, a removed .do: seen at once.
    std::fs::write(src.join("default.o.do"), "").unwrap();
    w.sync();
    assert_eq!(names(&fs), ["a.do", "default.o.do"]);
    std::fs::create_dir(src.join(".redo")).unwrap();
    w.sync();
    assert_eq!(names(&fs), [".redo", "a.do", "default.o.do"]);
    std::fs::remove_file(src.join("a.do")).unwrap();
    w.sync();
    assert_eq!(names(&fs), [".redo", "default.o.do"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn changes_are_reported_without_a_request() {
    let d = scratch("follow");
    let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
    let mut rx = w.subscribe();
    let f = d.join("src/c.c");
    assert!(w.watch_dirs_of([&f]));
    std::fs::write(&f, "x").unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Ok(p) = rx.recv().await {
                if *p == f {
                    return;
                }
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "the event thread did not report the write");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The stats `w` exports, grouped by directory as a snapshot keeps them.
fn grouped(stats: Vec<crate::store::snapshot::StatEntry>) -> Vec<StatGroup> {
    let mut groups: Vec<StatGroup> = Vec::new();
    for (p, m) in stats {
        let dir = p.parent().unwrap().to_path_buf();
        match groups.iter_mut().find(|g| g.dir == dir) {
            Some(g) => g.entries.push((p, m)),
            None => groups.push(StatGroup {
                dir,
                entries: vec![(p, m)],
            }),
        }
    }
    groups
}

#[test]
fn a_restore_takes_absent_do_files_from_listings_but_sees_new_ones() {
    let d = scratch("restore");
    let (src, absent) = (d.join("src/a.c"), d.join("src/a.c.do"));
    std::fs::write(&src, "a").unwrap();
    let saved = {
        let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
        let fs = WatchedFs::new(w.clone());
        assert!(fs.stat(&src).unwrap().is_some());
        assert!(fs.stat(&absent).unwrap().is_none());
        assert!(
            !fs.has_build_name(&d.join("src"), OsStr::new("a.c.do"))
                .unwrap()
        );
        w.export()
    };
    assert!(saved.1.iter().any(|l| l.dir == d.join("src")), "{saved:?}");

    // Nothing changed: everything taken back, the absent `.do` without a stat.
    let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
    let changed = w
        .restore(grouped(saved.0.clone()), saved.1.clone())
        .unwrap();
    assert!(changed.is_empty(), "{changed:?}");
    assert!(matches!(
        lock(&w.shared.stats).get(absent.as_os_str()),
        Some(None)
    ));
    drop(w);

    // The `.do` written while no daemon ran: its directory changed, its listing is read
    // again, and the `.do` is among what changed.
    std::fs::write(&absent, "echo a\n").unwrap();
    let w = Watcher::start(&d, Duration::ZERO).expect("inotify");
    let fs = WatchedFs::new(w.clone());
    let changed = w.restore(grouped(saved.0), saved.1).unwrap();
    assert!(changed.contains(&absent), "{changed:?}");
    assert!(fs.stat(&absent).unwrap().is_some());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_packed_stat_is_the_stat_and_smaller() {
    use crate::fs::Stamp;
    assert_eq!(std::mem::size_of::<Cached>(), 48);
    assert!(std::mem::size_of::<Cached>() < std::mem::size_of::<Option<Meta>>());
    let m = Meta {
        stamp: Stamp {
            size: u64::MAX,
            ino: 42,
            ctime_sec: -5,
            ctime_nsec: 999_999_999,
            mtime_sec: i64::MAX,
            mtime_nsec: 0,
        },
        kind: Kind::Other,
        link: true,
    };
    assert_eq!(pack(Some(m)).map(unpack), Some(Some(m)));
    assert_eq!(pack(None).map(unpack), Some(None));
    // Nanoseconds no stat returns cannot be kept exactly: not kept at all.
    let odd = Meta {
        stamp: Stamp {
            mtime_nsec: -1,
            ..m.stamp
        },
        ..m
    };
    assert!(pack(Some(odd)).is_none());
}
