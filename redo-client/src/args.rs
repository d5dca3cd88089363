//! Command-line parsing, Go `flag` style as goredo does it: options are words with one or two
//! dashes (`-k`, `--k`), values as `-j 4`, `-j=4` (and `-j4`), parsing stops at the first
//! non-option or at `--`. `-xx` is an option of its own, not two `-x`.
//!
//! Each tool's options come from one table, so `--help` and the parser cannot disagree.
//! Options that nested commands inherit are turned into environment entries (`-k` →
//! `REDO_LOGS=1`), exactly as goredo exports them, so the daemon reads one source of truth.

use crate::Tool;
use redo_proto::msg::ByteBuf;
use redo_proto::{BuildOptions, CleanupWhat, Timings};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Boxed: an invocation is large, and the other answers travel through `Result`s.
    Run(Box<Invocation>),
    /// `-h`, `--help`: print this and exit 0.
    Help(String),
    /// `--version`.
    Version,
    /// A usage error: print this one line and exit 2.
    Usage(String),
}

#[derive(Debug, PartialEq, Eq, Default)]
pub struct Invocation {
    pub operands: Vec<OsString>,
    pub build: BuildOptions,
    /// `NAME=1` entries to add to the request environment.
    pub exported: Vec<&'static str>,
    pub daemon: DaemonVerb,
    /// `redo --daemon-watch=...`.
    pub watch_op: Option<redo_proto::WatchOp>,
    /// `redo-log -r`.
    pub recursive: bool,
    /// `redo-log -c`.
    pub details: bool,
    /// `redo-cleanup -n`.
    pub dry_run: bool,
    /// `redo-cleanup` modes.
    pub cleanup: Vec<CleanupWhat>,
    /// `redo-dot --no-outside`.
    pub no_outside: bool,
    /// `redo -symlinks`.
    pub symlinks: bool,
}

#[derive(Debug, PartialEq, Eq, Default, Clone, Copy)]
pub enum DaemonVerb {
    #[default]
    None,
    Status,
    Stop,
}

/// What a boolean option does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Exported to nested commands as `NAME=1`.
    Export(&'static str),
    Trace,
    Force,
    NoProgress,
    DaemonStatus,
    DaemonStop,
    Recursive,
    Details,
    DryRun,
    Watch,
    NoOutside,
    Symlinks,
}

struct Flag {
    name: &'static str,
    effect: Effect,
    help: &'static str,
}

const fn flag(name: &'static str, effect: Effect, help: &'static str) -> Flag {
    Flag { name, effect, help }
}

const BUILD_FLAGS: &[Flag] = &[
    flag(
        "x",
        Effect::Trace,
        "trace (sh -x) the .do files this command starts",
    ),
    flag(
        "xx",
        Effect::Export("REDO_TRACE"),
        "trace (sh -x) every .do file, nested ones too (REDO_TRACE=1)",
    ),
    flag(
        "k",
        Effect::Export("REDO_LOGS"),
        "keep each job's stderr in .redo/TARGET.log (REDO_LOGS=1)",
    ),
    flag(
        "s",
        Effect::Export("REDO_SILENT"),
        "silent: do not print the jobs' stderr (REDO_SILENT=1)",
    ),
    flag(
        "f",
        Effect::Force,
        "forced: rebuild the targets without the out-of-date check",
    ),
    flag(
        "d",
        Effect::Export("REDO_DEBUG"),
        "print debug messages (REDO_DEBUG=1)",
    ),
    flag(
        "log-pid",
        Effect::Export("REDO_LOG_PID"),
        "prefix job stderr lines with the .do's pid (REDO_LOG_PID=1)",
    ),
    flag(
        "log-wait",
        Effect::Export("REDO_LOG_WAIT"),
        "print a line when a job is about to run (REDO_LOG_WAIT=1)",
    ),
    flag(
        "log-lock",
        Effect::Export("REDO_LOG_LOCK"),
        "print lock messages (REDO_LOG_LOCK=1)",
    ),
    flag(
        "log-js",
        Effect::Export("REDO_LOG_JS"),
        "print job token messages (REDO_LOG_JS=1)",
    ),
    flag(
        "no-progress",
        Effect::NoProgress,
        "no 'redo ...' completion lines, no status line (REDO_NO_PROGRESS=1)",
    ),
    flag(
        "no-status",
        Effect::Export("REDO_NO_STATUS"),
        "no status line (REDO_NO_STATUS=1)",
    ),
    flag(
        "keep-going",
        Effect::Export("REDO_KEEP_GOING"),
        "build every target that can be built, report every failure (REDO_KEEP_GOING=1)",
    ),
    flag(
        "shuffle",
        Effect::Export("REDO_SHUFFLE"),
        "start the targets, nested ones too, in random order (REDO_SHUFFLE=1)",
    ),
];

