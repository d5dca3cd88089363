#![allow(clippy::unwrap_used)]

use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn default_report_is_timestamped_with_a_latest_link() {
    let root = temp();
    let started = UNIX_EPOCH + Duration::from_millis(1_773_569_730_123);
    let w = write_report(root.path(), started, b"<html>one</html>").unwrap();
    let dir = root.path().join(".redo/timings");
    assert_eq!(w.report, dir.join("timings-20260315T101530.123Z.html"));
    assert_eq!(w.latest, dir.join("latest.html"));
    let w2 = write_report(root.path(), started, b"<html>two</html>").unwrap();
    assert_eq!(w2.report, dir.join("timings-20260315T101530.123Z-2.html"));
    assert_eq!(fs::read(&w.report).unwrap(), b"<html>one</html>");
    assert_eq!(fs::read(&w2.latest).unwrap(), b"<html>two</html>");
    // No temporary is left behind.
    assert_eq!(
        listing(&dir),
        [
            "latest.html",
            "timings-20260315T101530.123Z-2.html",
            "timings-20260315T101530.123Z.html"
        ]
    );
}

#[test]
fn only_the_newest_reports_are_kept() {
    let root = temp();
    for i in 0..KEEP_REPORTS as u64 + 3 {
        let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i);
        write_report(root.path(), started, format!("{i}").as_bytes()).unwrap();
    }
    let dir = timings_dir(root.path());
    let names = listing(&dir);
    assert_eq!(names.len(), KEEP_REPORTS + 1, "{names:?}");
    // The three oldest went; latest.html is the last report.
    // (1_700_000_000 is 2023-11-14 22:13:20 UTC.)
    assert_eq!(names[1], "timings-20231114T221323.000Z.html", "{names:?}");
    assert_eq!(names[KEEP_REPORTS], "timings-20231114T221342.000Z.html");
    assert_eq!(fs::read_to_string(dir.join("latest.html")).unwrap(), "22");
}

#[test]
fn write_atomic_replaces_and_names_what_failed() {
    let root = temp();
    let f = root.path().join("t.json");
    write_atomic(&f, b"old").unwrap();
    write_atomic(&f, b"new").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"new");
    let missing = root.path().join("no/such/dir/t.json");
    let err = write_atomic(&missing, b"x").unwrap_err().to_string();
    assert!(err.contains("no/such/dir"), "{err}");
    assert!(matches!(
        write_atomic(Path::new("/"), b"x"),
        Err(Error::NotAFile(_))
    ));
}
