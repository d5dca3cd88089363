#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The spawner process (`redod spawner`), driven as the daemon drives it: processes started
//! with their descriptors, environment, directory and umask, each the leader of its own process
//! group, their exit statuses reported; exec errors reported as such; a spawner that dies is
//! replaced at the next spawn.

use redod::spawner::{Request, Spawner};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

fn spawner() -> Spawner {
    Spawner::new(PathBuf::from(env!("CARGO_BIN_EXE_redod")))
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

fn devnull() -> std::fs::File {
    std::fs::File::open("/dev/null").unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_runs_as_asked_and_its_status_comes_back() {
    let s = spawner();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let (extra_r, extra_w) = pipe();
    let extra_no = {
        use std::os::fd::AsRawFd;
        extra_w.as_raw_fd()
    };
    let null = devnull();
    let script = format!(
        "echo \"$FOO\"; pwd; umask; echo err >&2; echo kept >/dev/fd/{extra_no}; \
         cut -d' ' -f5 /proc/$$/stat; echo $$; exit 3"
    );
    let args: Vec<OsString> = vec!["-c".into(), script.into()];
    let env: Vec<(OsString, OsString)> = vec![
        ("FOO".into(), "bar baz".into()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    let mut p = s
        .spawn(Request {
            program: "/bin/sh".as_ref(),
            args: &args,
            env: &env,
            cwd: Path::new("/tmp"),
            umask: 0o027,
            stdin: null.as_fd(),
            stdout: out_w.as_fd(),
            stderr: err_w.as_fd(),
            keep: &[extra_w.as_fd()],
        })
        .await
        .unwrap();
    drop((out_w, err_w, extra_w));
    let status = p.wait().await.unwrap();
    let out = read_all(out_r);
    let err = read_all(err_r);
    assert_eq!(status.code(), Some(3), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["bar baz", "/tmp", "0027"], "{out}");
    assert_eq!(lines[3], lines[4], "its own process group: {out}");
    assert_eq!(lines[4], p.pid.to_string());
    assert_eq!(err, "err\n");
    assert_eq!(read_all(extra_r), "kept\n");
}

#[tokio::test(flavor = "current_thread")]
async fn signals_and_exec_errors_are_reported() {
    let s = spawner();
    let null = devnull();
    let req = |program: &'static str, args: &'static [OsString]| Request {
        program: program.as_ref(),
        args,
        env: &[],
        cwd: Path::new("/"),
        umask: 0o022,
        stdin: null.as_fd(),
        stdout: null.as_fd(),
        stderr: null.as_fd(),
        keep: &[],
    };
    static KILLED: std::sync::LazyLock<Vec<OsString>> =
        std::sync::LazyLock::new(|| vec!["-c".into(), "kill -9 $$".into()]);
    let mut p = s.spawn(req("/bin/sh", &KILLED)).await.unwrap();
    assert_eq!(p.wait().await.unwrap().signal(), Some(9));
    let e = s.spawn(req("/nonexistent/prog", &[])).await.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // Many at once, each status to its own waiter.
    let mut waits = Vec::new();
    for code in 0..20 {
        let args: Vec<OsString> = vec!["-c".into(), format!("exit {code}").into()];
        let leaked: &'static [OsString] = Box::leak(args.into_boxed_slice());
        waits.push((code, s.spawn(req("/bin/sh", leaked)).await.unwrap()));
    }
    for (code, mut p) in waits {
        assert_eq!(p.wait().await.unwrap().code(), Some(code));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_spawner_is_replaced() {
    let s = spawner();
    s.warm().unwrap();
    let first = s.pid().expect("a spawner runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Let the reader see it go.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let null = devnull();
    let args: Vec<OsString> = vec!["-c".into(), "exit 5".into()];
    let mut p = s
        .spawn(Request {
            program: "/bin/sh".as_ref(),
            args: &args,
            env: &[],
            cwd: Path::new("/"),
            umask: 0o022,
            stdin: null.as_fd(),
            stdout: null.as_fd(),
            stderr: null.as_fd(),
            keep: &[],
        })
        .await
        .unwrap();
    assert_eq!(p.wait().await.unwrap().code(), Some(5));
    assert_ne!(s.pid(), Some(first), "another spawner");
}
