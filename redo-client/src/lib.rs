//! The redo clients: one small, synchronous, std-only library behind every `redo*` binary.
//!
//! A client parses its command line, finds the project's daemon (starting it when absent, see
//! [`daemon`]), sends one request carrying argv, cwd, environment, umask and parent job, relays
//! the events the daemon streams back to its own stderr/stdout, and exits with the code the
//! daemon sends. It holds no build logic: it is the hot path of every nested `redo-ifchange`, so
//! it does as little as a process can (no runtime, a handful of syscalls, one write).

pub mod args;
pub mod daemon;
pub mod exchange;
pub mod make;

use args::{DaemonVerb, Parsed};
use redo_proto::msg::ByteBuf;
use redo_proto::{Build, BuildMode, Command, QueryKind};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The client commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Redo,
    Ifchange,
    Ifcreate,
    Always,
    Stamp,
    Whichdo,
    Targets,
    Sources,
    Ood,
    Affects,
    Dot,
    Log,
    Cleanup,
    Depfix,
}

impl Tool {
    pub const ALL: &'static [Tool] = &[
        Tool::Redo,
        Tool::Ifchange,
        Tool::Ifcreate,
        Tool::Always,
        Tool::Stamp,
        Tool::Whichdo,
        Tool::Targets,
        Tool::Sources,
        Tool::Ood,
        Tool::Affects,
        Tool::Dot,
        Tool::Log,
        Tool::Cleanup,
        Tool::Depfix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Redo => "redo",
            Tool::Ifchange => "redo-ifchange",
            Tool::Ifcreate => "redo-ifcreate",
            Tool::Always => "redo-always",
            Tool::Stamp => "redo-stamp",
            Tool::Whichdo => "redo-whichdo",
            Tool::Targets => "redo-targets",
            Tool::Sources => "redo-sources",
            Tool::Ood => "redo-ood",
            Tool::Affects => "redo-affects",
            Tool::Dot => "redo-dot",
            Tool::Log => "redo-log",
            Tool::Cleanup => "redo-cleanup",
            Tool::Depfix => "redo-depfix",
        }
    }

    /// Commands that take the build options (-j, -x, -k, ...).
    pub fn builds(self) -> bool {
        matches!(self, Tool::Redo | Tool::Ifchange)
    }
}

/// Prints `msg` prefixed with the tool name and exits 1.
pub fn fail(tool: Tool, msg: impl std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "{}: {msg}", tool.name());
    std::process::exit(1)
}

fn bytes(v: Vec<std::ffi::OsString>) -> Vec<ByteBuf> {
    v.into_iter().map(|s| ByteBuf::from(s.into_vec())).collect()
}

/// The entry point of every client binary, in place of Rust's `fn main`:
///
/// ```ignore
/// #![cfg_attr(not(test), no_main)]
/// redo_client::entry!(redo_client::Tool::Ifchange);
/// ```
///
/// A client is run for every `redo-ifchange` in every `.do`, and most of what it costs is
/// starting up. Rust's own start-up (`std::rt`) spends a quarter of it on a stack-overflow
/// handler: it reads `/proc/self/maps` to find the main thread's stack guard, maps a signal
/// stack and installs SIGSEGV/SIGBUS handlers, about 15 system calls (`perf stat` task-clock
/// of `redo-ifchange --version`, exec included: 330 µs with it, 220 µs without, on the
/// 2-core machine it was measured on). A client neither recurses nor runs threads, so it does
/// without: the C `main` this macro defines does what the client needs of that start-up,
/// [`start`], and runs the client.
/// `std::env::args_os` still works (glibc hands the arguments to std before `main`), and
/// `std::process::exit` still flushes stdout.
#[macro_export]
macro_rules! entry {
    ($tool:expr) => {
        /// The C entry point (see `redo_client::entry!`). Not in the binary's test harness,
        /// which has a `main` of its own.
        #[cfg(not(test))]
        #[allow(unsafe_code)]
        // SAFETY: the only `main` symbol of the binary, which is `#![no_main]`: Rust's own
        // `main` is not generated.
        #[unsafe(no_mangle)]
        pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::start($tool)
        }
    };
}

/// What the client needs of Rust's start-up, then the client itself, for [`entry!`]: the
/// standard descriptors 0, 1 and 2 opened on `/dev/null` when closed (else the socket to the
/// daemon could become fd 2, and an error message would be written into the protocol), and
/// SIGPIPE ignored (writing to a closed pipe is an error the client handles, `| head`, not a
/// signal that kills it). A panic exits 101, as from Rust's `main`.
pub fn start(tool: Tool) -> ! {
    standard_fds();
    ignore_sigpipe();
    // The panic's message is printed by the panic hook, as usual.
    std::process::exit(std::panic::catch_unwind(|| main(tool)).unwrap_or(101))
}

/// Opens `/dev/null` in place of whichever of fds 0, 1, 2 is closed; one `poll` when none is.
#[allow(unsafe_code)]
fn standard_fds() {
    use nix::libc;
    use std::os::fd::IntoRawFd;
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll only reads and writes the three `pollfd`s of this array, whose length it
    // is given.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0;
    for p in fds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: F_GETFD only reads the descriptor's flags; a closed one is EBADF.
            let flags = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            flags == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        };
        if closed {
            // The lowest free descriptor is the closed one: open takes its place and keeps it.
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                Ok(f) => {
                    let _ = f.into_raw_fd();
                }
                Err(_) => std::process::abort(),
            }
        }
    }
}

#[allow(unsafe_code)]
fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN runs no code in the process; nothing else handles SIGPIPE.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// The client: parses the command line, sends the request, relays the answer, exits.
fn main(tool: Tool) -> ! {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let inv = match args::parse(tool, argv.get(1..).unwrap_or_default()) {
        Parsed::Run(inv) => inv,
        Parsed::Help(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            std::process::exit(0)
        }
        Parsed::Version => {
            println!(
                "{} {} (redo with a build daemon; goredo 1.x compatible)",
                tool.name(),
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(0)
        }
        Parsed::Usage(line) => {
            let _ = writeln!(std::io::stderr(), "{line}");
            std::process::exit(2)
        }
    };
    let target = |inv: args::Invocation| {
        ByteBuf::from(
            inv.operands
                .into_iter()
                .next()
                .unwrap_or_default()
                .into_vec(),
        )
    };
    let query = |kind: QueryKind, inv: args::Invocation| {
        let mut args = bytes(inv.operands);
        if inv.no_outside {
            args.insert(0, ByteBuf::from(redo_proto::QUERY_NO_OUTSIDE.to_vec()));
        }
        Command::Query { kind, args }
    };
    if tool == Tool::Ifcreate && inv.operands.is_empty() {
        // Nothing to record (`redo-ifcreate $(list)` of an empty list): no daemon needed.
        std::process::exit(0)
    }
    let exported = inv.exported.clone();
    let command = match tool {
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
            options: inv.build,
        }),
        Tool::Ifcreate => Command::Ifcreate {
            targets: bytes(inv.operands),
        },
        Tool::Always => Command::Always,
        Tool::Stamp => Command::Stamp {
            hash: hash_stdin(tool),
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
    };
    let code = exchange::run(tool, command, &argv, &exported);
    std::process::exit(code)
}

fn hash_stdin(tool: Tool) -> [u8; 32] {
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
            Err(e) => fail(tool, format!("cannot read stdin: {e}")),
        }
    }
    *hasher.finalize().as_bytes()
}