const REDO_FLAGS: &[Flag] = &[
    flag(
        "watch",
        Effect::Watch,
        "build, then build again whenever an input changes, until interrupted",
    ),
    flag(
        "daemon-status",
        Effect::DaemonStatus,
        "print the state of this project's redod",
    ),
    flag(
        "daemon-stop",
        Effect::DaemonStop,
        "ask this project's redod to finish its jobs and exit",
    ),
    flag(
        "symlinks",
        Effect::Symlinks,
        "make the command links (redo-ifchange, ...) to this program in the current directory",
    ),
];

const LOG_FLAGS: &[Flag] = &[
    flag(
        "r",
        Effect::Recursive,
        "also the logs of the dependencies built in the same build, in build order",
    ),
    flag(
        "c",
        Effect::Details,
        "also how each job ran: command, arguments, directory, environment",
    ),
];

const CLEANUP_FLAGS: &[Flag] = &[flag(
    "n",
    Effect::DryRun,
    "dry run: print what would be removed, remove nothing",
)];

const DOT_FLAGS: &[Flag] = &[flag(
    "no-outside",
    Effect::NoOutside,
    "leave files outside the project root (/usr/include/...) out of the graph",
)];

fn flags(tool: Tool) -> [&'static [Flag]; 2] {
    match tool {
        Tool::Redo => [BUILD_FLAGS, REDO_FLAGS],
        Tool::Ifchange => [BUILD_FLAGS, &[]],
        Tool::Log => [LOG_FLAGS, &[]],
        Tool::Cleanup => [CLEANUP_FLAGS, &[]],
        Tool::Dot => [DOT_FLAGS, &[]],
        _ => [&[], &[]],
    }
}

fn synopsis(tool: Tool) -> &'static str {
    match tool {
        Tool::Redo => "redo [options] [target ...]",
        Tool::Ifchange => "redo-ifchange [options] [target ...]",
        Tool::Ifcreate => "redo-ifcreate [file ...]",
        Tool::Always => "redo-always",
        Tool::Stamp => "redo-stamp <data",
        Tool::Whichdo => "redo-whichdo target",
        Tool::Targets => "redo-targets [directory ...]",
        Tool::Sources => "redo-sources [target ...]",
        Tool::Ood => "redo-ood [target ...]",
        Tool::Affects => "redo-affects file ...",
        Tool::Dot => "redo-dot [--no-outside] [target ...]",
        Tool::Log => "redo-log [-r] [-c] target",
        Tool::Cleanup => "redo-cleanup [-n] {tmp|log|lock|full} ...",
        Tool::Depfix => "redo-depfix",
    }
}

