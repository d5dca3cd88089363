//! A running `.do`, addressable by the nested clients it starts (`REDO_JOB`): their
//! dependency records, its token, its stderr relay.

use super::*;

/// A running `.do`, addressable by nested clients through `REDO_JOB`.
pub struct Job {
    pub(crate) id: u64,
    pub flight: Arc<Flight>,
    pub(crate) records: Mutex<Records>,
    pub(crate) token: Mutex<Option<Token>>,
    /// Process group of the running `.do` (0 before it is spawned).
    pub(crate) pgid: AtomicI32,
    /// Asks the job's stderr relay to pass on everything the `.do` has written so far.
    pub(crate) flush: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
    /// Device and inode of the pipe the `.do`'s stderr is relayed from (unset before the
    /// spawn, or when it could not be read).
    pub(crate) stderr_pipe: std::sync::OnceLock<(u64, u64)>,
    /// Where the stderr relay stands, so that a nested request can tell whether it has
    /// anything to flush ([`Job::stderr_unsent`]).
    pub(crate) relay: Mutex<RelayState>,
}

/// The stderr relay of a job, as a nested request sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RelayState {
    /// Not reading yet: whatever there is, a flush is asked for.
    Starting,
    /// Reading the pipe `pipe` (the relay's own descriptor, valid while this state lasts);
    /// `idle` when it holds nothing back and is not passing anything on.
    Reading {
        pipe: std::os::fd::RawFd,
        idle: bool,
    },
    /// The pipe is closed: nothing more comes through the relay.
    Over,
}

/// Bytes waiting in the pipe `fd`; `None` when that cannot be told.
#[allow(unsafe_code)]
fn unread(fd: std::os::fd::RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to `n`. `fd` is open:
    // the caller holds the lock that the relay takes before it closes the descriptor.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

impl Job {
    /// A nested request is about to wait: give the `.do`'s token back meanwhile.
    pub(crate) fn lend_token(&self) {
        drop(lock(&self.token).take());
    }

    /// The nested request is done: the `.do` runs its own code again and needs a token.
    pub(crate) async fn reclaim_token(&self) {
        if lock(&self.token).is_some() {
            return;
        }
        let t = self.flight.session.tokens.acquire().await;
        let mut slot = lock(&self.token);
        if slot.is_none() {
            *slot = Some(t);
        }
    }

    pub(crate) fn record(&self, deps: impl IntoIterator<Item = Dep>) {
        lock(&self.records).extend(deps);
    }

    pub(crate) fn record_shared(&self, deps: Arc<[Dep]>) {
        lock(&self.records).share(deps);
    }

    /// Whether the nested client `pid` writes its stderr into this job's relay pipe, i.e. its
    /// stderr was not redirected. Its text then goes straight where the job's own text goes:
    /// the same place the pipe would take it, without the relay mistaking it for the `.do`'s
    /// own stderr (which is logged with `-k`, silenced with `-s` and reported as the job's
    /// `stderr` events; goredo tells the two apart by a per-job prefix on nested lines).
    /// The client says what its stderr is (`stderr`, from its own `fstat`); a client that did
    /// not (its stderr closed) is looked at through `/proc`. When this cannot be told (no pid,
    /// `/proc` unreadable, the pipe not yet known), `true`: the output reaches the terminal as
    /// it always did.
    pub(crate) fn relays_stderr_of(&self, stderr: Option<(u64, u64)>, pid: Option<i32>) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(pipe) = self.stderr_pipe.get() else {
            return true;
        };
        if let Some(id) = stderr {
            return id == *pipe;
        }
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return true;
        };
        match std::fs::metadata(format!("/proc/{pid}/fd/2")) {
            Ok(m) => (m.dev(), m.ino()) == *pipe,
            // `2>&-`: nowhere to write, unless it is the process that is not visible here.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                !Path::new(&format!("/proc/{pid}/fd")).exists()
            }
            Err(_) => true,
        }
    }

    /// Whether the relay may have something the `.do` wrote to stderr that it has not passed
    /// on: held back (a partial line), being passed on, or still in the pipe. A `.do` writes
    /// before it starts the nested command, so what it wrote first is in the pipe by the time
    /// the request arrives. `false` spares the request the flush, a round trip to the relay
    /// which makes an answer that could go out at once wait for the runtime.
    pub(crate) fn stderr_unsent(&self) -> bool {
        match *lock(&self.relay) {
            RelayState::Starting => true,
            RelayState::Reading { idle: false, .. } => true,
            RelayState::Reading { pipe, idle: true } => unread(pipe) != Some(0),
            RelayState::Over => false,
        }
    }

    /// Waits until the job's relay has passed on what its `.do` wrote to stderr before it
    /// started the nested request now being served: that output must reach the terminal before
    /// anything the nested build prints.
    pub(crate) async fn flush_stderr(&self) {
        let tx = lock(&self.flush).clone();
        if let Some(tx) = tx {
            let (done, wait) = oneshot::channel();
            if tx.send(done).await.is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wait).await;
            }
        }
    }
}

