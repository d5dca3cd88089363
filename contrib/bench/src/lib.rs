//! `redo-bench`: this redo against redo-c, GNU make and ninja on identical generated work.
//!
//! See `contrib/bench/README.md` (and `docs/performance.md` for the figures) for what is
//! measured and how; `redo-bench --help` for the options.

pub mod bounds;
mod cold;
mod daemon;
pub mod json;
pub mod redo_c;
pub mod report;
pub mod run;
mod scale;
mod watch;
pub mod wide;
pub mod work;

use std::path::PathBuf;

pub type Res<T> = Result<T, String>;

/// The build tools compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// This repository's redo (`redo-ifchange`, the daemon started by itself).
    Redo,
    /// Leah Neukirchen's redo-c (given with `--redo-c` or `--redo-c-src`): one C program, no
    /// daemon, state in `.dep.TARGET` files beside the targets.
    RedoC,
    /// GNU make with its built-in implicit rules (plain `make`).
    Make,
    /// GNU make with `-r` (no built-in rules: the fair comparison, nothing here needs them).
    MakeR,
    /// ninja (Debian's ninja-build).
    Ninja,
}

impl Tool {
    /// Table order.
    pub const ALL: [Tool; 5] = [
        Tool::Redo,
        Tool::RedoC,
        Tool::Ninja,
        Tool::MakeR,
        Tool::Make,
    ];

    /// Name in `--tools` and in the JSON.
    pub fn key(self) -> &'static str {
        match self {
            Tool::Redo => "redo",
            Tool::RedoC => "redo-c",
            Tool::Make => "make",
            Tool::MakeR => "make-r",
            Tool::Ninja => "ninja",
        }
    }

    /// Name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Redo => "redo",
            Tool::RedoC => "redo-c",
            Tool::Make => "make",
            Tool::MakeR => "make -r",
            Tool::Ninja => "ninja",
        }
    }

    pub fn parse(s: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.key() == s)
    }

    /// Whether the tool builds from the generated `.do` files (redo and redo-c share them),
    /// and so runs the client loop (`loop.do`, `loop-true.do`).
    pub fn uses_do_files(self) -> bool {
        matches!(self, Tool::Redo | Tool::RedoC)
    }
}

/// The project's bounds on redo's clean builds (`clean_j1` and `clean_j2`): redo's median
/// over the tool's at most this much.
pub const CLEAN_BOUNDS: [(Tool, f64); 2] = [(Tool::RedoC, 1.0), (Tool::Ninja, 1.6)];

/// The project's bound on the daemon's CPU time per target in a clean build, milliseconds.
pub const DAEMON_CPU_BOUND_MS: f64 = 0.4;

/// The project's bound on a no-op with the daemon just started, over ninja's no-op.
pub const COLD_NOOP_BOUND: f64 = 1.0;

/// The project's bound on the clean build `-j2` of `tree`, over ninja's.
pub const SCALE_CLEAN_BOUND: f64 = 2.0;

/// The project's bound on the wide build, over the ideal (N × sleep / jobs).
pub const WIDE_BOUND: f64 = 1.10;

/// The project's bounds on `redo --watch`, milliseconds: from the edit to `all` finished, and
/// from the round's last target finished to its `watch waiting` event.
pub const WATCH_ALL_FINISHED_BOUND_MS: f64 = 80.0;
pub const WATCH_WAITING_AFTER_LAST_BOUND_MS: f64 = 20.0;

