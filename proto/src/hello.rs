//! The hand-encoded hello exchanged before any bincode frame.
//!
//! Layout (both directions, 39 bytes):
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 0..4  | magic `REDO`                                                 |
//! | 4..6  | protocol version, big-endian                                 |
//! | 6     | client: flags; daemon: answer                                |
//! | 7..39 | client: identity it expects; daemon: its own identity        |
//!
//! The identity names the daemon *binary* (see [`Identity`]). A client computes the identity of
//! the `redod` it would start itself; when it differs from the running daemon's, that daemon is of
//! another build. A top-level client sets [`ClientHello::replace`]: the daemon then drains (lets
//! running jobs finish, accepts nothing new) and exits so the client can start the right one. A
//! client inside a `.do` never asks for that: replacing the daemon would kill the build it is
//! part of.

use crate::PROTOCOL_VERSION;

pub const MAGIC: [u8; 4] = *b"REDO";
pub const HELLO_LEN: usize = 4 + 2 + 1 + 32;

const FLAG_REPLACE: u8 = 1;

/// Identity of a daemon executable: device, inode, size and modification time of the file.
///
/// Hashing the executable would be more precise but costs milliseconds on every client start;
/// these four numbers change whenever `cargo build` or an install replaces the binary, and they
/// cost one `stat`. All zeroes means "any daemon will do" (the client could not find its own
/// `redod`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Identity(pub [u8; 32]);

impl Identity {
    pub const ANY: Identity = Identity([0; 32]);

    pub fn from_file_stat(dev: u64, ino: u64, size: u64, mtime_ns: i64) -> Identity {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&dev.to_be_bytes());
        b[8..16].copy_from_slice(&ino.to_be_bytes());
        b[16..24].copy_from_slice(&size.to_be_bytes());
        b[24..32].copy_from_slice(&mtime_ns.to_be_bytes());
        Identity(b)
    }

    /// The identity of the executable at `path` ([`Identity::ANY`] when it cannot be read).
    /// Clients ask it of the `redod` they would start; the daemon of `/proc/self/exe`.
    pub fn of_file(path: &std::path::Path) -> Identity {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => Identity::from_file_stat(
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ),
            Err(_) => Identity::ANY,
        }
    }

    /// Whether a daemon with identity `self` may serve a client expecting `expected`.
    pub fn satisfies(&self, expected: &Identity) -> bool {
        *expected == Identity::ANY || self == expected
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        let n = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[r]);
            u64::from_be_bytes(a)
        };
        write!(
            f,
            "dev={} ino={} size={} mtime_ns={}",
            n(0..8),
            n(8..16),
            n(16..24),
            n(24..32) as i64
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("peer is not a redo client or daemon (bad magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("unknown hello answer {0}")]
    BadAnswer(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHello {
    pub version: u16,
    /// Ask a daemon of another identity to drain and exit (top-level clients only).
    pub replace: bool,
    pub expected: Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// Same version and identity: the request will be served.
    Accepted = 0,
    /// Different version or identity: the connection is closed, the daemon keeps running.
    Mismatch = 1,
    /// Different version or identity and the client asked for replacement: the daemon stops
    /// accepting connections and exits once its running jobs are done.
    Replacing = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaemonHello {
    pub version: u16,
    pub answer: Answer,
    pub identity: Identity,
}

fn encode(version: u16, byte: u8, id: &Identity) -> [u8; HELLO_LEN] {
    let mut out = [0u8; HELLO_LEN];
    out[0..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&version.to_be_bytes());
    out[6] = byte;
    out[7..].copy_from_slice(&id.0);
    out
}

fn decode(b: &[u8; HELLO_LEN]) -> Result<(u16, u8, Identity), HelloError> {
    let magic = [b[0], b[1], b[2], b[3]];
    if magic != MAGIC {
        return Err(HelloError::BadMagic(magic));
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[7..]);
    Ok((u16::from_be_bytes([b[4], b[5]]), b[6], Identity(id)))
}

impl ClientHello {
    pub fn new(replace: bool, expected: Identity) -> ClientHello {
        ClientHello {
            version: PROTOCOL_VERSION,
            replace,
            expected,
        }
    }

    pub fn encode(&self) -> [u8; HELLO_LEN] {
        encode(
            self.version,
            if self.replace { FLAG_REPLACE } else { 0 },
            &self.expected,
        )
    }

    /// Unknown flag bits are ignored so that a newer client can still talk to an older daemon
    /// long enough to learn that the versions differ.
    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<ClientHello, HelloError> {
        let (version, flags, expected) = decode(b)?;
        Ok(ClientHello {
            version,
            replace: flags & FLAG_REPLACE != 0,
            expected,
        })
    }
}

impl DaemonHello {
    /// The daemon's answer to `client`, given the daemon's own identity.
    pub fn answer(client: &ClientHello, own: Identity) -> DaemonHello {
        let answer = if client.version == PROTOCOL_VERSION && own.satisfies(&client.expected) {
            Answer::Accepted
        } else if client.replace {
            Answer::Replacing
        } else {
            Answer::Mismatch
        };
        DaemonHello {
            version: PROTOCOL_VERSION,
            answer,
            identity: own,
        }
    }

    pub fn encode(&self) -> [u8; HELLO_LEN] {
        encode(self.version, self.answer as u8, &self.identity)
    }

    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<DaemonHello, HelloError> {
        let (version, v, identity) = decode(b)?;
        let answer = match v {
            0 => Answer::Accepted,
            1 => Answer::Mismatch,
            2 => Answer::Replacing,
            other => return Err(HelloError::BadAnswer(other)),
        };
        Ok(DaemonHello {
            version,
            answer,
            identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = Identity::from_file_stat(1, 2, 3, -4);
        let c = ClientHello::new(true, id);
        assert_eq!(ClientHello::decode(&c.encode()), Ok(c));
        let d = DaemonHello::answer(&c, id);
        assert_eq!(d.answer, Answer::Accepted);
        assert_eq!(DaemonHello::decode(&d.encode()), Ok(d));
    }

    #[test]
    fn answers() {
        let mine = Identity::from_file_stat(1, 2, 3, 4);
        let other = Identity::from_file_stat(1, 2, 3, 5);
        assert_eq!(
            DaemonHello::answer(&ClientHello::new(false, Identity::ANY), mine).answer,
            Answer::Accepted
        );
        assert_eq!(
            DaemonHello::answer(&ClientHello::new(false, other), mine).answer,
            Answer::Mismatch
        );
        assert_eq!(
            DaemonHello::answer(&ClientHello::new(true, other), mine).answer,
            Answer::Replacing
        );
        let mut old = ClientHello::new(false, mine);
        old.version = PROTOCOL_VERSION + 1;
        assert_eq!(DaemonHello::answer(&old, mine).answer, Answer::Mismatch);
    }

    #[test]
    fn bad_magic_and_answer() {
        let mut b = ClientHello::new(false, Identity::ANY).encode();
        b[0] = b'X';
        assert!(matches!(
            ClientHello::decode(&b),
            Err(HelloError::BadMagic(_))
        ));
        let mut d =
            DaemonHello::answer(&ClientHello::new(false, Identity::ANY), Identity::ANY).encode();
        d[6] = 9;
        assert_eq!(DaemonHello::decode(&d), Err(HelloError::BadAnswer(9)));
    }
}
