//! Command-line parsing, Go `flag` style as goredo does it: options are words with one or two
//! dashes (`-k`, `--k`), values as `-j 4`, `-j=4` (and `-j4`), parsing stops at the first
//! non-option or at `--`. `-xx` is an option of its own, not two `-x`.
//!
//! Options that nested commands inherit are turned into environment entries (`-k` →
//! `REDO_LOGS=1`), exactly as goredo exports them, so the daemon reads one source of truth.

use crate::Tool;
use redo_proto::BuildOptions;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Invocation),
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
}

#[derive(Debug, PartialEq, Eq, Default, Clone, Copy)]
pub enum DaemonVerb {
    #[default]
    None,
    Status,
    Stop,
}

/// A boolean build option and the variable it is exported as (None: this invocation only).
struct Flag {
    name: &'static str,
    env: Option<&'static str>,
    help: &'static str,
}

const BUILD_FLAGS: &[Flag] = &[
    Flag {
        name: "x",
        env: None,
        help: "trace (sh -x) the .do files this command starts",
    },
    Flag {
        name: "xx",
        env: Some("REDO_TRACE"),
        help: "trace (sh -x) every .do file, nested ones too (REDO_TRACE=1)",
    },
    Flag {
        name: "k",
        env: Some("REDO_LOGS"),
        help: "keep each job's stderr in .redo/TARGET.log (REDO_LOGS=1)",
    },
    Flag {
        name: "s",
        env: Some("REDO_SILENT"),
        help: "silent: do not print the jobs' stderr (REDO_SILENT=1)",
    },
    Flag {
        name: "f",
        env: None,
        help: "forced: rebuild the targets without the out-of-date check",
    },
    Flag {
        name: "d",
        env: Some("REDO_DEBUG"),
        help: "print debug messages (REDO_DEBUG=1)",
    },
    Flag {
        name: "log-pid",
        env: Some("REDO_LOG_PID"),
        help: "prefix job stderr lines with the .do's pid (REDO_LOG_PID=1)",
    },
    Flag {
        name: "log-wait",
        env: Some("REDO_LOG_WAIT"),
        help: "print a line when a job is about to run (REDO_LOG_WAIT=1)",
    },
    Flag {
        name: "log-lock",
        env: Some("REDO_LOG_LOCK"),
        help: "print lock messages (REDO_LOG_LOCK=1)",
    },
    Flag {
        name: "log-js",
        env: Some("REDO_LOG_JS"),
        help: "print job token messages (REDO_LOG_JS=1)",
    },
    Flag {
        name: "no-progress",
        env: Some("REDO_NO_PROGRESS"),
        help: "no 'redo ...' completion lines, no status line (REDO_NO_PROGRESS=1)",
    },
    Flag {
        name: "no-status",
        env: Some("REDO_NO_STATUS"),
        help: "no status line (REDO_NO_STATUS=1)",
    },
];

const BUILD_ENV_HELP: &str = "\
Environment: REDO_JOBS, REDO_TOP_DIR, REDO_INODE_TRUST, REDO_NO_SYNC,
REDO_STOP_IF_MODIFIED, REDO_LOGS, REDO_SILENT, REDO_TRACE, NO_COLOR (see README).";

fn synopsis(tool: Tool) -> &'static str {
    match tool {
        Tool::Redo => "redo [options] [target ...]",
        Tool::Ifchange => "redo-ifchange [options] target ...",
        Tool::Ifcreate => "redo-ifcreate file ...",
        Tool::Always => "redo-always",
        Tool::Stamp => "redo-stamp <data",
        Tool::Whichdo => "redo-whichdo target",
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
             them as dependencies of the running target."
        }
        Tool::Ifcreate => {
            "Inside a .do: rebuild the running target when one of these files comes into \
             existence. The files must not exist now."
        }
        Tool::Always => {
            "Inside a .do: the running target is out of date in every new build (built once per build)."
        }
        Tool::Stamp => {
            "Inside a .do: record the BLAKE3 hash of stdin (kept for compatibility, never consulted)."
        }
        Tool::Whichdo => {
            "Print the .do files redo tries for the target, in search order, the one it would use \
             last. Exit status 1 when none exists."
        }
    }
}