/// The project's bound on the daemon's peak resident memory (VmHWM) in the scale case, MiB,
/// from this N up.
pub const SCALE_PEAK_BOUND_MIB: f64 = 150.0;
pub const SCALE_PEAK_BOUND_FROM_N: usize = 100_000;

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Build `all` from nothing (outputs and state removed before every run), one job.
    CleanJ1,
    /// The same with two jobs.
    CleanJ2,
    /// `all` again, nothing changed.
    Noop,
    /// redo only: the no-op with fsync enabled (without `REDO_NO_SYNC`).
    NoopSync,
    /// redo only: the no-op with the daemon's file watcher unused (`REDO_NO_WATCH=1`), so
    /// every dependency is stat'ed as a daemon-less redo would.
    NoopStat,
    /// `all` after one source changed.
    Changed,
    /// `tree` again, nothing changed.
    TreeNoop,
    /// `tree` after one source changed (four targets on one path rebuilt).
    TreeChanged,
    /// `all` again, nothing changed, redo's daemon stopped before each run (so the command
    /// starts one); ninja's plain no-op in turns with it.
    ColdNoop,
    /// redo only: `redo --watch all`, from the edit of one source to the `all` target's
    /// `finished` event.
    WatchAllFinished,
    /// redo only: the same, to the round's `watch waiting` event.
    WatchWaiting,
    /// redo only: from the round's last `target finished` event to its `watch waiting`.
    WatchWaitingAfterLast,
    /// `tree` built from nothing with two jobs (the scale case, every N).
    ScaleCleanJ2,
    /// `tree` again, nothing changed, tools in turns (the scale case).
    ScaleNoop,
    /// `tree` again, redo's daemon stopped before each run (the scale case).
    ScaleColdNoop,
    /// The wide build: `--wide-n` targets that each sleep, `--wide-j` jobs (its own tree).
    Wide,
}

impl Case {
    /// Table order.
    pub const ALL: [Case; 16] = [
        Case::CleanJ1,
        Case::CleanJ2,
        Case::Noop,
        Case::Changed,
        Case::TreeNoop,
        Case::TreeChanged,
        Case::NoopStat,
        Case::NoopSync,
        Case::ColdNoop,
        Case::WatchAllFinished,
        Case::WatchWaiting,
        Case::WatchWaitingAfterLast,
        Case::ScaleCleanJ2,
        Case::ScaleNoop,
        Case::ScaleColdNoop,
        Case::Wide,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Case::CleanJ1 => "clean_j1",
            Case::CleanJ2 => "clean_j2",
            Case::Noop => "noop",
            Case::NoopSync => "noop_sync",
            Case::NoopStat => "noop_stat",
            Case::Changed => "changed",
            Case::TreeNoop => "tree_noop",
            Case::TreeChanged => "tree_changed",
            Case::ColdNoop => "cold_noop",
            Case::WatchAllFinished => "watch_all_finished",
            Case::WatchWaiting => "watch_waiting",
            Case::WatchWaitingAfterLast => "watch_waiting_after_last_finished",
            Case::ScaleCleanJ2 => "scale_clean_j2",
            Case::ScaleNoop => "scale_noop",
            Case::ScaleColdNoop => "scale_cold_noop",
            Case::Wide => "wide",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Case::CleanJ1 => "clean build -j1",
            Case::CleanJ2 => "clean build -j2",
            Case::Noop => "no-op",
            Case::NoopSync => "no-op, fsync on",
            Case::NoopStat => "no-op, watcher off",
            Case::Changed => "1 source changed",
            Case::TreeNoop => "tree: no-op",
            Case::TreeChanged => "tree: 1 source changed",
            Case::ColdNoop => "no-op, daemon just started",
            Case::WatchAllFinished => "watch: edit -> all finished",
            Case::WatchWaiting => "watch: edit -> watch waiting",
            Case::WatchWaitingAfterLast => "watch: last finished -> waiting",
            Case::ScaleCleanJ2 => "scale: tree clean -j2",
            Case::ScaleNoop => "scale: tree no-op",
            Case::ScaleColdNoop => "scale: tree no-op, daemon just started",
            Case::Wide => "wide build",
        }
    }

    /// The case of the other tools that redo's is compared with (redo-only variants of the
    /// no-op with the others' no-op); `None` when there is nothing to compare with.
    pub fn compared_with(self) -> Option<Case> {
        match self {
            Case::NoopSync | Case::NoopStat => Some(Case::Noop),
            Case::WatchAllFinished | Case::WatchWaiting | Case::WatchWaitingAfterLast => None,
            c => Some(c),
        }
    }

    /// The group of cases (`--cases`) it is one of.
    pub fn group(self) -> Group {
        match self {
            Case::CleanJ1 | Case::CleanJ2 => Group::Clean,
            Case::Noop
            | Case::NoopSync
            | Case::NoopStat
            | Case::Changed
            | Case::TreeNoop
            | Case::TreeChanged => Group::Incremental,
            Case::ColdNoop => Group::Cold,
            Case::WatchAllFinished | Case::WatchWaiting | Case::WatchWaitingAfterLast => {
                Group::Watch
            }
            Case::ScaleCleanJ2 | Case::ScaleNoop | Case::ScaleColdNoop => Group::Scale,
            Case::Wide => Group::Wide,
        }
    }

    /// Whether the case is measured for `tool`.
    pub fn applies(self, tool: Tool) -> bool {
        match self {
            Case::NoopSync
            | Case::NoopStat
            | Case::WatchAllFinished
            | Case::WatchWaiting
            | Case::WatchWaitingAfterLast => tool == Tool::Redo,
            Case::ColdNoop | Case::ScaleCleanJ2 | Case::ScaleNoop | Case::ScaleColdNoop => {
                matches!(tool, Tool::Redo | Tool::Ninja)
            }
            Case::Wide => matches!(tool, Tool::Redo | Tool::Ninja | Tool::RedoC),
            _ => true,
        }
    }
}

