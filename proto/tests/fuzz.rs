#![allow(clippy::unwrap_used, clippy::expect_used)]
// The counting allocator below is the only unsafe code, and it only forwards to `System`.
#![allow(unsafe_code)]
//! Property/fuzz tests of everything the daemon and the clients decode from a socket
//! (docs/DESIGN.md §3, §7): the hand-encoded hellos, frames (`read_frame`) and frame payloads
//! (`decode_payload::<Request>` / `::<Event>`). Random bytes and mutated valid encodings must
//! never panic, and never make the decoder allocate more than the frame limit allows, whatever
//! lengths the input claims.
//!
//! The default run uses proptest's default case count (256 per property). For a long run:
//!
//! ```sh
//! PROPTEST_CASES=200000 cargo test --release -p redo-proto --test fuzz
//! ```
//!
//! Failures found that way are kept below as explicit regression tests (`regression_*`).
//! The tokio `FrameCodec` decoder is fuzzed in `redod/tests/fuzz_codec.rs` (it needs the
//! `tokio` feature, which redod enables).

use proptest::prelude::*;
use proptest::test_runner::Config;
use redo_proto::codec::{Error, decode_payload, encode_frame, frame_len, read_frame};
use redo_proto::hello::{HelloError, MAGIC};
use redo_proto::msg::ByteBuf;
use redo_proto::{
    Answer, Build, BuildMode, BuildOptions, CleanupWhat, ClientHello, Command, DaemonHello, Event,
    HELLO_LEN, Identity, MAX_FRAME, MakeJobserver, PROTOCOL_VERSION, QueryKind, Request, Terminal,
    Timings, WatchOp,
};
use std::io::{self, Read};

#[path = "support/alloc.rs"]
mod alloc;
use alloc::peak_of;

/// The most a decoder may allocate for one frame, whatever the input claims: the frame limit
/// (bincode is configured with it, so the sum of the lengths it believes is capped there) plus
/// serde's cautious pre-allocation of sequences (1 MiB) and some slack.
const ALLOC_BOUND: usize = MAX_FRAME + (2 << 20);

#[track_caller]
fn assert_bounded(peak: usize, what: &str) {
    assert!(
        peak <= ALLOC_BOUND,
        "{what}: decoding allocated {peak} bytes at once (bound {ALLOC_BOUND})"
    );
}

// ------------------------------------------------------------------------------------------
// Strategies.

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![Just(Identity::ANY), any::<[u8; 32]>().prop_map(Identity)]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            prop_oneof![Just(BuildMode::Redo), Just(BuildMode::Ifchange)],
            prop::collection::vec(bytes(40), 0..6),
            any::<(Option<u32>, bool, bool, bool, bool)>(),
            prop::option::of(prop::option::of(bytes(40))),
            prop::option::of(bytes(40)),
        )
            .prop_map(
                |(mode, targets, (jobs, trace, force, events, watch), timings, trace_file)| {
                    Command::Build(Build {
                        mode,
                        targets: targets.iter().collect(),
                        options: BuildOptions {
                            jobs,
                            trace,
                            force,
                            events,
                            watch,
                            timings: timings.map(|t| t.map_or(Timings::Default, Timings::File)),
                            trace_file,
                        },
                    })
                }
            ),
        prop::collection::vec(bytes(40), 0..4).prop_map(|targets| Command::Ifcreate { targets }),
        Just(Command::Always),
        any::<[u8; 32]>().prop_map(|hash| Command::Stamp { hash }),
        bytes(60).prop_map(|target| Command::WhichDo { target }),
        Just(Command::DaemonStatus),
        Just(Command::DaemonStop),
        (
            prop_oneof![
                Just(QueryKind::Targets),
                Just(QueryKind::Sources),
                Just(QueryKind::Ood),
                Just(QueryKind::Affects),
                Just(QueryKind::Dot)
            ],
            prop::collection::vec(bytes(40), 0..4),
        )
            .prop_map(|(kind, args)| Command::Query { kind, args }),
        (bytes(40), any::<(bool, bool)>()).prop_map(|(target, (recursive, details))| {
            Command::Log {
                target,
                recursive,
                details,
            }
        }),
        (
            prop::collection::vec(
                prop_oneof![
                    Just(CleanupWhat::Tmp),
                    Just(CleanupWhat::Log),
                    Just(CleanupWhat::Lock),
                    Just(CleanupWhat::Full)
                ],
                0..4
            ),
            any::<bool>(),
        )
            .prop_map(|(what, dry_run)| Command::Cleanup { what, dry_run }),
        Just(Command::Depfix),
        prop_oneof![
            Just(WatchOp::Off),
            Just(WatchOp::On),
            Just(WatchOp::Overflow)
        ]
        .prop_map(Command::WatchControl),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        command(),
        bytes(30),
        bytes(80),
        prop::collection::vec((bytes(20), bytes(60)), 0..12),
        any::<u32>(),
        any::<Option<u64>>(),
        prop_oneof![
            Just(None),
            any::<(i32, i32)>().prop_map(|(read, write)| Some(MakeJobserver::Pipe { read, write })),
            bytes(40).prop_map(|p| Some(MakeJobserver::Fifo(p))),
        ],
        bytes(40),
        any::<(bool, u16, Option<(u64, u64)>)>(),
    )
        .prop_map(
            |(command, program, cwd, env, umask, parent_job, make_jobserver, client_dir, t)| {
                Request {
                    command,
                    program,
                    cwd,
                    env,
                    umask,
                    parent_job,
                    make_jobserver,
                    client_dir,
                    terminal: Terminal {
                        stderr_is_tty: t.0,
                        columns: t.1,
                        stderr: t.2,
                    },
                }
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        bytes(200).prop_map(Event::Stderr),
        bytes(200).prop_map(Event::Stdout),
        any::<i32>().prop_map(|code| Event::Done { code }),
    ]
}

