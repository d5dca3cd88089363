//! What the daemon writes to a client's terminal (docs/BEHAVIOUR.md §15).
//!
//! ```text
//! redo . . sub/foo.o (../default.o.do) (0.012s)
//! err  . bar (default.do) (0.002s): exit status 1
//! ```
//!
//! A [`Sink`] is one client connection's outgoing event queue plus how that client wants its
//! output (colour, silence, debug categories). Messages are formatted per sink, because two
//! terminals sharing one build may want different things.

pub(crate) mod events;

use crate::settings::Settings;
use bytes::Bytes;
pub(crate) use events::{BuildEvent, SessionEvent, TargetEvent, WatchEvent};
use redo_proto::Event;
use redo_proto::msg::ByteBuf;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Relayed stderr chunks a client may have queued and not yet written; beyond that the relay
/// waits, which makes the `.do` wait: output is never dropped, memory stays bounded.
const STDERR_CREDIT: usize = 256;

/// An event on its way to a client, with the credit it holds until written.
pub type Queued = (Event, Option<OwnedSemaphorePermit>);

/// The category of one of redo's own lines (`redo`, `err`, `warn`, ...): its tag, its colour,
/// and which option shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    Redo,
    Err,
    Warn,
    Wait,
    Lock,
    Js,
    Dbg,
}

impl Msg {
    fn tag(self) -> &'static str {
        match self {
            Msg::Redo => "redo ",
            Msg::Err => "err  ",
            Msg::Warn => "warn ",
            Msg::Wait => "wait ",
            Msg::Lock => "lock ",
            Msg::Js => "js   ",
            Msg::Dbg => "dbg  ",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Msg::Redo => "\x1b[32m",
            Msg::Err => "\x1b[31m",
            Msg::Warn => "\x1b[35m",
            Msg::Wait => "\x1b[34m",
            Msg::Lock => "\x1b[36m",
            Msg::Js => "\x1b[37m",
            Msg::Dbg => "\x1b[33m",
        }
    }
}

/// How one client wants its output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub colour: bool,
    pub silent: bool,
    pub no_progress: bool,
    pub debug: bool,
    pub log_wait: bool,
    pub log_lock: bool,
    pub log_js: bool,
    /// A status line is drawn at the bottom: every other output first erases it.
    pub status: bool,
    /// Terminal width (0: unknown).
    pub columns: u16,
    /// `--events=json`: JSON event lines on stdout (see `contrib/events`).
    pub events: bool,
}

impl Style {
    /// Colour and status line only on a terminal; never colour with `NO_COLOR`, never a status
    /// line with `-no-status` / `-no-progress`.
    pub fn new(settings: &Settings, stderr_is_tty: bool, columns: u16) -> Style {
        Style {
            status: stderr_is_tty && !settings.no_status,
            columns,
            events: false,
            colour: stderr_is_tty && !settings.no_color,
            silent: settings.silent,
            no_progress: settings.no_progress,
            debug: settings.debug,
            log_wait: settings.log_wait || settings.debug,
            log_lock: settings.log_lock || settings.debug,
            log_js: settings.log_js || settings.debug,
        }
    }

    /// What a nested command asked to see (`-s`, `-d`, `-no-progress`...), shown on the
    /// terminal of the client `terminal` (its colour, status line and events).
    pub fn on_terminal_of(self, terminal: &Style) -> Style {
        Style {
            colour: terminal.colour,
            status: terminal.status,
            columns: terminal.columns,
            events: terminal.events,
            ..self
        }
    }

    pub fn shows(&self, kind: Msg) -> bool {
        match kind {
            Msg::Redo => !self.no_progress,
            Msg::Err | Msg::Warn => true,
            Msg::Wait => self.log_wait,
            Msg::Lock => self.log_lock,
            Msg::Js => self.log_js,
            Msg::Dbg => self.debug,
        }
    }
}

/// `<tag><". " × level><text>`, coloured when asked, newline-terminated.
#[cfg(test)]
pub fn format(kind: Msg, level: usize, text: &str, colour: bool) -> Vec<u8> {
    format_line(kind, level, text, colour, false)
}