/// The full `--help` text.
pub fn help(tool: Tool) -> String {
    let mut s = format!("usage: {}\n\n{}\n", synopsis(tool), purpose(tool));
    if tool.builds() {
        s.push_str("\nOptions:\n  -j N           run up to N jobs at once, 0 = unlimited (default: $REDO_JOBS, else 1)\n");
        for f in BUILD_FLAGS {
            s.push_str(&format!("  -{:<13} {}\n", f.name, f.help));
        }
        if tool == Tool::Redo {
            s.push_str("  --daemon-status  print the state of this project's redod\n");
            s.push_str("  --daemon-stop    ask this project's redod to finish its jobs and exit\n");
        }
        s.push_str("  -h, --help     print this help\n  --version      print the version\n\n");
        s.push_str(BUILD_ENV_HELP);
        s.push('\n');
    } else {
        s.push_str(
            "\nOptions:\n  -h, --help     print this help\n  --version      print the version\n",
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
        let word = if raw.starts_with(b"--") {
            &raw[2..]
        } else {
            &raw[1..]
        };
        let (name, value) = match word.iter().position(|&b| b == b'=') {
            Some(p) => (&word[..p], Some(&word[p + 1..])),
            None => (word, None),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        i += 1;
        match name.as_str() {
            "h" | "help" => return Parsed::Help(help(tool)),
            "version" => return Parsed::Version,
            "daemon-status" if tool == Tool::Redo => inv.daemon = DaemonVerb::Status,
            "daemon-stop" if tool == Tool::Redo => inv.daemon = DaemonVerb::Stop,
            "j" if tool.builds() => {
                let v: Vec<u8> = match value {
                    Some(v) => v.to_vec(),
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].as_bytes().to_vec()
                    }
                    None => return usage_error(tool, "option -j needs a number"),
                };
                match std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    Some(n) => inv.build.jobs = Some(n),
                    None => {
                        return usage_error(
                            tool,
                            &format!("invalid -j value '{}'", String::from_utf8_lossy(&v)),
                        );
                    }
                }
            }
            n if tool.builds()
                && n.len() > 1
                && n.starts_with('j')
                && n[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                match n[1..].parse::<u32>() {
                    Ok(j) => inv.build.jobs = Some(j),
                    Err(_) => return usage_error(tool, &format!("invalid -j value '{}'", &n[1..])),
                }
            }
            n => {
                let Some(flag) = BUILD_FLAGS
                    .iter()
                    .find(|f| f.name == n)
                    .filter(|_| tool.builds())
                else {
                    return usage_error(
                        tool,
                        &format!("unknown option '{}'", String::from_utf8_lossy(raw)),
                    );
                };
                let on = match value {
                    None => true,
                    Some(b"1" | b"true" | b"t" | b"T" | b"TRUE" | b"True") => true,
                    Some(b"0" | b"false" | b"f" | b"F" | b"FALSE" | b"False") => false,
                    Some(v) => {
                        return usage_error(
                            tool,
                            &format!(
                                "invalid boolean value '{}' for -{n}",
                                String::from_utf8_lossy(v)
                            ),
                        );
                    }
                };
                if on {
                    match flag.name {
                        "x" => inv.build.trace = true,
                        "f" => inv.build.force = true,
                        _ => {}
                    }
                    if let Some(env) = flag.env {
                        inv.exported.push(env);
                    }
                    // -no-progress implies -no-status.
                    if flag.name == "no-progress" {
                        inv.exported.push("REDO_NO_STATUS");
                    }
                }
            }
        }
    }
    inv.operands = args[i..].to_vec();
    match tool {
        Tool::Always if !inv.operands.is_empty() => return usage_error(tool, "takes no arguments"),
        Tool::Stamp if !inv.operands.is_empty() => {
            return usage_error(tool, "takes no arguments; it reads stdin");
        }
        Tool::Whichdo if inv.operands.len() != 1 => {
            return usage_error(tool, "single target expected");
        }
        Tool::Ifcreate if inv.operands.is_empty() => {
            return usage_error(tool, "at least one file expected");
        }
        _ => {}
    }
    if inv.daemon != DaemonVerb::None && !inv.operands.is_empty() {
        return usage_error(tool, "--daemon-status and --daemon-stop take no targets");
    }
    Parsed::Run(inv)
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
            Parsed::Run(i) => i,
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
    }
}
