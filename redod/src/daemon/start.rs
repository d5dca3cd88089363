//! Start-up: from `redod serve --root R --runtime-dir D` to a daemon serving its socket, and
//! back out. The binary's edge: errors are `anyhow` with context, printed and logged by
//! `main`.
//!
//! Order matters: the pid lock is taken before the socket is touched (only its holder may
//! remove and bind it) and before the output goes to the log (a daemon that exits before
//! holding it says why to the client that started it, `daemon::log`), the previous daemon's journal of running jobs is swept before any new
//! job can start, and on the way out running jobs are killed before the socket goes.

use crate::daemon::lifecycle::{self, Life};
use crate::engine::Engine;
use crate::fs::DiskFs;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

/// `REDO_WATCH_LAG_MS` (tests only): how long the watcher's event thread waits before reading
/// events, so that a request sees a change made just before it only by syncing itself.
fn watch_lag() -> std::time::Duration {
    let ms = std::env::var("REDO_WATCH_LAG_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    std::time::Duration::from_millis(ms.min(60_000))
}

/// Serves the project at `root` until told to stop or idle. One function, longer than most,
/// because the start-up order (module header) reads best top to bottom.
pub fn serve(root: PathBuf, rundir: PathBuf) -> anyhow::Result<()> {
    anyhow::ensure!(
        root.is_absolute() && rundir.is_absolute(),
        "--root and --runtime-dir must be absolute paths"
    );
    crate::fs::paths::set_root(&root); // listings show paths outside it as absolute paths
    lifecycle::private_dir(&rundir)?;
    // Nothing here is relative to a working directory; and `.do`s are spawned from `/` (see
    // `runner::spawn`). Holding on to the starting client's directory would only keep it busy.
    std::env::set_current_dir("/").context("cannot change to /")?;
    let Some(_pid_lock) = lifecycle::pid_lock(&rundir)? else {
        tracing::info!("another redod already serves {}; exiting", root.display());
        return Ok(());
    };
    let idle = lifecycle::idle_from_env(std::env::var("REDO_DAEMON_IDLE").ok().as_deref())?;
    let socket = rundir.join(redo_proto::rundir::SOCKET);
    // We hold the pid lock: whatever is at the socket path is a dead daemon's leftover.
    match std::fs::remove_file(&socket) {
        Ok(()) => tracing::info!("removed a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot remove stale socket {}", socket.display()));
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(&socket)
        .with_context(|| format!("cannot bind {}", socket.display()))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the socket non-blocking")?;
    // Bound: the log now (until here, stderr is the starting client's pipe, which hangs up and
    // tells the client to connect), then the command links of the `.do` scripts' PATH.
    crate::daemon::log::to_log(&rundir);
    crate::exec::commands::install(&rundir);
    // Still one thread: the spawner can be forked rather than executed (`spawner`).
    let early = crate::spawner::fork_early()
        .map_err(|e| tracing::warn!("cannot fork the spawner ({e}); it is started later"))
        .ok();

    let identity = lifecycle::own_identity();
    tracing::info!(pid = std::process::id(), root = %root.display(), idle = ?idle, "redod {} serving", env!("CARGO_PKG_VERSION"));

    // One thread: the daemon's work per target is many short steps (a request, a spawn, a
    // commit) that hand each other off; on a multi-threaded runtime each hand-off between
    // workers is a futex wake-up and a context switch (14 000 against 6 000 per 1000 targets
    // built, and a fifth more CPU). Anything that blocks for long runs on the blocking pool
    // (`spawn_blocking`: syncing commits, maintenance, listings) and the file watcher's reader
    // is its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let caches = Arc::new(crate::remote::Caches::default());
    let disk: Arc<dyn crate::fs::Disk> = Arc::new(DiskFs);
    // The spawner is this very binary run as `redod spawner`: through `/proc/self/exe`, which
    // still leads to it when the file was replaced since (a rebuilt redod).
    let mut processes =
        crate::exec::Processes::new(caches.clone(), disk.clone(), "/proc/self/exe".into())
            .context("cannot open /dev/null")?;
    if let Some(early) = early {
        processes = processes.with_early_spawner(early);
    }
    let processes = Arc::new(processes);
    let engine = Engine::new(
        Arc::new(DiskFs),
        processes.clone(),
        socket.clone(),
        Some(rundir.clone()),
        0o022,
    );
    // The file-change accelerator, unless REDO_NO_WATCH=1 (then every build stats).
    let engine = match std::env::var_os("REDO_NO_WATCH").is_some_and(|v| v == "1") {
        true => engine,
        false => match crate::watch::Watcher::start(&root, watch_lag()) {
            Some(w) => engine.with_watcher(w),
            None => engine,
        },
    };
    // What the last daemon of this project remembered: parsed state files and hashes, each
    // used only while its file is unchanged, and the watcher's memory with the verdicts decided
    // from it, as far as the disk confirms it (see `store::snapshot`, `engine::snapshot`).
    let snapshot = Snapshot::of(&root);
    snapshot.load(&engine);
    // A daemon killed before us may have left `.do`s running, temporaries and half-done
    // commits behind.
    let journal = rundir.join(crate::store::journal::JOURNAL);
    let swept = crate::exec::orphans::sweep(&DiskFs, &journal, engine.umask());
    if swept != crate::exec::orphans::Swept::default() {
        tracing::warn!(
            killed = swept.groups_killed,
            temps = swept.temps_removed,
            commits = swept.commits_finished,
            "cleaned up after a daemon that died"
        );
    }
    processes.set_registry(
        crate::store::journal::Registry::create(&journal)
            .with_context(|| format!("cannot create {}", journal.display()))?,
    );
    let life = Life::new(identity, root, rundir, idle);
    let ctx = Arc::new(crate::request::Context {
        engine: engine.clone(),
        caches: caches.clone(),
        disk,
    });
    let why = runtime.block_on(async {
        if let Err(e) = processes.warm() {
            // The first `.do` tries again, and reports it.
            tracing::warn!("cannot start the spawner process: {e}");
        }
        let listener = register(listener).context("cannot register the socket")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("signal handler")?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("signal handler")?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("signal handler")?;
        anyhow::Ok(tokio::select! {
            () = crate::daemon::server::serve(listener, ctx, life.clone()) => "listener stopped",
            why = life.exit_when_done(&engine) => why,
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        })
    })?;
    tracing::info!("exiting: {why}");
    engine.kill_all();
    snapshot.save(&engine);
    // Uploads to the shared cache still queued are finished, within reason.
    runtime.block_on(async {
        let flush = caches.flush();
        if tokio::time::timeout(std::time::Duration::from_secs(20), flush)
            .await
            .is_err()
        {
            tracing::warn!("gave up waiting for the shared cache's uploads");
        }
    });
    // Still holding the pid lock: the socket is ours to remove.
    let _ = std::fs::remove_file(&socket);
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(())
}

/// Where this daemon's snapshot of its caches lives, and whose it must be
/// ([`crate::store::snapshot`]): loaded at start-up, written at exit.
struct Snapshot {
    /// The project root's `.redo/`, where the snapshot's files are.
    path: PathBuf,
    origin: Option<crate::store::snapshot::Origin>,
}

impl Snapshot {
    fn of(root: &std::path::Path) -> Snapshot {
        let path = crate::store::layout::redo_dir(root);
        let origin = crate::store::snapshot::Origin::here(root)
            .map_err(|e| tracing::debug!("no snapshot: cannot stat the project root: {e}"))
            .ok();
        Snapshot { path, origin }
    }

    fn load(&self, engine: &Engine) {
        let Some(origin) = &self.origin else { return };
        let started = std::time::Instant::now();
        match crate::store::snapshot::load(&self.path, origin) {
            Ok(c) => {
                let read = started.elapsed();
                let r = engine.restore(c);
                tracing::debug!(
                    recs = r.recs,
                    hashes = r.hashes,
                    verdicts = r.verdicts,
                    changed = r.changed,
                    ?read,
                    took = ?started.elapsed(),
                    "snapshot restored"
                );
            }
            Err(e) => tracing::debug!("snapshot {} not used: {e}", self.path.display()),
        }
    }

    fn save(&self, engine: &Engine) {
        let Some(origin) = &self.origin else { return };
        let contents = engine.export();
        if contents.recs.is_empty() && contents.hashes.is_empty() && contents.verdicts.is_empty() {
            return;
        }
        let saved = std::fs::create_dir_all(&self.path)
            .and_then(|()| crate::store::snapshot::save(&self.path, origin, &contents));
        if let Err(e) = saved {
            tracing::info!("cannot write the snapshot {}: {e}", self.path.display());
        }
    }
}

/// The listening socket, watched by the runtime. Accepting through it rather than through
/// `tokio::net::UnixListener` leaves each accepted connection unregistered until it has to
/// wait (see `daemon::conn`).
#[allow(unsafe_code)]
fn register(
    listener: std::os::unix::net::UnixListener,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::unix::net::UnixListener>> {
    // SAFETY: a std `UnixListener` owns its descriptor: it stays open and the same for as long
    // as the `AsyncFd` owns the listener.
    unsafe { tokio::io::unix::AsyncFd::register(listener) }.map_err(|e| e.into_parts().1)
}
