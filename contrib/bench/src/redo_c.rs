//! redo-c, the other redo the benchmark compares with: Leah Neukirchen's redo in one C file
//! (public domain / CC0). This repository does not carry its source: the benchmark takes one
//! already built (`--redo-c DIR`) or compiles the `redo.c` of a directory it is given
//! (`--redo-c-src DIR`) with `cc -O2`, and otherwise skips redo-c with a note.
//!
//! Its state, all of it in the directory of each target (read from `redo.c`):
//!
//! * `.dep.TARGET`: the target's dependencies (`=HASH CTIME FILE`, `-FILE`, `!`), renamed
//!   from a `.depend.XXXXXX` temporary when the `.do` succeeded;
//! * `.lock.TARGET`: the lock taken while the target builds, removed after a success but
//!   left behind by a failure;
//! * `.depend.XXXXXX` and `.target.XXXXXX` (`mkstemp`): the dependency record and the
//!   output (`$3`) being written, left behind when redo-c is killed mid-build.
//!
//! The `.target.XXXXXX` file exists from the start (`mkstemp`) and is renamed to the target
//! whatever the `.do` wrote: a `.do` that writes nothing (`all.do`) leaves an empty target.
//! Its `-j N` sets `JOBS=N`, the size of the job-token pipe its sub-processes share.

use crate::Res;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The commands redo-c is, as links to its one program `redo`.
pub const LINKS: [&str; 3] = ["redo-ifchange", "redo-ifcreate", "redo-always"];

/// Prefixes of the files redo-c keeps beside its targets (see the module documentation).
pub const STATE_PREFIXES: [&str; 4] = [".dep.", ".lock.", ".depend.", ".target."];

/// Whether `name` is one of redo-c's state files.
pub fn is_state_file(name: &str) -> bool {
    STATE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The first line of `cc --version`, or `None` when there is no usable `cc`.
pub fn cc_version() -> Option<String> {
    let out = Command::new("cc").arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("cc")
            .trim()
            .to_string()
    })
}

/// The upstream commit a source directory names (`commit 1be4d13` in its `build.sh` or
/// `README.md`), for the report.
fn upstream_commit(src: &Path) -> Option<String> {
    ["build.sh", "README.md"].iter().find_map(|f| {
        let text = fs::read_to_string(src.join(f)).ok()?;
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "commit" {
                let c = words.next()?.trim_matches(|c: char| !c.is_ascii_hexdigit());
                if c.len() >= 7 && c.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Some(c.to_string());
                }
            }
        }
        None
    })
}

