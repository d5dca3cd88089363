//! The command names of the one multi-call client binary, `redo`, and directories of links to
//! it.
//!
//! The client dispatches on the name it was called by (`basename(argv[0])`), as goredo does:
//! every `redo-*` command is a symbolic link to the same executable. The daemon keeps such a
//! directory of links in its runtime directory and puts it first on the `PATH` of the `.do`
//! scripts it runs; the test harness and `contrib/install.sh` make one next to the binaries.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Every name the `redo` binary answers to, `redo` first.
pub const NAMES: [&str; 14] = [
    "redo",
    "redo-ifchange",
    "redo-ifcreate",
    "redo-always",
    "redo-stamp",
    "redo-whichdo",
    "redo-targets",
    "redo-sources",
    "redo-ood",
    "redo-affects",
    "redo-dot",
    "redo-log",
    "redo-cleanup",
    "redo-depfix",
];

/// Makes `dir` (created if missing, mode 0700) hold `NAME -> target` for every name of
/// `names`, leaving a link that already points there alone.
///
/// Each link is replaced atomically (made under a temporary name of this process, then renamed
/// over the old one): a process running a command from `dir` meanwhile finds either the old
/// link or the new one, never none. Several processes may do this at once on the same `dir`
/// with the same target; they make the same links.
pub fn link_all(dir: &Path, target: &Path, names: &[&str]) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    for name in names {
        let link = dir.join(name);
        if std::fs::read_link(&link)
            .is_ok_and(|t| t.as_os_str().as_bytes() == target.as_os_str().as_bytes())
        {
            continue;
        }
        let temp = dir.join(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(target, &temp)?;
        if let Err(e) = std::fs::rename(&temp, &link) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_made_and_replaced() {
        let dir = std::env::temp_dir().join(format!("redo-proto-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        link_all(&dir, Path::new("/old/redo"), &NAMES).unwrap();
        link_all(&dir, Path::new("/new/redo"), &NAMES).unwrap();
        link_all(&dir, Path::new("/new/redo"), &NAMES).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut want: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names, want, "no temporary left behind");
        for n in NAMES {
            assert_eq!(
                std::fs::read_link(dir.join(n)).unwrap(),
                Path::new("/new/redo")
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
