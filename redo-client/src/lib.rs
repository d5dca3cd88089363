//! The redo clients: one small, synchronous, std-only library behind the one `redo` binary,
//! which is every command: it runs as the one it is called by ([`Tool::called_as`]; the
//! `redo-*` commands are links to it).
//!
//! A client parses its command line ([`args`]), turns it into a request ([`command`],
//! [`request`]), finds the project's daemon, starting it when absent ([`route`], [`daemon`],
//! [`launch`]), sends one request carrying argv, cwd, environment, umask and parent job, relays
//! the events the daemon streams back to its own stderr/stdout, and exits with the code the
//! daemon sends. It holds no build logic: it is the hot path of every nested `redo-ifchange`, so
//! it does as little as a process can (no runtime, a handful of syscalls, one write).

pub mod args;
pub mod command;
pub mod daemon;
pub mod error;
pub mod exchange;
pub mod interrupt;
pub mod launch;
pub mod make;
pub mod request;
pub mod route;
pub mod sweep;
pub mod symlinks;
pub mod tool;

pub use error::Error;
pub use tool::Tool;

use args::Parsed;
use std::ffi::OsString;
use std::io::Write;

/// The entry point of the `redo` binary, in place of Rust's `fn main`:
///
/// ```ignore
/// #![cfg_attr(not(test), no_main)]
/// redo_client::entry!();
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
    () => {
        /// The C entry point (see `redo_client::entry!`). Not in the binary's test harness,
        /// which has a `main` of its own.
        #[cfg(not(test))]
        #[allow(unsafe_code)]
        // SAFETY: the only `main` symbol of the binary, which is `#![no_main]`: Rust's own
        // `main` is not generated.
        #[unsafe(no_mangle)]
        pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::start()
        }
    };
}

/// What the client needs of Rust's start-up, then the client itself, for [`entry!`]: the
/// standard descriptors 0, 1 and 2 opened on `/dev/null` when closed (else the socket to the
/// daemon could become fd 2, and an error message would be written into the protocol), and
/// SIGPIPE ignored (writing to a closed pipe is an error the client handles, `| head`, not a
/// signal that kills it). A panic exits 101, as from Rust's `main`.
///
/// The one place the client exits: everything below returns an exit code or an [`Error`],
/// printed here after the command's name (exit 1).
pub fn start() -> ! {
    standard_fds();
    ignore_sigpipe();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let program = argv.first().cloned().unwrap_or_default();
    // The panic's message is printed by the panic hook, as usual.
    let code = std::panic::catch_unwind(|| {
        let (name, result) = match Tool::called_as(&program) {
            Ok(tool) => (tool.name(), main(tool, &argv)),
            Err(e) => ("redo", Err(e)),
        };
        result.unwrap_or_else(|e| {
            report(name, &e);
            1
        })
    })
    .unwrap_or(101);
    std::process::exit(code)
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

/// `NAME: message` on stderr.
fn report(name: &str, e: &Error) {
    let _ = writeln!(std::io::stderr(), "{name}: {e}");
}

/// The client: parses the command line, sends the request, relays the answer; returns the
/// exit code.
fn main(tool: Tool, argv: &[OsString]) -> Result<i32, Error> {
    let inv = match args::parse(tool, argv.get(1..).unwrap_or_default()) {
        Parsed::Run(inv) => *inv,
        Parsed::Help(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            return Ok(0);
        }
        Parsed::Version => {
            println!(
                "{} {} (redo with a build daemon; goredo 1.x compatible)",
                tool.name(),
                env!("CARGO_PKG_VERSION")
            );
            return Ok(0);
        }
        Parsed::Usage(line) => {
            let _ = writeln!(std::io::stderr(), "{line}");
            return Ok(2);
        }
    };
    if inv.symlinks {
        return symlinks::make(argv.first().map(OsString::as_os_str).unwrap_or_default());
    }
    if tool == Tool::Ifcreate && inv.operands.is_empty() {
        // Nothing to record (`redo-ifcreate $(list)` of an empty list): no daemon needed.
        return Ok(0);
    }
    let exported = inv.exported.clone();
    let command = command::of(tool, inv)?;
    route::run(command, argv, &exported)
}
