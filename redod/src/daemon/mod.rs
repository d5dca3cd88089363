//! The daemon as a process: its runtime directory, pid lock, socket, idle exit and drain
//! ([`lifecycle`]), its output ([`log`]), and the listener that accepts clients, checks their uid, shakes hands and
//! hands each request to [`crate::request`] ([`server`]). It holds no build logic.

mod conn;
pub(crate) mod lifecycle;
mod log;
pub(crate) mod server;
mod start;

pub use start::serve;