fn purpose(tool: Tool) -> &'static str {
    match tool {
        Tool::Redo => {
            "Rebuild each target unconditionally, one after another, stopping at the first \
             failure. No target means 'all'. Inside a .do, also records each target as a \
             dependency of the running target."
        }
        Tool::Ifchange => {
            "Bring the targets up to date (in parallel, up to -j jobs) and, inside a .do, record \
             them as dependencies of the running target. No target: nothing inside a .do, 'all' \
             at top level."
        }
        Tool::Ifcreate => {
            "Inside a .do: rebuild the running target when one of these files comes into \
             existence. The files must not exist now. No file: nothing to do."
        }
        Tool::Always => {
            "Inside a .do: the running target is out of date in every new build (built once per build)."
        }
        Tool::Stamp => {
            "Inside a .do: record the BLAKE3 hash of stdin. For a target that writes no output, \
             the stamp stands for its content: it is up to date while its dependencies are, and \
             its dependants are rebuilt only when the stamp changes."
        }
        Tool::Whichdo => {
            "Print the .do files redo tries for the target, in search order, the one it would use \
             last. Exit status 1 when none exists."
        }
        Tool::Targets => {
            "Print every known target (a file with a .redo/NAME.rec state file) beneath the directories (default: the current one), relative to the current directory, sorted."
        }
        Tool::Sources => {
            "Print every source file (a dependency that is not a target, .do files included) of the targets, transitively (default: all known targets beneath the current directory), sorted."
        }
        Tool::Ood => {
            "Print every target that a build would find out of date (default: all known targets \
             beneath the current directory), without running anything. A target whose dependency \
             is out of date is listed too."
        }
        Tool::Affects => {
            "Print every known target beneath the current directory that would be rebuilt if one of the files changed (or appeared), transitively."
        }
        Tool::Dot => {
            "Print the dependency graph of the targets (default: all known targets beneath the \
             current directory) in Graphviz dot: solid edges for ifchange, dotted for ifcreate, \
             targets as boxes, always/stamp marked; paths outside the project root are \
             absolute. Render with: redo-dot | dot -Tsvg >deps.svg"
        }
        Tool::Log => {
            "Print the stderr a target's last build wrote, kept with redo -k or REDO_LOGS=1, with readable timestamps."
        }
        Tool::Cleanup => {
            "Remove, beneath the current directory: tmp = temporary files of interrupted builds, \
             log = kept logs, lock = lock files, full = all of redo's state (the .redo \
             directories, keeping a .redo/top marker), temporary files, and the outputs redo built \
             that are unchanged since (so that the next build rebuilds them). Refused while a build runs."
        }
        Tool::Depfix => {
            "Re-record the size, inode and times of every dependency whose content is unchanged \
             (after a copy, a checkout or a restore changed them), so the next build neither \
             rehashes nor rebuilds it. Changed files stay recorded as changed."
        }
    }
}

/// The full `--help` text.
pub fn help(tool: Tool) -> String {
    let mut s = format!(
        "usage: {}\n\n{}\n\nOptions:\n",
        synopsis(tool),
        purpose(tool)
    );
    if tool.builds() {
        s.push_str("  -j N             run up to N jobs at once, 0 = unlimited (default: $REDO_JOBS, else 1)\n");
        s.push_str("  --events=json    also write the build's events as JSON lines on stdout (contrib/events)\n");
        s.push_str("  --timings[=FILE] write an HTML report of where the build's time went (default:\n                   .redo/timings/ under the project root; --watch: one per round)\n");
        s.push_str(
            "  --trace=FILE     write the build's Chrome trace-event JSON (Perfetto) to FILE\n",
        );
    }
    for f in flags(tool).iter().flat_map(|t| t.iter()) {
        let dashes = if f.name.len() > 2 { "--" } else { "-" };
        s.push_str(&format!(
            "  {:<16} {}\n",
            format!("{dashes}{}", f.name),
            f.help
        ));
    }
    if tool == Tool::Redo {
        s.push_str("  --daemon-watch=off|on|overflow\n                   switch the daemon's file watcher off or on, or clear it (debugging)\n");
    }
    s.push_str("  -h, --help       print this help\n  --version        print the version\n");
    if tool.builds() {
        s.push_str(
            "\nEnvironment: REDO_JOBS, REDO_TOP_DIR, REDO_INODE_TRUST, REDO_NO_SYNC, REDO_MAKE,\n\
             REDO_STOP_IF_MODIFIED, REDO_LOGS, REDO_SILENT, REDO_TRACE, NO_COLOR (see README).\n",
        );
    }
    s
}

fn usage_error(tool: Tool, what: &str) -> Parsed {
    Parsed::Usage(format!(
        "{}: {what} (try '{} --help')",
        tool.name(),
        tool.name()
    ))
}

fn parse_bool(v: Option<&[u8]>) -> Option<bool> {
    match v {
        None | Some(b"1" | b"true" | b"t" | b"T" | b"TRUE" | b"True") => Some(true),
        Some(b"0" | b"false" | b"f" | b"F" | b"FALSE" | b"False") => Some(false),
        Some(_) => None,
    }
}

