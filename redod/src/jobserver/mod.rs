//! Job tokens (docs/BEHAVIOUR.md §13, docs/DESIGN.md §6): `-j N` bounds how many `.do` processes, and the
//! jobs of the `make`s they run, execute their own code at once in one build session.
//!
//! A session's free tokens are bytes in a pipe, exactly as in GNU make's jobserver, so that a
//! `make` run by a `.do` draws from the same pool: the `.do`'s own token is held by the daemon
//! on its behalf (make's "implicit" token), every extra make job reads one more byte.
//!
//! * Own pool (`-j N`): a FIFO in the runtime directory pre-filled with N bytes. Children are
//!   told about it in `MAKEFLAGS`, as two inherited descriptors (`--jobserver-auth=R,W`, which
//!   every GNU make understands) or as the FIFO's path (`fifo:PATH`, make ≥ 4.4).
//! * make's pool: a top-level client started by `make -jN` hands make's jobserver over. The
//!   session then owns one implicit token (the job make started the client as) plus what it
//!   reads from make's pipe.
//! * Unlimited (`-j 0`): no pipe, tokens are free.
//!
//! The daemon reads and writes the pipe through its *own* open file description, set
//! non-blocking; children get separate, blocking descriptions (old makes fail on a
//! non-blocking jobserver pipe). A token is the byte that was read, and that same byte is
//! written back when the token is dropped.
//!
//! A job takes a token before it locks its target and gives it back when its `.do` exits. A
//! `.do` blocked in a nested `redo-ifchange` lends its token out while it waits (see
//! `engine::Job`), so nesting never deadlocks, even at `-j 1`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::unix::pipe;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What children need to share the pool.
pub struct ChildJobserver<'a> {
    /// Blocking read and write descriptions, inherited by the `.do` (the pipe form).
    pub read: RawFd,
    pub write: RawFd,
    /// The FIFO's path, for `--jobserver-auth=fifo:PATH`.
    pub fifo: Option<&'a Path>,
}

/// A pipe or FIFO whose bytes are the free tokens.
struct TokenPipe {
    rx: pipe::Receiver,
    /// Non-blocking; a pipe never holds more tokens than its capacity, so writes never wait.
    tx: OwnedFd,
    child_read: OwnedFd,
    child_write: OwnedFd,
    path: Option<PathBuf>,
    /// Remove `path` when the pool goes away (our own FIFO).
    owns_path: bool,
    /// Only the task holding this waits for the pipe to become readable; the others queue
    /// behind it, first come first served. Without it every returned token woke every
    /// waiting job (thousands in a clean build of a wide target) to race for one byte.
    readers: tokio::sync::Mutex<()>,
}

