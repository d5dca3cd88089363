//! Serving one client request, in the shape of mini-redis's `cmd`: the request from the wire
//! is taken in once ([`Incoming::parse`]: its environment, settings, output style and
//! directory), accepted ([`Asked`]: who asked, the origin its work runs with, the job it runs
//! in when a `.do` sent it), turned into one command, a type per request kind, each in its
//! file (`build`, `watch_mode`, `record`, `whichdo`, `listing`, `maintain`), which applies
//! itself over the engine's API ([`Cmd::apply`]). Nothing here decides whether a target is
//! out of date, runs a process, or reaches into the engine's state.

use crate::engine::{Engine, Job, Origin};
use crate::fs::Disk;
use crate::fs::paths::{self, show};
use crate::output::{Sink, Style};
use crate::remote::Caches;
use crate::settings::{Env, Settings, SettingsError};
use redo_proto::{Command, MakeJobserver, Request};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod build;
mod listing;
mod maintain;
mod record;
mod reports;
mod status;
mod watch_mode;
mod whichdo;

/// What requests are served with: the engine, the shared build caches beside it (which the
/// executor holds too: requests warn about them and look ahead for them), and the disk the
/// maintenance commands rewrite state files on.
pub struct Context {
    pub engine: Arc<Engine>,
    pub caches: Arc<Caches>,
    pub disk: Arc<dyn Disk>,
}

/// A request as it came from the wire, read once: everything that depends only on the request
/// itself (its settings, the style of its output) is made here, before it is served.
pub struct Incoming {
    command: Command,
    /// The command's name, for messages (`redo-ifchange: ...`).
    tool: String,
    /// The client's directory, cleaned when absolute (a relative one is refused).
    cwd: PathBuf,
    env: Env,
    /// The request's settings, from its environment; a bad value is refused when the request
    /// is accepted, and its output is styled as by default meanwhile.
    settings: Result<Settings, SettingsError>,
    style: Style,
    umask: u32,
    parent_job: Option<u64>,
    make_jobserver: Option<MakeJobserver>,
    client_dir: PathBuf,
    /// What the client's stderr is, as it said ([`redo_proto::Terminal::stderr`]).
    stderr: Option<(u64, u64)>,
}

impl Incoming {
    pub fn parse(req: Request) -> Incoming {
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
        let cwd = PathBuf::from(OsString::from_vec(cwd.into_vec()));
        let cwd = match cwd.is_absolute() {
            true => paths::clean(&cwd),
            false => cwd,
        };
        let env = Env::from_bytes(
            env.into_iter()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect(),
        );
        let settings = Settings::from_env(&env, &cwd);
        let mut style = Style::new(
            settings.as_ref().unwrap_or(&Settings::default()),
            terminal.stderr_is_tty,
            terminal.columns,
        );
        style.events = matches!(&command, Command::Build(b) if b.options.events);
        // The status line belongs to the top-level client; a nested one (whose stderr may be a
        // terminal again, `2>/dev/tty`) does not erase what is not there.
        style.status &= parent_job.is_none();
        Incoming {
            command,
            tool,
            cwd,
            env,
            settings,
            style,
            umask,
            parent_job,
            make_jobserver,
            client_dir: PathBuf::from(OsString::from_vec(client_dir.into_vec())),
            stderr: terminal.stderr,
        }
    }

    pub fn command(&self) -> &Command {
        &self.command
    }

    /// How the client wants its output.
    pub fn style(&self) -> Style {
        self.style
    }

    /// The client's directory.
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// The job a client inside a `.do` names (`REDO_JOB`).
    pub fn parent_job(&self) -> Option<u64> {
        self.parent_job
    }

    /// A build asked for from a shell, not from inside a `.do`.
    pub fn top_level_build(&self) -> bool {
        self.parent_job.is_none() && matches!(self.command, Command::Build(_))
    }

    /// The request's origin and job, or why it cannot be served.
    fn accept(self, engine: &Engine, peer_pid: Option<i32>) -> Result<Accepted, Refused> {
        if !self.cwd.is_absolute() {
            return Err(Refused::RelativeCwd(self.cwd));
        }
        let settings = self.settings?;
        let job = match self.parent_job {
            None => None,
            Some(id) => Some(engine.job(id).ok_or(Refused::NoSuchJob(id))?),
        };
        let trace = matches!(&self.command, Command::Build(b) if b.options.trace);
        let origin = Arc::new(Origin {
            cwd: self.cwd,
            env: self.env,
            umask: self.umask,
            client_dir: self.client_dir,
            settings,
            trace,
        });
        let client = build::Client {
            make: self.make_jobserver,
            pid: peer_pid,
            stderr: self.stderr,
        };
        Ok(Accepted {
            cmd: Cmd::parse(self.command, client, job.is_some()),
            origin,
            job,
        })
    }
}

/// A request that will be served: what it asks, the origin its work runs with, its job.
struct Accepted {
    cmd: Cmd,
    origin: Arc<Origin>,
    job: Option<Arc<Job>>,
}

