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
}

/// Job counts of a session, for the status line.
#[derive(Default)]
pub struct Progress {
    /// Waiting for a job token.
    pub queued: AtomicUsize,
    /// `.do` running.
    pub running: AtomicUsize,
    /// Finished (built or failed).
    pub done: AtomicUsize,
    /// Targets built, and targets that failed, for the session summary.
    pub built: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Progress {
    /// goredo's status line: `run: R wait: W done: D`.
    pub fn line(&self) -> String {
        format!(
            "run: {} wait: {} done: {}",
            self.running.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed)
        )
    }
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
        }
    }

    pub(crate) fn was_built(&self, target: &Path) -> bool {
        lock(&self.built).contains(target.as_os_str())
    }

    pub(crate) fn mark_built(&self, target: &Path) {
        lock(&self.built).insert(target.into());
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
