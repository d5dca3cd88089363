//! Starting `.do` processes through a process of their own ([`server`] says why): the
//! daemon's side.
//!
//! [`Spawner::start`] runs `redod spawner` (this very binary) with one end of a
//! `SOCK_SEQPACKET` socket pair. [`Spawner::spawn`] sends a [`wire::Spawn`] with the child's
//! descriptors in the same datagram and waits for its pid; [`Proc::wait`] waits for the exit
//! status the spawner sends when it reaps the child. One task reads the spawner's replies and
//! hands each to whoever waits for it.
//!
//! Should the spawner die, what waited on it fails (the jobs fail and their process groups are
//! killed by their guards) and the next spawn starts a new one.

pub mod server;
pub mod wire;

use crate::sync::lock;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, recv, sendmsg, socketpair,
};
use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use wire::{Reply, Spawn};

/// A process the spawner started.
#[derive(Debug)]
pub struct Proc {
    pub pid: i32,
    exit: oneshot::Receiver<i32>,
}

impl Proc {
    /// Waits for it to end; an error when the spawner died first.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        (&mut self.exit)
            .await
            .map(ExitStatus::from_raw)
            .map_err(|_| io::Error::other("the spawner process ended before the .do did"))
    }
}

/// What a `.do` is started with: the request and its descriptors.
pub struct Request<'a> {
    pub program: &'a std::ffi::OsStr,
    pub args: &'a [std::ffi::OsString],
    pub env: &'a [(std::ffi::OsString, std::ffi::OsString)],
    pub cwd: &'a Path,
    pub umask: u32,
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    /// Descriptors the child inherits at their own number (a jobserver's pipe).
    pub keep: &'a [BorrowedFd<'a>],
}

/// Replies not yet handed over.
#[derive(Default)]
struct Waiting {
    starts: HashMap<u64, oneshot::Sender<Result<Proc, i32>>>,
    exits: HashMap<i32, oneshot::Sender<i32>>,
}

/// A spawner process, started one way or the other.
enum Child {
    /// `redod spawner`, executed (a restart, once the daemon runs threads).
    Executed(std::process::Child),
    /// Forked before the daemon started any thread ([`fork_early`]).
    Forked(nix::unistd::Pid),
}

impl Child {
    fn id(&self) -> u32 {
        match self {
            Child::Executed(c) => c.id(),
            Child::Forked(pid) => pid.as_raw() as u32,
        }
    }

    fn kill(&mut self) {
        match self {
            Child::Executed(c) => drop(c.kill()),
            Child::Forked(pid) => {
                let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// Reaps it if it has ended; `block`: waits for that.
    fn reap(&mut self, block: bool) {
        match (self, block) {
            (Child::Executed(c), true) => drop(c.wait()),
            (Child::Executed(c), false) => drop(c.try_wait()),
            (Child::Forked(pid), block) => {
                let flags = (!block).then_some(nix::sys::wait::WaitPidFlag::WNOHANG);
                let _ = nix::sys::wait::waitpid(*pid, flags);
            }
        }
    }
}

/// A spawner forked by [`fork_early`], waiting to be linked to.
pub struct Early {
    sock: OwnedFd,
    pid: nix::unistd::Pid,
}

/// Forks the spawner from the daemon's own process, before it starts any thread: it is ready
/// at once and costs no second `exec` (every `exec` of a program pays for glibc's start-up,
/// about 0.8 ms of CPU on a virtual machine, where the `cpuid` it asks the caches with traps
/// to the hypervisor). The child keeps only its socket and stderr (the daemon's log, for a
/// last word should it fail); stdin and stdout become `/dev/null`.
///
/// Must be called while the process has one thread: after a `fork`, the child of a
/// multi-threaded process may only call async-signal-safe functions, and the spawner's loop
/// allocates.
#[allow(unsafe_code)]
pub fn fork_early() -> io::Result<Early> {
    let (ours, theirs) = seqpacket_pair()?;
    // SAFETY: the caller guarantees a single-threaded process (see above), so the child may
    // run any code; it leaves only through `_exit`.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            Ok(Early {
                sock: ours,
                pid: child,
            })
        }
        nix::unistd::ForkResult::Child => {
            drop(ours);
            retitle();
            let code = match only_this_descriptor(theirs) {
                Ok(sock) => match server::serve(sock) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
                Err(_) => 1,
            };
            // SAFETY: `_exit` ends the child without running the parent's exit handlers or
            // destructors (the parent's buffers are not the child's to flush).
            unsafe { libc::_exit(code) }
        }
    }
}

