//! The socket rule: where the daemon of a project listens.
//!
//! `$XDG_RUNTIME_DIR/redo/<name>-<hash>/` (or `/tmp/redo-<uid>/<name>-<hash>/` without a usable
//! `XDG_RUNTIME_DIR`), where `<hash>` is FNV-1a-64 of the project root's bytes and `<name>` a
//! sanitised prefix of its last component for people reading `ls`. The directory is 0700 and
//! owned by the user; clients refuse it otherwise.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The daemon's socket, inside the runtime dir.
pub const SOCKET: &str = "sock";
/// Pid file; the daemon holds an exclusive `flock` on it for its whole life.
pub const PID: &str = "pid";
/// Taken by a client while it starts a daemon, so that concurrent clients start only one.
pub const START_LOCK: &str = "start.lock";
/// The daemon's stdout, stderr and tracing output.
pub const LOG: &str = "daemon.log";

/// `p` with `.` and `..` resolved lexically and duplicate slashes removed, as Go's
/// `path.Clean` does (no symlink is followed: a path keeps the names the user gave it). `p`
/// must be absolute; the result is too. Clients clean the project root with it, the daemon
/// every path it is given.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = Vec::with_capacity(p.as_os_str().len() + 1);
    clean_into(&mut out, p.as_os_str().as_bytes());
    PathBuf::from(OsString::from_vec(out))
}

/// `cwd` joined with `arg` (an absolute `arg` replaces it), cleaned as [`clean`] does, in one
/// pass and one allocation: the daemon resolves every dependency of every target with it.
pub fn resolve(cwd: &Path, arg: &Path) -> PathBuf {
    let (c, a) = (cwd.as_os_str().as_bytes(), arg.as_os_str().as_bytes());
    let mut out = Vec::with_capacity(c.len() + a.len() + 2);
    if a.first() != Some(&b'/') {
        clean_into(&mut out, c);
    }
    clean_into(&mut out, a);
    PathBuf::from(OsString::from_vec(out))
}

/// Appends the components of `bytes` to the clean absolute path in `out` (empty means `/`),
/// resolving `.` and `..` against what is there.
fn clean_into(out: &mut Vec<u8>, bytes: &[u8]) {
    if out.is_empty() {
        out.push(b'/');
    }
    for comp in bytes.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut.max(1));
            }
            name => {
                if out.len() > 1 {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
}

/// FNV-1a, 64 bit: stable across toolchains (unlike `DefaultHasher`), no dependency.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Base directory holding the runtime dirs of all projects of this user.
pub fn base_dir(xdg_runtime_dir: Option<&OsStr>, uid: u32) -> PathBuf {
    match xdg_runtime_dir.map(Path::new) {
        Some(d) if d.is_absolute() => d.join("redo"),
        _ => PathBuf::from(format!("/tmp/redo-{uid}")),
    }
}

/// Runtime directory of the daemon serving the project rooted at `root` (absolute, clean).
pub fn runtime_dir(root: &Path, xdg_runtime_dir: Option<&OsStr>, uid: u32) -> PathBuf {
    let name: String = root
        .file_name()
        .map(|n| n.as_bytes())
        .unwrap_or(b"root")
        .iter()
        .take(24)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    base_dir(xdg_runtime_dir, uid).join(format!(
        "{name}-{:016x}",
        fnv1a64(root.as_os_str().as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let d = runtime_dir(
            Path::new("/home/u/my proj"),
            Some(OsStr::new("/run/user/1000")),
            1000,
        );
        let s = d.to_str().unwrap();
        assert!(s.starts_with("/run/user/1000/redo/my_proj-"), "{s}");
        assert_eq!(s.len(), "/run/user/1000/redo/my_proj-".len() + 16);
        let t = runtime_dir(Path::new("/"), None, 5);
        assert!(t.to_str().unwrap().starts_with("/tmp/redo-5/root-"));
        // A relative XDG_RUNTIME_DIR is ignored, as the XDG spec requires.
        assert!(base_dir(Some(OsStr::new("rel")), 5).starts_with("/tmp/redo-5"));
    }

    #[test]
    fn distinct_roots_distinct_dirs() {
        assert_ne!(
            runtime_dir(Path::new("/a/x"), None, 1),
            runtime_dir(Path::new("/b/x"), None, 1)
        );
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    }

    /// The component-wise definition `clean` and `resolve` must agree with.
    fn reference(p: &Path) -> PathBuf {
        use std::path::Component;
        let mut out = PathBuf::from("/");
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(n) => out.push(n),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn clean_and_resolve_agree_with_the_component_definition() {
        let parts = ["a", "bb", ".", "..", "", "x.y", "..z", "...", "é"];
        let mut n = 0u32;
        for len in 0..5u32 {
            for code in 0..parts.len().pow(len) {
                let mut c = code;
                let mut s = String::new();
                for _ in 0..len {
                    s.push('/');
                    s.push_str(parts[c % parts.len()]);
                    c /= parts.len();
                }
                for tail in ["", "/"] {
                    let p = format!("{s}{tail}");
                    let path = Path::new(&p);
                    assert_eq!(clean(path), reference(path), "clean {p:?}");
                    let rel = p.trim_start_matches('/');
                    for cwd in ["/", "/p/q", "/p/../r"] {
                        assert_eq!(
                            resolve(Path::new(cwd), Path::new(rel)),
                            reference(&Path::new(cwd).join(rel)),
                            "resolve {cwd:?} {rel:?}"
                        );
                    }
                    if path.is_absolute() {
                        assert_eq!(resolve(Path::new("/c"), path), reference(path));
                    }
                    n += 1;
                }
            }
        }
        assert!(n > 10_000);
    }
}
