//! Accepting clients: one task per connection, one request per connection.
//!
//! A connection from another uid is dropped before a byte is read. A bad hello, a frame that
//! does not decode, an oversized or truncated frame: that connection is closed and logged, and
//! nothing else is affected. A client that disconnects while its request runs (Ctrl-C) cancels
//! it: the request's future is dropped, which detaches it from the targets it waits for.

use crate::daemon::lifecycle::Life;
use crate::engine::Engine;
use crate::output::{Queued, Sink, Style};
use crate::settings::{Env, Settings};
use futures_util::{SinkExt, StreamExt};
use redo_proto::codec::FrameCodec;
use redo_proto::{Answer, ClientHello, Command, DaemonHello, Event, HELLO_LEN, Request};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

type Codec = FrameCodec<Request, Event>;

pub async fn serve(listener: UnixListener, engine: Arc<Engine>, life: Arc<Life>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (engine, life) = (engine.clone(), life.clone());
                tokio::spawn(async move { connection(stream, engine, life).await });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// One client connection: uid check, hello, one request, its events, `Done`. One function:
/// the steps are the protocol's order (docs/DESIGN.md §3), each a few lines.
async fn connection(mut stream: UnixStream, engine: Arc<Engine>, life: Arc<Life>) {
    let counted = life.connection();
    let peer_pid = match stream.peer_cred() {
        Ok(c) if c.uid() == life.uid => c.pid(),
        Ok(c) => {
            tracing::warn!(
                "refused a connection from uid {} (only uid {} may use this daemon)",
                c.uid(),
                life.uid
            );
            return;
        }
        Err(e) => {
            tracing::warn!("cannot read peer credentials: {e}");
            return;
        }
    };
    let mut hello = [0u8; HELLO_LEN];
    match tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut hello)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return tracing::debug!("connection closed before its hello: {e}"),
        Err(_) => return tracing::warn!("no hello within 10 s; closing"),
    }
    let client = match ClientHello::decode(&hello) {
        Ok(h) => h,
        Err(e) => return tracing::warn!("bad hello: {e}; closing"),
    };
    let mut answer = DaemonHello::answer(&client, life.identity);
    if answer.answer == Answer::Accepted && client.replace && life.draining() {
        // A new top-level build while draining: its client waits for the next daemon.
        answer.answer = Answer::Replacing;
    }
    if stream.write_all(&answer.encode()).await.is_err() {
        return;
    }
    match answer.answer {
        Answer::Accepted => {}
        Answer::Replacing => {
            life.drain("a client of another version asked to replace this daemon");
            // A refused client keeps nothing busy: a replacing client retries every few
            // milliseconds until this daemon is gone, and counting those connections would
            // keep it from ever draining.
            drop(counted);
            return discard_rest(stream).await;
        }
        Answer::Mismatch => {
            tracing::info!(
                "refused a client of another version (protocol {})",
                client.version
            );
            drop(counted);
            return discard_rest(stream).await;
        }
    }

    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, Codec::default());
    let req = match tokio::time::timeout(Duration::from_secs(30), reader.next()).await {
        Ok(Some(Ok(r))) => r,
        Ok(Some(Err(e))) => return tracing::warn!("bad request frame: {e}; closing"),
        Ok(None) => return tracing::debug!("client left before its request"),
        Err(_) => return tracing::warn!("no request within 30 s; closing"),
    };
    tracing::debug!(
        command = ?req.command,
        cwd = %String::from_utf8_lossy(&req.cwd),
        parent_job = ?req.parent_job,
        "request"
    );
    let style = style_of(&req);
    let top_level = req.parent_job.is_none() && matches!(req.command, Command::Build(_));
    let cwd = std::path::PathBuf::from(std::ffi::OsString::from_vec(req.cwd.to_vec()));
    let (sink, rx) = Sink::with_cwd(engine.next_id(), style, cwd);
    let writer = tokio::spawn(write_events(FramedWrite::new(wr, Codec::default()), rx));
    let work = async {
        match &req.command {
            Command::DaemonStatus => {
                sink.stdout(status_text(&engine, &life).into_bytes());
                0
            }
            Command::DaemonStop => {
                life.drain("stop requested");
                sink.error("redo: redod is finishing its running jobs and exiting");
                0
            }
            _ => engine.handle(req, sink.clone(), peer_pid).await,
        }
    };
    tokio::select! {
        code = work => {
            tracing::debug!(code, "request done");
            sink.done(code)
        }
        () = client_gone(&mut reader) => tracing::debug!("client left; its request is cancelled"),
    }
    drop(sink);
    let _ = writer.await;
    if top_level && engine.activity() == (0, 0) {
        give_back_memory();
    }
}

/// Returns freed heap pages to the system once a build is over and nothing runs. A large
/// build leaves the allocator's free lists fragmented; without this the resident size stays
/// at its peak.
#[allow(unsafe_code)]
fn give_back_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its own lock.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads and drops what the client sent after its hello (its request, which this daemon will
/// not decode), until it closes. Closing with unread data would reset the connection, and the
/// client could lose the hello that tells it why.
async fn discard_rest(mut stream: UnixStream) {
    let _ = stream.shutdown().await;
    let mut scratch = vec![0u8; 64 << 10];
    let mut left = redo_proto::MAX_FRAME + 4;
    let drain = async {
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

/// Resolves when the client disconnects (or sends anything more, which it must not).
async fn client_gone(reader: &mut FramedRead<tokio::net::unix::OwnedReadHalf, Codec>) {
    match reader.next().await {
        None => {}
        Some(Ok(_)) => tracing::warn!("unexpected second request on one connection; closing"),
        Some(Err(e)) => tracing::debug!("client connection: {e}"),
    }
}

async fn write_events(
    mut w: FramedWrite<tokio::net::unix::OwnedWriteHalf, Codec>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    while let Some((ev, credit)) = rx.recv().await {
        let last = matches!(ev, Event::Done { .. });
        if w.send(ev).await.is_err() {
            return;
        }
        drop(credit);
        if last {
            return;
        }
    }
}

fn style_of(req: &Request) -> Style {
    let env = Env::from_bytes(
        req.env
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
    );
    let settings = Settings::from_env(&env, Path::new("/")).unwrap_or_default();
    let mut style = Style::new(&settings, req.terminal.stderr_is_tty, req.terminal.columns);
    style.events = matches!(&req.command, Command::Build(b) if b.options.events);
    // The status line belongs to the top-level client; a nested one (whose stderr may be a
    // terminal again, `2>/dev/tty`) does not erase what is not there.
    style.status &= req.parent_job.is_none();
    style
}

fn status_text(engine: &Engine, life: &Life) -> String {
    let rss_kib = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0);
    format!(
        "pid: {}\nversion: {}\nroot: {}\nruntime dir: {}\nuptime: {}s\nidle exit: {}\ndraining: {}\nconnections: {}\nresident memory: {} KiB\n{}",
        std::process::id(),
        env!("CARGO_PKG_VERSION"),
        life.root.display(),
        life.rundir.display(),
        life.started.elapsed().as_secs(),
        life.idle
            .map(|d| format!("{}s", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into()),
        life.draining(),
        life.connections().saturating_sub(1),
        rss_kib,
        engine.stats()
    )
}
