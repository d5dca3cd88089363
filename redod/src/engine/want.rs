//! What a waiter asks of a target, and what the requester already knows of it: built in one
//! place ([`Want::new`]), so that what was read of a target once (whether a verdict vouches
//! for it, its stat, its parsed state file) travels with it to the check and the flight
//! instead of being read again.

use super::*;

/// What a waiter asks of a target.
pub struct Want {
    pub(crate) target: PathBuf,
    /// The target as the requester named it, for messages.
    pub(crate) display: String,
    /// Indentation depth of its messages.
    pub(crate) level: usize,
    /// `redo X`: built whatever its state (never joins another request's flight).
    pub(crate) force: bool,
    pub(crate) session: Arc<Session>,
    pub(crate) origin: Arc<Origin>,
    pub(crate) waiter: Waiter,
    /// The verdicts' generation before anything about the target was read.
    pub(crate) since: u64,
    /// What has been read of the target for this want already.
    pub(crate) seen: Seen,
    /// Dropped when this target has started (see [`wait_landed`]): the request's next target
    /// waits for that.
    pub(crate) start: Option<oneshot::Sender<()>>,
    /// The request's next target when it builds them one after another (`-j 1`, or the
    /// forced targets of `redo`): what its build will need is asked for while this target
    /// builds ([`Executor::prefetch`]).
    pub(crate) next: Option<PathBuf>,
}

/// What was read of a target for one want, with nothing in between that could change it (no
/// wait): taken again, it would be the same answer.
#[derive(Default)]
pub(crate) struct Seen {
    /// The verdicts were asked and had none for it (or it is being built now).
    pub(crate) no_verdict: bool,
    /// Its stat (`Some(None)`: it does not exist).
    pub(crate) meta: Option<Option<Meta>>,
    /// Its parsed state file.
    pub(crate) rec: Option<Arc<Rec>>,
    /// [`Engine::bring_now`] found that it cannot be answered at once (it did not fail before
    /// in this session, was not built here, is not up to date without building anything):
    /// [`Engine::ensure`] goes straight to its flight.
    pub(crate) needs_flight: bool,
}

impl Want {
    /// `target`, named `display` at message depth `level`, wanted by `waiter` for a request
    /// of `session` from `origin`: not forced, nothing read of it yet.
    pub(crate) fn new(
        target: PathBuf,
        display: String,
        level: usize,
        session: Arc<Session>,
        origin: Arc<Origin>,
        waiter: Waiter,
    ) -> Want {
        Want {
            since: Engine::generation(&session),
            target,
            display,
            level,
            force: false,
            session,
            origin,
            waiter,
            seen: Seen::default(),
            start: None,
            next: None,
        }
    }

    /// What `flight`, checking or restoring its target, needs of its dependency `dep`, a
    /// target: brought up to date at the next level, on the flight's behalf.
    pub(crate) fn dependency(flight: &Arc<Flight>, dep: PathBuf) -> Want {
        Want::new(
            dep.clone(),
            show(&paths::shown(&flight.origin.cwd, &dep)),
            flight.level + 1,
            flight.session.clone(),
            flight.origin.clone(),
            Waiter::Flight(flight.clone()),
        )
    }

    /// `redo X`: built whatever its state.
    pub(crate) fn forced(mut self, force: bool) -> Want {
        self.force = force;
        self
    }

    /// Opens `start` once this target has started ([`Want::start`]).
    pub(crate) fn starting(mut self, start: oneshot::Sender<()>) -> Want {
        self.start = Some(start);
        self
    }

    /// `next` is built after this one ([`Want::next`]).
    pub(crate) fn then(mut self, next: Option<PathBuf>) -> Want {
        self.next = next;
        self
    }

    /// Found up to date without a flight: the session's recorder, if any, counts it.
    pub(crate) fn noted_up_to_date(&self) {
        if let Some(r) = &self.session.insight {
            r.up_to_date_target(crate::insight::name(&self.target));
        }
    }

    /// The requester has just asked the verdicts, which had none for this target.
    pub(crate) fn unvouched(mut self) -> Want {
        self.seen.no_verdict = true;
        self
    }
}
