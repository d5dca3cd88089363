//! Running the tools: the environment each one gets, the timed cases, the checks of their
//! outputs, the client loop (redo and redo-c), the daemon's CPU time in the clean builds and
//! its memory; the order of the cases within one N. The newer cases have modules of their
//! own: `cold` (no-ops in turns, the daemon stopped before each), `watch`, `scale`, `wide`.

use crate::redo_c::{self, Found};
use crate::scale::ScaleMemory;
use crate::wide::WideResult;
use crate::work::{self, output_name, source_name};
use crate::{Case, Group, Options, Res, Tool};
use std::cell::Cell;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Samples of one case, in milliseconds (the warm-up run is not among them).
#[derive(Debug, Clone)]
pub struct Stats {
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        match s.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// The client loop (redo and redo-c): `calls` sequential `redo-ifchange out/f1.out` (up to
/// date) from one `.do`, and the same loop running `/bin/true`; totals per run in
/// milliseconds.
#[derive(Debug, Clone)]
pub struct Client {
    pub calls: usize,
    pub ifchange: Stats,
    pub bare: Stats,
}

impl Client {
    pub fn ifchange_per_call(&self) -> f64 {
        self.ifchange.median() / self.calls as f64
    }

    pub fn bare_per_call(&self) -> f64 {
        self.bare.median() / self.calls as f64
    }
}

/// What `redo --daemon-status` said after the no-op of `all`.
#[derive(Debug, Clone)]
pub struct Memory {
    pub rss_kib: u64,
    pub pid: u64,
    pub cached_state_files: Option<u64>,
    pub cached_hashes: Option<u64>,
}

/// The shared-cache case over one backend (redo only): `all` built in one checkout with
/// `REDO_CACHE` set, from an empty cache with uploads on, then clean builds in a second
/// checkout from that cache.
#[derive(Debug, Clone)]
pub struct CacheCase {
    /// `file` or `nginx`.
    pub backend: &'static str,
    /// Clean build -j1 from an empty cache, uploads on (compare with `plain`).
    pub cold: Stats,
    /// The same clean build -j1 without a cache, taken in turns with the `cold` runs (each
    /// run: this, then a cold one), so that both ratios compare builds made under the same
    /// load of the host, not minutes apart.
    pub plain: Stats,
    /// Clean build -j1 of the second checkout from the warm cache (compare with `plain`).
    pub warm: Stats,
    /// `.do` runs for `out/` targets in one warm build (0 when everything came from the cache).
    pub warm_do_runs: usize,
}

#[derive(Debug, Clone)]
pub struct ToolResult {
    pub tool: Tool,
    pub cases: Vec<(Case, Stats)>,
    /// redo only: the daemon's CPU time (utime + stime) during each measured clean build over
    /// the targets it built, in milliseconds per target (`clean_j1`, `clean_j2`,
    /// `scale_clean_j2`, `wide`).
    pub daemon_cpu: Vec<(Case, Stats)>,
    pub client: Option<Client>,
    pub memory: Option<Memory>,
    /// redo only: the daemon's memory in the scale case.
    pub scale_memory: Option<ScaleMemory>,
    pub cache: Vec<CacheCase>,
    /// Why a cache backend was not measured (nginx missing).
    pub cache_skipped: Vec<String>,
}

impl ToolResult {
    pub fn new(tool: Tool) -> ToolResult {
        ToolResult {
            tool,
            cases: Vec::new(),
            daemon_cpu: Vec::new(),
            client: None,
            memory: None,
            scale_memory: None,
            cache: Vec::new(),
            cache_skipped: Vec::new(),
        }
    }

    /// Whether anything was measured for the tool.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty() && self.client.is_none() && self.cache.is_empty()
    }

    pub fn case(&self, case: Case) -> Option<&Stats> {
        self.cases.iter().find(|(c, _)| *c == case).map(|(_, s)| s)
    }

    pub fn daemon_cpu(&self, case: Case) -> Option<&Stats> {
        self.daemon_cpu
            .iter()
            .find(|(c, _)| *c == case)
            .map(|(_, s)| s)
    }
}

#[derive(Debug, Clone)]
pub struct SizeResult {
    pub n: usize,
    /// The tools measured at this N (those of no case chosen are left out).
    pub tools: Vec<ToolResult>,
    /// What was not measured at this N, and why (the flat cases past the argument limit).
    pub notes: Vec<String>,
}

impl SizeResult {
    pub fn tool(&self, tool: Tool) -> Option<&ToolResult> {
        self.tools.iter().find(|t| t.tool == tool)
    }
}

/// Where and on what the benchmark ran.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub date: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub work_fs: String,
    pub versions: Vec<(Tool, String)>,
    /// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`).
    pub clk_tck: u64,
    /// Whether `clk_tck` was read (`getconf CLK_TCK`) rather than assumed (100).
    pub clk_tck_read: bool,
    /// The share of the CPU time that the hypervisor gave to others while the benchmark ran
    /// (`steal` of `/proc/stat`), when it could be read: on a busy host every time varies
    /// more, and a tool's lock holder may be descheduled while the other CPU spins.
    pub steal: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Report {
    /// The options, `tools` being the tools measured (a tool skipped is not among them).
    pub options: Options,
    pub machine: Machine,
    pub sizes: Vec<SizeResult>,
    /// The wide case, when chosen.
    pub wide: Option<WideResult>,
    /// Tools asked for and not measured, with why (redo-c not given).
    pub skipped: Vec<String>,
}

/// The machine's CPU time so far from the `cpu` line of `/proc/stat`: (steal, total), in
/// clock ticks, total being user, nice, system, idle, iowait, irq, softirq and steal.
pub fn cpu_time(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let steal = *f.get(7)?;
    Some((steal, f.iter().sum()))
}

