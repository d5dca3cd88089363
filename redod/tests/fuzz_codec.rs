#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property/fuzz tests of the daemon's async frame decoder (`redo_proto::codec::FrameCodec`,
//! compiled with the `tokio` feature that redod enables): streams of valid frames cut at any
//! points decode to the same messages; random and damaged bytes are errors (the server then
//! closes that one connection), never panics; the buffer never grows past one maximal frame
//! whatever lengths the input claims; a stream ending inside a frame is `Truncated`.
//!
//! Default: proptest's 256 cases per property. Long run:
//!
//! ```sh
//! PROPTEST_CASES=200000 cargo test --release -p redod --test fuzz_codec
//! ```

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::Config;
use redo_proto::codec::{Error, FrameCodec, encode_frame};
use redo_proto::msg::ByteBuf;
use redo_proto::{Command, Event, MAX_FRAME, Request, Terminal};
use tokio_util::codec::{Decoder, Encoder};

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Event::Stderr(ByteBuf::from(b))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Event::Stdout(ByteBuf::from(b))),
        any::<i32>().prop_map(|code| Event::Done { code }),
    ]
}

fn request(cwd: Vec<u8>, env: Vec<(Vec<u8>, Vec<u8>)>) -> Request {
    Request {
        command: Command::WhichDo {
            target: ByteBuf::from(b"t".to_vec()),
        },
        program: ByteBuf::from(b"redo-whichdo".to_vec()),
        cwd: ByteBuf::from(cwd),
        env: env
            .into_iter()
            .map(|(k, v)| (ByteBuf::from(k), ByteBuf::from(v)))
            .collect(),
        umask: 0o022,
        parent_job: None,
        make_jobserver: None,
        client_dir: ByteBuf::new(),
        terminal: Terminal::default(),
    }
}

/// Largest capacity the read buffer may reach: one maximal frame plus what one read adds.
const BUF_BOUND: usize = MAX_FRAME + 4 + (64 << 10);

/// Feeds `wire` to a decoder in the given chunk sizes, the way `FramedRead` does; stops at the
/// first error (the server closes the connection there). Returns the messages and the error.
fn feed<T>(wire: &[u8], chunks: &[usize]) -> (Vec<T>, Option<Error>)
where
    FrameCodec<T, Event>: Decoder<Item = T, Error = Error>,
{
    let mut codec = FrameCodec::<T, Event>::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut turn = 0;
    loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
            assert!(buf.capacity() <= BUF_BOUND, "buffer at {}", buf.capacity());
        }
        assert!(buf.capacity() <= BUF_BOUND, "buffer at {}", buf.capacity());
        if rest.is_empty() {
            return match codec.decode_eof(&mut buf) {
                Ok(Some(m)) => {
                    out.push(m);
                    (out, None)
                }
                Ok(None) => (out, None),
                Err(e) => (out, Some(e)),
            };
        }
        let n = chunks[turn % chunks.len()].clamp(1, rest.len());
        turn += 1;
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn chunked_valid_streams_decode_exactly(
        evs in prop::collection::vec(event(), 0..8),
        chunks in prop::collection::vec(1usize..200, 1..10),
    ) {
        let mut wire = Vec::new();
        for e in &evs {
            encode_frame(e, &mut wire).unwrap();
        }
        let (got, err) = feed::<Event>(&wire, &chunks);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, evs);
    }

    #[test]
    fn random_streams_never_panic(
        wire in prop::collection::vec(any::<u8>(), 0..4096),
        chunks in prop::collection::vec(1usize..600, 1..10),
    ) {
        let _ = feed::<Request>(&wire, &chunks);
        let _ = feed::<Event>(&wire, &chunks);
    }

    /// A valid request stream with bytes replaced, inserted, removed, or a length prefix
    /// rewritten: whatever happens, no panic and a bounded buffer.
    #[test]
    fn damaged_request_streams(
        cwd in prop::collection::vec(any::<u8>(), 0..64),
        env in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..16), prop::collection::vec(any::<u8>(), 0..64)), 0..8),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
        prefix in any::<u32>(),
        chunks in prop::collection::vec(1usize..600, 1..10),
    ) {
        let mut wire = Vec::new();
        encode_frame(&request(cwd, env), &mut wire).unwrap();
        for (i, b, op) in edits {
            let len = wire.len();
            match op {
                0 => { let at = i % len; wire[at] = b; }
                1 => { let at = i % (len + 1); wire.insert(at, b); }
                2 if len > 1 => { wire.remove(i % len); }
                _ => wire[..4].copy_from_slice(&prefix.to_be_bytes()),
            }
        }
        let (_, err) = feed::<Request>(&wire, &chunks);
        if u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize > MAX_FRAME {
            prop_assert!(matches!(err, Some(Error::TooLarge { .. })), "{:?}", err);
        }
    }

    /// Cut anywhere: complete frames are delivered, the cut one is `Truncated` at EOF.
    #[test]
    fn truncated_streams(evs in prop::collection::vec(event(), 1..5), cut in any::<usize>()) {
        let mut wire = Vec::new();
        let mut ends = vec![0];
        for e in &evs {
            encode_frame(e, &mut wire).unwrap();
            ends.push(wire.len());
        }
        let cut = cut % (wire.len() + 1);
        let (got, err) = feed::<Event>(&wire[..cut], &[7]);
        let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
        prop_assert_eq!(&got[..], &evs[..complete]);
        if ends.contains(&cut) {
            prop_assert!(err.is_none(), "{:?}", err);
        } else {
            prop_assert!(matches!(err, Some(Error::Truncated)), "{:?}", err);
        }
    }

    /// The encoder's frames are what the decoder reads.
    #[test]
    fn encoder_decoder_agree(evs in prop::collection::vec(event(), 0..8)) {
        let mut codec = FrameCodec::<Event, Event>::default();
        let mut buf = BytesMut::new();
        for e in &evs {
            codec.encode(e.clone(), &mut buf).unwrap();
        }
        let mut got = Vec::new();
        while let Some(e) = codec.decode(&mut buf).unwrap() {
            got.push(e);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, evs);
    }
}

/// A prefix claiming the maximum: the decoder reserves room for one frame at most; one byte
/// more is refused at once.
#[test]
fn maximal_and_oversized_prefixes() {
    let mut codec = FrameCodec::<Request, Event>::default();
    let mut buf = BytesMut::from(&(MAX_FRAME as u32).to_be_bytes()[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= BUF_BOUND, "{}", buf.capacity());
    assert!(matches!(codec.decode_eof(&mut buf), Err(Error::Truncated)));

    let mut buf = BytesMut::from(&(MAX_FRAME as u32 + 1).to_be_bytes()[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(Error::TooLarge { .. })
    ));
    assert!(buf.capacity() < 1024, "{}", buf.capacity());
}

/// After a frame that does not decode, the codec has consumed exactly that frame: the next
/// decode does not re-read garbage as a length.
#[test]
fn undecodable_frame_is_consumed() {
    let mut codec = FrameCodec::<Event, Event>::default();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&3u32.to_be_bytes());
    buf.extend_from_slice(&[9, 9, 9]);
    let mut good = Vec::new();
    encode_frame(&Event::Done { code: 1 }, &mut good).unwrap();
    buf.extend_from_slice(&good);
    assert!(matches!(codec.decode(&mut buf), Err(Error::Decode(_))));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Event::Done { code: 1 })
    );
}
