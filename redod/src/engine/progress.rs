//! What a terminal's status line is drawn from, on the engine's side: which `.do` files of a
//! session run right now ([`Running`]), and what the last build of the same targets did
//! ([`LastBuild`], kept in the engine's memory for the next build of them).

use super::*;

/// The jobs of a session whose `.do` runs, registered by the executor for as long as it runs
/// ([`Running::enter`]). Only the status line reads it, every 100 ms.
#[derive(Default)]
pub struct Running(Mutex<Vec<Entry>>);

struct Entry {
    job: Arc<Job>,
    /// The `.do`, absolute.
    do_path: PathBuf,
    /// The target, named as its requester named it, when the `.do` is a `default*.do` (whose
    /// name alone does not say what it builds).
    target: Option<String>,
}

/// A `.do` the status line names: its path (absolute) and, for a `default*.do`, its target.
pub struct RunningDo {
    pub do_path: PathBuf,
    pub target: Option<String>,
}

impl Running {
    /// `job`'s `.do` (`do_path`) runs until the guard is dropped.
    pub fn enter<'a>(
        &'a self,
        count: &'a AtomicUsize,
        job: &Arc<Job>,
        do_path: &Path,
        default_for: Option<&str>,
    ) -> RunningGuard<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        lock(&self.0).push(Entry {
            job: job.clone(),
            do_path: do_path.to_path_buf(),
            target: default_for.map(str::to_string),
        });
        RunningGuard {
            running: self,
            count,
            id: job.id,
        }
    }

    /// The `.do` files running now, oldest first. A job whose `.do` waits in a nested request
    /// (it lent its token: see [`Job::lend_token`]) is not running its own code and is left
    /// out, so that at `-j 1` the line names the one `.do` that works.
    pub fn now(&self) -> Vec<RunningDo> {
        lock(&self.0)
            .iter()
            .filter(|e| lock(&e.job.token).is_some())
            .map(|e| RunningDo {
                do_path: e.do_path.clone(),
                target: e.target.clone(),
            })
            .collect()
    }
}

/// Unregisters a running `.do` (its run ended, failed or was cancelled) and lowers the
/// session's count of running jobs.
pub struct RunningGuard<'a> {
    running: &'a Running,
    count: &'a AtomicUsize,
    id: u64,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        // The entry holds its job, hence its session: removing it breaks that cycle.
        lock(&self.running.0).retain(|e| e.job.id != self.id);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the last successful build of a set of targets that ran at least one `.do` did: how
/// many `.do` files it ran (a cache restore counts as one) and how long it took. A build that
/// ran none (a no-op) says nothing of the work there is, and a failed or interrupted one
/// stopped short: neither replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastBuild {
    pub jobs: usize,
    pub took: Duration,
}

/// How many sets of targets the engine remembers a [`LastBuild`] of: a handful are built
/// over and over; past this many, the memory starts again (it is only an estimate).
const LAST_BUILDS: usize = 256;

/// The engine's memory of [`LastBuild`]s, by set of targets ([`targets_key`]). Lives as long
/// as the daemon; a daemon that starts again has no estimate for the first build of each set.
#[derive(Default)]
pub(crate) struct LastBuilds(Mutex<HashMap<u64, LastBuild>>);

/// The key of a set of requested targets (absolute paths): their order does not matter.
pub fn targets_key<'a>(targets: impl IntoIterator<Item = &'a Path>) -> u64 {
    let mut keys: Vec<u64> = targets.into_iter().map(ood::observed::key).collect();
    keys.sort_unstable();
    keys.dedup();
    std::hash::BuildHasher::hash_one(&foldhash::fast::FixedState::with_seed(0x7374_6174), &keys)
}

impl Engine {
    /// What the last build of the targets `key` did ([`LastBuild`]), if remembered.
    pub(crate) fn last_build(&self, key: u64) -> Option<LastBuild> {
        lock(&self.last_builds.0).get(&key).copied()
    }

    /// A successful build of the targets `key` ran `jobs` `.do` files in `took`.
    pub(crate) fn remember_build(&self, key: u64, jobs: usize, took: Duration) {
        if jobs == 0 {
            return;
        }
        let mut m = lock(&self.last_builds.0);
        if m.len() >= LAST_BUILDS && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, LastBuild { jobs, took });
    }
}
