use super::*;

#[test]
fn temp_names_follow_goredo() {
    let p = temp_path(Path::new("/d"), OsStr::new("t.o"));
    let n = p.file_name().unwrap().to_str().unwrap();
    assert!(
        n.starts_with(".redo.t.o.") && n.len() == ".redo.t.o.".len() + 16,
        "{n}"
    );
    assert_eq!(
        rec_temp_path(Path::new("/d/.redo/t.rec")),
        PathBuf::from("/d/.redo/.redo.t.rec.tmp")
    );
}
