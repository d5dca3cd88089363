//! The daemon binary's own command line.

#[test]
fn help_names_the_serve_command() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redod"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn refuses_relative_paths() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redod"))
        .args(["serve", "--root", "rel", "--runtime-dir", "rel2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be absolute"));
}
