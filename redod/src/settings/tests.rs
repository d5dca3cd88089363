use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env(pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect())
}

#[test]
fn toggles_need_exactly_one() {
    let s = Settings::from_env(
        &env(&[
            ("REDO_SILENT", "1"),
            ("REDO_NO_SYNC", "yes"),
            ("REDO_NO_PROGRESS", "1"),
        ]),
        Path::new("/"),
    )
    .unwrap();
    assert!(s.silent && !s.no_sync && s.no_progress && s.no_status);
}

#[test]
fn later_entries_win_and_paths_resolve() {
    let s = Settings::from_env(
        &env(&[
            ("REDO_JOBS", "3"),
            ("REDO_JOBS", "0"),
            ("REDO_TOP_DIR", ".."),
        ]),
        Path::new("/p/q"),
    )
    .unwrap();
    assert_eq!(s.jobs, Some(0));
    assert_eq!(s.top_dir, Some(PathBuf::from("/p")));
}

#[test]
fn trust_and_make_values() {
    assert_eq!(parse_trust(Some(b"mtime")), Ok(Trust::Mtime));
    assert!(parse_trust(Some(b"sometimes")).is_err());
    assert_eq!(parse_trust(None), Ok(Trust::Ctime));
    assert_eq!(parse_make(Some(b"fifo")), Ok(MakeStyle::Fifo));
    assert!(parse_make(Some(b"cmake")).is_err());
}

#[test]
fn bad_values_are_errors() {
    assert!(Settings::from_env(&env(&[("REDO_INODE_TRUST", "x")]), Path::new("/")).is_err());
    assert!(Settings::from_env(&env(&[("REDO_JOBS", "lots")]), Path::new("/")).is_err());
}
