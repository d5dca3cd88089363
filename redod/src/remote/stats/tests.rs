use super::*;

#[test]
fn line_and_one_warning() {
    let s = Stats::default();
    s.hit();
    s.miss();
    s.miss();
    s.down(20 << 10);
    s.up(5);
    assert_eq!(
        s.stats_line(),
        "remote cache: 1 hit, 2 misses, 0 uploads, 20 KiB down, 5 B up, 0 errors"
    );
    assert_eq!(s.take_warning(), None);
    for _ in 0..3 {
        s.error(&CacheError::NotCacheable("x".into()));
    }
    let w = s.take_warning().unwrap();
    assert!(w.contains("3 errors"), "{w}");
    assert_eq!(s.take_warning(), None);
    assert_eq!(s.snapshot().errors, 3);
}
