use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn files_get_the_requested_umask() {
    let gate = UmaskGate::new(0o022);
    let dir = std::env::temp_dir().join(format!("redod-umask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (mask, want) in [(0o077, 0o600), (0o002, 0o664), (0o022, 0o644)] {
        let p = dir.join(format!("f{mask:o}"));
        gate.with(mask, || std::fs::File::create(&p).unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            want
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn different_masks_serialise() {
    let gate = std::sync::Arc::new(UmaskGate::new(0o022));
    let g = gate.enter(0o022);
    let g2 = gate.clone();
    let t = std::thread::spawn(move || g2.with(0o077, || 1));
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!t.is_finished(), "must wait for the 022 holder");
    drop(g);
    assert_eq!(t.join().unwrap(), 1);
}
