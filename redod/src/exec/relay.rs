//! A running `.do`'s stderr, relayed as it is written: to the clients, the `-k` log and
//! the JSON events.

use super::*;

/// Passes a job's stderr on to the clients that wait for it.
pub(super) struct Relay<'a> {
    pub(super) flight: &'a Flight,
    /// `-k`: everything the `.do` writes is kept, silenced or not.
    pub(super) log: Option<logs::JobLog>,
    pub(super) silent: bool,
    /// Put before every line: `[pid] ` with `-log-pid`, `[target] ` when several jobs may run
    /// at once (so interleaved output can be told apart).
    pub(super) prefix: Option<String>,
    /// The last bytes passed on ended inside a line.
    pub(super) mid_line: bool,
    /// The same, for the raw output (before prefixes).
    pub(super) mid_line_raw: bool,
}

impl Relay<'_> {
    pub(super) async fn emit(&mut self, chunk: Bytes) {
        if let Some(log) = &mut self.log {
            log.write(&chunk);
        }
        if chunk.is_empty() {
            // A flush for a nested request with nothing new: nothing was cut in two.
            return;
        }
        self.flight.stderr_events(&chunk, self.mid_line_raw);
        self.mid_line_raw = !chunk.ends_with(b"\n");
        if self.silent {
            return;
        }
        let chunk = match &self.prefix {
            None => chunk,
            Some(p) => {
                let mut out = Vec::with_capacity(chunk.len() + 4 * p.len());
                let mut at_line_start = !self.mid_line;
                for piece in chunk.split_inclusive(|&b| b == b'\n') {
                    if at_line_start {
                        out.extend_from_slice(p.as_bytes());
                    }
                    out.extend_from_slice(piece);
                    at_line_start = piece.ends_with(b"\n");
                }
                Bytes::from(out)
            }
        };
        self.mid_line = !chunk.ends_with(b"\n");
        self.flight.relay(&chunk).await;
    }

    /// At the end of the output: never leave the client's cursor after a partial line.
    pub(super) async fn finish(&mut self) {
        if self.mid_line {
            self.emit(Bytes::from_static(b"\n")).await;
        }
        if let Some(log) = self.log.take() {
            log.finish();
        }
    }
}

/// Relays the `.do`'s stderr as it is written: whole lines as soon as they are complete, a
/// partial line after a short pause (progress output without a newline), everything at once
/// when a nested request of this job asks for it (`flush`), so that what the `.do` wrote
/// before starting a nested build reaches the terminal before what that build prints (which
/// goes there directly, unless the nested command's stderr was redirected).
pub(super) async fn relay_stderr(
    flight: &Flight,
    process: &DoProcess,
    pipe: Option<tokio::net::unix::pipe::Receiver>,
    pid: u32,
    mut flush: mpsc::Receiver<oneshot::Sender<()>>,
    log: Option<logs::JobLog>,
) {
    let Some(mut pipe) = pipe else {
        *lock(process.relay()) = RelayState::Over;
        return;
    };
    // Declared after the pipe, so dropped before it: no request probes a closed descriptor.
    let _over = OverWhenDropped(process.relay());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&pipe);
    let mark = |idle: bool| *lock(process.relay()) = RelayState::Reading { pipe: fd, idle };
    let settings = &flight.origin.settings;
    let mut prefix = String::new();
    if settings.log_pid {
        prefix.push_str(&format!("[{pid}] "));
    }
    if flight.session.tokens.limit() != Some(1) {
        prefix.push_str(&format!("[{}] ", flight.display));
    }
    let mut relay = Relay {
        flight,
        log,
        silent: settings.silent,
        prefix: (!prefix.is_empty()).then_some(prefix),
        mid_line: false,
        mid_line_raw: false,
    };
    let mut buf = BytesMut::with_capacity(8192);
    let mut flushing = true;
    loop {
        mark(buf.is_empty());
        buf.reserve(8192);
        let pause = tokio::time::sleep(Duration::from_millis(100));
        tokio::select! {
            read = pipe.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    mark(false);
                    relay.emit(buf.split().freeze()).await;
                    relay.finish().await;
                    return;
                }
                Ok(_) => {
                    mark(false);
                    if let Some(pos) = buf.iter().rposition(|&b| b == b'\n') {
                        relay.emit(buf.split_to(pos + 1).freeze()).await;
                    } else if buf.len() > 64 << 10 {
                        relay.emit(buf.split().freeze()).await;
                    }
                }
            },
            () = pause, if !buf.is_empty() => relay.emit(buf.split().freeze()).await,
            req = flush.recv(), if flushing => match req {
                Some(reply) => {
                    mark(false);
                    // Everything already in the pipe, without waiting for more.
                    while let Some(Ok(n)) = pipe.read_buf(&mut buf).now_or_never() {
                        if n == 0 {
                            break;
                        }
                        buf.reserve(8192);
                    }
                    relay.emit(buf.split().freeze()).await;
                    let _ = reply.send(());
                }
                None => flushing = false,
            },
        }
    }
}

/// Marks the relay over when it ends, however it ends (its future may be dropped).
struct OverWhenDropped<'a>(&'a Mutex<RelayState>);

impl Drop for OverWhenDropped<'_> {
    fn drop(&mut self) {
        *lock(self.0) = RelayState::Over;
    }
}

/// Counts itself in a progress gauge while alive.
pub(super) struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    pub(super) fn new(g: &'a AtomicUsize) -> Gauge<'a> {
        g.fetch_add(1, Ordering::Relaxed);
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
