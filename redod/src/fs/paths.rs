//! Lexical path arithmetic, as goredo does it with Go's `path` package: no symlink resolution,
//! so a target keeps the name the user gave it. Paths are bytes; nothing here assumes UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use redo_proto::rundir::clean;

/// The project root this daemon serves (`redod serve --root`), set once at start-up.
static ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Records the project root (clean, absolute) for [`shown`]. Later calls are ignored.
pub fn set_root(root: &Path) {
    let _ = ROOT.set(clean(root));
}

/// The project root, once [`set_root`] has been called (the daemon; not unit tests).
pub fn root() -> Option<&'static Path> {
    ROOT.get().map(PathBuf::as_path)
}

/// Whether the clean absolute path `p` is `root` or beneath it (by components). No root:
/// everything is inside.
pub fn inside(root: Option<&Path>, p: &Path) -> bool {
    root.is_none_or(|r| p.starts_with(r))
}

/// How a listing or a message shows the clean absolute path `p` to a requester in `base`:
/// relative to `base` when `p` is inside `root`, absolute otherwise
/// (`/usr/include/stdio.h`, not `../../../../usr/include/stdio.h`).
pub fn shown_in(root: Option<&Path>, base: &Path, p: &Path) -> PathBuf {
    if inside(root, p) {
        relative(base, p)
    } else {
        p.to_path_buf()
    }
}

/// [`shown_in`] with the daemon's project root.
pub fn shown(base: &Path, p: &Path) -> PathBuf {
    shown_in(root(), base, p)
}

/// A dependency as a state file in `dir` records it (`recorded`, relative to `dir`), for
/// messages: as recorded when it is inside the project root, absolute otherwise.
pub fn shown_recorded(dir: &Path, recorded: &[u8]) -> PathBuf {
    let abs = resolve(dir, OsStr::from_bytes(recorded));
    if inside(root(), &abs) {
        PathBuf::from(OsStr::from_bytes(recorded))
    } else {
        abs
    }
}

/// `arg` interpreted relative to `cwd` (absolute args stay as they are), cleaned.
pub fn resolve(cwd: &Path, arg: impl AsRef<Path>) -> PathBuf {
    redo_proto::rundir::resolve(cwd, arg.as_ref())
}

/// Lexical relative path from directory `base` to `target`, both absolute and clean, like Go's
/// `filepath.Rel`. Never fails for absolute inputs. On bytes: it runs once per recorded
/// dependency, and `Path::components` was a visible part of a large no-op build.
pub fn relative(base: &Path, target: &Path) -> PathBuf {
    fn parts(p: &Path) -> impl Iterator<Item = &[u8]> + Clone {
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
    let parts = b.map(|_| &b".."[..]).chain(t);
    // Exactly the length of the result: what this returns is often kept (a dependency's name
    // in a parsed state file, for as long as the daemon lives).
    let len = parts.clone().map(|p| p.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len.saturating_sub(1).max(1));
    for part in parts {
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
mod tests;
