//! Commands that change redo's state rather than build: `redo-cleanup`, `redo-depfix`
//! (refused while a build runs), and `redo --daemon-watch=...`.

use super::*;

impl Engine {
    pub(crate) async fn cleanup(
        &self,
        asked: &Asked,
        what: Vec<redo_proto::CleanupWhat>,
        dry_run: bool,
    ) -> i32 {
        if let Some(busy) = self.busy(asked.job.is_some()) {
            return asked.fail(busy);
        }
        let o = asked.origin.clone();
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
            .map_err(String::from)
        });
        self.answer(out, &asked.sink, &asked.tool)
    }

    pub(crate) async fn depfix(self: &Arc<Self>, asked: &Asked) -> i32 {
        if let Some(busy) = self.busy(asked.job.is_some()) {
            return asked.fail(busy);
        }
        let engine = self.clone();
        let o = asked.origin.clone();
        let out = tokio::task::spawn_blocking(move || {
            let d = maintenance::Depfix {
                fs: &*engine.fs,
                recs: &engine.recs,
                hashes: &engine.hashes,
                gate: &engine.umask,
                umask: o.umask,
                sync: !o.settings.no_sync,
            };
            Ok(lines_relative(&d.run(&o.cwd)?, &o.cwd)) as Result<Vec<u8>, String>
        })
        .await;
        self.answer(out, &asked.sink, &asked.tool)
    }

    pub(crate) fn watch_control(&self, asked: &Asked, op: redo_proto::WatchOp) -> i32 {
        let Some(w) = &self.watcher else {
            return asked
                .fail("this daemon has no file watcher (REDO_NO_WATCH=1, or inotify unavailable)");
        };
        match op {
            redo_proto::WatchOp::Off => w.set_enabled(false),
            redo_proto::WatchOp::On => w.set_enabled(true),
            redo_proto::WatchOp::Overflow => w.simulate_overflow(),
        }
        0
    }
}