/// The share of the CPU time stolen between two [`cpu_time`] readings.
pub fn steal_between(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1).filter(|t| *t > 0)?;
    let steal = after.0.checked_sub(before.0)?;
    Some(steal as f64 / total as f64)
}

fn read_cpu_time() -> Option<(u64, u64)> {
    cpu_time(&fs::read_to_string("/proc/stat").ok()?)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2, in parentheses) may hold spaces and parentheses: fields are counted from
/// the last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts with field 3 (the state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// `ticks` of CPU time at `clk_tck` ticks per second spread over `targets`, in milliseconds
/// per target.
pub fn ms_per_target(ticks: u64, clk_tck: u64, targets: usize) -> f64 {
    ticks as f64 * 1000.0 / clk_tck as f64 / targets as f64
}

/// A `sysconf` value through `getconf NAME`, since the benchmark does not link libc itself.
fn getconf(name: &str) -> Option<u64> {
    Command::new("getconf")
        .arg(name)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t: &u64| t > 0)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`) and whether it was read; 100 when it
/// cannot be.
pub fn clock_ticks() -> (u64, bool) {
    getconf("CLK_TCK").map_or((100, false), |t| (t, true))
}

/// The kernel's limit on a new program's arguments and environment (`getconf ARG_MAX`);
/// Linux's usual 2 MiB when it cannot be read.
pub fn arg_max() -> usize {
    getconf("ARG_MAX").map_or(2 * 1024 * 1024, |v| v as usize)
}

/// How redo is configured for one command (other tools ignore it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knobs {
    /// `REDO_NO_SYNC=1`: no fsync (make and ninja do not fsync either).
    Plain,
    /// fsync on.
    Sync,
    /// `REDO_NO_SYNC=1 REDO_NO_WATCH=1`: the build stats every file instead of asking the
    /// daemon's watcher what changed.
    NoWatch,
}

impl Knobs {
    fn of(case: Case) -> Knobs {
        match case {
            Case::NoopSync => Knobs::Sync,
            Case::NoopStat => Knobs::NoWatch,
            _ => Knobs::Plain,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Knobs::Plain => "REDO_NO_SYNC=1 ",
            Knobs::Sync => "",
            Knobs::NoWatch => "REDO_NO_SYNC=1 REDO_NO_WATCH=1 ",
        }
    }
}

/// The environment of every command: the caller's, minus anything that would change how
/// the tools behave (an enclosing redo build or make's jobserver), with `LC_ALL=C`.
pub(crate) struct Env {
    base: Vec<(OsString, OsString)>,
    redo_dir: PathBuf,
    runtime: PathBuf,
    /// Where redo-c's `redo` and its links are, when it is measured.
    redo_c_dir: Option<PathBuf>,
}

impl Env {
    fn new(redo_dir: &Path, runtime: &Path, redo_c_dir: Option<&Path>) -> Env {
        let drop = |k: &str| {
            k.starts_with("REDO_")
                || matches!(
                    k,
                    "MAKEFLAGS"
                        | "MFLAGS"
                        | "MAKELEVEL"
                        | "GNUMAKEFLAGS"
                        | "MAKEFILES"
                        | "MAKE_TERMOUT"
                        | "MAKE_TERMERR"
                        | "NINJA_STATUS"
                        | "XDG_RUNTIME_DIR"
                        | "LC_ALL"
                        // redo-c's job count (`-j N` sets it).
                        | "JOBS"
                )
        };
        let base = std::env::vars_os()
            .filter(|(k, _)| !drop(&k.to_string_lossy()))
            .chain([(OsString::from("LC_ALL"), OsString::from("C"))])
            .collect();
        Env {
            base,
            redo_dir: redo_dir.to_path_buf(),
            runtime: runtime.to_path_buf(),
            redo_c_dir: redo_c_dir.map(Path::to_path_buf),
        }
    }

    /// Where this redo's program `name` is (`redo`, `redo-ifchange`, `redod`): the one place
    /// that knows how the clients are laid out in `--redo-dir`.
    pub(crate) fn redo_bin(&self, name: &str) -> PathBuf {
        self.redo_dir.join(name)
    }

    /// The bytes the environment of a command takes in the kernel's `ARG_MAX` (its strings,
    /// their `=` and NUL, a pointer each).
    fn bytes(&self) -> usize {
        let ptr = std::mem::size_of::<usize>();
        (self.base.iter())
            .map(|(k, v)| k.len() + v.len() + 2 + ptr)
            .sum()
    }

    fn redo_c_bin(&self, name: &str) -> PathBuf {
        self.redo_c_dir
            .as_deref()
            .unwrap_or(Path::new(""))
            .join(name)
    }

    /// `PATH` with `dir` first.
    fn path_with(dir: &Path) -> OsString {
        let mut path = OsString::from(dir.as_os_str());
        if let Some(p) = std::env::var_os("PATH") {
            path.push(":");
            path.push(p);
        }
        path
    }

    /// A command run in `dir` with this environment. For redo: the private runtime
    /// directory (so a private daemon), the client directory first in `PATH`, and `knobs`.
    /// For redo-c: its directory first in `PATH` (the `.do` files' `redo-ifchange` is its).
    pub(crate) fn command(&self, tool: Tool, dir: &Path, prog: &Path, knobs: Knobs) -> Command {
        let mut c = Command::new(prog);
        c.current_dir(dir)
            .env_clear()
            .envs(self.base.iter().cloned());
        if let (Tool::RedoC, Some(d)) = (tool, &self.redo_c_dir) {
            c.env("PATH", Self::path_with(d));
        }
        if tool == Tool::Redo {
            c.env("PATH", Self::path_with(&self.redo_dir))
                .env("XDG_RUNTIME_DIR", &self.runtime)
                .env("REDO_DAEMON", self.redo_bin("redod"));
            if knobs != Knobs::Sync {
                c.env("REDO_NO_SYNC", "1");
            }
            if knobs == Knobs::NoWatch {
                c.env("REDO_NO_WATCH", "1");
            }
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The command building `target` in `dir`; `jobs` only for the clean builds (the other
    /// cases use each tool's plain invocation; ninja is given -j1 since its default is not 1).
    fn build(
        &self,
        tool: Tool,
        dir: &Path,
        target: &str,
        jobs: Option<u32>,
        knobs: Knobs,
    ) -> Command {
        let (prog, mut args): (PathBuf, Vec<String>) = match tool {
            // The one `redo` binary, called as redo-ifchange (an installed redo's link).
            Tool::Redo => (self.redo_bin("redo"), vec![]),
            Tool::RedoC => (self.redo_c_bin("redo-ifchange"), vec![]),
            Tool::Make => ("make".into(), vec![]),
            Tool::MakeR => ("make".into(), vec!["-r".into()]),
            Tool::Ninja => ("ninja".into(), vec![format!("-j{}", jobs.unwrap_or(1))]),
        };
        if let (Some(j), false) = (jobs, tool == Tool::Ninja) {
            args.push(format!("-j{j}"));
        }
        args.push(target.into());
        let mut c = self.command(tool, dir, &prog, knobs);
        if tool == Tool::Redo {
            c.arg0("redo-ifchange");
        }
        c.args(args);
        c
    }
}

/// The command line as text, for messages and the JSON (`wide_j`: the wide case's jobs).
pub fn command_line(tool: Tool, case: Case, wide_j: u32) -> String {
    let (target, jobs) = match case {
        Case::CleanJ1 => ("all", Some(1)),
        Case::CleanJ2 => ("all", Some(2)),
        Case::Noop | Case::NoopSync | Case::NoopStat | Case::Changed | Case::ColdNoop => {
            ("all", None)
        }
        Case::TreeNoop | Case::TreeChanged | Case::ScaleNoop | Case::ScaleColdNoop => {
            ("tree", None)
        }
        Case::ScaleCleanJ2 => ("tree", Some(2)),
        Case::Wide => ("all", Some(wide_j)),
        Case::WatchAllFinished | Case::WatchWaiting | Case::WatchWaitingAfterLast => {
            return format!("{}redo --watch --events=json all", Knobs::Plain.prefix());
        }
    };
    let j = jobs.map(|j| format!("-j{j} ")).unwrap_or_default();
    let cold = match (tool, case) {
        (Tool::Redo, Case::ColdNoop | Case::ScaleColdNoop) => {
            "redo --daemon-stop (and its exit awaited), then "
        }
        _ => "",
    };
    match tool {
        Tool::Redo => format!(
            "{cold}{}redo-ifchange {j}{target}",
            Knobs::of(case).prefix()
        ),
        Tool::RedoC => format!("redo-ifchange {j}{target}"),
        Tool::Make => format!("make {j}{target}"),
        Tool::MakeR => format!("make -r {j}{target}"),
        Tool::Ninja => format!("ninja -j{} {target}", jobs.unwrap_or(1)),
    }
}

pub(crate) fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(20);
    lines[from..].join("\n")
}

pub(crate) fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(d) = c.get_current_dir() {
        s.push_str(&format!(" (in {})", d.display()));
    }
    s
}

/// Runs `c` to completion and returns its wall-clock time in milliseconds; a failure is an
/// error with the end of its output.
pub(crate) fn timed(mut c: Command) -> Res<f64> {
    let start = Instant::now();
    let out = c
        .output()
        .map_err(|e| format!("cannot run {}: {e}", describe(&c)))?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}\n{}",
            describe(&c),
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        ));
    }
    Ok(ms)
}

/// Runs `c` and returns its standard output.
pub(crate) fn capture(mut c: Command) -> Res<String> {
    let out = c
        .output()
        .map_err(|e| format!("cannot run {}: {e}", describe(&c)))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            describe(&c),
            out.status,
            tail(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn mtime(p: &Path) -> Res<SystemTime> {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot stat {}: {e}", p.display()))
}

/// Coarse file timestamps (one kernel tick) could make a source edited right after a build
/// look as old as its output to make and ninja: wait a little before touching sources.
fn settle() {
    sleep(Duration::from_millis(20));
}

/// redo-c compares a dependency's ctime in whole seconds, and its hash only when the seconds
/// differ: a file written in the same second as the build that recorded it looks unchanged
/// (and is not rebuilt, nor is what depends on it). Before it edits a source for redo-c, the
/// benchmark waits for the next second (and 30 ms, more than one tick of the kernel's coarse
/// clock), after everything the last build wrote.
fn next_second() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let next = Duration::from_secs(now.as_secs() + 1) + Duration::from_millis(30);
    sleep(next.saturating_sub(now));
}

pub(crate) fn progress(n: usize, tool: Tool, what: &str, s: Option<&Stats>) {
    match s {
        Some(s) => eprintln!(
            "N={n:<6} {:<8} {:<24} median {:>9.1} ms  [{:.1}-{:.1}]",
            tool.label(),
            what,
            s.median(),
            s.min(),
            s.max()
        ),
        None => eprintln!("N={n:<6} {:<8} {what}", tool.label()),
    }
}

/// One tool's generated tree at one N, and how to run the tool there.
pub(crate) struct Bench<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) env: &'a Env,
    pub(crate) tool: Tool,
    pub(crate) dir: PathBuf,
    pub(crate) n: usize,
    pub(crate) clk_tck: u64,
    /// redo's daemon, once `--daemon-status` has named it (it stays up across runs).
    pub(crate) daemon_pid: Cell<Option<u64>>,
}

impl<'a> Bench<'a> {
    pub(crate) fn new(
        opts: &'a Options,
        env: &'a Env,
        tool: Tool,
        dir: PathBuf,
        n: usize,
        clk_tck: u64,
    ) -> Bench<'a> {
        Bench {
            opts,
            env,
            tool,
            dir,
            n,
            clk_tck,
            daemon_pid: Cell::new(None),
        }
    }

    pub(crate) fn build(&self, target: &str, jobs: Option<u32>, knobs: Knobs) -> Command {
        self.env.build(self.tool, &self.dir, target, jobs, knobs)
    }

    /// One warm-up run then `runs` measured ones of `f`, which returns the time of one run.
    fn repeat(&self, what: &str, mut f: impl FnMut() -> Res<f64>) -> Res<Stats> {
        let fail = |e: String| format!("N={} {}, {what}: {e}", self.n, self.tool.key());
        f().map_err(|e| fail(format!("(warm-up) {e}")))?;
        let mut samples = Vec::with_capacity(self.opts.runs);
        for _ in 0..self.opts.runs {
            samples.push(f().map_err(fail)?);
        }
        let s = Stats { samples };
        progress(self.n, self.tool, what, Some(&s));
        Ok(s)
    }

    /// One clean build of `target` (`all` or `tree`) with `-jJ`: its time, and for redo the
    /// daemon's CPU ticks over it (its `/proc/PID/stat` just before and just after the timed
    /// command).
    pub(crate) fn clean_once(&self, target: &str, jobs: u32) -> Res<(f64, Option<u64>)> {
        work::clean(self.tool, &self.dir)?;
        let before = self.daemon_ticks();
        let ms = timed(self.build(target, Some(jobs), Knobs::Plain))?;
        let after = self.daemon_ticks();
        self.verify(target)?;
        Ok((ms, before.zip(after).and_then(|(b, a)| a.checked_sub(b))))
    }

    /// Checks what a build of `target` made: every output, and for `tree` the tree.
    pub(crate) fn verify(&self, target: &str) -> Res<()> {
        match target {
            "tree" => work::verify_tree(&self.dir, self.n),
            _ => work::verify_outputs(&self.dir, 1..=self.n),
        }
    }

    /// redo only: the daemon's utime + stime in clock ticks, `None` when it is not running
    /// (or for another tool).
    fn daemon_ticks(&self) -> Option<u64> {
        if self.tool != Tool::Redo {
            return None;
        }
        if self.daemon_pid.get().is_none() {
            let pid = self
                .daemon_status()
                .ok()
                .and_then(|s| status_field(&s, "pid:"));
            self.daemon_pid.set(pid);
        }
        let pid = self.daemon_pid.get()?;
        let ticks = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_cpu_ticks(&s));
        if ticks.is_none() {
            // Gone (stopped, or restarted under another pid): ask again next time.
            self.daemon_pid.set(None);
        }
        ticks
    }

    /// Times rebuilding `target` with nothing changed and checks that nothing was rebuilt.
    fn noop(&self, case: Case, target: &str, witness: &str) -> Res<Stats> {
        let witness = self.dir.join(witness);
        let before = mtime(&witness)?;
        let knobs = Knobs::of(case);
        let s = self.repeat(case.label(), || timed(self.build(target, None, knobs)))?;
        if mtime(&witness)? != before {
            return Err(format!(
                "{} {}: {} was rebuilt by a no-op",
                self.tool.key(),
                case.key(),
                witness.display()
            ));
        }
        Ok(s)
    }

    /// Times rebuilding `target` after appending one character to `src/f1.in`, then restores
    /// the source and rebuilds (not timed), so that every run sees the same change.
    fn changed(&self, case: Case, target: &str) -> Res<Stats> {
        let src = self.dir.join(source_name(1));
        let original = work::source_text(1);
        let check = || -> Res<()> {
            work::verify_outputs(&self.dir, std::iter::once(1))?;
            if target == "tree" {
                work::verify_tree(&self.dir, self.n)?;
            }
            Ok(())
        };
        let settle = || match self.tool {
            Tool::RedoC => next_second(),
            _ => settle(),
        };
        self.repeat(case.label(), || {
            settle();
            fs::write(&src, format!("{original}x"))
                .map_err(|e| format!("cannot write {}: {e}", src.display()))?;
            let ms = timed(self.build(target, None, Knobs::Plain))?;
            check()?;
            settle();
            fs::write(&src, &original)
                .map_err(|e| format!("cannot write {}: {e}", src.display()))?;
            timed(self.build(target, None, Knobs::Plain))?;
            check()?;
            Ok(ms)
        })
    }

    pub(crate) fn redo_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(
            Tool::Redo,
            &self.dir,
            &self.env.redo_bin("redo"),
            Knobs::Plain,
        );
        c.args(args);
        c
    }

    pub(crate) fn daemon_status(&self) -> Res<String> {
        capture(self.redo_cmd(&["--daemon-status"]))
    }

    fn memory(&self) -> Res<Memory> {
        let out = self.daemon_status()?;
        let field = |name: &str| status_field(&out, name);
        Ok(Memory {
            rss_kib: field("resident memory:")
                .ok_or_else(|| format!("no resident memory in redo --daemon-status:\n{out}"))?,
            pid: field("pid:").unwrap_or(0),
            cached_state_files: field("cached state files:"),
            cached_hashes: field("cached hashes:"),
        })
    }

    /// `redo TARGET` with this tool's `redo` (redo or redo-c).
    fn redo_target(&self, target: &str) -> Command {
        match self.tool {
            Tool::RedoC => {
                let redo = self.env.redo_c_bin("redo");
                let mut c = self
                    .env
                    .command(Tool::RedoC, &self.dir, &redo, Knobs::Plain);
                c.arg(target);
                c
            }
            _ => self.redo_cmd(&[target]),
        }
    }

    fn client(&self) -> Res<Client> {
        let ifchange = self.repeat("loop of redo-ifchange", || timed(self.redo_target("loop")))?;
        let bare = self.repeat("loop of /bin/true", || timed(self.redo_target("loop-true")))?;
        Ok(Client {
            calls: self.opts.calls,
            ifchange,
            bare,
        })
    }

    /// The incremental cases on the built tree: the no-op (and redo's variants of it, and
    /// the daemon's memory after it), one source changed, then `tree` built (untimed), its
    /// no-op and one source changed under it.
    fn incremental(&self, r: &mut ToolResult) -> Res<()> {
        let last = output_name(self.n);
        r.cases
            .push((Case::Noop, self.noop(Case::Noop, "all", &last)?));
        if self.tool == Tool::Redo {
            r.memory = Some(self.memory()?);
            for case in [Case::NoopStat, Case::NoopSync] {
                r.cases.push((case, self.noop(case, "all", &last)?));
            }
        }
        r.cases
            .push((Case::Changed, self.changed(Case::Changed, "all")?));
        timed(self.build("tree", None, Knobs::Plain))?;
        work::verify_tree(&self.dir, self.n)?;
        r.cases
            .push((Case::TreeNoop, self.noop(Case::TreeNoop, "tree", "tree")?));
        r.cases
            .push((Case::TreeChanged, self.changed(Case::TreeChanged, "tree")?));
        Ok(())
    }

    /// The client loop (redo and redo-c).
    fn client_case(&self, r: &mut ToolResult) -> Res<()> {
        progress(
            self.n,
            self.tool,
            &format!("client loop, {} calls", self.opts.calls),
            None,
        );
        r.client = Some(self.client()?);
        Ok(())
    }

    /// `REDO_CACHE` builds of `all` -j1: `cold` in this checkout, in turns with the same build
    /// without a cache (`plain`), then `warm` in a second checkout generated beside it. Each
    /// cold run uploads under a prefix of its own (`fresh(k)` gives run `k`'s URL): a cache
    /// without these entries, made without deleting the last run's files just before (which
    /// on a filesystem without a journal would slow the creation of every file after it,
    /// server's and build's alike, for minutes). The warm checkout reads the last one.
    fn cache_case(&self, backend: &'static str, fresh: &dyn Fn(usize) -> String) -> Res<CacheCase> {
        let with_cache = |dir: &Path, url: &str, extra: &[(&str, &str)]| {
            let mut c = self
                .env
                .build(Tool::Redo, dir, "all", Some(1), Knobs::Plain);
            c.env("REDO_CACHE", url);
            for (k, v) in extra {
                c.env(k, v);
            }
            c
        };
        let mut plain = Vec::new();
        let mut run = 0;
        let cold = self.repeat(&format!("cache {backend}: cold, uploads"), || {
            plain.push(self.clean_once("all", 1)?.0);
            run += 1;
            let url = fresh(run);
            work::clean(Tool::Redo, &self.dir)?;
            let ms = timed(with_cache(&self.dir, &url, &[]))?;
            work::verify_outputs(&self.dir, 1..=self.n)?;
            // The uploads run in the background: let them finish before the next run.
            self.wait_uploads(&url, self.n as u64)?;
            Ok(ms)
        })?;
        // The first pair was the warm-up.
        let plain = Stats {
            samples: plain.into_iter().skip(1).collect(),
        };
        progress(
            self.n,
            self.tool,
            "  (without a cache, in turns)",
            Some(&plain),
        );
        let url = fresh(run);
        let second = self.second_checkout();
        if !second.exists() {
            work::generate(Tool::Redo, &second, self.n, self.opts.calls)?;
        }
        let read = [("REDO_CACHE_MODE", "read")];
        let warm = self.repeat(&format!("cache {backend}: warm, 2nd checkout"), || {
            work::clean(Tool::Redo, &second)?;
            let ms = timed(with_cache(&second, &url, &read))?;
            work::verify_outputs(&second, 1..=self.n)?;
            Ok(ms)
        });
        let runs = (|| {
            work::clean(Tool::Redo, &second)?;
            let mut c = with_cache(&second, &url, &read);
            let out = c
                .output()
                .map_err(|e| format!("cannot run {}: {e}", describe(&c)))?;
            let text = String::from_utf8_lossy(&out.stderr);
            Ok::<usize, String>(
                text.lines()
                    .filter(|l| l.starts_with("redo ") && l.contains("out/f"))
                    .filter(|l| !l.ends_with("(cached)"))
                    .count(),
            )
        })();
        let _ = capture({
            let mut c = self.env.command(
                Tool::Redo,
                &second,
                &self.env.redo_bin("redo"),
                Knobs::Plain,
            );
            c.arg("--daemon-stop");
            c
        });
        Ok(CacheCase {
            backend,
            cold,
            plain,
            warm: warm?,
            warm_do_runs: runs?,
        })
    }

    /// The uploads this checkout's daemon counts for the cache at `url` (`--daemon-status`).
    fn uploads(&self, url: &str) -> Res<u64> {
        let out = capture(self.redo_cmd(&["--daemon-status"]))?;
        Ok(out
            .lines()
            .filter(|l| l.starts_with("remote cache:") && l.contains(url))
            .find_map(|l| {
                l.split(", ")
                    .find_map(|f| f.strip_suffix(" uploads").or(f.strip_suffix(" upload")))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0))
    }

    fn wait_uploads(&self, url: &str, want: u64) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = self.uploads(url)?;
            if n >= want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the daemon uploaded {n} of {want} outputs to {url} in 2 minutes"
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Where the cache case's second checkout is: generated by the first backend's case and
    /// reused (cleaned) by the next, so that the nginx case does not start by deleting and
    /// creating thousands of files the file case made (on ext4 without a journal, each file
    /// created in the next minutes would pay for those deletions).
    fn second_checkout(&self) -> PathBuf {
        self.dir.with_file_name(format!(
            "{}-second",
            self.dir.file_name().unwrap_or_default().to_string_lossy()
        ))
    }

    /// The cache case over a directory, and over nginx when it is installed.
    fn cache_cases(&self, r: &mut ToolResult) -> Res<()> {
        let r = self.cache_cases_in_turn(r);
        if !self.opts.keep {
            let _ = fs::remove_dir_all(self.second_checkout());
        }
        r
    }

    fn cache_cases_in_turn(&self, r: &mut ToolResult) -> Res<()> {
        let dir = self.dir.with_file_name(format!(
            "{}-cache",
            self.dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = fs::remove_dir_all(&dir);
        let fresh = |k: usize| format!("file://{}/run{k}", dir.display());
        let case = self.cache_case("file", &fresh);
        let _ = fs::remove_dir_all(&dir);
        r.cache.push(case?);
        match redo_tests::nginx::Nginx::try_start(false) {
            Ok(nginx) => {
                let fresh = |k: usize| format!("{}/run{k}", nginx.url());
                r.cache.push(self.cache_case("nginx", &fresh)?);
            }
            Err(e) => r
                .cache_skipped
                .push(format!("cache over nginx not measured: {e}")),
        }
        Ok(())
    }
}

/// A `NAME: VALUE` line of `redo --daemon-status` as a number (`resident memory: 5060 KiB`).
pub(crate) fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("KiB").trim().parse().ok())
}

/// Checks that every tool asked for is there, and returns their versions (redo-c has no
/// `--version`: `redo_c` is the line [`redo_c::find`] gave).
fn versions(opts: &Options, env: &Env, redo_c: &str) -> Res<Vec<(Tool, String)>> {
    let mut v = Vec::new();
    for &tool in &opts.tools {
        let (prog, hint) = match tool {
            Tool::RedoC => {
                let dir = env.redo_c_dir.as_deref().ok_or("redo-c was not found")?;
                redo_c::check(dir)?;
                v.push((tool, redo_c.to_string()));
                continue;
            }
            Tool::Redo => {
                for b in ["redo", "redod"] {
                    let p = opts.redo_dir.join(b);
                    if !p.is_file() {
                        return Err(format!(
                            "{} is missing: build redo first (cargo build --release) or give --redo-dir",
                            p.display()
                        ));
                    }
                }
                (env.redo_bin("redo"), "")
            }
            Tool::Make | Tool::MakeR => (
                PathBuf::from("make"),
                " (Debian: apt-get install make; tests/setup-and-test.sh installs it)",
            ),
            Tool::Ninja => (
                PathBuf::from("ninja"),
                " (Debian: apt-get install ninja-build; tests/setup-and-test.sh installs it)",
            ),
        };
        let mut c = env.command(tool, Path::new("/"), &prog, Knobs::Plain);
        c.arg("--version");
        let out = capture(c).map_err(|e| format!("{} is not usable{hint}: {e}", tool.key()))?;
        let first = out.lines().next().unwrap_or("").trim().to_string();
        v.push((tool, first));
    }
    Ok(v)
}

fn first_line_matching(path: &str, prefix: &str) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM UTC` without a date library.
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn machine(work: &Path, versions: Vec<(Tool, String)>) -> Machine {
    let (clk_tck, clk_tck_read) = clock_ticks();
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let work_fs = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(work)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Machine {
        date: utc_date(secs),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model: first_line_matching("/proc/cpuinfo", "model name"),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        work_fs,
        versions,
        clk_tck,
        clk_tck_read,
        steal: None,
    }
}

