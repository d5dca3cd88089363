//! Helpers shared by the daemon, fault-injection, crash and soak tests: background
//! processes with guards, /proc inspection, temporaries, `.rec` validation, a seeded RNG.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use redo_tests::{Project, Run, alive, pids_with_cmdline, wait_until};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous limit for things that must "eventually" happen.
pub const EVENTUALLY: Duration = Duration::from_secs(60);

/// `REDO_FULL_TESTS=1`: the long forms of the crash and soak tests.
pub fn full() -> bool {
    std::env::var_os("REDO_FULL_TESTS").is_some_and(|v| v == "1")
}

/// A process started in the background; killed (and reaped) if the test ends before it does.
pub struct Kid {
    pub name: String,
    child: Option<Child>,
}

impl Kid {
    pub fn spawn(name: &str, mut cmd: Command) -> Kid {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Kid {
            name: name.to_string(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(Some(_)))
    }

    /// The output, or `None` (and the process killed) when still running after `limit`.
    pub fn wait_within(mut self, limit: Duration) -> Option<Run> {
        if !wait_until(limit, || self.exited()) {
            return None;
        }
        let child = self.child.take().unwrap();
        Some(Run::from_output(child.wait_with_output().unwrap()))
    }

    #[track_caller]
    pub fn finish(self, limit: Duration) -> Run {
        let name = self.name.clone();
        self.wait_within(limit)
            .unwrap_or_else(|| panic!("{name} did not finish within {limit:?} (killed it)"))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tool args` of project `p`, started in the background.
pub fn spawn(p: &Project, tool: &str, args: &[&str]) -> Kid {
    let mut c = p.command(tool);
    c.args(args);
    Kid::spawn(&format!("{tool} {}", args.join(" ")), c)
}

pub fn run_cmd(mut c: Command) -> Run {
    Run::from_output(c.output().unwrap())
}

pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// SIGKILLs, when dropped, every process still running with its working directory inside
/// one of the given trees (the `.do` files of a test project and what they started), so that
/// a failing test leaves nothing behind. Daemons are stopped by `Project`'s own drop.
pub struct ReapTree(pub Vec<PathBuf>);

impl Drop for ReapTree {
    fn drop(&mut self) {
        for root in &self.0 {
            for pid in procs_in(root) {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Reads `/proc/<pid>/stat` fields after the command name: (state, ppid, pgrp).
pub fn stat_of(pid: i32) -> Option<(char, i32, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Live (non-zombie) members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| matches!(stat_of(p), Some((s, _, g)) if g == pgid && s != 'Z'))
        .collect()
}

fn is_daemon(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c: Vec<u8> = c.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
            String::from_utf8_lossy(&c).contains("redod serve")
        })
        .unwrap_or(false)
}

/// Live processes, daemons excepted, whose working directory is inside `root`: the `.do`
/// files of a project and everything they started (`.do`s run in their own directory).
pub fn procs_in(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me && alive(p) && !is_daemon(p))
        .filter(|&p| fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|cwd| cwd.starts_with(root)))
        .collect()
}

/// `pid: cmdline` lines, for messages.
pub fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let c: Vec<u8> = c.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
            format!("{p}: {}", String::from_utf8_lossy(&c))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `.redo.*` temporary under `root` (targets' directories and `.redo/` directories).
pub fn temps_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if name.starts_with(".redo.") {
                out.push(e.path());
            }
            if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Every `.rec` file under `root`.
pub fn recs_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if d.file_name().is_some_and(|n| n == ".redo")
                && path.extension().is_some_and(|x| x == "rec")
                && !e.file_name().to_string_lossy().starts_with(".redo.")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn valid_field_name(n: &[u8]) -> bool {
    !n.is_empty()
        && (n[0].is_ascii_alphabetic() || n[0] == b'%')
        && n[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Checks a `.rec` the way goredo and recutils read it: the first line is `Build: <id>`,
/// records are separated by single blank lines, every line is a field or a continuation, every
/// record after the first has a known `Type`, and ifchange records carry their stamp fields.
pub fn check_rec(text: &[u8]) -> Result<(), String> {
    if !text.starts_with(b"Build: ") || text.len() <= 7 || text[7] == b'\n' {
        return Err("does not start with 'Build: <id>'".into());
    }
    if !text.ends_with(b"\n") {
        return Err("does not end with a newline (truncated?)".into());
    }
    if text.windows(3).any(|w| w == b"\n\n\n") {
        return Err("two blank lines in a row".into());
    }
    let body = &text[..text.len() - 1];
    let mut records: Vec<&[u8]> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i + 1 < body.len() {
        if body[i] == b'\n' && body[i + 1] == b'\n' {
            records.push(&body[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    records.push(&body[start..]);
    for (i, rec) in records.iter().enumerate() {
        let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
        for line in rec.split(|&b| b == b'\n') {
            if line.first() == Some(&b'+') {
                if fields.is_empty() {
                    return Err(format!("record {i}: continuation without a field"));
                }
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(format!(
                    "record {i}: not a field: {:?}",
                    String::from_utf8_lossy(line)
                ));
            };
            if !valid_field_name(&line[..colon]) || line.get(colon + 1) != Some(&b' ') {
                return Err(format!(
                    "record {i}: bad field line {:?}",
                    String::from_utf8_lossy(line)
                ));
            }
            fields.push((&line[..colon], &line[colon + 2..]));
        }
        let get = |n: &[u8]| fields.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        if i == 0 {
            if fields.len() != 1 || get(b"Build").is_none() {
                return Err("the first record must hold Build only".into());
            }
            continue;
        }
        match get(b"Type") {
            Some(b"ifchange") => {
                for f in [&b"Target"[..], b"Size", b"CtimeSec", b"CtimeNsec"] {
                    if get(f).is_none() {
                        return Err(format!(
                            "record {i}: ifchange without {}",
                            String::from_utf8_lossy(f)
                        ));
                    }
                }
                if let Some(h) = get(b"Hash") {
                    if h.len() != 64 || !h.iter().all(u8::is_ascii_hexdigit) {
                        return Err(format!("record {i}: bad Hash"));
                    }
                }
            }
            Some(b"ifcreate") if get(b"Target").is_some() => {}
            Some(b"always") => {}
            Some(b"stamp") if get(b"Hash").is_some() => {}
            other => {
                return Err(format!(
                    "record {i}: bad or missing Type {:?}",
                    other.map(String::from_utf8_lossy)
                ));
            }
        }
    }
    Ok(())
}

/// Whether `recsel` is installed.
pub fn have_recsel() -> bool {
    Command::new("recsel")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Checks every `.rec` under `root` with [`check_rec`] and (when installed) `recsel`.
pub fn bad_recs(root: &Path) -> Vec<String> {
    let recs = recs_under(root);
    let mut bad = Vec::new();
    for r in &recs {
        match fs::read(r) {
            Ok(text) => {
                if let Err(e) = check_rec(&text) {
                    bad.push(format!("{}: {e}", r.display()));
                }
            }
            Err(e) => bad.push(format!("{}: {e}", r.display())),
        }
    }
    if have_recsel() && !recs.is_empty() {
        for chunk in recs.chunks(64) {
            let out = Command::new("recsel")
                .arg("-c")
                .args(chunk)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if !out.status.success() {
                bad.push(format!(
                    "recsel refused one of {} files: {}",
                    chunk.len(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    bad
}

/// SplitMix64: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seed from `var` if set, else from the clock; printed by the caller.
    pub fn seed_from_env(var: &str) -> u64 {
        std::env::var(var)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    ^ u64::from(std::process::id())
            })
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// The daemon's open descriptors, threads and resident memory (KiB).
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub fds: usize,
    pub threads: usize,
    pub rss_kib: usize,
}

pub fn usage(pid: i32) -> Option<Usage> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<usize> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Usage {
        fds,
        threads: field("Threads:")?,
        rss_kib: field("VmRSS:")?,
    })
}

/// Live `redod serve` processes serving project `p`.
pub fn daemons_of(p: &Project) -> Vec<i32> {
    pids_with_cmdline(&format!(
        "redod serve --root {} --runtime-dir {}/",
        p.root.display(),
        p.rundir.display()
    ))
}

/// The daemon's pid, asserting it is running.
#[track_caller]
pub fn running_daemon(p: &Project) -> i32 {
    let pid = p.daemon_pid().expect("no daemon pid file");
    assert!(
        alive(pid),
        "daemon {pid} is not running\n{}",
        p.daemon_log()
    );
    pid
}

/// The runtime dir a client computes for `p` (whether or not it exists yet).
pub fn expected_daemon_dir(p: &Project) -> PathBuf {
    redo_proto::rundir::runtime_dir(
        &p.root,
        Some(p.rundir.as_os_str()),
        nix::unistd::geteuid().as_raw(),
    )
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The pid a `.do` wrote (`echo $$ > file`) into `file` of project `p`.
#[track_caller]
pub fn read_pid(p: &Project, file: &str) -> i32 {
    p.read(file)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Reads whatever the daemon sends until it closes the connection.
pub fn read_until_closed(s: &mut UnixStream) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // Closed while our bytes were still unread: a reset, which is closing too.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(out),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection still open after 15 s ({e})")),
        }
    }
}
