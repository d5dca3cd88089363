//! The messages between the daemon and its spawner: one per `SOCK_SEQPACKET` datagram, the
//! descriptors of a spawn in the same datagram's `SCM_RIGHTS`. Little-endian; byte strings as
//! a `u32` length then the bytes. Both ends are the same binary, but the spawner still checks
//! every length: a malformed message is an error, never a panic or a huge allocation.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// How to start one process. Its descriptors travel beside the message: `stdin`, `stdout`,
/// `stderr`, then one per entry of `keep`, which names the number it must have in the child
/// (a jobserver's pipe, advertised to `make` by number).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spawn {
    pub id: u64,
    pub umask: u32,
    pub keep: Vec<i32>,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: OsString,
}

/// What the spawner says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Spawn `id` runs as `pid`, the leader of a process group of its own.
    Started { id: u64, pid: i32 },
    /// Spawn `id` failed with `errno` (`ENOENT`, `ENOEXEC`, `ETXTBSY`...).
    Failed { id: u64, errno: i32 },
    /// Process `pid` ended; `status` is its raw wait status.
    Exited { pid: i32, status: i32 },
}

/// A message that does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed spawner message: {0}")]
pub struct Malformed(pub &'static str);

const SPAWN: u8 = 1;
const STARTED: u8 = 2;
const FAILED: u8 = 3;
const EXITED: u8 = 4;

impl Spawn {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256 + self.env.len() * 64);
        w.push(SPAWN);
        w.extend_from_slice(&self.id.to_le_bytes());
        w.extend_from_slice(&self.umask.to_le_bytes());
        w.extend_from_slice(&(self.keep.len() as u32).to_le_bytes());
        for k in &self.keep {
            w.extend_from_slice(&k.to_le_bytes());
        }
        put(&mut w, self.program.as_bytes());
        w.extend_from_slice(&(self.args.len() as u32).to_le_bytes());
        for a in &self.args {
            put(&mut w, a.as_bytes());
        }
        w.extend_from_slice(&(self.env.len() as u32).to_le_bytes());
        for (k, v) in &self.env {
            put(&mut w, k.as_bytes());
            put(&mut w, v.as_bytes());
        }
        put(&mut w, self.cwd.as_bytes());
        w
    }

    pub fn decode(b: &[u8]) -> Result<Spawn, Malformed> {
        let mut r = Reader { b };
        if r.u8()? != SPAWN {
            return Err(Malformed("not a spawn"));
        }
        let id = r.u64()?;
        let umask = r.u32()?;
        let n = r.count(4)?;
        let mut keep = Vec::with_capacity(n);
        for _ in 0..n {
            keep.push(r.u32()? as i32);
        }
        let program = r.os()?;
        let n = r.count(4)?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            args.push(r.os()?);
        }
        let n = r.count(8)?;
        let mut env = Vec::with_capacity(n);
        for _ in 0..n {
            env.push((r.os()?, r.os()?));
        }
        let cwd = r.os()?;
        if !r.b.is_empty() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(Spawn {
            id,
            umask,
            keep,
            program,
            args,
            env,
            cwd,
        })
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(17);
        match *self {
            Reply::Started { id, pid } => {
                w.push(STARTED);
                w.extend_from_slice(&id.to_le_bytes());
                w.extend_from_slice(&pid.to_le_bytes());
            }
            Reply::Failed { id, errno } => {
                w.push(FAILED);
                w.extend_from_slice(&id.to_le_bytes());
                w.extend_from_slice(&errno.to_le_bytes());
            }
            Reply::Exited { pid, status } => {
                w.push(EXITED);
                w.extend_from_slice(&pid.to_le_bytes());
                w.extend_from_slice(&status.to_le_bytes());
            }
        }
        w
    }

    pub fn decode(b: &[u8]) -> Result<Reply, Malformed> {
        let mut r = Reader { b };
        let reply = match r.u8()? {
            STARTED => Reply::Started {
                id: r.u64()?,
                pid: r.u32()? as i32,
            },
            FAILED => Reply::Failed {
                id: r.u64()?,
                errno: r.u32()? as i32,
            },
            EXITED => Reply::Exited {
                pid: r.u32()? as i32,
                status: r.u32()? as i32,
            },
            _ => return Err(Malformed("unknown reply")),
        };
        if !r.b.is_empty() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(reply)
    }
}

fn put(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.b.len() < n {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items of at least `min` bytes each: never more than what is left can hold.
    fn count(&mut self, min: usize) -> Result<usize, Malformed> {
        let n = self.u32()? as usize;
        if n > self.b.len() / min {
            return Err(Malformed("count"));
        }
        Ok(n)
    }

    fn os(&mut self) -> Result<OsString, Malformed> {
        let n = self.u32()? as usize;
        Ok(OsString::from_vec(self.take(n)?.to_vec()))
    }
}

#[cfg(test)]
mod tests;
