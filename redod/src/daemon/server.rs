//! Accepting clients: one task per connection, one request per connection.
//!
//! A connection from another uid is dropped before a byte is read. A bad hello, a frame that
//! does not decode, an oversized or truncated frame: that connection is closed and logged, and
//! nothing else is affected. A client that disconnects while its request runs (Ctrl-C), or
//! sends anything after its request, cancels it: the request's future is dropped, which
//! detaches it from the targets it waits for.

use crate::daemon::conn::Conn;
use crate::daemon::lifecycle::Life;
use crate::output::{Queued, Sink};
use crate::request::{Context, Incoming};
use bytes::BytesMut;
use redo_proto::codec::{FrameCodec, encode_frame};
use redo_proto::{Answer, ClientHello, Command, DaemonHello, Event, HELLO_LEN, Request};
use std::io;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

type Codec = FrameCodec<Request, Event>;

pub async fn serve(listener: AsyncFd<StdUnixListener>, ctx: Arc<Context>, life: Arc<Life>) {
    loop {
        match listener.async_io(Interest::READABLE, |l| l.accept()).await {
            Ok((stream, _)) => {
                let (ctx, life) = (ctx.clone(), life.clone());
                tokio::spawn(async move { connection(Conn::Plain(stream), ctx, life).await });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// One client connection: uid check, hello, one request, its events, `Done`, in the
/// protocol's order (docs/DESIGN.md §3).
async fn connection(mut stream: Conn, ctx: Arc<Context>, life: Arc<Life>) {
    let counted = life.connection();
    let peer_pid = match stream.peer() {
        Ok((uid, pid)) if uid == life.uid => pid,
        Ok((uid, _)) => {
            tracing::warn!(
                "refused a connection from uid {uid} (only uid {} may use this daemon)",
                life.uid
            );
            return;
        }
        Err(e) => {
            tracing::warn!("cannot read peer credentials: {e}");
            return;
        }
    };
    let (mut out, mut buf) = match handshake(&mut stream, &life).await {
        Handshake::Accepted(out, buf) => (out, buf),
        Handshake::TurnedAway => {
            // Not a connection the daemon serves: it keeps neither the daemon from draining
            // (the client of another version waits for it to exit) nor from idling.
            drop(counted);
            return discard_rest(&mut stream).await;
        }
        Handshake::Over => return,
    };
    let request = read_request(&mut stream, &mut buf);
    let req = match tokio::time::timeout(Duration::from_secs(30), request).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return tracing::debug!("client left before its request"),
        Ok(Err(e)) => {
            tracing::warn!("bad request frame: {e}; closing");
            // The hello still says that the versions agree: the fault is the frame.
            let _ = stream.write_all(&out).await;
            return;
        }
        Err(_) => return tracing::warn!("no request within 30 s; closing"),
    };
    // Its settings, output style and directory, made once for all that follows.
    let req = Incoming::parse(req);
    tracing::debug!(
        command = ?req.command(),
        cwd = %req.cwd().display(),
        parent_job = ?req.parent_job(),
        "request"
    );
    let top_level = req.top_level_build();
    let (sink, mut rx) = Sink::with_cwd(ctx.engine.next_id(), req.style(), req.cwd().into());
    let writer = {
        let mut work = std::pin::pin!(serve_request(&ctx, &life, req, &sink, peer_pid));
        if let Poll::Ready(code) = poll_once(&mut work).await {
            // Answered without waiting (an up-to-date nested `redo-ifchange`): the hello, all
            // it says and `Done` in one write, from this task.
            tracing::debug!(code, "request done");
            sink.done(code);
            while let Ok((ev, _credit)) = rx.try_recv() {
                let last = matches!(ev, Event::Done { .. });
                if let Err(e) = encode_frame(&ev, &mut out) {
                    tracing::warn!("cannot send an event: {e}");
                    break;
                }
                if last {
                    break;
                }
            }
            let _ = stream.write_all(&out).await;
            None
        } else {
            // It waits: the hello at once and the events as they come, from a writer task,
            // while this one watches for the client going away, which cancels the request.
            let (mut rd, wr) = match stream.into_registered() {
                Ok(s) => s.into_split(),
                Err(e) => return tracing::warn!("cannot watch a client connection: {e}"),
            };
            let writer = tokio::spawn(write_events(wr, out, rx));
            tokio::select! {
                code = work => {
                    tracing::debug!(code, "request done");
                    sink.done(code)
                }
                () = client_gone(&mut rd, !buf.is_empty()) => tracing::debug!("client left; its request is cancelled"),
            }
            Some(writer)
        }
        // The request's future is dropped here, with what it held of the sink.
    };
    drop(sink);
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    if top_level && ctx.engine.activity() == (0, 0) {
        give_back_memory();
    }
}

/// What the client's hello led to.
enum Handshake {
    /// The hello bytes still to send (empty when sent already) and what the client sent after
    /// its hello.
    Accepted(Vec<u8>, BytesMut),
    /// Another version: the daemon's hello is sent; what the client sends is to be discarded.
    TurnedAway,
    /// Nothing more to do: a bad hello, or the client has gone.
    Over,
}

/// Reads and answers the client's hello.
///
/// An accepted hello waits to go out with the answer when the request came with it (our
/// clients write both at once); a client that waits for the hello before sending its request
/// gets it now.
async fn handshake(stream: &mut Conn, life: &Life) -> Handshake {
    let mut buf = BytesMut::new();
    let hello_read = read_at_least(stream, &mut buf, HELLO_LEN);
    match tokio::time::timeout(Duration::from_secs(10), hello_read).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            tracing::debug!("connection closed before its hello");
            return Handshake::Over;
        }
        Ok(Err(e)) => {
            tracing::debug!("connection closed before its hello: {e}");
            return Handshake::Over;
        }
        Err(_) => {
            tracing::warn!("no hello within 10 s; closing");
            return Handshake::Over;
        }
    }
    let mut hello = [0u8; HELLO_LEN];
    hello.copy_from_slice(&buf.split_to(HELLO_LEN));
    let client = match ClientHello::decode(&hello) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("bad hello: {e}; closing");
            return Handshake::Over;
        }
    };
    let mut answer = DaemonHello::answer(&client, life.identity);
    if answer.answer == Answer::Accepted && client.replace && life.draining() {
        // A new top-level build while draining: its client waits for the next daemon.
        answer.answer = Answer::Replacing;
    }
    let mut out = answer.encode().to_vec();
    if answer.answer != Answer::Accepted || !holds_frame(&buf) {
        if stream.write_all(&out).await.is_err() {
            return Handshake::Over;
        }
        out.clear();
    }
    match answer.answer {
        Answer::Accepted => return Handshake::Accepted(out, buf),
        Answer::Replacing => life.drain("a client of another version asked to replace this daemon"),
        Answer::Mismatch => tracing::info!(
            "refused a client of another version (protocol {})",
            client.version
        ),
    }
    Handshake::TurnedAway
}