/// The groups of cases `--cases` chooses among.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `clean_j1`, `clean_j2`: `all` from nothing, every tool in turn.
    Clean,
    /// `noop`, `noop_stat`, `noop_sync`, `changed`, `tree_noop`, `tree_changed` and the
    /// daemon's memory after the no-op.
    Incremental,
    /// The loop of up-to-date `redo-ifchange` calls from one `.do` (redo and redo-c).
    Client,
    /// The shared cache (redo only).
    Cache,
    /// `cold_noop`: the no-op with the daemon just started, against ninja's.
    Cold,
    /// `wide`: many sleeping targets at many jobs, against the ideal (once, not per N).
    Wide,
    /// `watch_*`: `redo --watch all`, one source edited.
    Watch,
    /// `scale_*`: the tree at every N, clean -j2, no-ops, the daemon's memory.
    Scale,
}

impl Group {
    /// Run order (within one N; `wide` runs once, after the sizes).
    pub const ALL: [Group; 8] = [
        Group::Clean,
        Group::Incremental,
        Group::Client,
        Group::Cache,
        Group::Cold,
        Group::Watch,
        Group::Scale,
        Group::Wide,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Group::Clean => "clean",
            Group::Incremental => "incremental",
            Group::Client => "client",
            Group::Cache => "cache",
            Group::Cold => "cold",
            Group::Wide => "wide",
            Group::Watch => "watch",
            Group::Scale => "scale",
        }
    }

    pub fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.key() == s)
    }

    /// Whether the group builds the flat `all` (whose `all.do` names every output in one
    /// `redo-ifchange`: too long a command line for the kernel from some N on).
    pub fn flat(self) -> bool {
        !matches!(self, Group::Scale | Group::Wide)
    }

    /// Whether `tool` takes part in the group (when it is among `--tools`).
    pub fn uses(self, tool: Tool) -> bool {
        match self {
            Group::Clean | Group::Incremental => true,
            Group::Client => tool.uses_do_files(),
            Group::Cache | Group::Watch => tool == Tool::Redo,
            Group::Cold | Group::Scale => matches!(tool, Tool::Redo | Tool::Ninja),
            Group::Wide => Case::Wide.applies(tool),
        }
    }
}

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    pub ns: Vec<usize>,
    pub runs: usize,
    pub tools: Vec<Tool>,
    /// The groups of cases to run (`--cases`), in [`Group::ALL`] order.
    pub groups: Vec<Group>,
    pub json: bool,
    pub redo_dir: PathBuf,
    pub keep: bool,
    pub work: Option<PathBuf>,
    pub calls: usize,
    /// `--redo-c DIR`: an already built redo-c (`DIR/redo`, `DIR/redo-ifchange`).
    pub redo_c: Option<PathBuf>,
    /// `--redo-c-src DIR`: redo-c's source (`DIR/redo.c`), compiled into `WORK/redo-c`.
    pub redo_c_src: Option<PathBuf>,
    /// Also write the JSON object to this file (`--save FILE`), the table still on stdout.
    pub save: Option<PathBuf>,
    /// Targets in the wide case (`--wide-n`).
    pub wide_n: usize,
    /// Jobs in the wide case (`--wide-j`).
    pub wide_j: u32,
}

impl Options {
    pub fn has(&self, g: Group) -> bool {
        self.groups.contains(&g)
    }
}

pub const USAGE: &str = "\
usage: redo-bench [options]

