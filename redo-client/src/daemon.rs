//! Finding the project's daemon, and starting it when it is absent.
//!
//! * Project root: `$REDO_TOP_DIR`, else the nearest ancestor with `.redo/top`, else the nearest
//!   ancestor holding `.git`, else the working directory.
//! * Runtime dir: [`redo_proto::rundir::runtime_dir`], mode 0700, owned by the user; any other
//!   owner or mode is refused (someone else could listen on that socket).
//! * Start: under an exclusive `flock` on `start.lock`, connect again (another client may have
//!   won the race), else spawn `redod serve` detached (`setsid`, stdin `/dev/null`, output to
//!   `daemon.log`, every inherited fd ≥ 3 closed: a daemon that keeps an outer make's jobserver
//!   pipe or a `| tee` open would hang that build forever) and poll until it accepts. Whatever
//!   the number of clients racing on a cold project, one daemon results: the start lock
//!   serialises the starters, and the daemon's own pid lock turns away any extra one.

use redo_proto::rundir::{self, clean};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
#[cfg(test)]
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Checks that `dir` is a real directory, owned by us, closed to everybody else.
pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    let m =
        fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !m.file_type().is_dir() {
        return Err(format!(
            "{} is not a directory (a symlink?); remove it so redo can create its runtime directory",
            dir.display()
        ));
    }
    if m.uid() != uid {
        return Err(format!(
            "runtime directory {} belongs to uid {}, not to you (uid {uid}); refusing to talk to a \
             daemon another user controls. Set XDG_RUNTIME_DIR to a directory of your own.",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "runtime directory {} has mode {:o}: other users could reach the daemon. Run \
             'chmod 700 {}' or remove it.",
            dir.display(),
            m.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// Creates `dir` (and its parent) with mode 0700 if needed, then checks it.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create runtime directory {}: {e}",
                    d.display()
                ));
            }
        }
        check_private_dir(d)?;
    }
    Ok(())
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

/// Environment a freshly started daemon keeps: its own settings, nothing of the build.
const DAEMON_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "REDO_LOG",
    "RUST_LOG",
    "REDO_DAEMON_IDLE",
    "REDO_NO_WATCH",
    "REDO_WATCH_LAG_MS",
    "RUST_BACKTRACE",
];

/// Starts the daemon for `root` unless one already accepts connections, and returns once one
/// does.
pub fn start(root: &Path, rundir: &Path, daemon: &Path) -> Result<(), String> {
    ensure_private_dir(rundir)?;
    let socket = rundir.join(rundir::SOCKET);
    let lock_path = rundir.join(rundir::START_LOCK);
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock {}: {e}", lock_path.display()))?;
    if connect(&socket).is_ok() {
        return Ok(());
    }
    if !daemon.exists() {
        return Err(format!(
            "the daemon binary {} does not exist: build it with 'cargo build' (it is built next to \
             redo) or point REDO_DAEMON at it",
            daemon.display()
        ));
    }
    let log_path = rundir.join(rundir::LOG);
    if fs::metadata(&log_path).is_ok_and(|m| m.len() > 8 << 20) {
        let _ = fs::rename(&log_path, rundir.join(format!("{}.old", rundir::LOG)));
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(daemon);
    cmd.arg("serve")
        .arg("--root")
        .arg(root)
        .arg("--runtime-dir")
        .arg(rundir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .env_clear()
        .envs(
            DAEMON_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        );
    detach(&mut cmd);
    let spawn = |cmd: &mut Command| {
        cmd.spawn()
            .map_err(|e| format!("cannot start {}: {e}", daemon.display()))
    };
    let mut child = spawn(&mut cmd)?;
    let started = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        if connect(&socket).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            if !status.success() {
                return Err(format!(
                    "redod exited at start-up ({status}); its log {} ends with:\n{}",
                    log_path.display(),
                    log_tail(&log_path)
                ));
            }
            // Exit 0: another daemon held the pid lock. Usually it is about to accept us; but
            // it may also be a killed one whose last threads are still exiting (its lock goes
            // with them), and then nobody would ever listen: start ours again.
            std::thread::sleep(Duration::from_millis(20));
            if connect(&socket).is_err() {
                child = spawn(&mut cmd)?;
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "redod did not start listening on {} within 20 s; see {}",
                socket.display(),
                log_path.display()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Makes the daemon a session leader with no inherited descriptors besides 0, 1, 2.
#[allow(unsafe_code)]
fn detach(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe system
    // calls (setsid, close_range, close) and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(io::Error::from)?;
            let r = nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            if r != 0 {
                for fd in 3..4096 {
                    nix::libc::close(fd);
                }
            }
            Ok(())
        });
    }
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
pub fn rundir_state(rundir: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(rundir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot inspect {}: {e}", rundir.display())),
        Ok(_) => check_private_dir(rundir).map(|()| true),
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

    #[test]
    fn private_dir_checks() {
        let t = std::env::temp_dir().join(format!("redo-priv-test-{}", std::process::id()));
        let d = t.join("run");
        ensure_private_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private_dir(&d).unwrap_err();
        assert!(err.contains("chmod 700"), "{err}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(check_private_dir(&link).unwrap_err().contains("symlink"));
        fs::remove_dir_all(&t).unwrap();
    }
}
