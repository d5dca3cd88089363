use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::of(pairs)
}

#[test]
fn one_client_per_configuration() {
    let caches = Caches::default();
    assert!(caches.for_env(&env(&[])).unwrap().is_none());
    let a = caches
        .for_env(&env(&[("REDO_CACHE", "file:///tmp/a")]))
        .unwrap()
        .unwrap();
    let a2 = caches.for_env(&env(&[("REDO_CACHE", "file:///tmp/a"), ("HOME", "/x")]));
    assert!(Arc::ptr_eq(&a, &a2.unwrap().unwrap()));
    let b = caches.for_env(&env(&[
        ("REDO_CACHE", "file:///tmp/a"),
        ("REDO_CACHE_MODE", "read"),
    ]));
    assert!(!Arc::ptr_eq(&a, &b.unwrap().unwrap()));
    assert!(
        caches
            .for_env(&env(&[("REDO_CACHE", "gopher://x")]))
            .is_err()
    );
    let lines = caches.stats_lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("remote cache: 0 hits"), "{lines:?}");
    assert!(lines[0].contains("[file:///tmp/a ("), "{lines:?}");
}
