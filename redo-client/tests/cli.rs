//! The client binaries' command lines, answered without a daemon.

use std::process::Command;

#[test]
fn help_and_usage_errors() {
    for (bin, synopsis) in [
        (
            env!("CARGO_BIN_EXE_redo"),
            "usage: redo [options] [target ...]",
        ),
        (
            env!("CARGO_BIN_EXE_redo-ifchange"),
            "usage: redo-ifchange [options] [target ...]",
        ),
        (
            env!("CARGO_BIN_EXE_redo-ifcreate"),
            "usage: redo-ifcreate [file ...]",
        ),
        (env!("CARGO_BIN_EXE_redo-always"), "usage: redo-always"),
        (env!("CARGO_BIN_EXE_redo-stamp"), "usage: redo-stamp <data"),
        (
            env!("CARGO_BIN_EXE_redo-whichdo"),
            "usage: redo-whichdo target",
        ),
    ] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{bin}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(synopsis),
            "{bin}"
        );
        let out = Command::new(bin).arg("--no-such-option").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{bin}: {err}");
        assert!(
            err.contains("unknown option '--no-such-option'") && err.contains("--help"),
            "{bin}: {err}"
        );
    }
}