/// A clean-build case of one tool: its times and, for redo, the daemon's CPU per target.
pub(crate) type Clean = (Case, Stats, Option<Stats>);

/// A run of one tool that takes this long gets a progress line of its own.
const LONG_RUN: Duration = Duration::from_secs(20);

/// One warm-up round, then `runs` measured ones; each round runs `once` for every bench in
/// turn (the order of `--tools`). What the machine remembers of earlier runs (a filesystem's
/// freed inodes, the page cache, a busy neighbour) weighs on every tool alike that way.
/// Returns each bench's results of the measured rounds; an error names the N, the tool and
/// `what`.
pub(crate) fn in_turns<T>(
    benches: &[&Bench],
    runs: usize,
    what: &str,
    mut once: impl FnMut(&Bench) -> Res<T>,
) -> Res<Vec<Vec<T>>> {
    let mut out: Vec<Vec<T>> = benches.iter().map(|_| Vec::new()).collect();
    for run in 0..=runs {
        for (i, b) in benches.iter().enumerate() {
            let warm_up = if run == 0 { "(warm-up) " } else { "" };
            let started = Instant::now();
            let v =
                once(b).map_err(|e| format!("N={} {}, {what}: {warm_up}{e}", b.n, b.tool.key()))?;
            let took = started.elapsed();
            if took >= LONG_RUN {
                // A sign of life in long cases (the scale case at N = 100000).
                let what = format!("{what}, {warm_up}run {run} of {runs}");
                progress(
                    b.n,
                    b.tool,
                    &format!("{what}: {:.0} s", took.as_secs_f64()),
                    None,
                );
            }
            if run > 0 {
                out[i].push(v);
            }
        }
    }
    Ok(out)
}