Generates the same work for redo, redo-c, GNU make and ninja (N sources, N targets made by
one rule, an `all` target, a three-level aggregation tree) and times clean builds (-j1, -j2),
no-op rebuilds and rebuilds after one source changed; then the cost of one redo-ifchange call
from inside a .do (this redo's and redo-c's), the daemon's CPU time per target in the clean
builds and its resident memory; the no-op with the daemon just started, `redo --watch`, the
tree at large N, and a wide build of sleeping targets against the ideal.

options:
  --n LIST          sizes to measure, comma-separated (default 1000,10000)
  --runs K          measured runs per case, after one warm-up run (default 5)
  --cases LIST      among clean,incremental,client,cache,cold,watch,scale,wide (default: all)
  --tools LIST      among redo,redo-c,ninja,make-r,make (default: all five;
                    make-r is `make -r`, make is plain make with its built-in rules)
  --calls K         redo-ifchange calls in the client loop (default 1000)
  --wide-n K        targets of the wide case (default 2000)
  --wide-j K        jobs of the wide case (default 64)
  --json            print one JSON object instead of the table
  --redo-dir DIR    where redo and redod are
                    (default: the directory of this executable)
  --redo-c DIR      an already built redo-c (DIR/redo, DIR/redo-ifchange)
  --redo-c-src DIR  redo-c's source: DIR/redo.c is compiled with `cc -O2` into WORK/redo-c
                    (without --redo-c or --redo-c-src, redo-c is skipped with a note)
  --work DIR        where to generate the trees (default: a fresh directory under $TMPDIR;
                    e.g. --work /dev/shm/redo-bench to measure on tmpfs)
  --no-cache-case   skip the shared-cache case (the same as leaving cache out of --cases)
  --save FILE       also write the JSON object to FILE (the table stays on stdout)
  --keep            keep the generated trees
  -h, --help        this help
";

/// Parses the arguments (without the program name). `Ok(None)` means help was asked for.
pub fn parse_args(args: &[String]) -> Res<Option<Options>> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut o = Options {
        ns: vec![1000, 10000],
        runs: 5,
        tools: Tool::ALL.to_vec(),
        groups: Group::ALL.to_vec(),
        json: false,
        redo_dir: exe_dir,
        keep: false,
        work: None,
        calls: 1000,
        redo_c: None,
        redo_c_src: None,
        save: None,
        wide_n: 2000,
        wide_j: 64,
    };
    let mut no_cache = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Res<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{what} needs a value")),
            }
        };
        let mut positive = |what: &str| -> Res<usize> {
            value(what)?
                .parse()
                .ok()
                .filter(|&r: &usize| r > 0)
                .ok_or_else(|| format!("{what} wants a positive integer"))
        };
        match name {
            "-h" | "--help" => return Ok(None),
            "--n" => {
                o.ns = list(&value("--n")?, |s| {
                    s.parse::<usize>().ok().filter(|&n| n > 0)
                })
                .ok_or("--n wants positive integers separated by commas")?;
            }
            "--runs" => o.runs = positive("--runs")?,
            "--calls" => o.calls = positive("--calls")?,
            "--wide-n" => o.wide_n = positive("--wide-n")?,
            "--wide-j" => {
                o.wide_j = u32::try_from(positive("--wide-j")?)
                    .map_err(|_| "--wide-j is too large".to_string())?;
            }
            "--tools" => {
                let tools = list(&value("--tools")?, Tool::parse)
                    .ok_or("--tools wants names among redo,redo-c,ninja,make-r,make")?;
                // Keep the table order whatever the order given.
                o.tools = Tool::ALL
                    .into_iter()
                    .filter(|t| tools.contains(t))
                    .collect();
            }
            "--cases" => {
                let groups = list(&value("--cases")?, Group::parse).ok_or(
                    "--cases wants names among clean,incremental,client,cache,cold,watch,scale,wide",
                )?;
                o.groups = Group::ALL
                    .into_iter()
                    .filter(|g| groups.contains(g))
                    .collect();
            }
            "--json" => o.json = true,
            "--keep" => o.keep = true,
            "--no-cache-case" => no_cache = true,
            "--save" => o.save = Some(PathBuf::from(value("--save")?)),
            "--redo-dir" => o.redo_dir = PathBuf::from(value("--redo-dir")?),
            "--work" => o.work = Some(PathBuf::from(value("--work")?)),
            "--redo-c" => o.redo_c = Some(PathBuf::from(value("--redo-c")?)),
            "--redo-c-src" => o.redo_c_src = Some(PathBuf::from(value("--redo-c-src")?)),
            _ => return Err(format!("unknown option {arg} (see --help)")),
        }
    }
    if no_cache {
        o.groups.retain(|&g| g != Group::Cache);
    }
    if o.redo_c.is_some() && o.redo_c_src.is_some() {
        return Err("give --redo-c (built) or --redo-c-src (its source), not both".into());
    }
    Ok(Some(o))
}

