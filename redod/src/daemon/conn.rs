//! A client's socket, registered with the runtime only when the connection has to wait.
//!
//! An up-to-date nested `redo-ifchange` is the daemon's most frequent request, and everything
//! about it is there at once: the client's hello and request arrive in one write, and the
//! answer fits the socket's buffer. Served with plain non-blocking calls, such a connection
//! costs no registration with the runtime's epoll (an `epoll_ctl` each way, and the readiness
//! event the kernel reports for the new descriptor). The first call that would block registers
//! the socket, and from then on it is an ordinary `tokio` stream.

use bytes::BytesMut;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv, send};
use std::io;
use std::os::fd::AsRawFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How much one read takes at most: a request carries the client's environment, a few KiB.
const READ_AHEAD: usize = 8 << 10;

pub(crate) enum Conn {
    /// Not registered yet: plain calls with `MSG_DONTWAIT`.
    Plain(std::os::unix::net::UnixStream),
    Async(UnixStream),
    /// Registration failed; every call fails.
    Gone,
}

impl Conn {
    /// The client's uid and pid.
    pub(crate) fn peer(&self) -> io::Result<(u32, Option<i32>)> {
        match self {
            Conn::Plain(s) => {
                let c =
                    nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials)?;
                Ok((c.uid(), Some(c.pid())))
            }
            Conn::Async(s) => s.peer_cred().map(|c| (c.uid(), c.pid())),
            Conn::Gone => Err(gone()),
        }
    }

    /// The runtime's stream, registered now if it is not yet.
    pub(crate) fn registered(&mut self) -> io::Result<&mut UnixStream> {
        if let Conn::Plain(_) = self {
            *self = match std::mem::replace(self, Conn::Gone) {
                Conn::Plain(s) => {
                    s.set_nonblocking(true)?;
                    Conn::Async(UnixStream::from_std(s)?)
                }
                other => other,
            };
        }
        match self {
            Conn::Async(s) => Ok(s),
            _ => Err(gone()),
        }
    }

    pub(crate) fn into_registered(mut self) -> io::Result<UnixStream> {
        self.registered()?;
        match self {
            Conn::Async(s) => Ok(s),
            _ => Err(gone()),
        }
    }

    /// Appends what the client sent to `buf`: what is there already, else what comes next.
    /// 0 at the end of the stream.
    pub(crate) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if let Conn::Plain(s) = self {
            let start = buf.len();
            buf.resize(start + READ_AHEAD, 0);
            let got = recv(s.as_raw_fd(), &mut buf[start..], MsgFlags::MSG_DONTWAIT);
            buf.truncate(start + *got.as_ref().unwrap_or(&0));
            match got {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.reserve(READ_AHEAD);
        self.registered()?.read_buf(buf).await
    }

    /// Writes all of `out`: at once when the socket takes it, else as it drains.
    pub(crate) async fn write_all(&mut self, out: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        if let Conn::Plain(s) = self {
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            while sent < out.len() {
                match send(s.as_raw_fd(), &out[sent..], flags) {
                    Ok(n) => sent += n,
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if sent == out.len() {
                return Ok(());
            }
        }
        self.registered()?.write_all(&out[sent..]).await
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

#[cfg(test)]
mod tests;
