//! Finding the project's daemon: the project root, the runtime directory's state, the socket,
//! the `redod` to start.
//!
//! * Project root: `$REDO_TOP_DIR`, else the nearest ancestor with `.redo/top`, else the nearest
//!   ancestor holding `.git`, else the working directory.
//! * Runtime dir: [`redo_proto::rundir::runtime_dir`], mode 0700, owned by the user; any other
//!   owner or mode is refused ([`redo_proto::rundir::check_private_dir`]: someone else could
//!   listen on that socket).
//! * Starting a daemon: [`crate::launch`].

use crate::Error;
use redo_proto::rundir::{self, check_private_dir, clean};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The project root for a client working in `cwd`.
pub fn project_root(cwd: &Path, top_dir: Option<&OsStr>) -> PathBuf {
    if let Some(top) = top_dir.filter(|t| !t.is_empty()) {
        return clean(&cwd.join(top));
    }
    let mut git = None;
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        if d.join(".redo/top").exists() {
            return d.to_path_buf();
        }
        if git.is_none() && d.join(".git").exists() {
            git = Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    git.unwrap_or_else(|| cwd.to_path_buf())
}

/// The `redod` this client would start: `$REDO_DAEMON`, else `redod` next to the client binary
/// `exe` (`std::env::current_exe`, read once by the caller).
pub fn daemon_binary(exe: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(redo_proto::env::DAEMON).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    exe.map(|e| e.with_file_name("redod"))
}

/// Connects to `socket` if it is a socket. A symlink in its place is refused, never followed.
pub fn connect(socket: &Path) -> io::Result<UnixStream> {
    let m = fs::symlink_metadata(socket)?;
    if m.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is a symlink; refusing to follow it", socket.display()),
        ));
    }
    UnixStream::connect(socket)
}

/// Whether a connect error means "no daemon is listening there" (as opposed to a real problem).
pub fn no_daemon(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Absolute working directory: `$PWD` when it names the same directory as `.` (so paths keep
/// the symlinks the user typed, as Go's `os.Getwd` does), else `getcwd`.
pub fn working_dir() -> io::Result<PathBuf> {
    let cwd = std::env::current_dir();
    if let Some(pwd) = std::env::var_os("PWD")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        // The usual case (a `.do`, whose PWD the daemon set): one `getcwd`, no `stat`.
        if cwd.as_ref().is_ok_and(|c| *c == pwd) {
            return cwd;
        }
        if let (Ok(a), Ok(b)) = (fs::metadata(&pwd), fs::metadata(".")) {
            if a.dev() == b.dev() && a.ino() == b.ino() && clean(&pwd) == pwd {
                return Ok(pwd);
            }
        }
    }
    cwd
}

/// Pid recorded in the runtime dir's pid file, for messages.
pub fn recorded_pid(rundir: &Path) -> Option<u32> {
    let text = fs::read(rundir.join(rundir::PID)).ok()?;
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

/// `true` for a `REDO_JOB`/`REDO_SOCKET` pair: this client runs inside a `.do`.
pub fn nested_endpoint() -> Option<(PathBuf, OsString)> {
    let socket = std::env::var_os(redo_proto::env::SOCKET).filter(|s| !s.is_empty())?;
    let job = std::env::var_os(redo_proto::env::JOB).filter(|s| !s.is_empty())?;
    Some((PathBuf::from(socket), job))
}

/// Whether the runtime directory is present and usable (for commands that must not start one).
pub fn rundir_state(rundir: &Path) -> Result<bool, Error> {
    match fs::symlink_metadata(rundir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::File {
            what: "inspect",
            path: rundir.to_path_buf(),
            source,
        }),
        Ok(_) => {
            check_private_dir(rundir, nix::unistd::geteuid().as_raw())?;
            Ok(true)
        }
    }
}

/// Bytes of an OsStr, for messages.
pub fn lossy(s: &OsStr) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/./b/../c//d/")), PathBuf::from("/a/c/d"));
        assert_eq!(clean(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn root_search() {
        let t = std::env::temp_dir().join(format!("redo-root-test-{}", std::process::id()));
        let deep = t.join("p/q/r");
        fs::create_dir_all(&deep).unwrap();
        assert_eq!(project_root(&deep, None), deep);
        fs::create_dir_all(t.join("p/.git")).unwrap();
        assert_eq!(project_root(&deep, None), t.join("p"));
        fs::create_dir_all(t.join("p/q/.redo")).unwrap();
        fs::write(t.join("p/q/.redo/top"), "").unwrap();
        assert_eq!(project_root(&deep, None), t.join("p/q"));
        assert_eq!(project_root(&deep, Some(OsStr::new("../.."))), t.join("p"));
        fs::remove_dir_all(&t).unwrap();
    }
}