/// One way of damaging an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the byte at (index mod len).
    Set(usize, u8),
    /// Insert bytes at (index mod len+1); bincode varint markers (251..=254) followed by big
    /// numbers make it believe in huge lengths.
    Insert(usize, Vec<u8>),
    /// Remove up to n bytes at (index mod len).
    Remove(usize, usize),
    /// Cut the input at (index mod len+1).
    Truncate(usize),
    /// Plant a huge little-endian u64 length behind a varint marker at (index mod len).
    HugeLen(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (
            any::<usize>(),
            prop_oneof![
                Just(u64::MAX),
                Just(1u64 << 40),
                Just(MAX_FRAME as u64),
                Just(MAX_FRAME as u64 + 1),
                Just(MAX_FRAME as u64 - 1),
                any::<u64>()
            ]
        )
            .prop_map(|(i, n)| Mutation::HugeLen(i, n)),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = data.len();
        match m {
            Mutation::Set(i, b) if len > 0 => data[i % len] = *b,
            Mutation::Set(..) => data.push(0),
            Mutation::Insert(i, b) => {
                let at = i % (len + 1);
                data.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i % len;
                let end = (at + n).min(len);
                data.drain(at..end);
            }
            Mutation::Remove(..) => {}
            Mutation::Truncate(i) => data.truncate(i % (len + 1)),
            Mutation::HugeLen(i, n) => {
                let at = i % (len + 1);
                let mut plant = vec![253u8];
                plant.extend_from_slice(&n.to_le_bytes());
                data.splice(at..at, plant);
            }
        }
    }
    data
}

fn payload_of<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let mut wire = Vec::new();
    encode_frame(msg, &mut wire).unwrap();
    wire.split_off(4)
}