/// As [`format`]; with `erase`, the line first overwrites the status line (`\r`) and clears
/// what is left of it (`ESC[K`).
fn format_line(kind: Msg, level: usize, text: &str, colour: bool, erase: bool) -> Vec<u8> {
    let mut s = String::with_capacity(text.len() + 20 + 2 * level);
    if erase {
        s.push('\r');
    }
    if colour {
        s.push_str(kind.colour());
    }
    s.push_str(kind.tag());
    for _ in 0..level {
        s.push_str(". ");
    }
    s.push_str(text);
    if colour {
        s.push_str("\x1b[0m");
    }
    if erase {
        s.push_str(ERASE);
    }
    s.push('\n');
    s.into_bytes()
}

/// Clears from the cursor to the end of the line.
const ERASE: &str = "\x1b[K";

/// One client connection's event queue. Events keep their order: redo's own messages never
/// wait (they are few), relayed stderr waits for credit when the client falls behind.
#[derive(Clone, Debug)]
pub struct Sink {
    pub id: u64,
    pub style: Style,
    /// The client's directory: event paths are relative to it.
    pub cwd: Arc<PathBuf>,
    tx: mpsc::UnboundedSender<Queued>,
    credit: Arc<Semaphore>,
}

impl Sink {
    /// A sink and the receiving end its connection's writer drains.
    #[cfg(test)]
    pub fn new(id: u64, style: Style) -> (Sink, mpsc::UnboundedReceiver<Queued>) {
        Sink::with_cwd(id, style, PathBuf::from("/"))
    }

    /// A sink whose event paths are relative to `cwd`.
    pub fn with_cwd(
        id: u64,
        style: Style,
        cwd: PathBuf,
    ) -> (Sink, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Sink {
                id,
                style,
                cwd: Arc::new(cwd),
                tx,
                credit: Arc::new(Semaphore::new(STDERR_CREDIT)),
            },
            rx,
        )
    }

    fn send(&self, ev: Event, permit: Option<OwnedSemaphorePermit>) {
        // A closed channel means the client has gone; there is nobody left to tell.
        let _ = self.tx.send((ev, permit));
    }

    /// A redo message, shown if this client's style wants that category.
    pub fn message(&self, kind: Msg, level: usize, text: &str) {
        if self.style.shows(kind) {
            let line = format_line(kind, level, text, self.style.colour, self.style.status);
            self.send(Event::Stderr(ByteBuf::from(line)), None);
        }
    }

    /// Relayed `.do` stderr, unless this client asked for silence.
    pub async fn stderr(&self, bytes: &Bytes) {
        if !self.style.silent {
            let permit = self.credit.clone().acquire_owned().await.ok();
            let mut out = Vec::with_capacity(bytes.len() + 4);
            if self.style.status {
                out.extend_from_slice(b"\r");
                out.extend_from_slice(ERASE.as_bytes());
            }
            out.extend_from_slice(bytes);
            self.send(Event::Stderr(ByteBuf::from(out)), permit);
        }
    }

    /// Redraws the status line (only for clients that have one).
    pub fn status(&self, text: &str) {
        if self.style.status {
            let width = usize::from(self.style.columns).saturating_sub(1);
            let text: String = if width > 0 {
                text.chars().take(width).collect()
            } else {
                text.to_string()
            };
            self.send(
                Event::Stderr(ByteBuf::from(format!("\r{text}{ERASE}").into_bytes())),
                None,
            );
        }
    }

    /// One JSON event line on stdout, for clients that asked for `--events=json`.
    pub(crate) fn event(&self, event: &BuildEvent) {
        if !self.style.events {
            return;
        }
        let line = events::line(event, now_secs());
        self.send(Event::Stdout(ByteBuf::from(line)), None);
    }

    /// A path for this client's events: relative to its directory, lossy UTF-8.
    pub fn rel(&self, p: &Path) -> String {
        crate::fs::paths::show(&crate::fs::paths::relative(&self.cwd, p))
    }

    /// Bytes for the client's stdout (listing commands).
    pub fn stdout(&self, bytes: Vec<u8>) {
        self.send(Event::Stdout(ByteBuf::from(bytes)), None);
    }

    /// An error about the request itself (not about a target): always shown.
    pub fn error(&self, text: &str) {
        self.send(
            Event::Stderr(ByteBuf::from(format!("{text}\n").into_bytes())),
            None,
        );
    }

    /// The last event. A status line is cleared first.
    pub fn done(&self, code: i32) {
        if self.style.status {
            self.send(
                Event::Stderr(ByteBuf::from(format!("\r{ERASE}").into_bytes())),
                None,
            );
        }
        self.send(Event::Done { code }, None);
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// goredo's duration format: `(0.012s)`.
pub fn secs(d: std::time::Duration) -> String {
    format!("({:.3}s)", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
