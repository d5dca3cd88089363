use super::*;

#[test]
fn tai64n_labels() {
    assert_eq!(tai64n(UNIX_EPOCH), "@400000000000000a00000000");
    let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let l = tai64n(t);
    assert_eq!(l.len(), 25);
    assert_eq!(parse_tai64n(l.as_bytes()), Some(t));
    assert_eq!(parse_tai64n(b"@nothex"), None);
    assert_eq!(parse_tai64n(b"@3fffffffffffffff00000000"), None);
    assert_eq!(time_of_day(t).len(), "07:01:02.123".len());
}

#[test]
fn log_and_log_rec_round_trip() {
    let dir = std::env::temp_dir().join(format!("redod-logs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".redo")).unwrap();
    let mut log = JobLog::create(&dir, OsStr::new("t")).unwrap();
    log.write(b"one\ntw");
    log.write(b"o\nthree");
    log.finish();
    let text = std::fs::read_to_string(dir.join(".redo/t.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("@4000") && l.as_bytes()[25] == b' ')
    );
    assert_eq!(
        lines.iter().map(|l| &l[26..]).collect::<Vec<_>>(),
        ["one", "two", "three"]
    );
    let now = SystemTime::now();
    let rec = LogRec {
        build: "b".into(),
        ppid: 1,
        cwd: dir.clone(),
        pid: Some(2),
        started: now,
        finished: now + Duration::from_millis(1500),
        cmd: "/bin/sh".into(),
        args: vec!["-e".into(), "t.do".into()],
        env: vec![
            ("A".into(), "multi\nline".into()),
            ("GITHUB_TOKEN".into(), "ghp_secret".into()),
            ("REDO_CACHE".into(), "https://user:pw@cache/p".into()),
        ],
        exit_code: Some(3),
        ifchange: vec![b"t.do".to_vec()],
    };
    rec.write(&dir, OsStr::new("t")).unwrap();
    let shown = String::from_utf8(show(&dir.join("t"), &dir, false, true).unwrap()).unwrap();
    assert!(
        shown.starts_with("== t (exit 3, 1.500s, started "),
        "{shown}"
    );
    assert!(
        shown.contains("   cmd: /bin/sh\n   arg: -e\n   arg: t.do\n"),
        "{shown}"
    );
    assert!(shown.contains("   env: A=multi\nline\n"), "{shown}");
    assert!(
        shown.contains("   env: GITHUB_TOKEN=<redacted>\n"),
        "{shown}"
    );
    assert!(
        shown.contains("   env: REDO_CACHE=https://<redacted>@cache/p\n"),
        "{shown}"
    );
    assert!(
        !shown.contains("ghp_secret") && !shown.contains("pw@"),
        "{shown}"
    );
    assert!(shown.ends_with(" three\n"), "{shown}");
    let plain = String::from_utf8(show(&dir.join("t"), &dir, false, false).unwrap()).unwrap();
    let texts: Vec<&str> = plain
        .lines()
        .map(|l| {
            // "HH:MM:SS.mmm text": the stamp converted, the text unchanged.
            let (stamp, text) = l.split_at(12);
            assert!(
                stamp.as_bytes()[2] == b':' && stamp.as_bytes()[8] == b'.',
                "{l}"
            );
            text
        })
        .collect();
    assert_eq!(texts, [" one", " two", " three"]);
    assert!(
        show(&dir.join("nope"), &dir, false, false)
            .unwrap_err()
            .to_string()
            .contains("redo -k")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