/// Clean builds of `target` with `-jJ`, every tool in turn ([`in_turns`]): ext4 without a
/// journal, for one, scans the inodes it freed in the last minutes at each file creation, so
/// a tool measured right after another's cleans would pay for them. For each tool: its times
/// and, for redo, the daemon's CPU per target (the warm-up, which may start the daemon, is
/// not counted).
pub(crate) fn cleans_in_turns(
    benches: &[&Bench],
    case: Case,
    target: &str,
    jobs: u32,
) -> Res<Vec<Clean>> {
    let Some(runs) = benches.first().map(|b| b.opts.runs) else {
        return Ok(Vec::new());
    };
    let results = in_turns(benches, runs, case.label(), |b| b.clean_once(target, jobs))?;
    Ok(benches
        .iter()
        .zip(results)
        .map(|(b, r)| {
            let (times, ticks): (Vec<f64>, Vec<Option<u64>>) = r.into_iter().unzip();
            let s = Stats { samples: times };
            progress(b.n, b.tool, case.label(), Some(&s));
            let cpu = (b.tool == Tool::Redo).then(|| {
                let targets = work::targets_built(b.n, target);
                let cpu = Stats {
                    samples: (ticks.iter().flatten())
                        .map(|&t| ms_per_target(t, b.clk_tck, targets))
                        .collect(),
                };
                let what = format!("daemon CPU/target, {}", case.key());
                progress(b.n, b.tool, &what, Some(&cpu));
                cpu
            });
            (case, s, cpu)
        })
        .collect())
}

