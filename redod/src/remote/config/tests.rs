use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::of(pairs)
}

fn parse(pairs: &[(&str, &str)]) -> Result<Option<CacheConfig>, CacheError> {
    CacheConfig::from_env(&env(pairs))
}

#[test]
fn unset_or_empty_is_no_cache() {
    assert!(matches!(parse(&[]), Ok(None)));
    assert!(matches!(parse(&[("REDO_CACHE", "")]), Ok(None)));
}

#[test]
fn file_url() {
    let c = parse(&[("REDO_CACHE", "file:///var/cache/redo")])
        .ok()
        .flatten();
    let c = c.unwrap_or_else(|| panic!("no config"));
    assert_eq!(c.location, Location::Dir(PathBuf::from("/var/cache/redo")));
    assert_eq!(c.mode, Mode::ReadWrite);
    assert!(parse(&[("REDO_CACHE", "file://host/x")]).is_err());
}

#[test]
fn http_url_with_credentials_and_env() {
    let c = parse(&[
        ("REDO_CACHE", "https://me:p%40ss@cache.example:8443/redo/"),
        ("REDO_CACHE_MODE", "read"),
        ("REDO_CACHE_ENV", "CFLAGS, CC,CFLAGS"),
        ("REDO_CACHE_CA", "/etc/ca.pem"),
    ]);
    let c = c.ok().flatten().unwrap_or_else(|| panic!("no config"));
    assert_eq!(
        c.location,
        Location::Http {
            base: "https://cache.example:8443/redo".into(),
            user: Some("me".into()),
            password: Some("p@ss".into()),
        }
    );
    assert_eq!(c.mode, Mode::Read);
    assert_eq!(c.env_names, ["CC", "CFLAGS"]);
    assert!(!format!("{c} {c:?}").contains("p@ss"));
    assert!(!format!("{c:?}").contains("p%40ss"));
}

#[test]
fn errors_name_the_variable() {
    let msg = |p: &[(&str, &str)]| match parse(p) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted {p:?}"),
    };
    assert!(msg(&[("REDO_CACHE", "ftp://x/")]).starts_with("REDO_CACHE: unsupported scheme"));
    assert!(msg(&[("REDO_CACHE", "not a url")]).starts_with("REDO_CACHE:"));
    assert!(
        msg(&[("REDO_CACHE", "file:///x"), ("REDO_CACHE_MODE", "rw")])
            .starts_with("REDO_CACHE_MODE: unknown mode \"rw\"; use read or readwrite")
    );
    assert!(
        msg(&[("REDO_CACHE", "http://h/"), ("REDO_CACHE_CA", "/ca.pem")])
            .starts_with("REDO_CACHE_CA:")
    );
    assert!(msg(&[("REDO_CACHE", "https://h/"), ("REDO_CACHE_CA", "ca.pem")]).contains("absolute"));
    assert!(
        msg(&[("REDO_CACHE", "file:///x"), ("REDO_CACHE_ENV", "A=1")])
            .starts_with("REDO_CACHE_ENV:")
    );
}