/// Unregisters a job when its `.do` is finished (or its flight dropped).
pub struct JobHandle {
    pub(crate) engine: Arc<Engine>,
    pub(crate) job: Arc<Job>,
}

impl JobHandle {
    pub fn id(&self) -> u64 {
        self.job.id
    }

    /// Where the job's stderr relay listens for flush requests.
    pub fn set_flush(&self, tx: mpsc::Sender<oneshot::Sender<()>>) {
        *lock(&self.job.flush) = Some(tx);
    }

    /// Remembers which pipe the `.do`'s stderr is, to tell nested clients whose stderr was
    /// redirected from the others. Set right after the spawn: a nested request that could come
    /// before (it cannot, in practice: the `.do` has to start first) is taken as not redirected.
    pub fn set_stderr_pipe(&self, dev: u64, ino: u64) {
        let _ = self.job.stderr_pipe.set((dev, ino));
    }

    /// Remembers the `.do`'s process group, for [`Engine::kill_all`].
    pub fn set_pgid(&self, pgid: i32) {
        self.job.pgid.store(pgid, Ordering::Relaxed);
    }

    /// The records gathered so far (runner's own, then nested clients'), in order, for the
    /// commit.
    pub fn take_records(&self) -> Records {
        std::mem::take(&mut *lock(&self.job.records))
    }

    /// The records gathered so far, left in place.
    pub fn records(&self) -> Records {
        lock(&self.job.records).clone()
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        lock(&self.engine.tables).jobs.remove(&self.job.id);
        // Records a commit did not take belong to an attempt that did not land.
        let left = std::mem::take(&mut *lock(&self.job.records)).into_vec();
        let target = self.job.flight.target.clone();
        let mut attempts = lock(&self.engine.attempts);
        if left.is_empty() {
            attempts.remove(&target);
        } else {
            attempts.insert(target, left);
        }
        drop(attempts);
        drop(lock(&self.job.token).take());
    }
}

impl Engine {
    pub fn register_job(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        records: Vec<Dep>,
        token: Token,
    ) -> JobHandle {
        let job = Arc::new(Job {
            id: self.next_id(),
            flight: flight.clone(),
            records: Mutex::new(records.into()),
            token: Mutex::new(Some(token)),
            pgid: AtomicI32::new(0),
            flush: Mutex::new(None),
            stderr_pipe: std::sync::OnceLock::new(),
            relay: Mutex::new(RelayState::Starting),
        });
        lock(&self.tables).jobs.insert(job.id, job.clone());
        JobHandle {
            engine: self.clone(),
            job,
        }
    }

    pub(crate) fn job(&self, id: u64) -> Option<Arc<Job>> {
        lock(&self.tables).jobs.get(&id).cloned()
    }
}
