//! The request a client sends, encoded once: its command, argv, working directory,
//! environment, umask, the job it runs inside, make's jobserver and its terminal.

use crate::{Error, daemon};
use redo_proto::codec::encode_frame;
use redo_proto::msg::ByteBuf;
use redo_proto::{Command, Request, Terminal};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A request ready to go, and what the client found out about itself on the way.
pub struct Outgoing {
    /// The request's frame, sent after the hello in the same write.
    pub frame: Vec<u8>,
    pub cwd: PathBuf,
    /// This executable (`/proc/self/exe`, read once): the `redod` next to it is the one the
    /// client expects and starts.
    pub exe: Option<PathBuf>,
    /// `REDO_SOCKET` when this client runs inside a `.do`.
    pub nested: Option<PathBuf>,
}

/// Encodes `command` with everything the daemon needs to know about this process.
pub fn prepare(
    command: Command,
    argv: &[OsString],
    exported: &[&'static str],
) -> Result<Outgoing, Error> {
    let cwd = daemon::working_dir().map_err(Error::WorkingDir)?;
    let exe = std::env::current_exe().ok();
    let client_dir = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let nested = daemon::nested_endpoint();
    let parent_job = match &nested {
        Some((_, job)) => Some(
            job.to_str()
                .and_then(|j| j.parse::<u64>().ok())
                .ok_or_else(|| Error::BadJob(daemon::lossy(job)))?,
        ),
        None => None,
    };
    let request = Request {
        command,
        program: ByteBuf::from(
            argv.first()
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default(),
        ),
        cwd: ByteBuf::from(cwd.as_os_str().as_bytes().to_vec()),
        env: environment(exported),
        umask: read_umask(),
        parent_job,
        // Only a top-level build can take make's tokens; a nested one belongs to its build.
        make_jobserver: if nested.is_none() {
            crate::make::from_env()
        } else {
            None
        },
        client_dir: ByteBuf::from(client_dir),
        terminal: terminal(),
    };
    let mut frame = Vec::new();
    encode_frame(&request, &mut frame).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(Outgoing {
        frame,
        cwd,
        exe,
        nested: nested.map(|(socket, _)| socket),
    })
}

fn read_umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

fn environment(exported: &[&'static str]) -> Vec<(ByteBuf, ByteBuf)> {
    let mut env: Vec<(ByteBuf, ByteBuf)> = std::env::vars_os()
        .filter(|(k, _)| !exported.iter().any(|e| k.as_bytes() == e.as_bytes()))
        .map(|(k, v)| (ByteBuf::from(k.into_vec()), ByteBuf::from(v.into_vec())))
        .collect();
    for e in exported {
        env.push((
            ByteBuf::from(e.as_bytes().to_vec()),
            ByteBuf::from(b"1".to_vec()),
        ));
    }
    env
}

fn terminal() -> Terminal {
    let stderr_is_tty = nix::unistd::isatty(io::stderr()).unwrap_or(false);
    // `dev_t`/`ino_t` are unsigned 64-bit on Linux; the casts only widen elsewhere.
    #[allow(clippy::useless_conversion)]
    let stderr = nix::sys::stat::fstat(io::stderr())
        .ok()
        .map(|st| (u64::from(st.st_dev), u64::from(st.st_ino)));
    Terminal {
        stderr_is_tty,
        columns: if stderr_is_tty { columns() } else { 0 },
        stderr,
    }
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// Width of the terminal on stderr (for the status line), 0 when unknown.
#[allow(unsafe_code)]
fn columns() -> u16 {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; fd 2 is only read.
    match unsafe { tiocgwinsz(2, &mut ws) } {
        Ok(_) => ws.ws_col,
        Err(_) => 0,
    }
}