/// Adds a tool's clean-build results to what was measured for it.
pub(crate) fn record_clean(r: &mut ToolResult, (case, s, cpu): Clean) {
    r.cases.push((case, s));
    if let Some(cpu) = cpu {
        r.daemon_cpu.push((case, cpu));
    }
}

/// The benches of the tools that take part in `group`.
fn taking_part<'b, 'a>(benches: &'b [Bench<'a>], group: Group) -> Vec<&'b Bench<'a>> {
    benches.iter().filter(|b| group.uses(b.tool)).collect()
}

/// What was measured for `tool` among `results`.
pub(crate) fn result_of(results: &mut [ToolResult], tool: Tool) -> Res<&mut ToolResult> {
    (results.iter_mut())
        .find(|r| r.tool == tool)
        .ok_or_else(|| format!("no results for {}", tool.key()))
}

/// After the cases of `benches`, whatever happened: redo's daemon stopped (it is not left
/// behind), the trees removed unless `--keep`.
pub(crate) fn dispose(benches: &[Bench]) {
    for b in benches {
        if b.tool == Tool::Redo && b.dir.join(".redo").is_dir() {
            let _ = capture(b.redo_cmd(&["--daemon-stop"]));
        }
        if !b.opts.keep {
            let _ = fs::remove_dir_all(&b.dir);
        }
    }
}

