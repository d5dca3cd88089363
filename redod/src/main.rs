//! `redod serve --root DIR --runtime-dir DIR`: started by the clients, detached, one per project.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "redod",
    version,
    about = "The redo build daemon (started by the redo commands; you rarely run it yourself)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the project rooted at --root on the socket in --runtime-dir.
    Serve {
        /// Project root (absolute).
        #[arg(long)]
        root: PathBuf,
        /// Runtime directory holding sock, pid and daemon.log (mode 0700).
        #[arg(long)]
        runtime_dir: PathBuf,
    },
    /// The daemon's spawner process, which starts the `.do` scripts for it (internal).
    #[command(hide = true)]
    Spawner {
        /// The daemon's end of the socket pair, inherited.
        #[arg(long)]
        fd: i32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (root, runtime_dir) = match cli.command {
        Cmd::Serve { root, runtime_dir } => (root, runtime_dir),
        Cmd::Spawner { fd } => return spawner(fd),
    };
    init_tracing();
    match redod::daemon::serve(root, runtime_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // Not `eprintln!`, which panics when stderr cannot be written (a full disk).
            let _ = writeln!(std::io::stderr(), "redod: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = std::env::var("REDO_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A log that cannot be written (a full disk) loses lines; the default would report
        // each loss with `eprintln!` to the same stderr, which panics.
        .log_internal_errors(false)
        .init();
}

/// `redod spawner --fd N` (see `redod::spawner::server`).
fn spawner(fd: i32) -> ExitCode {
    use std::os::fd::FromRawFd;
    // SAFETY: the daemon started this process with its end of the socket pair at `fd`, and
    // nothing else here owns it.
    #[allow(unsafe_code)]
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    match redod::spawner::server::serve(sock) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "redod spawner: {e}");
            ExitCode::FAILURE
        }
    }
}