/// Why a request is not served at all.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("working directory '{}' is not absolute", show(.0))]
    RelativeCwd(PathBuf),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "REDO_JOB={0} names no running job of this daemon: was the build that ran this .do \
         interrupted? Run redo from a shell, not from a stale environment"
    )]
    NoSuchJob(u64),
}

/// Serves one request; returns its exit code. `peer_pid` is the client's process (whose make
/// jobserver descriptors the daemon may open).
pub async fn serve(ctx: &Context, incoming: Incoming, sink: Sink, peer_pid: Option<i32>) -> i32 {
    let tool = incoming.tool.clone();
    let Accepted { cmd, origin, job } = match incoming.accept(&ctx.engine, peer_pid) {
        Ok(accepted) => accepted,
        Err(e) => {
            sink.error(&format!("{tool}: {e}"));
            return 1;
        }
    };
    if let Some(j) = &job {
        // Whatever a nested request reads (a build's checks, `redo-ifcreate`'s look for
        // its file), the .do's own changes before it asked must be seen: the watcher's
        // queue is read first (see `watch`). A top-level request syncs as its session
        // starts.
        ctx.engine.sync_watcher(&j.flight.session);
    }
    let asked = Asked {
        tool,
        sink,
        origin,
        job,
    };
    cmd.apply(ctx, &asked).await
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
                "{what} only works inside a .do: it records a dependency of the target that \
                 .do builds; put it in a .do file (run from a shell, there is no such target)"
            ))
        })
    }

    /// Sends a blocking command's output, or its error.
    pub(crate) fn answer<E: std::fmt::Display>(
        &self,
        out: Result<Result<Vec<u8>, E>, tokio::task::JoinError>,
    ) -> i32 {
        match out {
            Ok(Ok(bytes)) => {
                self.sink.stdout(bytes);
                0
            }
            Ok(Err(e)) => self.fail(e),
            Err(e) => self.fail(format!("internal error: {e}")),
        }
    }
}

/// One request, by kind: each parsed from the wire command once, then applied.
enum Cmd {
    Build(build::Build),
    Watch(watch_mode::Watch),
    WatchControl(maintain::WatchControl),
    Ifcreate(record::Ifcreate),
    Always(record::Always),
    Stamp(record::Stamp),
    WhichDo(whichdo::WhichDo),
    Query(listing::Query),
    Log(listing::Log),
    Cleanup(maintain::Cleanup),
    Depfix(maintain::Depfix),
    /// `--daemon-status`, `--daemon-stop`: the daemon's own, never a request's.
    NotARequest,
}

impl Cmd {
    /// `nested`: the request comes from a running `.do`.
    fn parse(command: Command, client: build::Client, nested: bool) -> Cmd {
        match command {
            Command::Build(b) if b.options.watch && !nested => {
                Cmd::Watch(watch_mode::Watch::new(b, client))
            }
            Command::Build(b) => Cmd::Build(build::Build::new(b, client)),
            Command::WatchControl(op) => Cmd::WatchControl(maintain::WatchControl { op }),
            Command::Ifcreate { targets } => Cmd::Ifcreate(record::Ifcreate { targets }),
            Command::Always => Cmd::Always(record::Always),
            Command::Stamp { hash } => Cmd::Stamp(record::Stamp { hash }),
            Command::WhichDo { target } => Cmd::WhichDo(whichdo::WhichDo { target }),
            Command::Query { kind, args } => Cmd::Query(listing::Query { kind, args }),
            Command::Log {
                target,
                recursive,
                details,
            } => Cmd::Log(listing::Log {
                target,
                recursive,
                details,
            }),
            Command::Cleanup { what, dry_run } => Cmd::Cleanup(maintain::Cleanup { what, dry_run }),
            Command::Depfix => Cmd::Depfix(maintain::Depfix),
            Command::DaemonStatus | Command::DaemonStop => Cmd::NotARequest,
        }
    }

    async fn apply(self, ctx: &Context, asked: &Asked) -> i32 {
        match self {
            Cmd::Build(c) => c.apply(ctx, asked).await,
            Cmd::Watch(c) => c.apply(ctx, asked).await,
            Cmd::WatchControl(c) => c.apply(&ctx.engine, asked),
            Cmd::Ifcreate(c) => c.apply(asked),
            Cmd::Always(c) => c.apply(asked),
            Cmd::Stamp(c) => c.apply(asked),
            Cmd::WhichDo(c) => c.apply(&ctx.engine, asked),
            Cmd::Query(c) => c.apply(&ctx.engine, asked).await,
            Cmd::Log(c) => c.apply(asked).await,
            Cmd::Cleanup(c) => c.apply(&ctx.engine, asked).await,
            Cmd::Depfix(c) => c.apply(ctx, asked).await,
            Cmd::NotARequest => asked.fail("not a build request"),
        }
    }
}

/// Paths relative to `cwd`, one per line.
fn lines_relative(paths_: &[PathBuf], cwd: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths_ {
        out.extend_from_slice(paths::bytes(&paths::relative(cwd, p)));
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests;
