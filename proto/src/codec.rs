//! Frames: a 4-byte big-endian payload length, then a bincode-2 payload.
//!
//! This is the only module that names bincode. The length is checked against [`MAX_FRAME`]
//! before a buffer is allocated, and bincode is configured with the same limit so that a length
//! *inside* a payload (a `Vec` claiming 2^60 elements) cannot make it allocate either.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};

/// Largest accepted payload. A request carries the environment and the arguments of one
/// command; 16 MiB is far above any real one (Linux caps argv + env at a few MiB).
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("cannot decode frame: {0}")]
    Decode(String),
    #[error("cannot encode frame: {0}")]
    Encode(String),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Hello(#[from] crate::hello::HelloError),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Appends one frame (length + payload) for `msg` to `out`.
pub fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    bincode::serde::encode_into_std_write(msg, out, config())
        .map_err(|e| Error::Encode(e.to_string()))?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(Error::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Decodes one payload (without its length prefix). Trailing bytes are an error: a frame holds
/// exactly one message.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Error> {
    let (msg, used) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| Error::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(Error::Decode(format!(
            "{} trailing bytes",
            payload.len() - used
        )));
    }
    Ok(msg)
}

/// Parses a length prefix, refusing oversized frames.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, Error> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(Error::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Blocking read of one frame. `Ok(None)` on a clean end of stream before the first byte.
pub fn read_frame<T: DeserializeOwned, R: Read>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, Error> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(Error::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(prefix)?;
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated,
        _ => Error::Io(e),
    })?;
    decode_payload(buf).map(Some)
}

/// Blocking write of one frame.
pub fn write_frame<T: Serialize, W: Write>(w: &mut W, msg: &T) -> Result<(), Error> {
    let mut out = Vec::new();
    encode_frame(msg, &mut out)?;
    w.write_all(&out)?;
    Ok(())
}

#[cfg(feature = "tokio")]
pub use self::tokio_codec::FrameCodec;

#[cfg(feature = "tokio")]
mod tokio_codec {
    use super::{Error, decode_payload, encode_frame, frame_len};
    use bytes::{Buf, BytesMut};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::marker::PhantomData;

    /// tokio-util codec: decodes frames of `In`, encodes frames of `Out`.
    pub struct FrameCodec<In, Out> {
        _p: PhantomData<fn(Out) -> In>,
    }

    impl<In, Out> Default for FrameCodec<In, Out> {
        fn default() -> Self {
            FrameCodec { _p: PhantomData }
        }
    }

    impl<In: DeserializeOwned, Out> tokio_util::codec::Decoder for FrameCodec<In, Out> {
        type Item = In;
        type Error = Error;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, Error> {
            if src.len() < 4 {
                return Ok(None);
            }
            let len = frame_len([src[0], src[1], src[2], src[3]])?;
            if src.len() < 4 + len {
                src.reserve(4 + len - src.len());
                return Ok(None);
            }
            let msg = decode_payload(&src[4..4 + len]);
            src.advance(4 + len);
            msg.map(Some)
        }

        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<In>, Error> {
            match self.decode(src)? {
                Some(m) => Ok(Some(m)),
                None if src.is_empty() => Ok(None),
                None => Err(Error::Truncated),
            }
        }
    }

    impl<In, Out: Serialize> tokio_util::codec::Encoder<Out> for FrameCodec<In, Out> {
        type Error = Error;

        fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), Error> {
            let mut buf = Vec::new();
            encode_frame(&item, &mut buf)?;
            dst.extend_from_slice(&buf);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Command, Event, Request, Terminal};
    use serde_bytes::ByteBuf;

    fn sample() -> Request {
        Request {
            command: Command::WhichDo {
                target: ByteBuf::from(b"a\xffb\n".to_vec()),
            },
            program: ByteBuf::from(b"redo-whichdo".to_vec()),
            cwd: ByteBuf::from(b"/tmp".to_vec()),
            env: vec![(ByteBuf::from(b"A".to_vec()), ByteBuf::from(b"1".to_vec()))],
            umask: 0o022,
            parent_job: Some(7),
            make_jobserver: Some(crate::msg::MakeJobserver::Fifo(ByteBuf::from(
                b"/tmp/fifo".to_vec(),
            ))),
            client_dir: ByteBuf::from(b"/bin".to_vec()),
            terminal: Terminal::default(),
        }
    }

    #[test]
    fn round_trip_blocking() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &sample()).unwrap();
        write_frame(&mut wire, &Event::Done { code: 3 }).unwrap();
        let mut r = &wire[..];
        let mut buf = Vec::new();
        let req: Request = read_frame(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!(req, sample());
        let ev: Event = read_frame(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!(ev, Event::Done { code: 3 });
        assert!(read_frame::<Event, _>(&mut r, &mut buf).unwrap().is_none());
    }

    #[test]
    fn oversized_length_rejected_before_allocating() {
        let wire = (MAX_FRAME as u32 + 1).to_be_bytes();
        let mut buf = Vec::new();
        let err = read_frame::<Event, _>(&mut &wire[..], &mut buf).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }));
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn truncated_and_garbage() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &sample()).unwrap();
        let mut buf = Vec::new();
        for cut in [1, 3, 5, wire.len() - 1] {
            let err = read_frame::<Request, _>(&mut &wire[..cut], &mut buf).unwrap_err();
            assert!(matches!(err, Error::Truncated), "cut {cut}: {err}");
        }
        let garbage = [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<Request, _>(&mut &garbage[..], &mut buf),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn inner_length_cannot_force_allocation() {
        // A Stderr event whose byte-string length claims 2^40 bytes inside a 12-byte frame.
        let mut payload = vec![0u8]; // variant 0 = Stderr
        payload.push(253); // varint tag for u64
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode_payload::<Event>(&payload).is_err());
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut wire = Vec::new();
        encode_frame(&Event::Done { code: 0 }, &mut wire).unwrap();
        let mut payload = wire[4..].to_vec();
        payload.push(0);
        assert!(decode_payload::<Event>(&payload).is_err());
    }
}
