//! `redo -symlinks`: the command links, made in the current directory (goredo's
//! `goredo -symlinks`, SPEC §2).
//!
//! Each `NAME` becomes a symbolic link to this executable's absolute path, and a line
//! `EXE <- NAME` is printed for it. A name that is already this executable (the `redo` the
//! command runs as, or a link made before) is left as it is; anything else by that name is
//! never replaced: its name is reported and the exit status is 1.

use crate::Error;
use redo_proto::commands::NAMES;
use redo_proto::plain::words;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Makes the links; `program` is argv[0], for when `/proc/self/exe` cannot be read.
pub fn make(program: &OsStr) -> Result<i32, Error> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(program));
    let same = |p: &Path| match (std::fs::metadata(p), std::fs::metadata(&exe)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for name in NAMES {
        let link = Path::new(name);
        if same(link) {
            continue;
        }
        match std::os::unix::fs::symlink(&exe, link) {
            Ok(()) => {
                let _ = writeln!(out, "{} <- {name}", exe.display());
            }
            Err(e) => {
                failed += 1;
                eprintln!("redo: cannot make the link {name}: {}", words(&e));
            }
        }
    }
    match failed {
        0 => Ok(0),
        failed => Err(Error::Symlinks { failed }),
    }
}