/// The note of an N at which the flat `all` cannot run.
fn flat_note(n: usize, env_bytes: usize, arg_max: usize, groups: &[Group]) -> String {
    let skipped: Vec<&str> = (groups.iter())
        .filter(|g| g.flat())
        .map(|g| g.key())
        .collect();
    format!(
        "N = {n}: {} not measured: they build the flat `all`, whose all.do runs one \
         redo-ifchange naming all {n} outputs, {} bytes with the environment, over the \
         kernel's limit on a program's arguments (getconf ARG_MAX: {arg_max}); at this N only \
         the tree cases (scale) run, and the no-op with the daemon just started is the scale \
         case's `scale_cold_noop`.",
        skipped.join(", "),
        work::flat_argument_bytes(n, env_bytes + work::ENV_MARGIN)
    )
}

/// Every case chosen at one N: the trees generated, then the cases in [`Group::ALL`] order
/// (each tool's trees stay between them), the daemons stopped and the trees removed at the
/// end, whatever happened.
fn measure_size(opts: &Options, env: &Env, work: &Path, n: usize, clk_tck: u64) -> Res<SizeResult> {
    let arg_max = arg_max();
    let flat = work::flat_fits(n, arg_max, env.bytes());
    let groups: Vec<Group> = (opts.groups.iter().copied())
        .filter(|&g| g != Group::Wide && (flat || !g.flat()))
        .collect();
    let mut notes = Vec::new();
    if !flat && opts.groups.iter().any(|g| g.flat()) {
        notes.push(flat_note(n, env.bytes(), arg_max, &opts.groups));
        eprintln!("redo-bench: {}", notes[notes.len() - 1]);
    }
    let has = |g: Group| groups.contains(&g);
    let benches: Vec<Bench> = (opts.tools.iter())
        .filter(|&&t| groups.iter().any(|g| g.uses(t)))
        .map(|&tool| {
            let dir = work.join(format!("n{n}-{}", tool.key()));
            Bench::new(opts, env, tool, dir, n, clk_tck)
        })
        .collect();
    let mut results: Vec<ToolResult> = benches.iter().map(|b| ToolResult::new(b.tool)).collect();
    let measured = (|| -> Res<()> {
        for b in &benches {
            progress(n, b.tool, "generating", None);
            work::generate(b.tool, &b.dir, n, opts.calls)?;
        }
        if has(Group::Clean) {
            let part = taking_part(&benches, Group::Clean);
            for (case, jobs) in [(Case::CleanJ1, 1), (Case::CleanJ2, 2)] {
                for (b, clean) in part.iter().zip(cleans_in_turns(&part, case, "all", jobs)?) {
                    record_clean(result_of(&mut results, b.tool)?, clean);
                }
            }
        } else {
            // The cases below start from `all` built.
            let needs_all = [Group::Incremental, Group::Client, Group::Cold, Group::Watch];
            for b in &benches {
                if needs_all.iter().any(|&g| has(g) && g.uses(b.tool)) {
                    progress(n, b.tool, "building all -j2 (untimed)", None);
                    timed(b.build("all", Some(2), Knobs::Plain))?;
                    b.verify("all")?;
                }
            }
        }
        for b in &benches {
            let r = result_of(&mut results, b.tool)?;
            if has(Group::Incremental) {
                b.incremental(r)?;
            }
            if has(Group::Client) && Group::Client.uses(b.tool) {
                b.client_case(r)?;
            }
            if has(Group::Cache) && Group::Cache.uses(b.tool) {
                b.cache_cases(r)?;
            }
        }
        if has(Group::Cold) {
            let part = taking_part(&benches, Group::Cold);
            let last = output_name(n);
            let stats = crate::cold::noops_in_turns(&part, Case::ColdNoop, "all", &[&last], true)?;
            for (b, s) in part.iter().zip(stats) {
                result_of(&mut results, b.tool)?
                    .cases
                    .push((Case::ColdNoop, s));
            }
        }
        if has(Group::Watch) {
            for b in taking_part(&benches, Group::Watch) {
                let cases = crate::watch::measure(b)?;
                result_of(&mut results, b.tool)?.cases.extend(cases);
            }
        }
        if has(Group::Scale) {
            let part = taking_part(&benches, Group::Scale);
            crate::scale::measure(&part, &mut results)?;
        }
        Ok(())
    })();
    dispose(&benches);
    measured?;
    results.retain(|r| !r.is_empty());
    Ok(SizeResult {
        n,
        tools: results,
        notes,
    })
}

