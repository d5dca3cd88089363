//! A build session: one top-level request and everything it causes (build id, token pool,
//! progress counts, which targets it built).

use super::*;

pub struct Session {
    pub uuid: String,
    /// The filesystem as this session sees it: the watcher's cache, or the plain disk.
    pub fs: Arc<dyn Fs>,
    /// Whether `fs` is the watcher's (requests then sync with it first).
    pub watched: bool,
    pub tokens: Tokens,
    /// Verdicts it may answer from and record into (see [`crate::verdict`]).
    pub verdicts: Option<Arc<Verdicts>>,
    pub progress: Progress,
    /// Targets whose `.do` this session ran and committed (see [`Engine::built_here`]).
    pub(crate) built: Mutex<PathSet>,
    /// Targets that failed in this session, with who needed them (the dependants' names, for
    /// `--keep-going`'s summary). A target that failed is failed for every later request of
    /// the session: its `.do` runs once and its error is printed once. The next session (the
    /// next build, the next `--watch` round) tries again.
    pub(crate) failed: Mutex<PathMap<Failure>>,
    /// Files already warned about in this session (a user's file taken as a source): one
    /// warning per build.
    warned: Mutex<PathSet>,
    /// What this build did over time, when it asked for `--timings` or `--trace`
    /// ([`crate::insight`]): fed by the flights and jobs of the session, read by nothing here.
    pub insight: Option<Arc<Recorder>>,
}

/// A target that failed in a session.
#[derive(Default, Clone)]
pub(crate) struct Failure {
    /// The target as its first requester named it.
    pub(crate) display: String,
    /// Who needed it, in the order they asked (targets' names; the top-level request is not
    /// named).
    pub(crate) needed_by: Vec<String>,
    /// How many targets had failed before it in the session (the summary's order).
    order: usize,
}

/// Job counts of a session, for the status line (`request::status`) and the summary.
#[derive(Default)]
pub struct Progress {
    /// Waiting for a job token.
    pub queued: AtomicUsize,
    /// `.do` running (those waiting in a nested request too).
    pub running: AtomicUsize,
    /// Finished (built or failed).
    pub done: AtomicUsize,
    /// Targets built, and targets that failed, for the session summary.
    pub built: AtomicUsize,
    pub failed: AtomicUsize,
    /// Which `.do` files run: the status line names them.
    pub jobs: super::progress::Running,
}

impl Session {
    pub fn new(
        tokens: Tokens,
        fs: Arc<dyn Fs>,
        watched: bool,
        verdicts: Option<Arc<Verdicts>>,
    ) -> Session {
        Session {
            uuid: new_uuid(),
            fs,
            watched,
            tokens,
            verdicts,
            progress: Progress::default(),
            built: Mutex::new(PathSet::default()),
            failed: Mutex::default(),
            warned: Mutex::default(),
            insight: None,
        }
    }

    /// Whether `target` failed earlier in this session; if so, `needed_by` (when a target's
    /// name) is added to those who needed it.
    pub(crate) fn failed_before(&self, target: &Path, needed_by: Option<&str>) -> bool {
        let mut failed = lock(&self.failed);
        let Some(f) = failed.get_mut(target.as_os_str()) else {
            return false;
        };
        if let Some(n) = needed_by {
            if !f.needed_by.iter().any(|x| x == n) {
                f.needed_by.push(n.to_string());
            }
        }
        true
    }

    /// `target` failed: every later request of this session fails at once.
    pub(crate) fn mark_failed(&self, target: &Path, display: &str, needed_by: Option<&str>) {
        let mut failed = lock(&self.failed);
        let order = failed.len();
        let f = failed
            .entry(crate::fastmap::key(target))
            .or_insert_with(|| Failure {
                display: display.to_string(),
                needed_by: Vec::new(),
                order,
            });
        if let Some(n) = needed_by {
            if !f.needed_by.iter().any(|x| x == n) {
                f.needed_by.push(n.to_string());
            }
        }
    }

    /// `--keep-going`'s closing summary: a line per target that failed, in the order they
    /// failed, with who needed it.
    pub(crate) fn failure_summary(&self) -> Vec<String> {
        let failed = lock(&self.failed);
        let mut all: Vec<&Failure> = failed.values().collect();
        all.sort_by_key(|f| f.order);
        all.iter()
            .map(|f| match f.needed_by.is_empty() {
                true => format!("failed: {}", f.display),
                false => format!(
                    "failed: {} (needed by {})",
                    f.display,
                    f.needed_by.join(", ")
                ),
            })
            .collect()
    }

    /// Whether this is the first warning about `path` in this session.
    pub(crate) fn first_warning(&self, path: &Path) -> bool {
        lock(&self.warned).insert(crate::fastmap::key(path))
    }

    pub(crate) fn was_built(&self, target: &Path) -> bool {
        lock(&self.built).contains(target.as_os_str())
    }

    pub(crate) fn mark_built(&self, target: &Path) {
        lock(&self.built).insert(crate::fastmap::key(target));
    }
}

/// A random version-4 UUID, formatted as goredo does.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
