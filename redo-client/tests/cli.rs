//! The client binary's command lines, answered without a daemon: one `redo` binary, run as the
//! command it is called by.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `redo` called as `name` (what a link named `name` does).
fn called_as(name: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redo"));
    c.arg0(name);
    c
}

#[test]
fn help_and_usage_errors() {
    for (name, synopsis) in [
        ("redo", "usage: redo [options] [target ...]"),
        (
            "redo-ifchange",
            "usage: redo-ifchange [options] [target ...]",
        ),
        (
            "/some/where/redo-ifcreate",
            "usage: redo-ifcreate [file ...]",
        ),
        ("redo-always", "usage: redo-always"),
        ("redo-stamp", "usage: redo-stamp <data"),
        ("redo-whichdo", "usage: redo-whichdo target"),
    ] {
        let out = called_as(name).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(synopsis),
            "{name}"
        );
        let out = called_as(name).arg("--no-such-option").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains("unknown option '--no-such-option'") && err.contains("--help"),
            "{name}: {err}"
        );
    }
}

#[test]
fn every_name_is_a_command_and_others_are_refused() {
    for name in redo_proto::commands::NAMES {
        let out = called_as(name).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(&format!("{name} ")), "{name}: {text}");
    }
    for name in ["redo-frobnicate", "goredo", "/usr/bin/redo-"] {
        let out = called_as(name).arg("x").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a redo command") && err.contains("redo-ifchange, redo-ifcreate"),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn symlinks_makes_every_command_link_and_replaces_nothing() {
    let dir = std::env::temp_dir().join(format!("redo-client-symlinks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("redo-log"), "mine\n").unwrap();
    let run = || {
        called_as("redo")
            .arg("-symlinks")
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot make the link redo-log: file exists"),
        "{stderr}"
    );
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_redo")).unwrap();
    for name in redo_proto::commands::NAMES {
        if name == "redo-log" {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), "mine\n");
            continue;
        }
        assert_eq!(std::fs::read_link(dir.join(name)).unwrap(), exe, "{name}");
        assert!(
            stdout.contains(&format!("{} <- {name}\n", exe.display())),
            "{stdout}"
        );
    }
    // Again, once the file is gone: the links already there are left alone, the missing one made.
    std::fs::remove_file(dir.join("redo-log")).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{} <- redo-log\n", exe.display())
    );
    let version = Command::new(dir.join("redo-log"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("redo-log "));
    std::fs::remove_dir_all(&dir).unwrap();
}
