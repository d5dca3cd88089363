use super::*;

#[test]
fn a_put_makes_its_area_and_a_present_blob_is_not_written_again() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    let b = DirBackend::new(&root);
    assert_eq!(b.get(Area::Ac, "k").unwrap(), None);
    assert!(!b.head(Area::Cas, "h").unwrap());
    assert!(b.put(Area::Cas, "h", b"one", true).unwrap());
    assert!(!b.put(Area::Cas, "h", b"two", true).unwrap());
    assert_eq!(b.get(Area::Cas, "h").unwrap().as_deref(), Some(&b"one"[..]));
    assert!(b.put(Area::Ac, "k", b"1", false).unwrap());
    assert!(b.put(Area::Ac, "k", b"2", false).unwrap());
    assert_eq!(b.get(Area::Ac, "k").unwrap().as_deref(), Some(&b"2"[..]));
    let names: Vec<_> = std::fs::read_dir(root.join("ac")).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary is left behind");
}

#[test]
fn an_unwritable_cache_is_an_error_that_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    let b = DirBackend::new(&file);
    let e = b.put(Area::Cas, "h", b"x", true).unwrap_err().to_string();
    assert!(e.contains("plain-file"), "{e}");
}
