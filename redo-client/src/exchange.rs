//! One connection's exchange with the daemon (see `redo_proto`'s crate docs for the order):
//! hello and request in one write, the daemon's hello, then its events until `Done`.

use crate::Error;
use redo_proto::codec::read_frame;
use redo_proto::rundir;
use redo_proto::{ClientHello, DaemonHello, Event, HELLO_LEN};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Writes hello + request in one write, reads the daemon's hello.
/// [`Error::Closed`] when the connection broke before the daemon's hello arrived: the daemon
/// went away (it was stopping or being replaced), and a top-level client may simply try again.
///
/// The daemon's hello and what follows it are read through one buffer: an answer the daemon
/// sends in one write with its hello (an up-to-date `redo-ifchange`) is one read.
pub fn handshake(
    mut stream: UnixStream,
    hello: ClientHello,
    frame: &[u8],
) -> Result<(BufReader<UnixStream>, DaemonHello), Error> {
    let mut out = Vec::with_capacity(HELLO_LEN + frame.len());
    out.extend_from_slice(&hello.encode());
    out.extend_from_slice(frame);
    if let Err(e) = stream.write_all(&out) {
        // A daemon that refuses us closes before reading everything; its hello may still be
        // readable, so only give up when it is not.
        if e.kind() != io::ErrorKind::BrokenPipe && e.kind() != io::ErrorKind::ConnectionReset {
            return Err(Error::Send(e));
        }
    }
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut buf = [0u8; HELLO_LEN];
    reader.read_exact(&mut buf).map_err(Error::Closed)?;
    match DaemonHello::decode(&buf) {
        Ok(h) => Ok((reader, h)),
        Err(e) => Err(Error::BadHello(e.to_string())),
    }
}

/// Relays events until `Done`; returns its code. `rundir`, when known, is named in the
/// message of a connection lost midway (the daemon's log is there).
pub fn relay(mut reader: BufReader<UnixStream>, rundir: Option<&Path>) -> Result<i32, Error> {
    let mut buf = Vec::new();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut stderr = io::stderr();
    let lost = |why: String| Error::Lost {
        why,
        log: rundir.map(|d| d.join(rundir::LOG)),
    };
    loop {
        match read_frame::<Event, _>(&mut reader, &mut buf) {
            Ok(Some(Event::Stderr(b))) => {
                let _ = out.flush();
                let _ = stderr.write_all(&b);
            }
            Ok(Some(Event::Stdout(b))) => {
                // Buffered while more frames are already here; flushed when the daemon goes
                // quiet, so that a reader (an editor following `--watch --events=json`) sees
                // each line when it happens, not when the next one comes.
                let more = !reader.buffer().is_empty();
                if out.write_all(&b).is_err() || (!more && out.flush().is_err()) {
                    // stdout closed (`| head`): nothing more is wanted.
                    return Ok(0);
                }
            }
            Ok(Some(Event::Done { code })) => {
                let _ = out.flush();
                return Ok(code);
            }
            Ok(None) => return Err(lost("closed without an answer".into())),
            Err(e) => return Err(lost(e.to_string())),
        }
    }
}