pub fn run(opts: &Options) -> Res<Report> {
    let redo_dir = fs::canonicalize(&opts.redo_dir)
        .map_err(|e| format!("--redo-dir {}: {e}", opts.redo_dir.display()))?;
    let opts = Options {
        redo_dir,
        ..opts.clone()
    };
    let (work, created) = match &opts.work {
        Some(w) => (w.clone(), false),
        None => {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            (
                std::env::temp_dir().join(format!("redo-bench-{}-{nanos:x}", std::process::id())),
                true,
            )
        }
    };
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let work =
        fs::canonicalize(&work).map_err(|e| format!("cannot resolve {}: {e}", work.display()))?;
    let runtime = work.join("runtime");
    fs::create_dir_all(&runtime)
        .and_then(|()| fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("cannot create {}: {e}", runtime.display()))?;
    let result = (|| -> Res<Report> {
        let mut opts = opts.clone();
        let mut skipped = Vec::new();
        let mut redo_c = None;
        if opts.tools.contains(&Tool::RedoC) {
            match redo_c::find(opts.redo_c.as_deref(), opts.redo_c_src.as_deref(), &work)? {
                Found::Dir(dir, version) => redo_c = Some((dir, version)),
                Found::Skipped(why) => {
                    eprintln!("redo-bench: {why}");
                    skipped.push(why);
                    opts.tools.retain(|&t| t != Tool::RedoC);
                    if opts.tools.is_empty() {
                        return Err("no tool left to measure".into());
                    }
                }
            }
        }
        let (redo_c_dir, redo_c_version) = match &redo_c {
            Some((d, v)) => (Some(d.as_path()), v.as_str()),
            None => (None, ""),
        };
        let env = Env::new(&opts.redo_dir, &runtime, redo_c_dir);
        let versions = versions(&opts, &env, redo_c_version)?;
        let mut machine = machine(&work, versions);
        let cpu_before = read_cpu_time();
        let mut sizes = Vec::new();
        let size_groups = opts.groups.iter().any(|&g| g != Group::Wide);
        for &n in opts.ns.iter().filter(|_| size_groups) {
            sizes.push(measure_size(&opts, &env, &work, n, machine.clk_tck)?);
        }
        let wide = match opts.has(Group::Wide) {
            true => Some(crate::wide::measure(&opts, &env, &work, machine.clk_tck)?),
            false => None,
        };
        machine.steal = cpu_before
            .zip(read_cpu_time())
            .and_then(|(b, a)| steal_between(b, a));
        Ok(Report {
            options: opts.clone(),
            machine,
            sizes,
            wide,
            skipped,
        })
    })();

    if opts.keep {
        eprintln!("generated trees kept in {}", work.display());
    } else if created {
        let _ = fs::remove_dir_all(&work);
    } else {
        let _ = fs::remove_dir_all(&runtime);
        let _ = fs::remove_dir_all(work.join("redo-c"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_read_from_the_cpu_line() {
        let a = "cpu  100 5 50 800 10 0 5 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let b = "cpu  200 5 90 1000 10 0 5 80 0 0\n";
        assert_eq!(cpu_time(a), Some((30, 1000)));
        let (before, after) = (cpu_time(a).unwrap(), cpu_time(b).unwrap());
        assert_eq!(steal_between(before, after), Some(50.0 / 390.0));
        assert_eq!(steal_between(after, after), None);
        assert_eq!(cpu_time("cpu0 1 2\n"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400 + 3661), "2000-02-29 01:01 UTC");
        assert_eq!(utc_date(1_767_225_600), "2026-01-01 00:00 UTC");
    }

    #[test]
    fn daemon_cpu_per_target() {
        // A real line of /proc/PID/stat: utime 37 and stime 12 (fields 14 and 15), after a
        // command name with a space and a parenthesis.
        let line = "7368 (red)od x) S 1 7367 7367 0 -1 4194624 1201 0 0 0 37 12 3 4 20 0 \
                    5 0 1053 21409792 1265 18446744073709551615 1 1 0 0 0 0 0 4096 17475 0 0 0 \
                    17 1 0 0 0 0 0";
        assert_eq!(stat_cpu_ticks(line), Some(49));
        assert_eq!(stat_cpu_ticks("7368 (redod) S 1 2 3"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_cpu_ticks(&own).is_some(), "{own}");
        // 49 ticks at 100 per second over N = 1000 outputs and `all`: 0.489 ms per target.
        let v = ms_per_target(49, 100, work::targets_built(1000, "all"));
        assert!((v - 490.0 / 1001.0).abs() < 1e-12, "{v}");
        assert_eq!(ms_per_target(0, 100, 11), 0.0);
        assert_eq!(ms_per_target(250, 250, 1000), 1.0);
        let (tck, _) = clock_ticks();
        assert!(tck > 0);
    }

    #[test]
    fn daemon_status_fields() {
        let status = "pid: 7368\nversion: 0.1.0\nresident memory: 5060 KiB\ncached hashes: 2\n";
        assert_eq!(status_field(status, "pid:"), Some(7368));
        assert_eq!(status_field(status, "resident memory:"), Some(5060));
        assert_eq!(status_field(status, "cached state files:"), None);
    }

    #[test]
    fn stats() {
        let s = Stats {
            samples: vec![3.0, 1.0, 2.0, 10.0],
        };
        assert_eq!((s.median(), s.min(), s.max()), (2.5, 1.0, 10.0));
    }
}
