//! The directory of command links at the head of a `.do`'s `PATH`: `bin/` in the runtime
//! directory, holding `redo`, `redo-ifchange`, ... each a link to the `redo` binary beside the
//! running `redod` ([`install`], at daemon start).
//!
//! Why the daemon's own links come first: the commands a `.do` runs talk to this daemon, so
//! they are of its build, whatever the `PATH` the build was started with (an installed redo of
//! another version, or none: the try-it command runs `redo` straight from cargo, where only
//! `redo` and `redod` are built). Remade at every start (a link per name, each replaced
//! atomically: see `redo_proto::commands::link_all`), since the binary may have moved.
//!
//! Without a `redo` beside `redod` (`REDO_DAEMON` naming a `redod` copied elsewhere), or when
//! the links cannot be made (a full or read-only runtime directory), the requesting client's
//! own directory comes first instead, as before there was one binary: an installed client's
//! directory holds the command links (`contrib/install.sh`). The client's directory is not
//! kept second behind the links: it would only shadow the rest of the `PATH` with whatever
//! else lies there (a cargo target directory's stale binaries).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The links' directory inside the runtime directory.
pub const DIR: &str = "bin";

static LINKS: OnceLock<PathBuf> = OnceLock::new();

/// Makes `rundir/bin/NAME -> <dir of this redod>/redo` for every command name, and makes it the
/// directory [`first_on_path`] returns. Logs and gives up (the fallback of the module docs)
/// when there is no `redo` there or the links cannot be made.
pub fn install(rundir: &Path) {
    let Some(redo) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("redo")))
        .filter(|r| r.is_file())
    else {
        tracing::info!(
            "no redo beside redod: the .do scripts get the clients' directory first on PATH"
        );
        return;
    };
    let dir = rundir.join(DIR);
    match redo_proto::commands::link_all(&dir, &redo, &redo_proto::commands::NAMES) {
        Ok(()) => {
            let _ = LINKS.set(dir);
        }
        Err(e) => tracing::warn!(
            "cannot make the command links in {}: {e}; the .do scripts get the clients' directory first on PATH",
            dir.display()
        ),
    }
}

/// The directory a `.do`'s `PATH` starts with: the links when [`install`] made them, else
/// `client_dir` (empty: none).
pub fn first_on_path(client_dir: &Path) -> &Path {
    LINKS.get().map_or(client_dir, PathBuf::as_path)
}
