use super::*;
use crate::fs::mem::MemFs;

#[test]
fn rec_cache_revalidates_by_stat() {
    let fs = MemFs::default();
    let cache = RecCache::default();
    let p = Path::new("/p/.redo/t.rec");
    assert!(matches!(cache.load(&fs, p).unwrap(), Loaded::Missing));
    fs.write("/p/.redo/t.rec", "Build: one\n");
    let Loaded::Ok(a) = cache.load(&fs, p).unwrap() else {
        panic!()
    };
    assert_eq!(a.build, "one");
    let Loaded::Ok(b) = cache.load(&fs, p).unwrap() else {
        panic!()
    };
    assert!(Arc::ptr_eq(&a, &b), "unchanged file must come from memory");
    fs.rewrite("/p/.redo/t.rec", "Build: two\n");
    let Loaded::Ok(c) = cache.load(&fs, p).unwrap() else {
        panic!()
    };
    assert_eq!(c.build, "two");
    fs.rewrite("/p/.redo/t.rec", "garbage\n");
    assert!(matches!(cache.load(&fs, p).unwrap(), Loaded::Corrupt(_)));
    fs.remove("/p/.redo/t.rec");
    assert!(matches!(cache.load(&fs, p).unwrap(), Loaded::Missing));
}

#[test]
fn hashes_reused_only_for_identical_stat() {
    let fs = MemFs::default();
    let hashes = Hashes::default();
    fs.write("/f", "one");
    let s1 = fs.meta("/f").stamp;
    let h1 = hashes.hash(&fs, Path::new("/f"), &s1, true).unwrap();
    // Same stamp, content changed behind our back (impossible on disk): cached value used.
    fs.rewrite("/f", "two");
    assert_eq!(hashes.hash(&fs, Path::new("/f"), &s1, true).unwrap(), h1);
    // New stamp: re-read.
    let s2 = fs.meta("/f").stamp;
    assert_ne!(hashes.hash(&fs, Path::new("/f"), &s2, true).unwrap(), h1);
    // reuse=false always reads.
    assert_eq!(
        hashes.hash(&fs, Path::new("/f"), &s1, false).unwrap(),
        *blake3::hash(b"two").as_bytes()
    );
}
