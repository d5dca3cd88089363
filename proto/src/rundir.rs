//! The socket rule: where the daemon of a project listens.
//!
//! `$XDG_RUNTIME_DIR/redo/<name>-<hash>/` (or `/tmp/redo-<uid>/<name>-<hash>/` without a usable
//! `XDG_RUNTIME_DIR`), where `<hash>` is FNV-1a-64 of the project root's bytes and `<name>` a
//! sanitised prefix of its last component for people reading `ls`. The directory is 0700 and
//! owned by the user; the clients and the daemon refuse it otherwise, with the one check of
//! [`check_private_dir`].

use crate::plain;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The daemon's socket, inside the runtime dir.
pub const SOCKET: &str = "sock";
/// Pid file; the daemon holds an exclusive `flock` on it for its whole life.
pub const PID: &str = "pid";
/// Taken by a client while it starts a daemon, so that concurrent clients start only one.
pub const START_LOCK: &str = "start.lock";
/// The daemon's stdout, stderr and tracing output.
pub const LOG: &str = "daemon.log";

/// Why a runtime directory cannot be used. Each message names the directory and the fix.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot create the runtime directory {}: {}.{}", path.display(), plain::words(source), plain::fix(source, path))]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot inspect {}: {}.{}", path.display(), plain::words(source), plain::fix(source, path))]
    Inspect { path: PathBuf, source: io::Error },
    #[error("{} is not a directory (a symlink?); remove it so redo can create its runtime directory", path.display())]
    NotDir { path: PathBuf },
    #[error(
        "runtime directory {} belongs to uid {owner}, not to you (uid {uid}); refusing to talk \
         to a daemon another user controls. Set XDG_RUNTIME_DIR to a directory of your own.",
        path.display()
    )]
    OtherOwner { path: PathBuf, owner: u32, uid: u32 },
    #[error(
        "runtime directory {} has mode {mode:o}: other users could reach the daemon. Run \
         'chmod 700 {}' or remove it.",
        path.display(),
        path.display()
    )]
    Open { path: PathBuf, mode: u32 },
}

/// Checks that `dir` is a real directory (not a symlink), owned by `uid`, closed to everybody
/// else: whoever can enter it can talk to the daemon, and whoever owns it could put their own
/// socket there.
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<(), DirError> {
    let m = std::fs::symlink_metadata(dir).map_err(|source| DirError::Inspect {
        path: dir.to_path_buf(),
        source,
    })?;
    if !m.file_type().is_dir() {
        return Err(DirError::NotDir {
            path: dir.to_path_buf(),
        });
    }
    if m.uid() != uid {
        return Err(DirError::OtherOwner {
            path: dir.to_path_buf(),
            owner: m.uid(),
            uid,
        });
    }
    if m.mode() & 0o077 != 0 {
        return Err(DirError::Open {
            path: dir.to_path_buf(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Creates `dir` (and any missing parent) with mode 0700 if needed, then checks it.
pub fn ensure_private_dir(dir: &Path, uid: u32) -> Result<(), DirError> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(DirError::Create {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    check_private_dir(dir, uid)
}

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
    fn private_dir_checks() {
        use std::os::unix::fs::PermissionsExt;
        let t = std::env::temp_dir().join(format!("redo-priv-test-{}", std::process::id()));
        let d = t.join("run/deeper");
        let uid = own_uid(&t);
        ensure_private_dir(&d, uid).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private_dir(&d, uid).unwrap_err().to_string();
        assert!(
            err.contains("chmod 700") && err.contains("mode 755"),
            "{err}"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_private_dir(&d, uid + 1).unwrap_err().to_string();
        assert!(err.contains(&format!("belongs to uid {uid}")), "{err}");
        let link = t.join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(
            check_private_dir(&link, uid)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
        let err = check_private_dir(&t.join("absent"), uid)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("no such file or directory."), "{err}");
        std::fs::remove_dir_all(&t).unwrap();
    }

    /// The uid owning what this process creates (no libc in this crate).
    fn own_uid(scratch: &Path) -> u32 {
        std::fs::create_dir_all(scratch).unwrap();
        std::fs::metadata(scratch).unwrap().uid()
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
