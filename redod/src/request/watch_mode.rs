//! `redo --watch`: build, then build again whenever an input of the targets changes.

use super::build::{Build, Client};
use super::{Asked, Context};
use crate::fastmap::HashSet;
use crate::fs::paths;
use crate::output::{BuildEvent, WatchEvent};
use redo_proto::BuildMode;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tokio::sync::broadcast;

/// `redo --watch` and its targets, from a shell (from a `.do`, `--watch` is a plain build).
pub(crate) struct Watch(Build);

impl Watch {
    pub(super) fn new(b: redo_proto::Build, client: Client) -> Watch {
        Watch(Build::new(b, client))
    }

    /// Builds, then builds again whenever an input of the targets changes (debounced), until
    /// the client goes away. Rounds after the first bring the targets up to date
    /// (`redo-ifchange`), whatever the command. Two watchers of the same targets share each
    /// round's work (their requests meet in the same flights). One loop, a round per turn:
    /// build, gather the inputs, wait for one to change, debounce.
    pub(super) async fn apply(&self, ctx: &Context, asked: &Asked) -> i32 {
        let (engine, origin, sink) = (&ctx.engine, &asked.origin, &asked.sink);
        let Some(watcher) = engine
            .watcher()
            .filter(|w| w.enabled() && !origin.settings.no_watch)
            .cloned()
        else {
            return asked.fail(
                "--watch needs the file watcher, which is off (REDO_NO_WATCH=1, or inotify is \
                 unavailable)",
            );
        };
        let mut b = self.0.build.clone();
        let mut changes = watcher.subscribe();
        let mut names: Vec<&[u8]> = b.targets.iter().collect();
        if names.is_empty() {
            names.push(b"all");
        }
        let roots: Vec<PathBuf> = names
            .iter()
            .map(|t| paths::resolve(&origin.cwd, OsStr::from_bytes(t)))
            .collect();
        loop {
            let code = self.0.run(ctx, asked, &b).await;
            b.mode = BuildMode::Ifchange;
            b.options.force = false;
            let engine = engine.clone();
            let (o, r) = (origin.clone(), roots.clone());
            let attempts = engine.attempts();
            let inputs = tokio::task::spawn_blocking(move || {
                let mut graph = engine.graph(&o.settings);
                graph.attempts = Some(&attempts);
                let mut inputs = graph.inputs(&r).unwrap_or_default();
                // A root that never got as far as running: its .do, once written, starts it.
                for root in &r {
                    inputs.extend(crate::dofile::candidates(
                        engine.fs(),
                        root,
                        o.settings.top_dir.as_deref(),
                    ));
                }
                inputs
            })
            .await
            .unwrap_or_default();
            watcher.watch_dirs_of(&inputs);
            let outcome = if code == 0 { "built" } else { "failed" };
            sink.error(&format!(
                "redo: {outcome}; watching {} inputs for changes (Ctrl-C to stop)",
                inputs.len()
            ));
            sink.event(&BuildEvent::Watch(WatchEvent::Waiting {
                exit_code: code,
                inputs: inputs.len(),
            }));
            // An input, or a directory above inputs (renamed or removed as a whole); `/` is
            // an overflow: anything may have changed.
            let mut above: HashSet<&Path> = HashSet::default();
            for i in &inputs {
                // Ancestors of an ancestor already there are there too.
                for a in i.ancestors().skip(1) {
                    if !above.insert(a) {
                        break;
                    }
                }
            }
            let relevant = |p: &Path| inputs.contains(p) || above.contains(p);
            // Until an input changes (or the queue overflowed: anything may have).
            loop {
                match changes.recv().await {
                    Ok(p) if relevant(&p) => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return code,
                }
            }
            // Debounce: editors save in several steps; wait for 50 ms of quiet (at most 1 s).
            let settle = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            while let Ok(next) = tokio::time::timeout_at(
                settle.min(tokio::time::Instant::now() + std::time::Duration::from_millis(50)),
                changes.recv(),
            )
            .await
            {
                if matches!(next, Err(broadcast::error::RecvError::Closed)) {
                    return code;
                }
            }
            // Tens of thousands of paths: freed off the runtime's thread, which the next
            // round needs at once.
            drop(above);
            tokio::task::spawn_blocking(move || drop(inputs));
        }
    }
}
