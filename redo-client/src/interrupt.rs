//! Ctrl-C on a top-level command: the build stops (the daemon cancels what only this command
//! waited for as soon as its connection closes, killing those `.do` process groups), and the
//! terminal is left clean: the status line is erased and one `NAME: interrupted` line says
//! what happened. Then the client dies of SIGINT itself, as an interrupted program should, so
//! that a shell loop or a `make` running it stops too (exit status 130 to a shell).
//!
//! Only a top-level command: a client inside a `.do` is never in the terminal's foreground
//! process group (the daemon starts each `.do` in a group of its own), and its job ends with
//! the build anyway.

use std::sync::OnceLock;

/// What the handler writes: prepared before it is installed (a handler may not allocate).
static MESSAGE: OnceLock<Vec<u8>> = OnceLock::new();

/// Installs the handler for the command `name`.
#[allow(unsafe_code)]
pub fn install(name: &str) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let tty = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    // On a terminal: back to the start of the line and erase it (the status line, if drawn).
    let mut msg = if tty {
        b"\r\x1b[K".to_vec()
    } else {
        Vec::new()
    };
    msg.extend_from_slice(name.as_bytes());
    msg.extend_from_slice(b": interrupted\n");
    let _ = MESSAGE.set(msg);
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only calls async-signal-safe functions (write, sigaction, raise)
    // and reads a `OnceLock` set before it was installed.
    let _ = unsafe { sigaction(Signal::SIGINT, &action) };
}

#[allow(unsafe_code)]
extern "C" fn on_sigint(_: nix::libc::c_int) {
    use nix::libc;
    if let Some(m) = MESSAGE.get() {
        // SAFETY: write(2) of a buffer that lives for the whole program; async-signal-safe.
        let _ = unsafe { libc::write(2, m.as_ptr().cast(), m.len()) };
    }
    // SAFETY: restoring the default action and raising the signal again are async-signal-safe;
    // the process then ends as killed by SIGINT.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::raise(libc::SIGINT);
    }
}
