//! Turning one client request into work, as cargo's thin commands over its `ops`: the
//! dispatch by request kind lives here, each kind in a file of its own (`build`,
//! `watch_mode`, `record`, `whichdo`), and the work itself in the modules below (`engine`,
//! `query`, `maintenance`, `store::logs`). Nothing here decides whether a target is out of
//! date or runs a process.

use crate::engine::{Engine, Job, Known, Origin, Reported, Session, Waiter, Want};
use crate::fastmap::HashSet;
use crate::fs::paths::{self, show};
use crate::jobserver::Tokens;
use crate::output::{BuildEvent, SessionEvent, WatchEvent};
use crate::output::{Msg, Sink};
use crate::settings::{Env, Settings};
use crate::store::recfile::Dep;
use crate::sync::lock;
use crate::{maintenance, query, store::logs};
use futures_util::StreamExt;
use redo_proto::{Build, BuildMode, Command, Request};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, oneshot};

mod build;
mod watch_mode;
mod whichdo;

fn lines_relative(paths_: &[PathBuf], cwd: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths_ {
        out.extend_from_slice(paths::bytes(&paths::relative(cwd, p)));
        out.push(b'\n');
    }
    out
}

/// Who asked, for a build request.
pub(crate) struct Client<'a> {
    sink: Sink,
    tool: &'a str,
    make: Option<redo_proto::MakeJobserver>,
    pid: Option<i32>,
}

