//! One request/response exchange with the daemon (see `redo_proto`'s crate docs for the order).

use crate::daemon;
use crate::{Tool, fail};
use redo_proto::codec::{encode_frame, read_frame};
use redo_proto::msg::ByteBuf;
use redo_proto::rundir;
use redo_proto::{
    Answer, ClientHello, Command, DaemonHello, Event, HELLO_LEN, Identity, Request, Terminal,
};
use std::ffi::OsString;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// Sends the request and relays the answer; returns the exit code.
pub fn run(tool: Tool, command: Command, argv: &[OsString], exported: &[&'static str]) -> i32 {
    let cwd = daemon::working_dir()
        .unwrap_or_else(|e| fail(tool, format!("cannot determine the working directory: {e}")));
    // Read once (a `readlink` of /proc/self/exe): the client's directory and the `redod` next
    // to it both come from it.
    let exe = std::env::current_exe().ok();
    let client_dir = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let nested = daemon::nested_endpoint();
    let parent_job = nested.as_ref().map(|(_, job)| {
        job.to_str()
            .and_then(|j| j.parse::<u64>().ok())
            .unwrap_or_else(|| {
                fail(
                    tool,
                    format!("invalid REDO_JOB value '{}'", daemon::lossy(job)),
                )
            })
    });
    let daemon_control = matches!(command, Command::DaemonStatus | Command::DaemonStop);
    let stop = matches!(command, Command::DaemonStop);
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
    if let Err(e) = encode_frame(&request, &mut frame) {
        fail(tool, format!("cannot encode the request: {e}"));
    }
    let daemon_bin = daemon::daemon_binary(exe.as_deref());
    let expected = daemon_bin
        .as_deref()
        .map(Identity::of_file)
        .unwrap_or(Identity::ANY);

    if let Some((socket, _)) = nested {
        let stream = daemon::connect(&socket).unwrap_or_else(|e| {
            fail(
                tool,
                format!(
                    "cannot reach the redo daemon at {} that runs this .do ({e}); the build was \
                     probably interrupted",
                    socket.display()
                ),
            )
        });
        let (stream, hello) = handshake(tool, stream, ClientHello::new(false, expected), &frame)
            .unwrap_or_else(|e| fail(tool, e));
        if hello.answer != Answer::Accepted {
            fail(
                tool,
                format!(
                    "the redod running this build is another version (protocol {}, binary {}) than \
                     this client expects (protocol {}, binary {}); let that build finish, then run \
                     'redo --daemon-stop'",
                    hello.version,
                    hello.identity,
                    redo_proto::PROTOCOL_VERSION,
                    expected
                ),
            );
        }
        return relay(tool, stream, None);
    }

    let root = daemon::project_root(&cwd, std::env::var_os("REDO_TOP_DIR").as_deref());
    let uid = nix::unistd::geteuid().as_raw();
    let rundir = rundir::runtime_dir(&root, std::env::var_os("XDG_RUNTIME_DIR").as_deref(), uid);
    let socket = rundir.join(rundir::SOCKET);

    if daemon_control {
        match daemon::rundir_state(&rundir) {
            Err(e) => fail(tool, e),
            Ok(true) => {}
            Ok(false) => return not_running(stop, &root),
        }
        let stream = match daemon::connect(&socket) {
            Ok(s) => s,
            Err(e) if daemon::no_daemon(&e) => return not_running(stop, &root),
            Err(e) => fail(tool, format!("cannot connect to {}: {e}", socket.display())),
        };
        // Stop works across versions: a daemon that cannot decode our request drains on the
        // replace flag instead.
        let (stream, hello) =
            handshake(tool, stream, ClientHello::new(stop, Identity::ANY), &frame)
                .unwrap_or_else(|e| fail(tool, e));
        return match hello.answer {
            Answer::Accepted => relay(tool, stream, Some(&rundir)),
            Answer::Replacing => {
                eprintln!("redo: redod (another version) is finishing its jobs and exiting");
                0
            }
            Answer::Mismatch => fail(
                tool,
                format!(
                    "the running redod speaks protocol {}, this client {}",
                    hello.version,
                    redo_proto::PROTOCOL_VERSION
                ),
            ),
        };
    }

    if let Err(e) = daemon::rundir_state(&rundir) {
        fail(tool, e);
    }
    let daemon_bin = daemon_bin.unwrap_or_else(|| PathBuf::from("redod"));
    let started = Instant::now();
    let mut told = false;
    // Times this client found no daemon and had one started. A daemon that still refuses it
    // after the second is not of this client's version (a `redod` from another build next to
    // it, or named by REDO_DAEMON): starting it again would only repeat that, forever.
    let mut starts = 0;
    loop {
        let stream = match daemon::connect(&socket) {
            Ok(s) => s,
            Err(e) if daemon::no_daemon(&e) => {
                if let Err(msg) = daemon::start(&root, &rundir, &daemon_bin) {
                    fail(tool, msg);
                }
                starts += 1;
                continue;
            }
            Err(e) => fail(
                tool,
                format!("cannot connect to the daemon at {}: {e}", socket.display()),
            ),
        };
        let (stream, hello) =
            match handshake(tool, stream, ClientHello::new(true, expected), &frame) {
                Ok(sh) => sh,
                // The daemon was going away as we connected: the next attempt finds the new one.
                Err(_) if started.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) => fail(tool, e),
            };
        if hello.answer == Answer::Accepted {
            return relay(tool, stream, Some(&rundir));
        }
        if starts >= 2 {
            fail(
                tool,
                format!(
                    "{} speaks protocol {} and this client protocol {}: they come from different \
                     builds; build both again ('cargo build'), or point REDO_DAEMON at the redod \
                     built with this client",
                    daemon_bin.display(),
                    hello.version,
                    redo_proto::PROTOCOL_VERSION
                ),
            );
        }
        // The running daemon is another build of redod; it drains and exits, then we start ours.
        // Not connected while we wait: a draining daemon exits once no connection is open.
        drop(stream);
        if !told {
            told = true;
            let pid = daemon::recorded_pid(&rundir)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            eprintln!(
                "redo: replacing the running redod{pid}, another version, once its jobs finish"
            );
        }
        if started.elapsed() > Duration::from_secs(3600) {
            fail(
                tool,
                "gave up waiting for the old redod to exit; stop it with its own version's 'redo --daemon-stop', or kill it",
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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

fn not_running(stop: bool, root: &Path) -> i32 {
    eprintln!("redo: no daemon is running for {}", root.display());
    if stop { 0 } else { 1 }
}

/// Writes hello + request in one write, reads the daemon's hello.
/// `Err` when the connection broke before the daemon's hello arrived: the daemon went away
/// (it was stopping or being replaced), and a top-level client may simply try again.
///
/// The daemon's hello and what follows it are read through one buffer: an answer the daemon
/// sends in one write with its hello (an up-to-date `redo-ifchange`) is one read.
fn handshake(
    tool: Tool,
    mut stream: UnixStream,
    hello: ClientHello,
    frame: &[u8],
) -> Result<(BufReader<UnixStream>, DaemonHello), String> {
    let mut out = Vec::with_capacity(HELLO_LEN + frame.len());
    out.extend_from_slice(&hello.encode());
    out.extend_from_slice(frame);
    if let Err(e) = stream.write_all(&out) {
        // A daemon that refuses us closes before reading everything; its hello may still be
        // readable, so only give up when it is not.
        if e.kind() != io::ErrorKind::BrokenPipe && e.kind() != io::ErrorKind::ConnectionReset {
            fail(tool, format!("cannot send the request to the daemon: {e}"));
        }
    }
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut buf = [0u8; HELLO_LEN];
    if let Err(e) = reader.read_exact(&mut buf) {
        return Err(format!(
            "the daemon closed the connection during the handshake: {e}"
        ));
    }
    match DaemonHello::decode(&buf) {
        Ok(h) => Ok((reader, h)),
        Err(e) => fail(tool, format!("bad handshake from the daemon: {e}")),
    }
}

/// Relays events until `Done`; returns its code.
fn relay(tool: Tool, mut reader: BufReader<UnixStream>, rundir: Option<&Path>) -> i32 {
    let mut buf = Vec::new();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut stderr = io::stderr();
    let lost = |why: String| -> i32 {
        let hint = rundir
            .map(|d| format!(" (see {})", d.join(rundir::LOG).display()))
            .unwrap_or_default();
        let _ = writeln!(
            io::stderr(),
            "{}: lost the connection to the daemon: {why}{hint}",
            tool.name()
        );
        1
    };
    loop {
        match read_frame::<Event, _>(&mut reader, &mut buf) {
            Ok(Some(Event::Stderr(b))) => {
                let _ = out.flush();
                let _ = stderr.write_all(&b);
            }
            Ok(Some(Event::Stdout(b))) => {
                // Buffered while more frames are already here; flushed when the daemon goes
                // quiet, so that a reader (an editor following `--watch --events=json`) sees
                // each line when it happens, not when the next one comes.
                let more = !reader.buffer().is_empty();
                if out.write_all(&b).is_err() || (!more && out.flush().is_err()) {
                    // stdout closed (`| head`): nothing more is wanted.
                    return 0;
                }
            }
            Ok(Some(Event::Done { code })) => {
                let _ = out.flush();
                return code;
            }
            Ok(None) => return lost("closed without an answer".into()),
            Err(e) => return lost(e.to_string()),
        }
    }
}
