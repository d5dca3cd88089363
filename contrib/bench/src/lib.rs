//! `redo-bench`: this redo against redo-c, GNU make and ninja on identical generated work.
//!
//! See `contrib/bench/README.md` (and `docs/performance.md` for the figures) for what is
//! measured and how; `redo-bench --help` for the options.

pub mod json;
pub mod redo_c;
pub mod report;
pub mod run;
pub mod work;

use std::path::PathBuf;

pub type Res<T> = Result<T, String>;

/// The build tools compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// This repository's redo (`redo-ifchange`, the daemon started by itself).
    Redo,
    /// Leah Neukirchen's redo-c (vendored in `contrib/bench/peers/redo-c`): one C program, no
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
pub const CLEAN_BOUNDS: [(Tool, f64); 2] = [(Tool::RedoC, 0.9), (Tool::Ninja, 1.6)];

/// The project's bound on the daemon's CPU time per target in a clean build, milliseconds.
pub const DAEMON_CPU_BOUND_MS: f64 = 0.4;

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
}

impl Case {
    pub const ALL: [Case; 8] = [
        Case::CleanJ1,
        Case::CleanJ2,
        Case::Noop,
        Case::Changed,
        Case::TreeNoop,
        Case::TreeChanged,
        Case::NoopStat,
        Case::NoopSync,
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
        }
    }

    /// The case of the other tools that a redo-only case is compared with.
    pub fn compared_with(self) -> Case {
        match self {
            Case::NoopSync | Case::NoopStat => Case::Noop,
            c => c,
        }
    }

    /// Whether the case is measured for `tool`.
    pub fn applies(self, tool: Tool) -> bool {
        !matches!(self, Case::NoopSync | Case::NoopStat) || tool == Tool::Redo
    }
}

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    pub ns: Vec<usize>,
    pub runs: usize,
    pub tools: Vec<Tool>,
    pub json: bool,
    pub redo_dir: PathBuf,
    pub keep: bool,
    pub work: Option<PathBuf>,
    pub calls: usize,
    /// `--redo-c DIR`: an already built redo-c (`DIR/redo`, `DIR/redo-ifchange`); without it
    /// the vendored source is compiled into `WORK/redo-c` when `cc` is on `PATH`.
    pub redo_c: Option<PathBuf>,
    /// Skip the shared-cache case (`--no-cache-case`).
    pub no_cache_case: bool,
    /// Also write the JSON object to this file (`--save FILE`), the table still on stdout.
    pub save: Option<PathBuf>,
}

pub const USAGE: &str = "\
usage: redo-bench [options]

Generates the same work for redo, redo-c, GNU make and ninja (N sources, N targets made by
one rule, an `all` target, a three-level aggregation tree) and times clean builds (-j1, -j2),
no-op rebuilds and rebuilds after one source changed; then the cost of one redo-ifchange call
from inside a .do (this redo's and redo-c's), the daemon's CPU time per target in the clean
builds and its resident memory.

options:
  --n LIST          sizes to measure, comma-separated (default 1000,10000)
  --runs K          measured runs per case, after one warm-up run (default 5)
  --tools LIST      among redo,redo-c,ninja,make-r,make (default: all five;
                    make-r is `make -r`, make is plain make with its built-in rules)
  --calls K         redo-ifchange calls in the client loop (default 1000)
  --json            print one JSON object instead of the table
  --redo-dir DIR    where redo and redod are
                    (default: the directory of this executable)
  --redo-c DIR      an already built redo-c (DIR/redo, DIR/redo-ifchange); default: the
                    vendored redo.c compiled with `cc -O2` into WORK/redo-c (redo-c is
                    skipped, with a note, when there is no cc)
  --work DIR        where to generate the trees (default: a fresh directory under $TMPDIR)
  --no-cache-case   skip the shared-cache case (REDO_CACHE cold and warm builds)
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
        json: false,
        redo_dir: exe_dir,
        keep: false,
        work: None,
        calls: 1000,
        redo_c: None,
        no_cache_case: false,
        save: None,
    };
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
        match name {
            "-h" | "--help" => return Ok(None),
            "--n" => {
                o.ns = list(&value("--n")?, |s| {
                    s.parse::<usize>().ok().filter(|&n| n > 0)
                })
                .ok_or("--n wants positive integers separated by commas")?;
            }
            "--runs" => {
                o.runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or("--runs wants a positive integer")?;
            }
            "--calls" => {
                o.calls = value("--calls")?
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or("--calls wants a positive integer")?;
            }
            "--tools" => {
                let mut tools = list(&value("--tools")?, Tool::parse)
                    .ok_or("--tools wants names among redo,redo-c,ninja,make-r,make")?;
                tools.dedup();
                // Keep the table order whatever the order given.
                o.tools = Tool::ALL
                    .into_iter()
                    .filter(|t| tools.contains(t))
                    .collect();
            }
            "--json" => o.json = true,
            "--keep" => o.keep = true,
            "--no-cache-case" => o.no_cache_case = true,
            "--save" => o.save = Some(PathBuf::from(value("--save")?)),
            "--redo-dir" => o.redo_dir = PathBuf::from(value("--redo-dir")?),
            "--work" => o.work = Some(PathBuf::from(value("--work")?)),
            "--redo-c" => o.redo_c = Some(PathBuf::from(value("--redo-c")?)),
            _ => return Err(format!("unknown option {arg} (see --help)")),
        }
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
    fn cache_case_and_save_options() {
        let o = args(&[]).unwrap().unwrap();
        assert!(!o.no_cache_case && o.save.is_none());
        let o = args(&["--no-cache-case", "--save", "b.json"])
            .unwrap()
            .unwrap();
        assert!(o.no_cache_case);
        assert_eq!(o.save, Some(PathBuf::from("b.json")));
        assert!(args(&["--save"]).unwrap_err().contains("needs a value"));
    }
}