/// In the forked spawner: its command line (what `ps` shows) becomes `redod spawner` instead of
/// the daemon's `redod serve --root ...`, so that it is not taken for a second daemon, by
/// writing over the process's own argument strings (as `setproctitle` does); and its name.
#[allow(unsafe_code)]
fn retitle() {
    let _ = nix::sys::prctl::set_name(c"redod-spawner");
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields 48 and 49 (arg_start, arg_end), counted after the command name's last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |x| x.1)
        .split_whitespace()
        .collect();
    let (Some(Ok(start)), Some(Ok(end))) = (
        fields.get(48 - 3).map(|f| f.parse::<usize>()),
        fields.get(49 - 3).map(|f| f.parse::<usize>()),
    ) else {
        return;
    };
    const TITLE: &[u8] = b"redod\0spawner\0";
    let len = end.saturating_sub(start);
    if start == 0 || len < TITLE.len() {
        return;
    }
    // SAFETY: [start, end) is this process's own argument area (the kernel says so), writable
    // stack memory that nothing in the spawner reads again.
    unsafe {
        let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
        area.fill(0);
        area[..TITLE.len()].copy_from_slice(TITLE);
    }
}

/// In the forked spawner: `sock` moved to descriptor 3, stdin and stdout on `/dev/null`, every
/// other descriptor the daemon had open (its listening socket, its pid lock, ...) closed.
fn only_this_descriptor(sock: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    drop(null);
    let raw = sock.into_raw_fd();
    if raw != 3 {
        // SAFETY: 3 is free to take: it is closed below if anything else held it.
        #[allow(unsafe_code)]
        unsafe {
            if libc::dup2(raw, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::close(raw);
        }
    }
    // SAFETY: closes descriptors this process owns and no Rust object refers to any more (the
    // daemon's, inherited by the fork); the socket is 3.
    #[allow(unsafe_code)]
    unsafe {
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        // SAFETY: the descriptor was dup'ed onto 3 above and nothing else owns it.
        Ok(OwnedFd::from_raw_fd(3))
    }
}

/// One running spawner process, and the socket to it.
struct Link {
    sock: AsyncFd<OwnedFd>,
    process: Mutex<Child>,
    waiting: Mutex<Waiting>,
    /// Set when its socket broke: the next spawn starts another.
    dead: std::sync::atomic::AtomicBool,
}

/// The daemon's spawner (restarted when it dies).
pub struct Spawner {
    exe: PathBuf,
    link: Mutex<Option<Arc<Link>>>,
    /// The spawner forked at start-up, until it is linked to.
    early: Mutex<Option<Early>>,
    ids: AtomicU64,
}

impl Spawner {
    /// A spawner running `exe spawner` (started at the first spawn, or by [`Spawner::warm`]).
    pub fn new(exe: PathBuf) -> Spawner {
        Spawner {
            exe,
            link: Mutex::new(None),
            early: Mutex::new(None),
            ids: AtomicU64::new(1),
        }
    }

    /// The first spawner is `early` (forked at start-up); restarts execute `exe spawner`.
    pub fn with_early(self, early: Early) -> Spawner {
        *lock(&self.early) = Some(early);
        self
    }

    /// Starts the spawner process now, so that the first `.do` does not wait for it. Must be
    /// called within the runtime.
    pub fn warm(&self) -> io::Result<()> {
        self.link().map(drop)
    }

    /// The spawner process's pid, while one runs.
    pub fn pid(&self) -> Option<u32> {
        let link = lock(&self.link).clone()?;
        (!link.dead.load(Ordering::Acquire)).then(|| lock(&link.process).id())
    }

    fn link(&self) -> io::Result<Arc<Link>> {
        let mut slot = lock(&self.link);
        if let Some(l) = slot.as_ref().filter(|l| !l.dead.load(Ordering::Acquire)) {
            return Ok(l.clone());
        }
        let link = match lock(&self.early).take() {
            Some(early) => Arc::new(Link::forked(early)?),
            None => Arc::new(Link::start(&self.exe)?),
        };
        tokio::spawn(read_replies(Arc::downgrade(&link)));
        *slot = Some(link.clone());
        Ok(link)
    }

    /// Starts one process; its pid once it runs (an `exec` error is returned as such).
    pub async fn spawn(&self, req: Request<'_>) -> io::Result<Proc> {
        let link = self.link()?;
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let msg = Spawn {
            id,
            umask: req.umask,
            keep: req.keep.iter().map(|fd| fd.as_raw_fd()).collect(),
            program: req.program.to_os_string(),
            args: req.args.to_vec(),
            env: req.env.to_vec(),
            cwd: req.cwd.as_os_str().to_os_string(),
        }
        .encode();
        let mut fds = vec![
            req.stdin.as_raw_fd(),
            req.stdout.as_raw_fd(),
            req.stderr.as_raw_fd(),
        ];
        fds.extend(req.keep.iter().map(|fd| fd.as_raw_fd()));
        let (tx, rx) = oneshot::channel();
        lock(&link.waiting).starts.insert(id, tx);
        if let Err(e) = link.send(&msg, &fds).await {
            lock(&link.waiting).starts.remove(&id);
            return Err(e);
        }
        match rx.await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Err(_) => Err(io::Error::other(
                "the spawner process ended before it started the .do",
            )),
        }
    }
}