fn list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    let v: Option<Vec<T>> = s.split(',').map(|p| f(p.trim())).collect();
    v.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Res<Option<Options>> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn tools_and_redo_c_options() {
        let o = args(&[]).unwrap().unwrap();
        assert_eq!(o.tools, Tool::ALL);
        assert_eq!(o.tools[1], Tool::RedoC);
        assert_eq!(o.redo_c, None);
        // Table order whatever the order given.
        let o = args(&["--tools", "ninja,redo-c,redo", "--redo-c=/opt/rc"])
            .unwrap()
            .unwrap();
        assert_eq!(o.tools, [Tool::Redo, Tool::RedoC, Tool::Ninja]);
        assert_eq!(o.redo_c, Some(PathBuf::from("/opt/rc")));
        assert_eq!(Tool::parse("redo-c").map(Tool::label), Some("redo-c"));
        let e = args(&["--tools", "redo_c"]).unwrap_err();
        assert!(e.contains("redo,redo-c,ninja,make-r,make"), "{e}");
        assert!(args(&["--redo-c"]).unwrap_err().contains("needs a value"));
        assert!(Case::CleanJ1.applies(Tool::RedoC) && !Case::NoopStat.applies(Tool::RedoC));
    }

    #[test]
    fn cases_wide_and_save_options() {
        let o = args(&[]).unwrap().unwrap();
        assert_eq!(o.groups, Group::ALL);
        assert!(o.save.is_none() && o.redo_c_src.is_none());
        assert_eq!((o.wide_n, o.wide_j), (2000, 64));
        let o = args(&["--no-cache-case", "--save", "b.json"])
            .unwrap()
            .unwrap();
        assert!(!o.has(Group::Cache) && o.has(Group::Clean));
        assert_eq!(o.save, Some(PathBuf::from("b.json")));
        assert!(args(&["--save"]).unwrap_err().contains("needs a value"));
        // Run order whatever the order given.
        let o = args(&["--cases", "wide,cold,watch", "--wide-n=20", "--wide-j", "4"])
            .unwrap()
            .unwrap();
        assert_eq!(o.groups, [Group::Cold, Group::Watch, Group::Wide]);
        assert_eq!((o.wide_n, o.wide_j), (20, 4));
        let e = args(&["--cases", "cold,noop"]).unwrap_err();
        assert!(
            e.contains("clean,incremental,client,cache,cold,watch,scale,wide"),
            "{e}"
        );
        assert!(args(&["--wide-j", "0"]).unwrap_err().contains("positive"));
        let o = args(&["--redo-c-src", "/src/redo-c"]).unwrap().unwrap();
        assert_eq!(o.redo_c_src, Some(PathBuf::from("/src/redo-c")));
        let e = args(&["--redo-c-src", "a", "--redo-c", "b"]).unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn cases_apply_to_the_tools_compared() {
        assert!(Case::ColdNoop.applies(Tool::Ninja) && !Case::ColdNoop.applies(Tool::Make));
        assert!(Case::Wide.applies(Tool::RedoC) && !Case::Wide.applies(Tool::MakeR));
        assert!(!Case::WatchWaiting.applies(Tool::Ninja));
        assert_eq!(Case::WatchAllFinished.compared_with(), None);
        assert_eq!(Case::NoopStat.compared_with(), Some(Case::Noop));
        assert!(Group::Scale.uses(Tool::Ninja) && !Group::Scale.uses(Tool::RedoC));
        assert!(!Group::Scale.flat() && Group::Cold.flat());
        for c in Case::ALL {
            assert!(Case::ALL.iter().filter(|d| d.key() == c.key()).count() == 1);
        }
    }
}
