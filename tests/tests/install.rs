#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `contrib/install.sh PREFIX`, end to end: installed into a temporary prefix with a space in
//! its name (the debug binaries, through `REDO_BUILD_DIR`, so that `cargo test` builds nothing
//! more), twice (it is idempotent); then the example C project built with only that prefix and
//! the system's directories on `PATH`, the installed man pages rendered, and the completion
//! files where bash-completion, zsh and fish look for them under the prefix.

use redo_tests::{Run, TempDir, build_dir};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn install(prefix: &Path) -> Run {
    Run::from_output(
        Command::new("sh")
            .arg(repo().join("contrib/install.sh"))
            .arg(prefix)
            .env("REDO_BUILD_DIR", build_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// Copies the example's sources (no build products: the checkout's may have been built).
fn copy_example(to: &Path) {
    let from = repo().join("contrib/examples/hello");
    for e in fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let source = name.ends_with(".c") || name.ends_with(".h") || name.ends_with(".do");
        if source || name == "VERSION" {
            fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
    fs::create_dir_all(to.join(".redo")).unwrap();
    fs::write(to.join(".redo/top"), "").unwrap();
}

#[test]
fn install_sh_installs_a_working_redo() {
    let tmp = TempDir::new("install");
    let prefix = tmp.0.join("my prefix");
    install(&prefix).ok();
    let r = install(&prefix).ok();
    assert!(r.stdout.contains("installed redo into"), "{r:?}");

    // The tree.
    let mut files = Vec::new();
    let mut dirs = vec![prefix.clone()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(
                    e.path()
                        .strip_prefix(&prefix)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let bin = prefix.join("bin");
    for name in redo_proto::commands::NAMES.iter().chain(&["redod"]) {
        assert!(
            files.contains(&format!("bin/{name}")),
            "bin/{name}: {files:?}"
        );
        let page = if *name == "redod" {
            "share/man/man8/redod.8".to_string()
        } else {
            format!("share/man/man1/{name}.1")
        };
        assert!(files.contains(&page), "{page}: {files:?}");
        if name.starts_with("redo-") {
            assert_eq!(fs::read_link(bin.join(name)).unwrap(), Path::new("redo"));
            for completion in [
                format!("share/bash-completion/completions/{name}"),
                format!("share/fish/vendor_completions.d/{name}.fish"),
            ] {
                assert!(files.contains(&completion), "{completion}: {files:?}");
            }
        }
    }
    for completion in [
        "share/bash-completion/completions/redo",
        "share/zsh/site-functions/_redo",
        "share/fish/vendor_completions.d/redo.fish",
    ] {
        assert!(
            files.contains(&completion.to_string()),
            "{completion}: {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("install-tmp")),
        "temporary left behind: {files:?}"
    );

    // The example, with only the prefix on PATH besides the system's directories.
    let work = tmp.0.join("hello");
    let runtime = tmp.0.join("run");
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(&runtime).unwrap();
    copy_example(&work);
    let build = |script: &str| {
        let out = Command::new("/bin/sh")
            .args(["-c", script])
            .current_dir(&work)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("REDO_NO_SYNC", "1")
            .env("REDO_DAEMON_IDLE", "5")
            .env("HOME", &tmp.0)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from_output(out)
    };
    let r = build("redo-ifchange all && ./hello && command -v redo-ifchange").ok();
    let version = fs::read_to_string(work.join("VERSION")).unwrap();
    let greeting = format!("Hello, world! This is hello {}.\n", version.trim());
    assert!(r.stdout.starts_with(&greeting), "{r:?}");
    assert!(
        r.stdout
            .ends_with(&format!("{}\n", bin.join("redo-ifchange").display())),
        "{r:?}"
    );
    assert_eq!(fs::read_to_string(work.join("all")).unwrap(), greeting);
    let r = build("redo-ifchange all").ok();
    assert_eq!(r.stderr, "", "an up-to-date build prints nothing");
    build("redo --daemon-stop").ok();

    // The man pages render from where `man` looks (PREFIX/share/man/manN).
    for page in ["man1/redo-ifchange.1", "man1/redo.1", "man8/redod.8"] {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-Tutf8", "-P-bou"])
            .arg(prefix.join("share/man").join(page))
            .output()
            .expect("groff is needed: apt-get install groff-base (tests/setup-and-test.sh does)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}: {out:?}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("SYNOPSIS"));
    }
    if let Ok(out) = Command::new("man")
        .arg("-w")
        .arg("redo-ifchange")
        .env("MANPATH", prefix.join("share/man"))
        .output()
    {
        let found = String::from_utf8_lossy(&out.stdout);
        assert!(
            found.trim().ends_with("share/man/man1/redo-ifchange.1"),
            "man -w: {out:?}"
        );
    }

    // bash-completion finds the completion of a command by its name in this directory.
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(
            "source \"$1/share/bash-completion/completions/redo-ifchange\" && complete -p redo-ifchange",
        )
        .arg("bash")
        .arg(&prefix)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "complete -F _redo redo-ifchange\n",
        "{out:?}"
    );
}