/// Parses `-j`'s value: from `-j=N`, `-jN` or the next argument.
fn jobs_value(
    tool: Tool,
    inline: Option<&[u8]>,
    args: &[OsString],
    i: &mut usize,
) -> Result<u32, Parsed> {
    let v: Vec<u8> = match inline {
        Some(v) => v.to_vec(),
        None if *i < args.len() => {
            *i += 1;
            args[*i - 1].as_bytes().to_vec()
        }
        None => return Err(usage_error(tool, "option -j needs a number")),
    };
    std::str::from_utf8(&v)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| {
            usage_error(
                tool,
                &format!("invalid -j value '{}'", String::from_utf8_lossy(&v)),
            )
        })
}

fn apply(inv: &mut Invocation, effect: Effect) {
    match effect {
        Effect::Export(env) => inv.exported.push(env),
        Effect::Trace => inv.build.trace = true,
        Effect::Force => inv.build.force = true,
        // -no-progress implies -no-status.
        Effect::NoProgress => inv.exported.extend(["REDO_NO_PROGRESS", "REDO_NO_STATUS"]),
        Effect::DaemonStatus => inv.daemon = DaemonVerb::Status,
        Effect::DaemonStop => inv.daemon = DaemonVerb::Stop,
        Effect::Recursive => inv.recursive = true,
        Effect::Details => inv.details = true,
        Effect::DryRun => inv.dry_run = true,
        Effect::Watch => inv.build.watch = true,
        Effect::NoOutside => inv.no_outside = true,
        Effect::Symlinks => inv.symlinks = true,
    }
}