impl Engine {
    /// Serves one client request; returns the exit code. `peer_pid` is the client's process
    /// (whose make jobserver descriptors the daemon may open).
    pub async fn handle(self: &Arc<Self>, req: Request, sink: Sink, peer_pid: Option<i32>) -> i32 {
        let tool = Some(&req.program)
            .filter(|p| !p.is_empty())
            .map(|a| show(Path::new(OsStr::from_bytes(a))))
            .unwrap_or_else(|| "redo".into());
        let tool = tool.rsplit('/').next().unwrap_or("redo").to_string();
        let fail = |msg: String| {
            sink.error(&format!("{tool}: {msg}"));
            1
        };
        let cwd = PathBuf::from(OsString::from_vec(req.cwd.into_vec()));
        if !cwd.is_absolute() {
            return fail(format!(
                "working directory '{}' is not absolute",
                show(&cwd)
            ));
        }
        let cwd = paths::clean(&cwd);
        let env = Env::from_bytes(
            req.env
                .into_iter()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect(),
        );
        let settings = match Settings::from_env(&env, &cwd) {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        let job = match req.parent_job {
            None => None,
            Some(id) => match self.job(id) {
                Some(j) => Some(j),
                None => {
                    return fail(format!(
                        "REDO_JOB={id} names no running job of this daemon: was the build that \
                         ran this .do interrupted? Run redo from a shell, not from a stale environment"
                    ));
                }
            },
        };
        let trace = matches!(&req.command, Command::Build(b) if b.options.trace);
        let origin = Arc::new(Origin {
            cwd,
            env,
            umask: req.umask,
            client_dir: PathBuf::from(OsString::from_vec(req.client_dir.into_vec())),
            settings,
            trace,
        });
        let needs_job = |what: &str| -> Result<Arc<Job>, i32> {
            job.clone().ok_or_else(|| {
                fail(format!(
                    "{what} only works inside a .do (no running target: REDO_JOB is not set)"
                ))
            })
        };
        match req.command {
            Command::Build(b) => {
                let client = Client {
                    sink: sink.clone(),
                    tool: &tool,
                    make: req.make_jobserver,
                    pid: peer_pid,
                };
                if b.options.watch && job.is_none() {
                    self.watch_loop(b, origin, client).await
                } else {
                    self.build(b, origin, job, &client).await
                }
            }
            Command::WatchControl(op) => match &self.watcher {
                Some(w) => {
                    match op {
                        redo_proto::WatchOp::Off => w.set_enabled(false),
                        redo_proto::WatchOp::On => w.set_enabled(true),
                        redo_proto::WatchOp::Overflow => w.simulate_overflow(),
                    }
                    0
                }
                None => fail(
                    "this daemon has no file watcher (REDO_NO_WATCH=1, or inotify unavailable)"
                        .into(),
                ),
            },
            // Nothing to record: done, in a .do or not (`redo-ifcreate $(list)` of an empty list).
            Command::Ifcreate { targets } if targets.is_empty() => 0,
            Command::Ifcreate { targets } => {
                let job = match needs_job("redo-ifcreate") {
                    Ok(j) => j,
                    Err(c) => return c,
                };
                let mut deps = Vec::new();
                for t in targets {
                    let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(&t));
                    match job.flight.session.fs.exists(&abs) {
                        Ok(false) => deps.push(Dep::Ifcreate {
                            target: paths::bytes(&paths::relative(&job.flight.dir, &abs)).to_vec(),
                        }),
                        Ok(true) => {
                            return fail(format!(
                                "{} exists: a dependency on its creation would keep the target out of date \
                                 forever; use redo-ifchange for existing files",
                                String::from_utf8_lossy(&t)
                            ));
                        }
                        Err(e) => return fail(format!("cannot stat {}: {e}", show(&abs))),
                    }
                }
                job.record(deps);
                0
            }
            Command::Always => match needs_job("redo-always") {
                Ok(j) => {
                    j.record([Dep::Always]);
                    0
                }
                Err(c) => c,
            },
            Command::Stamp { hash } => match needs_job("redo-stamp") {
                Ok(j) => {
                    j.record([Dep::Stamp { hash }]);
                    0
                }
                Err(c) => c,
            },
            Command::WhichDo { target } => self.whichdo(&origin, &target, &sink, &tool),
            Command::Query { kind, args } => {
                let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.into_vec()).collect();
                let engine = self.clone();
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let g = engine.graph(&o.settings);
                    query::run(&g, kind, &o.cwd, &args)
                })
                .await;
                self.answer(out, &sink, &tool)
            }
            Command::Log {
                target,
                recursive,
                details,
            } => {
                let t = paths::resolve(&origin.cwd, OsStr::from_bytes(&target));
                let o = origin.clone();
                let out =
                    tokio::task::spawn_blocking(move || logs::show(&t, &o.cwd, recursive, details))
                        .await;
                self.answer(out, &sink, &tool)
            }
            Command::Cleanup { what, dry_run } => {
                if let Some(busy) = self.busy(job.is_some()) {
                    return fail(busy);
                }
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    maintenance::cleanup(&o.cwd, &what, dry_run)
                })
                .await;
                let out = out.map(|r| {
                    r.map(|c| {
                        for k in &c.kept {
                            let rel = show(&paths::relative(&origin.cwd, k));
                            sink.message(Msg::Warn, 0, &format!("{rel} changed since redo built it: kept (remove it yourself if it is not needed)"));
                        }
                        lines_relative(&c.removed, &origin.cwd)
                    })
                });
                self.answer(out, &sink, &tool)
            }
            Command::Depfix => {
                if let Some(busy) = self.busy(job.is_some()) {
                    return fail(busy);
                }
                let engine = self.clone();
                let o = origin.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let d = maintenance::Depfix {
                        fs: &*engine.fs,
                        recs: &engine.recs,
                        hashes: &engine.hashes,
                        gate: &engine.umask,
                        umask: o.umask,
                        sync: !o.settings.no_sync,
                    };
                    Ok(lines_relative(&d.run(&o.cwd)?, &o.cwd))
                })
                .await;
                self.answer(out, &sink, &tool)
            }
            Command::DaemonStatus | Command::DaemonStop => fail("not a build request".into()),
        }
    }

    /// A read-only view for the listing commands.
    pub fn graph(&self, settings: &Settings) -> query::Graph<'_> {
        query::Graph {
            fs: &*self.fs,
            recs: &self.recs,
            hashes: &self.hashes,
            trust: settings.trust,
            attempts: None,
        }
    }

    /// Why a maintenance command must not run now (a build is running), if so. A request from
    /// inside a `.do` is itself part of a running build.
    pub(crate) fn busy(&self, nested: bool) -> Option<String> {
        if nested {
            return Some(
                "cannot run inside a .do: it would change the state of the running build".into(),
            );
        }
        let (jobs, flights) = self.activity();
        maintenance::busy_message(jobs, flights)
    }

    /// Sends a blocking command's output, or its error.
    pub(crate) fn answer(
        &self,
        out: Result<Result<Vec<u8>, String>, tokio::task::JoinError>,
        sink: &Sink,
        tool: &str,
    ) -> i32 {
        match out {
            Ok(Ok(bytes)) => {
                sink.stdout(bytes);
                0
            }
            Ok(Err(msg)) => {
                sink.error(&format!("{tool}: {msg}"));
                1
            }
            Err(e) => {
                sink.error(&format!("{tool}: internal error: {e}"));
                1
            }
        }
    }
}
