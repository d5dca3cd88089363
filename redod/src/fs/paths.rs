//! Lexical path arithmetic, as goredo does it with Go's `path` package: no symlink resolution,
//! so a target keeps the name the user gave it. Paths are bytes; nothing here assumes UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub use redo_proto::rundir::clean;

/// `arg` interpreted relative to `cwd` (absolute args stay as they are), cleaned.
pub fn resolve(cwd: &Path, arg: impl AsRef<Path>) -> PathBuf {
    redo_proto::rundir::resolve(cwd, arg.as_ref())
}

/// Lexical relative path from directory `base` to `target`, both absolute and clean, like Go's
/// `filepath.Rel`. Never fails for absolute inputs. On bytes: it runs once per recorded
/// dependency, and `Path::components` was a visible part of a large no-op build.
pub fn relative(base: &Path, target: &Path) -> PathBuf {
    fn parts(p: &Path) -> impl Iterator<Item = &[u8]> {
        bytes(p).split(|&c| c == b'/').filter(|c| !c.is_empty())
    }
    let (mut b, mut t) = (parts(base).peekable(), parts(target).peekable());
    while let (Some(x), Some(y)) = (b.peek(), t.peek()) {
        if x != y {
            break;
        }
        b.next();
        t.next();
    }
    let mut out = Vec::with_capacity(target.as_os_str().len());
    for part in b.map(|_| &b".."[..]).chain(t) {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Directory and file name of a clean absolute path; `None` for `/`. On bytes (the daemon
/// splits every target it is asked about; `Path::parent` walks components).
pub fn split(p: &Path) -> Option<(&Path, &OsStr)> {
    let b = bytes(p);
    let slash = b.iter().rposition(|&c| c == b'/')?;
    let name = &b[slash + 1..];
    if name.is_empty() || name == b"." || name == b".." {
        return Some((p.parent()?, p.file_name()?));
    }
    let dir = if slash == 0 { &b[..1] } else { &b[..slash] };
    Some((from_bytes(dir), OsStr::from_bytes(name)))
}

/// For messages: the bytes, with invalid UTF-8 replaced.
pub fn show(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned()
}

/// `p` as raw bytes.
pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A path from raw bytes.
pub fn from_bytes(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_resolve() {
        assert_eq!(clean(Path::new("/a/./b/../../c")), PathBuf::from("/c"));
        assert_eq!(
            resolve(Path::new("/p/q"), "../x//y/"),
            PathBuf::from("/p/x/y")
        );
        assert_eq!(resolve(Path::new("/p"), "/abs"), PathBuf::from("/abs"));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/p/sub"), Path::new("/p/default.o.do")),
            PathBuf::from("../default.o.do")
        );
        assert_eq!(
            relative(Path::new("/p"), Path::new("/p/sub/foo.c")),
            PathBuf::from("sub/foo.c")
        );
        assert_eq!(
            relative(Path::new("/p"), Path::new("/p")),
            PathBuf::from(".")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/c/d")),
            PathBuf::from("../../c/d")
        );
        assert_eq!(
            relative(Path::new("/"), Path::new("/x")),
            PathBuf::from("x")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a")),
            PathBuf::from("..")
        );
        assert_eq!(relative(Path::new("/"), Path::new("/")), PathBuf::from("."));
        assert_eq!(
            relative(Path::new("/p/ab"), Path::new("/p/a/c")),
            PathBuf::from("../a/c"),
            "components, not byte prefixes"
        );
    }

    #[test]
    fn split_matches_parent_and_file_name() {
        for p in ["/a/b", "/a", "/", "/a/b/c.do", "/x/.redo"] {
            let p = Path::new(p);
            assert_eq!(split(p), p.parent().zip(p.file_name()), "{}", p.display());
        }
    }

    #[test]
    fn non_utf8_survives() {
        let p = resolve(Path::new("/p"), OsStr::from_bytes(b"a\xff b\n"));
        assert_eq!(bytes(&p), b"/p/a\xff b\n");
        assert_eq!(split(&p).unwrap().1.as_bytes(), b"a\xff b\n");
    }
}
