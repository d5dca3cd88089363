//! The spawner process (`redod spawner --fd N`): started by the daemon before it holds
//! anything, it starts each `.do` for it and reports when each ends.
//!
//! Why a process of its own: `execve` closes every close-on-exec descriptor of the process
//! that forked, and closing a descriptor of a file with byte-range locks walks that file's list
//! of locks. A daemon in the middle of a large build holds thousands of descriptors (each `.do`
//! waiting in a nested request has its connection, its stderr pipe, its output capture) and
//! locks, so every spawn it made cost more the more the build had in flight: at 100 000
//! targets, two thirds of the machine's time went to the kernel under spawns. The spawner holds
//! its socket and nothing else, so a spawn costs the same at any size; and the fork and exec
//! run on another CPU than the daemon's one thread.
//!
//! It is single-threaded: one loop over its socket and a `signalfd` for `SIGCHLD`. It reaps
//! every child itself (it is their parent) and sends each wait status back. When the daemon
//! goes (its end of the socket closes), it exits; the `.do` processes still running are the
//! daemon's to kill (it does, by process group, before it exits; after a crash the next daemon
//! does, from its journal).

use super::wire::{Reply, Spawn};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, send};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The largest message the spawner takes (a `.do`'s whole environment is in it).
pub const MAX_MESSAGE: usize = 4 << 20;

/// Serves the daemon on `sock` until it goes away.
pub fn serve(sock: OwnedFd) -> io::Result<()> {
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None)?;
    let sfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let mut fds = [
            nix::poll::PollFd::new(sock.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(sfd.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let (sock_ready, chld_ready) =
            (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false));
        if chld_ready {
            while let Ok(Some(_)) = sfd.read_signal() {}
            reap(&sock)?;
        }
        if sock_ready && !take(&sock, &mut buf)? {
            return Ok(());
        }
    }
}

/// Sends the wait status of every child that has ended.
fn reap(sock: &OwnedFd) -> io::Result<()> {
    loop {
        let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, (code & 0xff) << 8),
            Ok(WaitStatus::Signaled(pid, sig, core)) => {
                (pid, sig as i32 | if core { 0x80 } else { 0 })
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(()),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        reply(
            sock,
            Reply::Exited {
                pid: pid.as_raw(),
                status,
            },
        )?;
    }
}

fn reply(sock: &OwnedFd, r: Reply) -> io::Result<()> {
    loop {
        match send(sock.as_raw_fd(), &r.encode(), MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one request and runs it. `false` when the daemon has gone.
fn take(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<bool> {
    let mut cmsg = nix::cmsg_space!([RawFd; 16]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = match recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel has just installed these descriptors in this process for
            // this message; nothing else owns them.
            #[allow(unsafe_code)]
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let (len, truncated) = (
        msg.bytes,
        msg.flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC),
    );
    if len == 0 && fds.is_empty() {
        return Ok(false);
    }
    let Ok(spawn) = Spawn::decode(&buf[..len]) else {
        // Not ours to answer: without an id, nobody waits for it.
        return Ok(true);
    };
    let r = match (truncated, run(&spawn, fds)) {
        (true, _) => Reply::Failed {
            id: spawn.id,
            errno: libc::E2BIG,
        },
        (false, Ok(pid)) => Reply::Started { id: spawn.id, pid },
        (false, Err(e)) => Reply::Failed {
            id: spawn.id,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        },
    };
    reply(sock, r)?;
    Ok(true)
}

/// Starts `s` with `fds` (stdin, stdout, stderr, then `s.keep`'s), in a process group of its
/// own, under `s.umask`, in `s.cwd`.
fn run(s: &Spawn, fds: Vec<OwnedFd>) -> io::Result<i32> {
    if fds.len() != 3 + s.keep.len() {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let mut fds = fds.into_iter();
    let mut next = || {
        fds.next()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    };
    let (stdin, stdout, stderr) = (next()?, next()?, next()?);
    let keep: Vec<(OwnedFd, i32)> = s
        .keep
        .iter()
        .map(|&target| next().map(|fd| (fd, target)))
        .collect::<io::Result<_>>()?;
    let moves: Vec<(RawFd, i32)> = keep.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    let highest = moves.iter().map(|(_, t)| *t).max().unwrap_or(2);
    let umask = s.umask;
    let mut cmd = Command::new(&s.program);
    cmd.args(&s.args)
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&s.cwd)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    // SAFETY: between fork and exec the closure only makes async-signal-safe system calls
    // (umask, sigprocmask, fcntl, dup2) on descriptors this process owns; it allocates nothing.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // First out of the way of every target number, then onto it (a target may be
            // another one's source), without close-on-exec.
            let mut moved = [0 as RawFd; 16];
            for (i, (src, _)) in moves.iter().enumerate().take(16) {
                let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, highest + 1);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            for (i, (_, target)) in moves.iter().enumerate().take(16) {
                if libc::dup2(moved[i], *target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(keep);
    Ok(child.id() as i32)
}
