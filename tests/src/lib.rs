//! Harness for the end-to-end tests: a project in a fresh temporary directory, its own runtime
//! directory (so its own daemon), and helpers to run the real client binaries in it.
//!
//! The binaries are the ones `cargo test --workspace` has just built next to the test
//! executables (`target/<host triple>/debug`: `redo` and `redod`), run through the command
//! links of [`bin_dir`]. Every project is independent, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chromium;
pub mod nginx;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Directory holding the built binaries (`target/<host triple>/debug`).
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<triple>/debug/deps/<test>-<hash> → target/<triple>/debug
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        dir.join("redo").exists() && dir.join("redod").exists(),
        "the redo binaries are missing from {}: run `cargo test --workspace` (or `cargo build`) first",
        dir.display()
    );
    dir
}

/// The commands as an installed redo has them: `commands/` beside the built binaries, holding
/// every command name as a link to the one `redo` binary (which runs as the name it is called
/// by), and `redod`. Tests run them by path and put this directory first on `PATH`.
///
/// Made by the first test of each test process; several processes may make it at once (each
/// link is replaced atomically by one with the same relative target, `../redo`), and it stays
/// valid when the binaries are rebuilt.
pub fn bin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use redo_proto::commands::{NAMES, link_all};
        let dir = build_dir().join("commands");
        // 0755 (not the 0700 `link_all` would give it): tests run commands as another user.
        fs::create_dir_all(&dir).unwrap();
        link_all(&dir, Path::new("../redo"), &NAMES).unwrap();
        link_all(&dir, Path::new("../redod"), &["redod"]).unwrap();
        dir
    })
    .clone()
}

/// `bin_dir()/name`: a command, or `redod`.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = std::env::var_os("REDO_TEST_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!("redo-e2e-{}-{}-{tag}", std::process::id(), n));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Make everything writable again first (tests chmod things).
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+rwx")
            .arg(&self.0)
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts failure (exit 1) and returns self.
    #[track_caller]
    pub fn fails(self) -> Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Lines of stderr starting with `redo ` (completion lines).
    pub fn built(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("redo "))
            .map(str::to_string)
            .collect()
    }

    /// Completion lines without their duration: `redo . sub/x.o (../default.o.do)`.
    pub fn built_names(&self) -> Vec<String> {
        self.built().iter().map(|l| strip_duration(l)).collect()
    }
}

/// A project: a source tree with `.redo/top` at its root (so the `.do` search never leaves it),
/// and a private runtime directory, hence a private daemon.
pub struct Project {
    pub root: PathBuf,
    pub rundir: PathBuf,
    /// Set for every command run in this project (see [`Project::with_env`]).
    env: Vec<(String, String)>,
    _tmp: TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    pub fn new() -> Project {
        let tmp = TempDir::new("proj");
        let root = tmp.0.join("p");
        let rundir = tmp.0.join("run");
        fs::create_dir_all(root.join(".redo")).unwrap();
        fs::write(root.join(".redo/top"), "").unwrap();
        fs::create_dir_all(&rundir).unwrap();
        fs::set_permissions(&rundir, fs::Permissions::from_mode(0o700)).unwrap();
        Project {
            root,
            rundir,
            env: Vec::new(),
            _tmp: tmp,
        }
    }

