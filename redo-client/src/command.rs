//! What a command line asks the daemon for: a [`Command`] of the protocol.

use crate::args::{DaemonVerb, Invocation};
use crate::{Error, Tool, daemon};
use redo_proto::msg::ByteBuf;
use redo_proto::{Build, BuildMode, BuildOptions, Command, QueryKind, Timings};
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

fn bytes(v: Vec<OsString>) -> Vec<ByteBuf> {
    v.into_iter().map(|s| ByteBuf::from(s.into_vec())).collect()
}

/// The first operand (the commands taking one target; the parser checked there is one).
fn target(inv: Invocation) -> ByteBuf {
    ByteBuf::from(
        inv.operands
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_vec(),
    )
}

fn query(kind: QueryKind, inv: Invocation) -> Command {
    let mut args = bytes(inv.operands);
    if inv.no_outside {
        args.insert(0, ByteBuf::from(redo_proto::QUERY_NO_OUTSIDE.to_vec()));
    }
    Command::Query { kind, args }
}

/// The request `tool` makes of the parsed command line. `redo-stamp` reads its stdin here.
pub fn of(tool: Tool, inv: Invocation) -> Result<Command, Error> {
    Ok(match tool {
        Tool::Redo if inv.daemon == DaemonVerb::Status => Command::DaemonStatus,
        Tool::Redo if inv.daemon == DaemonVerb::Stop => Command::DaemonStop,
        Tool::Redo if inv.watch_op.is_some() => {
            Command::WatchControl(inv.watch_op.unwrap_or(redo_proto::WatchOp::On))
        }
        Tool::Redo | Tool::Ifchange => Command::Build(Build {
            mode: if tool == Tool::Redo {
                BuildMode::Redo
            } else {
                BuildMode::Ifchange
            },
            targets: inv.operands.iter().map(|o| o.as_bytes()).collect(),
            options: absolute_reports(inv.build)?,
        }),
        Tool::Ifcreate => Command::Ifcreate {
            targets: bytes(inv.operands),
        },
        Tool::Always => Command::Always,
        Tool::Stamp => Command::Stamp {
            hash: hash_stdin()?,
        },
        Tool::Whichdo => Command::WhichDo {
            target: target(inv),
        },
        Tool::Targets => query(QueryKind::Targets, inv),
        Tool::Sources => query(QueryKind::Sources, inv),
        Tool::Ood => query(QueryKind::Ood, inv),
        Tool::Affects => query(QueryKind::Affects, inv),
        Tool::Dot => query(QueryKind::Dot, inv),
        Tool::Log => Command::Log {
            recursive: inv.recursive,
            details: inv.details,
            target: target(inv),
        },
        Tool::Cleanup => Command::Cleanup {
            what: inv.cleanup,
            dry_run: inv.dry_run,
        },
        Tool::Depfix => Command::Depfix,
    })
}

/// `--timings=FILE` and `--trace=FILE` made absolute against this client's directory: the
/// daemon's own directory is `/`. Asks for the directory only when a file is relative.
fn absolute_reports(mut o: BuildOptions) -> Result<BuildOptions, Error> {
    let relative = |f: &ByteBuf| !f.starts_with(b"/");
    let timings = match &mut o.timings {
        Some(Timings::File(f)) => Some(f),
        _ => None,
    };
    let files: Vec<&mut ByteBuf> = timings
        .into_iter()
        .chain(o.trace_file.as_mut())
        .filter(|f| relative(f))
        .collect();
    if files.is_empty() {
        return Ok(o);
    }
    let cwd = daemon::working_dir().map_err(Error::WorkingDir)?;
    for f in files {
        let abs = cwd.join(OsStr::from_bytes(f));
        *f = ByteBuf::from(abs.into_os_string().into_vec());
    }
    Ok(o)
}

fn hash_stdin() -> Result<[u8; 32], Error> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Stdin(e)),
        }
    }
    Ok(*hasher.finalize().as_bytes())
}
