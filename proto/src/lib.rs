//! The wire protocol between the `redo` client binaries and the `redod` daemon.
//!
//! # Exchange order
//!
//! One connection carries exactly one request:
//!
//! ```text
//! client                                   daemon
//!   │ ClientHello (39 bytes, hand-encoded)   │
//!   │ Frame(Request)                         │   (both in one write)
//!   │ ─────────────────────────────────────▶ │
//!   │                                        │ checks magic, version, identity
//!   │  DaemonHello (39 bytes, hand-encoded)  │
//!   │  Frame(Event::Stderr / Stdout ...) *   │   zero or more
//!   │  Frame(Event::Done { code })           │   exactly one, last
//!   │ ◀───────────────────────────────────── │
//! ```
//!
//! The hellos are fixed-size and hand-encoded ([`hello`]) so that a client and a daemon of
//! different versions detect the mismatch *before* either decodes a bincode enum whose layout may
//! have changed. When the daemon's answer is not [`hello::Answer::Accepted`] it sends its hello
//! alone and closes the connection without decoding the request.
//!
//! An accepted hello goes out with the first events: a request the daemon answers without
//! waiting (an up-to-date nested `redo-ifchange`) comes back in one write, hello to `Done`,
//! which a client reading the hello and the frames through one buffer takes in one read. A
//! request that waits gets the hello at once, then its events as they come.
//!
//! Every later message is a frame ([`codec`]): a 4-byte big-endian payload length followed by a
//! bincode-2 payload. Lengths above [`MAX_FRAME`] are rejected before any allocation.
//!
//! The client closing the connection (Ctrl-C, crash) means "nobody waits for this request any
//! more"; the daemon cancels what only this request was waiting for.
//!
//! Bump [`PROTOCOL_VERSION`] on any change to the types in [`msg`] or to the hello layout.

pub mod codec;
pub mod commands;
pub mod env;
pub mod hello;
pub mod msg;
pub mod plain;
pub mod rundir;

pub use codec::{Error, MAX_FRAME};
pub use hello::{Answer, ClientHello, DaemonHello, HELLO_LEN, Identity};
pub use msg::{
    Build, BuildMode, BuildOptions, CleanupWhat, Command, Event, MakeJobserver, Names,
    QUERY_NO_OUTSIDE, QueryKind, Request, Terminal, Timings, WatchOp,
};

/// Version of the message types and hello layout. Part of the hello.
pub const PROTOCOL_VERSION: u16 = 8;
