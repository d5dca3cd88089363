//! redo-c, the other redo the benchmark compares with: Leah Neukirchen's redo in one C file
//! (public domain / CC0), vendored in `contrib/bench/peers/redo-c/`. The source is compiled
//! into the benchmark itself, so that a `redo-bench` binary builds it anywhere `cc` is on
//! `PATH`, without the checkout and without the network.
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

use crate::Res;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `contrib/bench/peers/redo-c/redo.c`.
pub const SOURCE: &str = include_str!("../peers/redo-c/redo.c");

/// The upstream commit vendored (see `peers/redo-c/build.sh`).
pub const UPSTREAM: &str = "leahneukirchen/redo-c 1be4d13";

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

/// Compiles the vendored redo-c with `cc -O2` into `dir` (created), with its links, as
/// `peers/redo-c/build.sh DIR` does. Returns its version line for the report.
pub fn build(dir: &Path) -> Res<String> {
    let cc = cc_version().ok_or("no cc on PATH")?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let src = dir.join("redo.c");
    fs::write(&src, SOURCE).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(dir.join("redo"))
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc -O2 {} failed ({}): {}",
            src.display(),
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
    Ok(format!("{UPSTREAM} (vendored), cc -O2: {cc}"))
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

/// The redo-c of a run: `given` (`--redo-c DIR`, an error when unusable), else the vendored
/// source compiled into `work/redo-c` (skipped, with the reason, when that fails).
pub fn find(given: Option<&Path>, work: &Path) -> Res<Found> {
    if let Some(dir) = given {
        let dir = fs::canonicalize(dir).map_err(|e| format!("--redo-c {}: {e}", dir.display()))?;
        check(&dir).map_err(|e| format!("--redo-c: {e}"))?;
        let version = format!("redo-c in {} (--redo-c)", dir.display());
        return Ok(Found::Dir(dir, version));
    }
    let dir = work.join("redo-c");
    Ok(match build(&dir) {
        Ok(version) => Found::Dir(dir, version),
        Err(e) => Found::Skipped(format!(
            "redo-c not measured: {e} (it is compiled from contrib/bench/peers/redo-c/redo.c \
             with cc; install gcc, or give --redo-c DIR)"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The vendored source still names its files so (and still is redo-c, CC0).
        for s in [
            "\".dep.%s\"",
            "\".lock.%s\"",
            "\".depend.XXXXXX\"",
            "\".target.XXXXXX\"",
        ] {
            assert!(SOURCE.contains(s), "redo.c no longer has {s}");
        }
        assert!(SOURCE.contains("Leah Neukirchen") && SOURCE.contains("publicdomain/zero"));
    }

    #[test]
    fn given_directory_is_checked() {
        let dir = std::env::temp_dir().join(format!("redo-bench-rc-given-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let e = find(Some(&dir), &dir).unwrap_err();
        assert!(e.contains("redo is not an executable file"), "{e}");
        let e = find(Some(&dir.join("nothing")), &dir).unwrap_err();
        assert!(e.starts_with("--redo-c "), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
