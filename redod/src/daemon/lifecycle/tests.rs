use super::*;

#[test]
fn idle_values() {
    assert_eq!(idle_from_env(None).unwrap(), Some(DEFAULT_IDLE));
    assert_eq!(idle_from_env(Some("0")).unwrap(), None);
    assert_eq!(
        idle_from_env(Some("0.5")).unwrap(),
        Some(Duration::from_millis(500))
    );
    assert!(idle_from_env(Some("soon")).is_err());
    assert!(idle_from_env(Some("-1")).is_err());
}

#[test]
fn pid_lock_is_exclusive() {
    let dir = std::env::temp_dir().join(format!("redod-pid-{}", std::process::id()));
    private_dir(&dir).unwrap();
    let first = pid_lock(&dir).unwrap();
    assert!(first.is_some());
    // flock locks belong to the open file description: a second open conflicts, even here.
    assert!(pid_lock(&dir).unwrap().is_none());
    drop(first);
    assert!(pid_lock(&dir).unwrap().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}