/// Parses `args` (argv without argv[0]) for `tool`.
pub fn parse(tool: Tool, args: &[OsString]) -> Parsed {
    let mut inv = Invocation::default();
    let mut i = 0;
    while i < args.len() {
        let raw = args[i].as_bytes();
        if raw == b"--" {
            i += 1;
            break;
        }
        if raw.len() < 2 || raw[0] != b'-' {
            break;
        }
        let word = raw.strip_prefix(b"--").unwrap_or(&raw[1..]);
        let (name, value) = match word.iter().position(|&b| b == b'=') {
            Some(p) => (&word[..p], Some(&word[p + 1..])),
            None => (word, None),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        i += 1;
        match name.as_str() {
            "h" | "help" => return Parsed::Help(help(tool)),
            "version" => return Parsed::Version,
            "daemon-watch" if tool == Tool::Redo => match value {
                Some(b"off") => inv.watch_op = Some(redo_proto::WatchOp::Off),
                Some(b"on") => inv.watch_op = Some(redo_proto::WatchOp::On),
                Some(b"overflow") => inv.watch_op = Some(redo_proto::WatchOp::Overflow),
                _ => return usage_error(tool, "--daemon-watch takes off, on or overflow"),
            },
            "events" if tool.builds() => match value {
                Some(b"json") => inv.build.events = true,
                _ => return usage_error(tool, "--events takes one value: --events=json"),
            },
            "timings" if tool.builds() => match value {
                None => inv.build.timings = Some(Timings::Default),
                Some([]) => return usage_error(tool, "--timings=FILE needs a file name"),
                Some(v) => inv.build.timings = Some(Timings::File(ByteBuf::from(v.to_vec()))),
            },
            "trace" if tool.builds() => match value {
                Some(v) if !v.is_empty() => inv.build.trace_file = Some(ByteBuf::from(v.to_vec())),
                _ => return usage_error(tool, "--trace needs a file: --trace=FILE"),
            },
            "j" if tool.builds() => match jobs_value(tool, value, args, &mut i) {
                Ok(n) => inv.build.jobs = Some(n),
                Err(e) => return e,
            },
            n if tool.builds()
                && n.len() > 1
                && n.starts_with('j')
                && n[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                match jobs_value(tool, Some(&n.as_bytes()[1..]), args, &mut i) {
                    Ok(j) => inv.build.jobs = Some(j),
                    Err(e) => return e,
                }
            }
            n => {
                let Some(flag) = flags(tool)
                    .iter()
                    .flat_map(|t| t.iter())
                    .find(|f| f.name == n)
                else {
                    return usage_error(
                        tool,
                        &format!("unknown option '{}'", String::from_utf8_lossy(raw)),
                    );
                };
                match parse_bool(value) {
                    Some(true) => apply(&mut inv, flag.effect),
                    Some(false) => {}
                    None => {
                        let v = String::from_utf8_lossy(value.unwrap_or_default());
                        return usage_error(tool, &format!("invalid boolean value '{v}' for -{n}"));
                    }
                }
            }
        }
    }
    inv.operands = args[i..].to_vec();
    let n = inv.operands.len();
    let arity = match tool {
        Tool::Always | Tool::Depfix if n > 0 => Some("takes no arguments"),
        Tool::Stamp if n > 0 => Some("takes no arguments; it reads stdin"),
        Tool::Whichdo | Tool::Log if n != 1 => Some("single target expected"),
        Tool::Affects if n == 0 => Some("at least one file expected"),
        Tool::Cleanup if n == 0 => Some("what to remove expected: tmp, log, lock or full"),
        _ => None,
    };
    if let Some(msg) = arity {
        return usage_error(tool, msg);
    }
    if tool == Tool::Cleanup {
        for op in &inv.operands {
            let what = match op.as_bytes() {
                b"tmp" => CleanupWhat::Tmp,
                b"log" => CleanupWhat::Log,
                b"lock" => CleanupWhat::Lock,
                b"full" => CleanupWhat::Full,
                other => {
                    return usage_error(
                        tool,
                        &format!(
                            "unknown kind '{}': use tmp, log, lock or full",
                            String::from_utf8_lossy(other)
                        ),
                    );
                }
            };
            inv.cleanup.push(what);
        }
    }
    if (inv.daemon != DaemonVerb::None || inv.watch_op.is_some()) && n > 0 {
        return usage_error(tool, "--daemon-status and --daemon-stop take no targets");
    }
    if inv.symlinks && n > 0 {
        return usage_error(tool, "-symlinks takes no targets");
    }
    Parsed::Run(Box::new(inv))
}

/// `true` when `s` is exactly `1`: goredo recognises its environment toggles only then.
pub fn env_is_one(v: Option<&OsStr>) -> bool {
    v.is_some_and(|v| v.as_bytes() == b"1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(tool: Tool, args: &[&str]) -> Parsed {
        parse(tool, &args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn run(tool: Tool, args: &[&str]) -> Invocation {
        match p(tool, args) {
            Parsed::Run(i) => *i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn go_flag_forms() {
        let i = run(Tool::Ifchange, &["-j", "4", "--xx", "-k", "a", "-s", "b"]);
        assert_eq!(i.build.jobs, Some(4));
        assert_eq!(i.exported, vec!["REDO_TRACE", "REDO_LOGS"]);
        assert_eq!(
            i.operands,
            vec![OsString::from("a"), "-s".into(), "b".into()]
        );
        assert_eq!(run(Tool::Redo, &["-j=0"]).build.jobs, Some(0));
        assert_eq!(run(Tool::Redo, &["-j2", "x"]).build.jobs, Some(2));
        let x = run(Tool::Redo, &["-x", "-f", "--", "-weird"]);
        assert!(x.build.trace && x.build.force);
        assert_eq!(x.operands, vec![OsString::from("-weird")]);
        assert_eq!(
            run(Tool::Redo, &["-no-progress"]).exported,
            vec!["REDO_NO_PROGRESS", "REDO_NO_STATUS"]
        );
        assert!(run(Tool::Redo, &["-k=false"]).exported.is_empty());
        assert!(run(Tool::Ifchange, &["--events=json", "x"]).build.events);
        assert!(matches!(p(Tool::Redo, &["--events=xml"]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Redo, &["--events"]), Parsed::Usage(_)));
    }

    #[test]
    fn timings_and_trace() {
        assert_eq!(
            run(Tool::Redo, &["--timings", "all"]).build.timings,
            Some(Timings::Default)
        );
        let i = run(Tool::Ifchange, &["--timings=t.html", "--trace=t.json", "x"]);
        assert_eq!(
            i.build.timings,
            Some(Timings::File(ByteBuf::from(b"t.html".to_vec())))
        );
        assert_eq!(i.build.trace_file, Some(ByteBuf::from(b"t.json".to_vec())));
        assert_eq!(i.operands, ["x"]);
        assert!(!i.build.trace, "--trace=FILE is not -x");
        assert!(matches!(p(Tool::Redo, &["--timings="]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Redo, &["--trace"]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Redo, &["--trace="]), Parsed::Usage(_)));
        assert!(matches!(
            p(Tool::Log, &["--timings", "t"]),
            Parsed::Usage(_)
        ));
        let help = help(Tool::Ifchange);
        assert!(help.contains("--timings[=FILE]") && help.contains("--trace=FILE"));
    }

    #[test]
    fn errors_and_help() {
        assert!(
            matches!(p(Tool::Redo, &["-q"]), Parsed::Usage(m) if m.contains("unknown option '-q'") && m.contains("redo --help"))
        );
        assert!(matches!(p(Tool::Redo, &["-j"]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Redo, &["-j", "many"]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Ifcreate, &["-k", "x"]), Parsed::Usage(_)));
        assert!(
            matches!(p(Tool::Whichdo, &["a", "b"]), Parsed::Usage(m) if m.contains("single target expected"))
        );
        assert!(matches!(p(Tool::Always, &["x"]), Parsed::Usage(_)));
        assert!(
            matches!(p(Tool::Ifchange, &["--help"]), Parsed::Help(h) if h.starts_with("usage: redo-ifchange"))
        );
        assert!(matches!(p(Tool::Stamp, &["-h"]), Parsed::Help(_)));
        assert_eq!(p(Tool::Whichdo, &["--version"]), Parsed::Version);
        assert_eq!(run(Tool::Redo, &["--daemon-stop"]).daemon, DaemonVerb::Stop);
        assert!(matches!(
            p(Tool::Ifchange, &["--daemon-stop"]),
            Parsed::Usage(_)
        ));
        assert!(run(Tool::Redo, &["-symlinks"]).symlinks);
        assert!(matches!(
            p(Tool::Redo, &["-symlinks", "x"]),
            Parsed::Usage(_)
        ));
        assert!(matches!(
            p(Tool::Ifchange, &["-symlinks"]),
            Parsed::Usage(_)
        ));
    }

    #[test]
    fn query_and_maintenance_tools() {
        let d = run(Tool::Dot, &["--no-outside", "all"]);
        assert!(d.no_outside && d.operands == ["all"]);
        assert!(!run(Tool::Dot, &["all"]).no_outside);
        let l = run(Tool::Log, &["-r", "-c", "t"]);
        assert!(l.recursive && l.details);
        assert!(matches!(p(Tool::Log, &[]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Log, &["-k", "t"]), Parsed::Usage(_)));
        let c = run(Tool::Cleanup, &["-n", "tmp", "full"]);
        assert!(c.dry_run);
        assert_eq!(c.cleanup, vec![CleanupWhat::Tmp, CleanupWhat::Full]);
        assert!(
            matches!(p(Tool::Cleanup, &["everything"]), Parsed::Usage(m) if m.contains("unknown kind 'everything'"))
        );
        assert!(matches!(p(Tool::Cleanup, &[]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Affects, &[]), Parsed::Usage(_)));
        assert!(matches!(p(Tool::Depfix, &["x"]), Parsed::Usage(_)));
        assert!(run(Tool::Targets, &[]).operands.is_empty());
        // `redo-ifchange $(list)` / `redo-ifcreate $(list)` of an empty list: nothing to do.
        assert!(run(Tool::Ifcreate, &[]).operands.is_empty());
        assert!(run(Tool::Ifchange, &[]).operands.is_empty());
        for tool in &Tool::ALL {
            let Parsed::Help(h) = p(*tool, &["--help"]) else {
                panic!()
            };
            assert!(h.starts_with(&format!("usage: {}", tool.name())), "{h}");
            assert!(h.contains("Options:") && h.contains("--help"));
        }
    }
}