impl Link {
    fn forked(early: Early) -> io::Result<Link> {
        Link::over(early.sock, Child::Forked(early.pid))
    }

    fn start(exe: &Path) -> io::Result<Link> {
        let (ours, theirs) = seqpacket_pair()?;
        let process = {
            use std::os::unix::process::CommandExt;
            let fd = theirs.as_raw_fd();
            let mut cmd = std::process::Command::new(exe);
            // `ps` shows `redod spawner`, not `/proc/self/exe spawner`.
            cmd.arg0("redod")
                .arg("spawner")
                .arg("--fd")
                .arg(fd.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null());
            // SAFETY: clears close-on-exec on the spawner's own end between fork and exec: one
            // async-signal-safe fcntl.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd.spawn()?
        };
        drop(theirs);
        Link::over(ours, Child::Executed(process))
    }

    /// The link over `ours`, our end of the socket pair of the spawner `process`.
    fn over(ours: OwnedFd, process: Child) -> io::Result<Link> {
        // Replies are read as they come; requests may queue (a large environment each).
        let _ = nix::sys::socket::setsockopt(
            &ours,
            nix::sys::socket::sockopt::SndBuf,
            &server::MAX_MESSAGE,
        );
        nix::fcntl::fcntl(
            &ours,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        // SAFETY: an `OwnedFd` owns its descriptor: it stays open and the same for as long as
        // the `AsyncFd` owns it.
        #[allow(unsafe_code)]
        let sock = unsafe { AsyncFd::register(ours) }.map_err(|e| e.into_parts().1)?;
        Ok(Link {
            sock,
            process: Mutex::new(process),
            waiting: Mutex::default(),
            dead: std::sync::atomic::AtomicBool::new(false),
        })
    }

    async fn send(&self, msg: &[u8], fds: &[i32]) -> io::Result<()> {
        let cmsg = [ControlMessage::ScmRights(fds)];
        loop {
            let mut guard = self.sock.writable().await?;
            let sent = guard.try_io(|s| {
                sendmsg::<()>(
                    s.as_raw_fd(),
                    &[IoSlice::new(msg)],
                    &cmsg,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(r) => return r.map(drop),
                Err(_would_block) => continue,
            }
        }
    }

    /// Hands one reply to whoever waits for it.
    fn dispatch(&self, r: Reply) {
        let mut w = lock(&self.waiting);
        match r {
            Reply::Started { id, pid } => {
                // Registered before the reply is handed over: its exit may be the next message.
                let (tx, exit) = oneshot::channel();
                w.exits.insert(pid, tx);
                let taken = match w.starts.remove(&id) {
                    Some(s) => s.send(Ok(Proc { pid, exit })).is_ok(),
                    None => false,
                };
                if !taken {
                    // Whoever asked went away meanwhile (its build was cancelled): nobody
                    // would ever kill it. It leads its own process group.
                    w.exits.remove(&pid);
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            Reply::Failed { id, errno } => {
                if let Some(s) = w.starts.remove(&id) {
                    let _ = s.send(Err(errno));
                }
            }
            Reply::Exited { pid, status } => {
                if let Some(s) = w.exits.remove(&pid) {
                    let _ = s.send(status);
                }
            }
        }
    }

    /// The spawner is gone: everything waiting on it is told so (by dropping its sender).
    fn died(&self) {
        self.dead.store(true, Ordering::Release);
        *lock(&self.waiting) = Waiting::default();
        let mut p = lock(&self.process);
        p.kill();
        p.reap(true);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Closing our end makes it exit; reap it.
        let p = self.process.get_mut().unwrap_or_else(|p| p.into_inner());
        p.reap(false);
    }
}

/// Reads replies until the spawner goes or the link is dropped.
async fn read_replies(link: Weak<Link>) {
    let mut buf = [0u8; 64];
    loop {
        let Some(l) = link.upgrade() else { return };
        let Ok(mut guard) = l.sock.readable().await else {
            l.died();
            return;
        };
        loop {
            match guard.try_io(|s| {
                recv(s.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(io::Error::from)
            }) {
                Ok(Ok(0)) => {
                    l.died();
                    return;
                }
                Ok(Ok(n)) => match Reply::decode(&buf[..n]) {
                    Ok(r) => l.dispatch(r),
                    Err(e) => tracing::warn!("spawner: {e}"),
                },
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    tracing::warn!("spawner: {e}; starting another");
                    l.died();
                    return;
                }
                Err(_would_block) => break,
            }
        }
    }
}

/// The daemon's end and the spawner's end of their link: datagrams in order, descriptors
/// passed along, neither end inherited by anything spawned.
fn seqpacket_pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}
