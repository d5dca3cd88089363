//! Commands that change redo's state rather than build: `redo-cleanup`, `redo-depfix`
//! (refused while a build runs), and `redo --daemon-watch=...`.

use super::{Asked, Context, lines_relative};
use crate::engine::Engine;
use crate::fs::paths::{self, show};
use crate::maintenance;
use crate::output::Msg;

/// Why a maintenance command must not run now (a build is running), if so. A request from
/// inside a `.do` is itself part of a running build.
fn busy(engine: &Engine, asked: &Asked) -> Option<String> {
    if asked.job.is_some() {
        return Some(
            "cannot run inside a .do: it would change the state of the running build".into(),
        );
    }
    let (jobs, flights) = engine.activity();
    maintenance::busy_message(jobs, flights)
}

/// `redo-cleanup`: what to remove, and whether only to list it.
pub(crate) struct Cleanup {
    pub(super) what: Vec<redo_proto::CleanupWhat>,
    pub(super) dry_run: bool,
}

impl Cleanup {
    pub(super) async fn apply(self, engine: &Engine, asked: &Asked) -> i32 {
        if let Some(busy) = busy(engine, asked) {
            return asked.fail(busy);
        }
        let (o, what, dry_run) = (asked.origin.clone(), self.what, self.dry_run);
        let out =
            tokio::task::spawn_blocking(move || maintenance::cleanup(&o.cwd, &what, dry_run)).await;
        let cwd = &asked.origin.cwd;
        let out = out.map(|r| {
            r.map(|c| {
                for k in &c.kept {
                    let rel = show(&paths::relative(cwd, k));
                    asked.sink.message(
                        Msg::Warn,
                        0,
                        &format!(
                            "{rel} changed since redo built it: kept (remove it yourself if it \
                             is not needed)"
                        ),
                    );
                }
                lines_relative(&c.removed, cwd)
            })
        });
        asked.answer(out)
    }
}

/// `redo-depfix`.
pub(crate) struct Depfix;

impl Depfix {
    pub(super) async fn apply(self, ctx: &Context, asked: &Asked) -> i32 {
        if let Some(busy) = busy(&ctx.engine, asked) {
            return asked.fail(busy);
        }
        let (engine, disk, o) = (ctx.engine.clone(), ctx.disk.clone(), asked.origin.clone());
        let out = tokio::task::spawn_blocking(move || {
            let d = maintenance::Depfix {
                fs: engine.fs(),
                disk: &*disk,
                recs: engine.recs(),
                hashes: engine.hashes(),
                gate: engine.umask(),
                umask: o.umask,
                sync: !o.settings.no_sync,
            };
            d.run(&o.cwd).map(|fixed| lines_relative(&fixed, &o.cwd))
        })
        .await;
        asked.answer(out)
    }
}

/// `redo --daemon-watch=off|on|overflow`: the file watcher turned off or on, or told that
/// its queue overflowed (for tests).
pub(crate) struct WatchControl {
    pub(super) op: redo_proto::WatchOp,
}

impl WatchControl {
    pub(super) fn apply(&self, engine: &Engine, asked: &Asked) -> i32 {
        let Some(w) = engine.watcher() else {
            return asked
                .fail("this daemon has no file watcher (REDO_NO_WATCH=1, or inotify unavailable)");
        };
        match self.op {
            redo_proto::WatchOp::Off => w.set_enabled(false),
            redo_proto::WatchOp::On => w.set_enabled(true),
            redo_proto::WatchOp::Overflow => w.simulate_overflow(),
        }
        0
    }
}
