//! A running `.do`, addressable by the nested clients it starts (`REDO_JOB`): their
//! dependency records, its token, and its process as `exec` runs it ([`JobProcess`]).

use super::*;

/// A running `.do`, addressable by nested clients through `REDO_JOB`.
pub struct Job {
    pub(crate) id: u64,
    pub flight: Arc<Flight>,
    pub(crate) records: Mutex<Records>,
    pub(crate) token: Mutex<Option<Token>>,
    /// The `.do`'s process, as the executor runs it.
    pub(crate) process: Arc<dyn JobProcess>,
}

/// What the engine (and a nested request) asks of a running job's process. `exec`
/// implements it: process groups, signals and the stderr relay's pipe are its business; the
/// engine only holds this, so that it never touches a process itself.
pub trait JobProcess: Send + Sync {
    /// Kills the `.do`'s process group at once: the daemon is going away.
    fn kill(&self);

    /// Whether the nested client `pid`, whose stderr is `stderr` (device and inode, as the
    /// client said), writes its stderr into this job's relay: not redirected. `true` when this
    /// cannot be told.
    fn relays_stderr_of(&self, stderr: Option<(u64, u64)>, pid: Option<i32>) -> bool;

    /// Whether the relay may hold back something the `.do` wrote to stderr (held back, being
    /// passed on, or still in the pipe): only then does a nested request ask for a flush.
    fn stderr_unsent(&self) -> bool;

    /// Waits (a bounded time) until the relay has passed on what the `.do` wrote to stderr
    /// before the nested request now being served.
    fn flush_stderr(&self) -> BoxFuture<'_, ()>;
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
        drop(slot);
        if let Some((r, target)) = self.flight.insight() {
            r.resumed(target);
        }
    }

    pub(crate) fn record(&self, deps: impl IntoIterator<Item = Dep>) {
        lock(&self.records).extend(deps);
    }

    pub(crate) fn record_shared(&self, deps: Arc<[Dep]>) {
        lock(&self.records).share(deps);
    }

    /// See [`JobProcess::relays_stderr_of`]: the nested client's text then goes straight where
    /// the job's own text goes, without the relay mistaking it for the `.do`'s own stderr
    /// (which is logged with `-k`, silenced with `-s` and reported as the job's `stderr`
    /// events; goredo tells the two apart by a per-job prefix on nested lines).
    pub(crate) fn relays_stderr_of(&self, stderr: Option<(u64, u64)>, pid: Option<i32>) -> bool {
        self.process.relays_stderr_of(stderr, pid)
    }

    /// See [`JobProcess::stderr_unsent`]. `false` spares the request the flush, a round trip
    /// to the relay which makes an answer that could go out at once wait for the runtime.
    pub(crate) fn stderr_unsent(&self) -> bool {
        self.process.stderr_unsent()
    }

    /// What the `.do` wrote before it started the nested request must reach the terminal
    /// before anything the nested build prints.
    pub(crate) async fn flush_stderr(&self) {
        self.process.flush_stderr().await;
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
    /// A job for `flight`'s `.do`, about to be started as `process`, holding `token`: nested
    /// clients find it by its id ([`JobHandle::id`], their `REDO_JOB`) until the handle goes.
    pub fn register_job(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        records: Vec<Dep>,
        token: Token,
        process: Arc<dyn JobProcess>,
    ) -> JobHandle {
        let job = Arc::new(Job {
            id: self.next_id(),
            flight: flight.clone(),
            records: Mutex::new(records.into()),
            token: Mutex::new(Some(token)),
            process,
        });
        lock(&self.tables).jobs.insert(job.id, job.clone());
        JobHandle {
            engine: self.clone(),
            job,
        }
    }

    /// The running job `id` (a nested request's `REDO_JOB`).
    pub(crate) fn job(&self, id: u64) -> Option<Arc<Job>> {
        lock(&self.tables).jobs.get(&id).cloned()
    }
}

/// A job with no process behind it, for the unit tests' scripted executors: its text goes
/// where the job's own goes, and there is never anything to flush or kill.
#[cfg(test)]
pub(crate) struct NoProcess;

#[cfg(test)]
impl JobProcess for NoProcess {
    fn kill(&self) {}

    fn relays_stderr_of(&self, _stderr: Option<(u64, u64)>, _pid: Option<i32>) -> bool {
        true
    }

    fn stderr_unsent(&self) -> bool {
        false
    }

    fn flush_stderr(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}