impl TokenPipe {
    /// Our own FIFO at `path`, filled with `n` tokens.
    fn create(path: PathBuf, n: u32) -> io::Result<TokenPipe> {
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(io::Error::from)?;
        let pipe = TokenPipe::open(&path, &path, Some(path.clone()), true);
        let pipe = match pipe {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        // Filling happens before anyone else can read: no token can be lost.
        let fill = vec![b'+'; n as usize];
        let mut written = 0;
        while written < fill.len() {
            written += nix::unistd::write(&pipe.tx, &fill[written..]).map_err(io::Error::from)?;
        }
        Ok(pipe)
    }

    /// Opens the pipe whose read end is at `read_path` and write end at `write_path` (the
    /// same FIFO, or make's two descriptors through `/proc`).
    fn open(
        read_path: &Path,
        write_path: &Path,
        path: Option<PathBuf>,
        owns_path: bool,
    ) -> io::Result<TokenPipe> {
        let open = |p: &Path, read: bool, write: bool, flags: i32| -> io::Result<OwnedFd> {
            let f = OpenOptions::new()
                .read(read)
                .write(write)
                .custom_flags(flags | libc::O_CLOEXEC)
                .open(p)?;
            Ok(OwnedFd::from(f))
        };
        // Ours: non-blocking, and read-write for the reading end, so that it never sees
        // end-of-file while nobody else has the pipe open.
        let rx = pipe::Receiver::from_owned_fd(open(read_path, true, true, libc::O_NONBLOCK)?)?;
        let tx = open(write_path, false, true, libc::O_NONBLOCK)?;
        // Children's: blocking. A writer exists (ours), so these opens return at once.
        let child_read = open(read_path, true, false, 0)?;
        let child_write = open(write_path, false, true, 0)?;
        Ok(TokenPipe {
            rx,
            tx,
            child_read,
            child_write,
            path,
            owns_path,
            readers: tokio::sync::Mutex::new(()),
        })
    }

    /// Cancel-safe: a dropped call has either read nothing or already returned its byte.
    async fn take(&self) -> io::Result<u8> {
        let _turn = self.readers.lock().await;
        let mut b = [0u8; 1];
        loop {
            self.rx.readable().await?;
            match self.rx.try_read(&mut b) {
                Ok(1) => return Ok(b[0]),
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "jobserver pipe closed",
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn give(&self, b: u8) {
        if let Err(e) = nix::unistd::write(&self.tx, &[b]) {
            tracing::warn!("cannot return a job token to the jobserver pipe: {e}");
        }
    }
}

impl Drop for TokenPipe {
    fn drop(&mut self) {
        if let (true, Some(p)) = (self.owns_path, &self.path) {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum Source {
    Unlimited,
    /// In memory only (no directory for a FIFO was given: unit tests).
    Counter(Arc<Semaphore>),
    Pipe {
        pipe: TokenPipe,
        implicit: Option<Arc<Semaphore>>,
    },
}

struct Pool {
    /// Made on first use: a build that runs nothing (a no-op) never creates its FIFO.
    source: OnceLock<Source>,
    /// For a lazily made own pool: its size and where its FIFO goes.
    lazy: Option<(u32, PathBuf)>,
    /// Tokens held right now, for the status line and the tests.
    held: AtomicUsize,
}

/// The token pool of one build session.
#[derive(Clone)]
pub struct Tokens {
    pool: Arc<Pool>,
    /// `Some(0)`: unlimited; `None`: make's pool, size unknown.
    limit: Option<u32>,
}

/// One job slot; released on drop.
pub struct Token {
    pool: Arc<Pool>,
    kind: Held,
}

enum Held {
    Free,
    Permit(#[allow(dead_code)] OwnedSemaphorePermit),
    Byte(u8),
}

impl Pool {
    fn source(&self) -> &Source {
        self.source.get_or_init(|| {
            let Some((n, dir)) = &self.lazy else { return Source::Unlimited };
            let mut rnd = [0u8; 8];
            let _ = getrandom::fill(&mut rnd);
            let path = dir.join(format!("jobserver-{:016x}", u64::from_le_bytes(rnd)));
            match TokenPipe::create(path, *n) {
                Ok(pipe) => Source::Pipe { pipe, implicit: None },
                Err(e) => {
                    tracing::warn!("cannot create a jobserver FIFO in {}: {e}; make in .do files will not share tokens", dir.display());
                    Source::Counter(Arc::new(Semaphore::new(*n as usize)))
                }
            }
        })
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !matches!(self.kind, Held::Free) {
            self.pool.held.fetch_sub(1, Ordering::Relaxed);
        }
        if let (Held::Byte(b), Some(Source::Pipe { pipe, .. })) =
            (&self.kind, self.pool.source.get())
        {
            pipe.give(*b);
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token")
    }
}

impl Tokens {
    fn with(source: Source, limit: Option<u32>) -> Tokens {
        Tokens {
            pool: Arc::new(Pool {
                source: OnceLock::from(source),
                lazy: None,
                held: AtomicUsize::new(0),
            }),
            limit,
        }
    }

    /// `n` tokens (0 = unlimited). With a directory, the pool is a FIFO there that `make`s
    /// run by `.do` files share; without one (or if the FIFO cannot be made) it lives in
    /// memory only.
    pub fn new(n: u32, fifo_dir: Option<&Path>) -> Tokens {
        match (n, fifo_dir) {
            (0, _) => Tokens::with(Source::Unlimited, Some(0)),
            (n, None) => Tokens::with(
                Source::Counter(Arc::new(Semaphore::new(n as usize))),
                Some(n),
            ),
            (n, Some(dir)) => Tokens {
                pool: Arc::new(Pool {
                    source: OnceLock::new(),
                    lazy: Some((n, dir.to_path_buf())),
                    held: AtomicUsize::new(0),
                }),
                limit: Some(n),
            },
        }
    }

    /// make's jobserver, from the pipe descriptors of process `pid` or a FIFO path.
    pub fn from_make(js: &redo_proto::MakeJobserver, pid: Option<i32>) -> io::Result<Tokens> {
        let pipe = match js {
            redo_proto::MakeJobserver::Fifo(path) => {
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
                TokenPipe::open(&path, &path, Some(path.clone()), false)?
            }
            redo_proto::MakeJobserver::Pipe { read, write } => {
                let pid = pid.ok_or_else(|| io::Error::other("the client's pid is unknown"))?;
                // A new open file description of make's pipe: ours can be non-blocking
                // without making make's reads non-blocking.
                let r = PathBuf::from(format!("/proc/{pid}/fd/{read}"));
                let w = PathBuf::from(format!("/proc/{pid}/fd/{write}"));
                TokenPipe::open(&r, &w, None, false)?
            }
        };
        Ok(Tokens::with(
            Source::Pipe {
                pipe,
                implicit: Some(Arc::new(Semaphore::new(1))),
            },
            None,
        ))
    }

    /// The job limit: `Some(0)` unlimited, `None` unknown (make's pool).
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// Tokens held by jobs right now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.pool.held.load(Ordering::Relaxed)
    }

    pub async fn acquire(&self) -> Token {
        let kind = match self.pool.source() {
            Source::Unlimited => {
                return Token {
                    pool: self.pool.clone(),
                    kind: Held::Free,
                };
            }
            Source::Counter(sem) => match sem.clone().acquire_owned().await {
                Ok(p) => Held::Permit(p),
                Err(_) => Held::Free,
            },
            Source::Pipe { pipe, implicit } => {
                let implicit_permit = implicit
                    .as_ref()
                    .and_then(|s| s.clone().try_acquire_owned().ok());
                match (implicit_permit, implicit) {
                    (Some(p), _) => Held::Permit(p),
                    (None, Some(sem)) => tokio::select! {
                        p = sem.clone().acquire_owned() => p.map(Held::Permit).unwrap_or(Held::Free),
                        b = pipe.take() => self.byte_or_free(b),
                    },
                    (None, None) => self.byte_or_free(pipe.take().await),
                }
            }
        };
        if !matches!(kind, Held::Free) {
            self.pool.held.fetch_add(1, Ordering::Relaxed);
        }
        Token {
            pool: self.pool.clone(),
            kind,
        }
    }

    fn byte_or_free(&self, b: io::Result<u8>) -> Held {
        match b {
            Ok(b) => Held::Byte(b),
            Err(e) => {
                // make went away or its pipe broke: running without a token beats hanging.
                tracing::warn!("jobserver pipe: {e}; running the job without a token");
                Held::Free
            }
        }
    }

    /// The descriptors a `.do` inherits at their own numbers, when the pool is a pipe
    /// advertised by number (see [`Tokens::for_children`]): the spawner gives the child these.
    pub fn children_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        match self.pool.source() {
            Source::Pipe { pipe, .. } => vec![pipe.child_read.as_fd(), pipe.child_write.as_fd()],
            _ => Vec::new(),
        }
    }

    /// What a child needs to join the pool, if it is a pipe.
    pub fn for_children(&self) -> Option<ChildJobserver<'_>> {
        match self.pool.source() {
            Source::Pipe { pipe, .. } => Some(ChildJobserver {
                read: pipe.child_read.as_fd().as_raw_fd(),
                write: pipe.child_write.as_fd().as_raw_fd(),
                fifo: pipe.path.as_deref(),
            }),
            _ => None,
        }
    }
}

/// How `.do` children are told about the pool (`REDO_MAKE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MakeStyle {
    /// GNU make: `MAKEFLAGS=... -jN --jobserver-auth=R,W` (every GNU make since 4.2 reads it).
    #[default]
    Gmake,
    /// GNU make ≥ 4.4: `MAKEFLAGS=... -jN --jobserver-auth=fifo:PATH`; no descriptors inherited.
    Fifo,
    /// BSD make: `MAKEFLAGS=... -j N -J R,W`.
    Bmake,
    /// `MAKEFLAGS` untouched; only `REDO_JS_FD=R,W`.
    None,
}

/// `MAKEFLAGS` words other than an outer make's jobserver (and `-jN` with `drop_jobs`),
/// each followed by a space.
fn filter_words(existing: &[u8], drop_jobs: bool) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(existing.len() + 48);
    for word in existing
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let jobserver = word.starts_with(b"--jobserver-auth=")
            || word.starts_with(b"--jobserver-fds=")
            || word.starts_with(b"-J");
        let jobs = drop_jobs && word.starts_with(b"-j") && word[2..].iter().all(u8::is_ascii_digit);
        if !jobserver && !jobs {
            out.extend_from_slice(word);
            out.push(b' ');
        }
    }
    out
}

/// `MAKEFLAGS` without jobserver words (their descriptors are not open in our children).
pub fn without_jobserver(existing: &[u8]) -> Vec<u8> {
    let mut out = filter_words(existing, false);
    out.pop();
    out
}

/// The `MAKEFLAGS` and `REDO_JS_FD` a `.do` gets, and whether it must inherit the pipe
/// descriptors. Jobserver words of an outer make are replaced; its `-j` words too when the
/// pool size is known.
pub fn advertise(
    existing: &[u8],
    js: &ChildJobserver,
    limit: Option<u32>,
    style: MakeStyle,
) -> (Option<Vec<u8>>, Option<Vec<u8>>, bool) {
    let fds = format!("{},{}", js.read, js.write).into_bytes();
    let fifo = match (style, js.fifo) {
        (MakeStyle::Fifo, Some(p)) => Some(p),
        _ => None,
    };
    if style == MakeStyle::None {
        return (None, Some(fds), true);
    }
    let mut out = filter_words(existing, limit.is_some());
    match (style, limit) {
        (MakeStyle::Bmake, Some(n)) => out.extend_from_slice(format!("-j {n} ").as_bytes()),
        (_, Some(n)) => out.extend_from_slice(format!("-j{n} ").as_bytes()),
        (_, None) => {}
    }
    match (style, fifo) {
        (_, Some(p)) => {
            out.extend_from_slice(b"--jobserver-auth=fifo:");
            out.extend_from_slice(p.as_os_str().as_bytes());
        }
        (MakeStyle::Bmake, None) => {
            out.extend_from_slice(b"-J ");
            out.extend_from_slice(&fds);
        }
        _ => {
            out.extend_from_slice(b"--jobserver-auth=");
            out.extend_from_slice(&fds);
        }
    }
    let inherit = fifo.is_none();
    (Some(out), inherit.then_some(fds), inherit)
}

#[cfg(test)]
mod tests;
