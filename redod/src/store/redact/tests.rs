//! What a kept log never shows.

use super::*;

#[test]
fn secrets_by_name() {
    for n in [
        "GITHUB_TOKEN",
        "token",
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "MYSQL_PWD_PASSWD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "API_KEY",
        "ssh_key",
    ] {
        assert!(secret_name(n.as_bytes()), "{n}");
        assert_eq!(&*env_value(n.as_bytes(), b"hunter2"), REDACTED, "{n}");
    }
    for n in ["PATH", "HOME", "KEYBOARD", "MONKEY", "CC"] {
        assert!(!secret_name(n.as_bytes()), "{n}");
    }
    assert_eq!(&*env_value(b"PATH", b"/usr/bin:/bin"), b"/usr/bin:/bin");
}

#[test]
fn url_userinfo_is_redacted() {
    let cases: [(&str, &str); 6] = [
        (
            "https://user:pw@host/prefix",
            "https://<redacted>@host/prefix",
        ),
        ("http://tok@cache:8080", "http://<redacted>@cache:8080"),
        ("file:///srv/cache", "file:///srv/cache"),
        ("https://host/a@b", "https://host/a@b"),
        (
            "a=https://u:p@one/x b=http://v@two",
            "a=https://<redacted>@one/x b=http://<redacted>@two",
        ),
        ("https://u:p@w@host?q#f", "https://<redacted>@host?q#f"),
    ];
    for (v, want) in cases {
        assert_eq!(
            String::from_utf8_lossy(&env_value(b"REDO_CACHE", v.as_bytes())),
            want
        );
    }
}