    /// The same project, with `key=value` in the environment of every command run in it
    /// (`REDO_NO_WATCH=1`: a daemon without the file watcher, since the first command starts it).
    pub fn with_env(mut self, key: &str, value: &str) -> Project {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Whether its commands run with `REDO_NO_WATCH=1`.
    pub fn is_unwatched(&self) -> bool {
        self.env
            .iter()
            .any(|(k, v)| k == "REDO_NO_WATCH" && v == "1")
    }

    /// A project whose daemon has the file watcher (`watched`), or not (`REDO_NO_WATCH=1`):
    /// for the tests that must hold either way.
    pub fn watched(watched: bool) -> Project {
        match watched {
            true => Project::new(),
            false => Project::new().with_env("REDO_NO_WATCH", "1"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file (creating directories).
    pub fn write(&self, rel: &str, content: &str) -> &Project {
        self.write_bytes(rel.as_ref(), content.as_bytes())
    }

    pub fn write_bytes(&self, rel: &Path, content: &[u8]) -> &Project {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        self
    }

    /// Writes an executable file.
    pub fn write_exec(&self, rel: &str, content: &str) -> &Project {
        self.write(rel, content);
        fs::set_permissions(self.root.join(rel), fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Writes `NAME.do` that appends its name to `runs.log` and then runs `body`.
    pub fn do_file(&self, rel: &str, body: &str) -> &Project {
        let counted = format!(
            "echo {} >> \"$(dirname \"$0\")/{}\"\n{body}",
            rel,
            self.log_rel(rel)
        );
        self.write(rel, &counted)
    }

    fn log_rel(&self, do_rel: &str) -> String {
        // The .do runs in its own directory; the log is at the project root.
        let depth = Path::new(do_rel).components().count() - 1;
        let mut s = String::new();
        for _ in 0..depth {
            s.push_str("../");
        }
        s.push_str("runs.log");
        s
    }

    /// How many times the `.do` written with [`Project::do_file`] as `rel` ran.
    pub fn runs(&self, do_rel: &str) -> usize {
        fs::read_to_string(self.root.join("runs.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == do_rel)
            .count()
    }

    pub fn clear_runs(&self) {
        let _ = fs::remove_file(self.root.join("runs.log"));
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }

    /// The environment every command of this project runs with.
    pub fn command(&self, tool: &str) -> Command {
        self.command_at(&bin(tool))
    }

    /// [`Project::command`] for the program at `program` (the `redo` binary itself, as
    /// `cargo run --bin redo` runs it).
    pub fn command_at(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.root)
            .env("XDG_RUNTIME_DIR", &self.rundir)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display()),
            )
            .env("REDO_NO_SYNC", "1")
            .env("REDO_DAEMON_IDLE", "120")
            .env_remove("REDO_SOCKET")
            .env_remove("REDO_JOB")
            .env_remove("REDO_JOBS")
            .env_remove("REDO_TOP_DIR")
            .env_remove("REDO_BUILD_UUID")
            .env_remove("NO_COLOR")
            .env_remove("MAKEFLAGS")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `tool args` in the project root.
    pub fn run(&self, tool: &str, args: &[&str]) -> Run {
        self.run_in(".", tool, args)
    }

    /// Runs `tool args` in a subdirectory.
    pub fn run_in(&self, sub: &str, tool: &str, args: &[&str]) -> Run {
        let mut c = self.command(tool);
        c.current_dir(self.root.join(sub)).args(args);
        Run::from_output(c.output().unwrap())
    }

    /// `redo args`.
    pub fn redo(&self, args: &[&str]) -> Run {
        self.run("redo", args)
    }

    /// `redo-ifchange args`.
    pub fn ifchange(&self, args: &[&str]) -> Run {
        self.run("redo-ifchange", args)
    }

    /// The project's runtime dir (where the socket, pid and log live).
    pub fn daemon_dir(&self) -> Option<PathBuf> {
        let base = self.rundir.join("redo");
        fs::read_dir(base)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next()
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.daemon_dir()?.join("pid")).ok()?;
        text.trim().parse().ok()
    }

    /// The daemon's log, for assertion messages.
    pub fn daemon_log(&self) -> String {
        self.daemon_dir()
            .and_then(|d| fs::read_to_string(d.join("daemon.log")).ok())
            .unwrap_or_default()
    }

    /// The content of `.redo/NAME.rec` of a target.
    pub fn rec(&self, target: &str) -> String {
        let p = Path::new(target);
        let dir = p.parent().unwrap_or(Path::new(""));
        let name = p.file_name().unwrap().to_string_lossy();
        self.read(
            &dir.join(".redo")
                .join(format!("{name}.rec"))
                .to_string_lossy(),
        )
    }

    /// Stops this project's daemon and waits for it to go.
    pub fn stop_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            wait_until(Duration::from_secs(5), || !alive(pid));
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// `redo x (0.012s)` → `redo x`; `err  x (0.012s): e` → `err  x: e`.
pub fn strip_duration(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = rest.find(" (") {
        let after = &rest[pos + 2..];
        match after.find(')') {
            Some(close)
                if after[..close]
                    .strip_suffix('s')
                    .is_some_and(|n| n.parse::<f64>().is_ok()) =>
            {
                out.push_str(&rest[..pos]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..pos + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Pids of processes whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd: Vec<u8> = cmd.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
            if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

/// The options a `--help` text lists, as written there (`-j`, `--log-pid`, `--events`): from
/// each line whose first word is an option, the comma-separated names before the description
/// (two spaces), each up to a space, `=` or `[` (`-j N`, `--events=json`, `--root <ROOT>`,
/// `--timings[=FILE]`). Reads the clients' help and clap's (redod).
pub fn help_options(help: &str) -> std::collections::BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split("  ").next().unwrap_or_default().split(", "))
        .map(|n| {
            n.split([' ', '=', '['])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .filter(|n| n.starts_with('-'))
        .collect()
}

/// `OsStr` from raw bytes, for non-UTF-8 names.
pub fn os(b: &[u8]) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn help_options_of_both_styles() {
        let ours = "usage: x\n\nOptions:\n  -j N             jobs\n  --events=json    e\n  \
                    --daemon-watch=off|on|overflow\n                   w\n  -h, --help       h\n";
        let clap = "Options:\n      --root <ROOT>  Project root\n  -V, --version  Print version\n";
        let names = |t| super::help_options(t).into_iter().collect::<Vec<_>>();
        assert_eq!(
            names(ours),
            ["--daemon-watch", "--events", "--help", "-h", "-j"]
        );
        assert_eq!(names(clap), ["--root", "--version", "-V"]);
    }

    #[test]
    fn strip() {
        assert_eq!(
            super::strip_duration("redo . x (../default.do) (0.012s)"),
            "redo . x (../default.do)"
        );
        assert_eq!(
            super::strip_duration("err  é (1.5s): exit status 1"),
            "err  é: exit status 1"
        );
    }
}
