//! Environment variables through which the daemon tells the clients started by a `.do` where it
//! is and which job they run inside. Nested clients never search for a daemon: they use these.

/// Absolute path of the daemon's socket.
pub const SOCKET: &str = "REDO_SOCKET";
/// Decimal id of the job whose `.do` is running.
pub const JOB: &str = "REDO_JOB";
/// Path of the `redod` binary a client starts, overriding "next to the client binary".
pub const DAEMON: &str = "REDO_DAEMON";