/// The work of one request; its exit code.
async fn serve_request(
    ctx: &Context,
    life: &Life,
    req: Incoming,
    sink: &Sink,
    peer_pid: Option<i32>,
) -> i32 {
    match req.command() {
        Command::DaemonStatus => {
            sink.stdout(status_text(ctx, life).into_bytes());
            0
        }
        Command::DaemonStop => {
            life.drain("stop requested");
            sink.error("redo: redod is finishing its running jobs and exiting");
            0
        }
        _ => crate::request::serve(ctx, req, sink.clone(), peer_pid).await,
    }
}

/// Polls `f` once in this task's context: `Ready` when it finished without waiting. When
/// `Pending`, `f` has registered its wake-ups with this task and is simply polled again later.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Reads into `buf` until it holds at least `n` bytes; `false` when the stream ends first.
async fn read_at_least(stream: &mut Conn, buf: &mut BytesMut, n: usize) -> io::Result<bool> {
    while buf.len() < n {
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `buf` starts with a complete frame (or a length prefix no frame can have: the
/// request is then refused without waiting for more).
fn holds_frame(buf: &[u8]) -> bool {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return false;
    };
    match redo_proto::codec::frame_len(*prefix) {
        Ok(len) => buf.len() >= 4 + len,
        Err(_) => true,
    }
}

/// The request frame, from `buf` and what more is read into it; `None` when the client
/// closed before sending one byte of it. The frame's length is checked before anything is
/// allocated for it (the codec's rule).
async fn read_request(
    stream: &mut Conn,
    buf: &mut BytesMut,
) -> Result<Option<Request>, redo_proto::codec::Error> {
    let mut codec = Codec::default();
    loop {
        if let Some(req) = codec.decode(buf)? {
            return Ok(Some(req));
        }
        if stream.read_buf(buf).await? == 0 {
            return match buf.is_empty() {
                true => Ok(None),
                false => Err(redo_proto::codec::Error::Truncated),
            };
        }
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
async fn discard_rest(stream: &mut Conn) {
    let Ok(stream) = stream.registered() else {
        return;
    };
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

/// Resolves when the client disconnects, or sends anything after its request (it must not:
/// `more` says it already has).
async fn client_gone(rd: &mut tokio::net::unix::OwnedReadHalf, more: bool) {
    let mut byte = [0u8; 1];
    match more {
        true => tracing::warn!("bytes after the request; closing"),
        false => match rd.read(&mut byte).await {
            Ok(0) => {}
            Ok(_) => tracing::warn!("bytes after the request; closing"),
            Err(e) => tracing::debug!("client connection: {e}"),
        },
    }
}

/// Largest write the writer gathers from queued events (more waits for the next write).
const BATCH: usize = 64 << 10;

/// Writes `out` (the hello, when it is still to be sent) and then the events as they come:
/// whatever is queued at a time in one write, until `Done`. A relayed chunk's credit is given
/// back once it is written.
async fn write_events(
    mut w: tokio::net::unix::OwnedWriteHalf,
    mut out: Vec<u8>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    let mut credits = Vec::new();
    let mut done = false;
    loop {
        while !done && out.len() < BATCH {
            let Ok((ev, credit)) = rx.try_recv() else {
                break;
            };
            done = matches!(ev, Event::Done { .. });
            if let Err(e) = encode_frame(&ev, &mut out) {
                return tracing::warn!("cannot send an event: {e}");
            }
            credits.extend(credit);
        }
        if !out.is_empty() {
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            credits.clear();
        }
        if done {
            return;
        }
        let Some((ev, credit)) = rx.recv().await else {
            return;
        };
        done = matches!(ev, Event::Done { .. });
        if let Err(e) = encode_frame(&ev, &mut out) {
            return tracing::warn!("cannot send an event: {e}");
        }
        credits.extend(credit);
    }
}

fn status_text(ctx: &Context, life: &Life) -> String {
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
        ctx.engine.stats()
    ) + &ctx
        .caches
        .stats_lines()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
}