/// A reader handing out the input in small pieces, with spurious EINTRs in between: the way a
/// socket delivers a frame.
struct Dribble<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.turn += 1;
        let size = self.sizes[self.turn % self.sizes.len()];
        if size == 0 {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn config() -> Config {
    Config {
        // Failures are kept as explicit regression tests below, not in files next to the
        // sources.
        failure_persistence: None,
        ..Config::default()
    }
}

// ------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    /// Random bytes as a payload: an error or a message, never a panic, bounded allocation.
    #[test]
    fn random_payloads_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (_, peak) = peak_of(|| decode_payload::<Request>(&data));
        assert_bounded(peak, "Request from random bytes");
        let (_, peak) = peak_of(|| decode_payload::<Event>(&data));
        assert_bounded(peak, "Event from random bytes");
    }

    /// Every valid message round-trips; damaged encodings are errors or other valid messages.
    #[test]
    fn requests_round_trip_and_survive_mutation(
        req in request(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let payload = payload_of(&req);
        prop_assert_eq!(decode_payload::<Request>(&payload).unwrap(), req);
        let damaged = apply(payload, &muts);
        let (decoded, peak) = peak_of(|| decode_payload::<Request>(&damaged));
        assert_bounded(peak, "mutated Request");
        if let Ok(other) = decoded {
            // Whatever decodes is a well-formed message: it survives its own round trip.
            prop_assert_eq!(decode_payload::<Request>(&payload_of(&other)).unwrap(), other);
        }
        let (_, peak) = peak_of(|| decode_payload::<Event>(&damaged));
        assert_bounded(peak, "mutated Request read as an Event");
    }

    #[test]
    fn events_round_trip_and_survive_mutation(
        ev in event(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let payload = payload_of(&ev);
        prop_assert_eq!(decode_payload::<Event>(&payload).unwrap(), ev);
        let damaged = apply(payload, &muts);
        let (decoded, peak) = peak_of(|| decode_payload::<Event>(&damaged));
        assert_bounded(peak, "mutated Event");
        if let Ok(other) = decoded {
            prop_assert_eq!(decode_payload::<Event>(&payload_of(&other)).unwrap(), other);
        }
    }

    /// A stream of valid frames, delivered in random pieces with EINTRs, reads back exactly.
    #[test]
    fn read_frame_reads_dribbled_streams(
        evs in prop::collection::vec(event(), 0..6),
        sizes in prop::collection::vec(0usize..64, 1..16),
    ) {
        prop_assume!(sizes.iter().any(|&s| s > 0));
        let mut wire = Vec::new();
        for e in &evs {
            encode_frame(e, &mut wire).unwrap();
        }
        let mut r = Dribble { data: &wire, sizes, turn: 0 };
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(e) = read_frame::<Event, _>(&mut r, &mut buf).unwrap() {
            got.push(e);
        }
        prop_assert_eq!(got, evs);
    }

    /// Damaged streams (lengths included): errors, never panics, allocation capped by the
    /// frame limit; a clean end only at a frame boundary.
    #[test]
    fn read_frame_survives_damaged_streams(
        req in request(),
        ev in event(),
        muts in prop::collection::vec(mutation(), 1..6),
        sizes in prop::collection::vec(1usize..4096, 1..4),
    ) {
        let mut wire = Vec::new();
        encode_frame(&req, &mut wire).unwrap();
        encode_frame(&ev, &mut wire).unwrap();
        let damaged = apply(wire, &muts);
        let mut r = Dribble { data: &damaged, sizes, turn: 0 };
        let mut buf = Vec::new();
        let (_, peak) = peak_of(|| {
            for _ in 0..4 {
                match read_frame::<Request, _>(&mut r, &mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        });
        assert_bounded(peak, "damaged frame stream");
        prop_assert!(buf.capacity() <= MAX_FRAME, "buffer grew to {}", buf.capacity());
    }

    /// Any 4-byte prefix: over the limit is refused before the body is read or allocated.
    #[test]
    fn length_prefixes(prefix in any::<[u8; 4]>(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let claimed = u32::from_be_bytes(prefix) as usize;
        match frame_len(prefix) {
            Ok(n) => prop_assert!(n == claimed && n <= MAX_FRAME),
            Err(Error::TooLarge { len, max }) => {
                prop_assert!(len == claimed && len > MAX_FRAME && max == MAX_FRAME)
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
        let mut wire = prefix.to_vec();
        wire.extend_from_slice(&body);
        let mut buf = Vec::new();
        let (res, peak) = peak_of(|| read_frame::<Event, _>(&mut &wire[..], &mut buf));
        assert_bounded(peak, "length prefix");
        if claimed > MAX_FRAME {
            prop_assert!(matches!(res, Err(Error::TooLarge { .. })), "{:?}", res);
            prop_assert_eq!(buf.capacity(), 0);
        } else if claimed > body.len() {
            prop_assert!(matches!(res, Err(Error::Truncated)), "{:?}", res);
        }
    }

    /// Any 39 bytes as a client hello: decoded or refused for its magic; what decodes
    /// re-encodes to the same bytes (up to unknown flag bits, which are ignored).
    #[test]
    fn client_hellos(raw in any::<[u8; HELLO_LEN]>(), magic in any::<bool>(), own in identity()) {
        let mut raw = raw;
        if magic {
            raw[..4].copy_from_slice(&MAGIC);
        }
        match ClientHello::decode(&raw) {
            Ok(h) => {
                prop_assert_eq!(&raw[..4], &MAGIC[..]);
                let again = h.encode();
                prop_assert_eq!(&again[..6], &raw[..6]);
                prop_assert_eq!(again[6], raw[6] & 1);
                prop_assert_eq!(&again[7..], &raw[7..]);
                prop_assert_eq!(ClientHello::decode(&again), Ok(h));
                // The daemon's verdict is total and consistent.
                let answer = DaemonHello::answer(&h, own);
                let accepted = h.version == PROTOCOL_VERSION
                    && (h.expected == Identity::ANY || h.expected == own);
                let expected = if accepted {
                    Answer::Accepted
                } else if h.replace {
                    Answer::Replacing
                } else {
                    Answer::Mismatch
                };
                prop_assert_eq!(answer.answer, expected);
                prop_assert_eq!(DaemonHello::decode(&answer.encode()), Ok(answer));
                let _ = format!("{}", h.expected);
            }
            Err(HelloError::BadMagic(m)) => {
                prop_assert_ne!(m, MAGIC);
                prop_assert_eq!(&m[..], &raw[..4]);
            }
            Err(e) => prop_assert!(false, "a client hello has no answer byte: {e}"),
        }
    }

    /// Any 39 bytes as a daemon hello: decoded exactly, or refused for magic or answer.
    #[test]
    fn daemon_hellos(raw in any::<[u8; HELLO_LEN]>(), magic in any::<bool>(), verdict in 0u8..5) {
        let mut raw = raw;
        if magic {
            raw[..4].copy_from_slice(&MAGIC);
            raw[6] = verdict;
        }
        match DaemonHello::decode(&raw) {
            Ok(h) => {
                prop_assert_eq!(h.encode(), raw);
                prop_assert!(raw[6] <= 2);
                let _ = format!("{}", h.identity);
            }
            Err(HelloError::BadMagic(m)) => prop_assert_ne!(m, MAGIC),
            Err(HelloError::BadAnswer(v)) => {
                prop_assert_eq!(v, raw[6]);
                prop_assert!(v > 2);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Fixed cases: the limits, and regressions.

#[test]
fn the_allocation_meter_works() {
    let (v, peak) = peak_of(|| vec![1u8; 100_000]);
    assert!(peak >= 100_000 && v.len() == 100_000, "{peak}");
}

#[test]
fn oversized_messages_are_refused_when_encoding() {
    let huge = Event::Stderr(ByteBuf::from(vec![b'x'; MAX_FRAME + 1]));
    let mut out = b"keep".to_vec();
    assert!(matches!(
        encode_frame(&huge, &mut out),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        out, b"keep",
        "a refused frame must leave the buffer as it was"
    );
    // Just under the limit: fine, and it reads back.
    let big = Event::Stdout(ByteBuf::from(vec![b'y'; MAX_FRAME - 16]));
    let mut wire = Vec::new();
    encode_frame(&big, &mut wire).unwrap();
    assert!(wire.len() - 4 <= MAX_FRAME);
    let mut buf = Vec::new();
    assert_eq!(
        read_frame::<Event, _>(&mut &wire[..], &mut buf)
            .unwrap()
            .unwrap(),
        big
    );
}

/// Lengths inside a payload that claim more than the frame limit, or more than the payload
/// holds: refused, with allocation capped.
#[test]
fn inner_lengths_cannot_force_allocation() {
    for claim in [
        u64::MAX,
        1 << 40,
        MAX_FRAME as u64 + 1,
        MAX_FRAME as u64,
        (MAX_FRAME / 2) as u64,
    ] {
        // Event::Stderr(bytes of length `claim`) with 3 bytes of data.
        let mut payload = vec![0u8, 253];
        payload.extend_from_slice(&claim.to_le_bytes());
        payload.extend_from_slice(b"abc");
        let (res, peak) = peak_of(|| decode_payload::<Event>(&payload));
        assert!(res.is_err(), "claim {claim}: {res:?}");
        assert_bounded(peak, &format!("Stderr claiming {claim} bytes"));

        // A Request whose ifcreate list claims `claim` elements.
        let req = Request {
            command: Command::Ifcreate { targets: vec![] },
            program: ByteBuf::new(),
            cwd: ByteBuf::from(b"/".to_vec()),
            env: vec![],
            umask: 0,
            parent_job: None,
            make_jobserver: None,
            client_dir: ByteBuf::new(),
            terminal: Terminal::default(),
        };
        let good = payload_of(&req);
        // Command::Ifcreate is variant 1, one byte; its list's length follows it.
        assert_eq!(good[..2], [1, 0]);
        let mut bad = vec![1u8, 253];
        bad.extend_from_slice(&claim.to_le_bytes());
        bad.extend_from_slice(&good[2..]);
        let (res, peak) = peak_of(|| decode_payload::<Request>(&bad));
        assert!(res.is_err(), "ifcreate list claim {claim}: {res:?}");
        assert_bounded(peak, &format!("ifcreate list claiming {claim} elements"));
    }
}

/// A frame whose prefix promises the maximum but whose body never comes: `Truncated`, and the
/// buffer was never allowed above the limit.
#[test]
fn truncated_maximal_frame() {
    let mut wire = (MAX_FRAME as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&[0; 100]);
    let mut buf = Vec::new();
    let (res, peak) = peak_of(|| read_frame::<Event, _>(&mut &wire[..], &mut buf));
    assert!(matches!(res, Err(Error::Truncated)), "{res:?}");
    assert_bounded(peak, "truncated maximal frame");
}

/// Every cut of a valid stream: a clean end exactly at frame boundaries, `Truncated` inside.
#[test]
fn every_cut_of_a_valid_stream() {
    let mut wire = Vec::new();
    encode_frame(
        &Event::Stderr(ByteBuf::from(b"hello\n".to_vec())),
        &mut wire,
    )
    .unwrap();
    let boundary = wire.len();
    encode_frame(&Event::Done { code: 7 }, &mut wire).unwrap();
    for cut in 0..=wire.len() {
        let mut r = &wire[..cut];
        let mut buf = Vec::new();
        let mut n = 0;
        let end = loop {
            match read_frame::<Event, _>(&mut r, &mut buf) {
                Ok(Some(_)) => n += 1,
                other => break other,
            }
        };
        let clean = cut == 0 || cut == boundary || cut == wire.len();
        if clean {
            assert!(matches!(end, Ok(None)), "cut {cut}: {end:?}");
        } else {
            assert!(matches!(end, Err(Error::Truncated)), "cut {cut}: {end:?}");
        }
        assert_eq!(
            n,
            usize::from(cut >= boundary) + usize::from(cut == wire.len())
        );
    }
}

/// A hello with the right magic but every answer byte, and unknown client flag bits.
#[test]
fn hello_edge_bytes() {
    for v in 0..=255u8 {
        let mut raw = DaemonHello {
            version: PROTOCOL_VERSION,
            answer: Answer::Accepted,
            identity: Identity::ANY,
        }
        .encode();
        raw[6] = v;
        match DaemonHello::decode(&raw) {
            Ok(h) => assert_eq!(h.answer as u8, v),
            Err(e) => assert_eq!((v > 2, e), (true, HelloError::BadAnswer(v))),
        }
        let mut c = ClientHello::new(false, Identity::ANY).encode();
        c[6] = v;
        assert_eq!(ClientHello::decode(&c).unwrap().replace, v & 1 == 1);
    }
}
