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
mod listing;
mod maintain;
mod record;
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
    /// What the client's stderr is, as it said ([`redo_proto::Terminal::stderr`]).
    stderr: Option<(u64, u64)>,
}

/// One request, accepted: who asked (for messages), where its output goes, whose
/// environment and directory its work uses, and the job it runs in (a client inside a `.do`).
pub(crate) struct Asked {
    pub(crate) tool: String,
    pub(crate) sink: Sink,
    pub(crate) origin: Arc<Origin>,
    pub(crate) job: Option<Arc<Job>>,
}

impl Asked {
    /// `tool: msg` on the client's stderr; the exit code 1.
    pub(crate) fn fail(&self, msg: impl std::fmt::Display) -> i32 {
        self.sink.error(&format!("{}: {msg}", self.tool));
        1
    }

    /// The running job of a command that only works inside a `.do`.
    pub(crate) fn job(&self, what: &str) -> Result<&Arc<Job>, i32> {
        self.job.as_ref().ok_or_else(|| {
            self.fail(format!(
                "{what} only works inside a .do (no running target: REDO_JOB is not set)"
            ))
        })
    }
}

impl Engine {
    /// Serves one client request; returns the exit code. `peer_pid` is the client's process
    /// (whose make jobserver descriptors the daemon may open).
    pub async fn handle(self: &Arc<Self>, req: Request, sink: Sink, peer_pid: Option<i32>) -> i32 {
        let Request {
            command,
            program,
            cwd,
            env,
            umask,
            parent_job,
            make_jobserver,
            client_dir,
            terminal,
        } = req;
        let tool = Some(&program)
            .filter(|p| !p.is_empty())
            .map(|a| show(Path::new(OsStr::from_bytes(a))))
            .unwrap_or_else(|| "redo".into());
        let tool = tool.rsplit('/').next().unwrap_or("redo").to_string();
        let trace = matches!(&command, Command::Build(b) if b.options.trace);
        let accepted = self.accept(cwd.into_vec(), env, umask, parent_job, client_dir, trace);
        let (origin, job) = match accepted {
            Ok(o) => o,
            Err(msg) => {
                sink.error(&format!("{tool}: {msg}"));
                return 1;
            }
        };
        if let Some(j) = &job {
            // Whatever a nested request reads (a build's checks, `redo-ifcreate`'s look for
            // its file), the .do's own changes before it asked must be seen: the watcher's
            // queue is read first (see `watch`). A top-level request syncs as its session
            // starts.
            self.sync_watcher(&j.flight.session);
        }
        let asked = Asked {
            tool,
            sink,
            origin,
            job,
        };
        match command {
            Command::Build(b) => {
                let client = Client {
                    sink: asked.sink.clone(),
                    tool: &asked.tool,
                    make: make_jobserver,
                    pid: peer_pid,
                    stderr: terminal.stderr,
                };
                if b.options.watch && asked.job.is_none() {
                    self.watch_loop(b, asked.origin.clone(), client).await
                } else {
                    self.build(b, asked.origin.clone(), asked.job.clone(), &client)
                        .await
                }
            }
            Command::WatchControl(op) => self.watch_control(&asked, op),
            Command::Ifcreate { targets } => record::ifcreate(&asked, &targets),
            Command::Always => record::always(&asked),
            Command::Stamp { hash } => record::stamp(&asked, hash),
            Command::WhichDo { target } => {
                self.whichdo(&asked.origin, &target, &asked.sink, &asked.tool)
            }
            Command::Query { kind, args } => self.query(&asked, kind, args).await,
            Command::Log {
                target,
                recursive,
                details,
            } => self.log(&asked, &target, recursive, details).await,
            Command::Cleanup { what, dry_run } => self.cleanup(&asked, what, dry_run).await,
            Command::Depfix => self.depfix(&asked).await,
            Command::DaemonStatus | Command::DaemonStop => asked.fail("not a build request"),
        }
    }

    /// The request's directory, environment, settings and job, or why it cannot be served.
    fn accept(
        &self,
        cwd: Vec<u8>,
        env: Vec<(redo_proto::msg::ByteBuf, redo_proto::msg::ByteBuf)>,
        umask: u32,
        parent_job: Option<u64>,
        client_dir: redo_proto::msg::ByteBuf,
        trace: bool,
    ) -> Result<(Arc<Origin>, Option<Arc<Job>>), String> {
        let cwd = PathBuf::from(OsString::from_vec(cwd));
        if !cwd.is_absolute() {
            return Err(format!(
                "working directory '{}' is not absolute",
                show(&cwd)
            ));
        }
        let cwd = paths::clean(&cwd);
        let env = Env::from_bytes(
            env.into_iter()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect(),
        );
        let settings = Settings::from_env(&env, &cwd).map_err(|e| e.to_string())?;
        let job = match parent_job {
            None => None,
            Some(id) => Some(self.job(id).ok_or_else(|| {
                format!(
                    "REDO_JOB={id} names no running job of this daemon: was the build that \
                     ran this .do interrupted? Run redo from a shell, not from a stale environment"
                )
            })?),
        };
        let origin = Arc::new(Origin {
            cwd,
            env,
            umask,
            client_dir: PathBuf::from(OsString::from_vec(client_dir.into_vec())),
            settings,
            trace,
        });
        Ok((origin, job))
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