/// Compiles `src/redo.c` with `cc -O2` into `dir` (created), with its links, as redo-c's own
/// build does. Returns its version line for the report.
pub fn build(src: &Path, dir: &Path) -> Res<String> {
    let source = src.join("redo.c");
    if !source.is_file() {
        return Err(format!(
            "{} is not a file (--redo-c-src wants the directory of redo-c's redo.c)",
            source.display()
        ));
    }
    let cc = cc_version().ok_or("no cc on PATH to compile redo-c (install gcc)")?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(dir.join("redo"))
        .arg(&source)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc -O2 {} failed ({}): {}",
            source.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    for l in LINKS {
        let p = dir.join(l);
        let _ = fs::remove_file(&p);
        symlink("redo", &p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    check(dir)?;
    let commit = upstream_commit(src)
        .map(|c| format!(" (commit {c})"))
        .unwrap_or_default();
    Ok(format!(
        "redo-c{commit} from {}, cc -O2: {cc}",
        source.display()
    ))
}

/// Checks that `dir` holds a redo-c (`redo` and `redo-ifchange`, both executable files).
pub fn check(dir: &Path) -> Res<()> {
    use std::os::unix::fs::PermissionsExt;
    for b in ["redo", "redo-ifchange"] {
        let p = dir.join(b);
        match fs::metadata(&p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            _ => return Err(format!("{} is not an executable file", p.display())),
        }
    }
    Ok(())
}

/// Where redo-c comes from for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The directory holding `redo` and its links, and the version line.
    Dir(PathBuf, String),
    /// Not measured, and why.
    Skipped(String),
}

/// The note of a run without redo-c.
pub const NOT_GIVEN: &str = "redo-c not measured: give --redo-c DIR (an already built \
    redo-c) or --redo-c-src DIR (the directory of its redo.c, compiled with cc -O2)";

/// The redo-c of a run: `built` (`--redo-c DIR`) or `src` (`--redo-c-src DIR`, compiled into
/// `work/redo-c`), an error when the one given is unusable; skipped without either.
pub fn find(built: Option<&Path>, src: Option<&Path>, work: &Path) -> Res<Found> {
    if let Some(dir) = built {
        let dir = fs::canonicalize(dir).map_err(|e| format!("--redo-c {}: {e}", dir.display()))?;
        check(&dir).map_err(|e| format!("--redo-c: {e}"))?;
        let version = format!("redo-c in {} (--redo-c)", dir.display());
        return Ok(Found::Dir(dir, version));
    }
    let Some(src) = src else {
        return Ok(Found::Skipped(NOT_GIVEN.into()));
    };
    let src = fs::canonicalize(src).map_err(|e| format!("--redo-c-src {}: {e}", src.display()))?;
    let dir = work.join("redo-c");
    let version = build(&src, &dir).map_err(|e| format!("--redo-c-src: {e}"))?;
    Ok(Found::Dir(dir, version))
}

/// redo-c's source beside this repository's checkout, when there is one: the lead's
/// `../shared/peers/redo-c/` (for the tests; the benchmark itself only takes what it is
/// given). `REDO_C_SRC` in the environment names another.
pub fn source_near(repo_root: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("REDO_C_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root.join("../shared/peers/redo-c"));
    dir.join("redo.c").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn state_file_names() {
        for name in [
            ".dep.f1.out",
            ".lock.all",
            ".depend.Ab12Cd",
            ".target.x0Y1z2",
        ] {
            assert!(is_state_file(name), "{name}");
        }
        for name in ["f1.out", "default.out.do", ".redo", "dep.f1.out", ".deps"] {
            assert!(!is_state_file(name), "{name}");
        }
        let Some(src) = source_near(&repo_root()) else {
            eprintln!("no redo-c source near the checkout: its file names not checked");
            return;
        };
        // The source still names its files so (and still is redo-c, CC0).
        let text = fs::read_to_string(src.join("redo.c")).unwrap();
        for s in [
            "\".dep.%s\"",
            "\".lock.%s\"",
            "\".depend.XXXXXX\"",
            "\".target.XXXXXX\"",
            "setenv(\"JOBS\"",
        ] {
            assert!(text.contains(s), "redo.c no longer has {s}");
        }
        assert!(text.contains("Leah Neukirchen") && text.contains("publicdomain/zero"));
    }

    #[test]
    fn given_directories_are_checked() {
        let dir = std::env::temp_dir().join(format!("redo-bench-rc-given-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let e = find(Some(&dir), None, &dir).unwrap_err();
        assert!(e.contains("redo is not an executable file"), "{e}");
        let e = find(Some(&dir.join("nothing")), None, &dir).unwrap_err();
        assert!(e.starts_with("--redo-c "), "{e}");
        let e = find(None, Some(&dir), &dir).unwrap_err();
        assert!(e.contains("redo.c is not a file"), "{e}");
        assert!(e.starts_with("--redo-c-src: "), "{e}");
        let e = find(None, Some(&dir.join("nothing")), &dir).unwrap_err();
        assert!(e.starts_with("--redo-c-src "), "{e}");
        assert_eq!(
            find(None, None, &dir).unwrap(),
            Found::Skipped(NOT_GIVEN.into())
        );
        fs::write(dir.join("build.sh"), "# redo-c, commit 1be4d13 of x\n").unwrap();
        assert_eq!(upstream_commit(&dir).as_deref(), Some("1be4d13"));
        fs::write(dir.join("build.sh"), "# commit of nothing\n").unwrap();
        assert_eq!(upstream_commit(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
