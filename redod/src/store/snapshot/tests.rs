//! The snapshot: what is written is read back whole, and anything else is rejected, never
//! half used.

use super::format::{FORMAT, decode_main, decode_state, encode_main, encode_state};
use super::*;
use crate::store::recfile::Dep;

fn origin() -> Origin {
    Origin {
        producer: b"redod test".to_vec(),
        machine: b"machine-a".to_vec(),
        root: PathBuf::from("/p"),
        device: 7,
    }
}

fn stamp(n: u64) -> Stamp {
    Stamp {
        size: n,
        ino: n + 1,
        ctime_sec: n as i64 + 2,
        ctime_nsec: -1,
        mtime_sec: i64::MAX,
        mtime_nsec: i64::MIN,
    }
}

fn meta(n: u64, kind: Kind) -> Meta {
    Meta {
        stamp: stamp(n),
        kind,
        link: n % 2 == 0,
    }
}

fn rec(build: &str) -> Arc<Rec> {
    Arc::new(Rec {
        build: build.into(),
        deps: vec![
            Dep::Ifcreate {
                target: b"x.do".to_vec(),
            },
            Dep::Ifchange {
                target: b"odd\nname\xff".to_vec(),
                stamp: stamp(3),
                hash: Some([9; 32]),
            },
            Dep::Ifchange {
                target: b"gone".to_vec(),
                stamp: Stamp::default(),
                hash: None,
            },
            Dep::Always,
            Dep::Stamp { hash: [4; 32] },
        ],
    })
}

/// An entry of every kind: `x` is answered by a verdict (its state goes to the state file),
/// `all` is not (its state goes to the main one).
fn contents() -> Contents {
    Contents {
        recs: vec![
            (PathBuf::from("/p/.redo/x.rec"), stamp(1), rec("bx")),
            (PathBuf::from("/p/.redo/all.rec"), stamp(2), rec("ball")),
        ],
        hashes: vec![(PathBuf::from("/p/src"), stamp(2), [5; 32])],
        stats: vec![
            (PathBuf::from("/p/src"), Some(meta(4, Kind::File))),
            (PathBuf::from("/p/sub/gone"), None),
        ],
        listings: vec![ListingEntry {
            dir: PathBuf::from("/p"),
            dir_meta: meta(5, Kind::Dir),
            names: vec![
                (OsString::from("x.do"), Kind::File),
                (OsString::from(".redo"), Kind::Dir),
            ],
        }],
        verdicts: vec![VerdictEntry {
            target: PathBuf::from("/p/x"),
            meta: meta(6, Kind::Link),
            hash: Some([7; 32]),
            trust: 1,
            inputs: vec![1, u64::MAX, 3],
        }],
    }
}

#[test]
fn what_is_written_is_read_back() {
    let want = contents();
    let (stats, listings, verdicts, recs) =
        decode_main(encode_main(&origin(), &want), &origin()).unwrap();
    let mut flat: Vec<StatEntry> = stats.into_iter().flat_map(|g| g.entries).collect();
    let mut sorted = want.stats.clone();
    flat.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(flat, sorted);
    assert_eq!(
        (listings, verdicts),
        (want.listings.clone(), want.verdicts.clone())
    );
    assert_eq!(
        recs.len(),
        1,
        "only the state of a target no verdict answers for"
    );
    assert_eq!(
        (&recs[0].0, recs[0].1, &*recs[0].2),
        (&want.recs[1].0, want.recs[1].1, &*want.recs[1].2)
    );
    let (recs, hashes) = decode_state(encode_state(&origin(), &want), &origin(), |_| true).unwrap();
    assert_eq!(hashes, want.hashes);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (&recs[0].0, &*recs[0].2),
        (&want.recs[0].0, &*want.recs[0].2)
    );
    // Skipped without decoding.
    let (recs, _) = decode_state(encode_state(&origin(), &want), &origin(), |_| false).unwrap();
    assert!(recs.is_empty());
}

#[test]
fn another_origin_is_rejected() {
    let bytes = encode_main(&origin(), &contents());
    let other = |f: fn(&mut Origin)| {
        let mut o = origin();
        f(&mut o);
        decode_main(bytes.clone(), &o).unwrap_err()
    };
    assert!(matches!(
        other(|o| o.producer = b"redod 9".to_vec()),
        Rejected::Producer(_)
    ));
    assert!(matches!(
        other(|o| o.machine = b"machine-b".to_vec()),
        Rejected::Machine
    ));
    assert!(matches!(
        other(|o| o.root = PathBuf::from("/copy")),
        Rejected::Root
    ));
    assert!(matches!(other(|o| o.device = 8), Rejected::Root));
    // The state file is not a main file, nor the other way round.
    let state = encode_state(&origin(), &contents());
    assert!(matches!(
        decode_main(state, &origin()),
        Err(Rejected::Format(None))
    ));
}

#[test]
fn every_damage_is_rejected_never_half_used() {
    for bytes in [
        encode_main(&origin(), &contents()),
        encode_state(&origin(), &contents()),
    ] {
        let main = bytes.starts_with(b"REDOSNAP");
        let decode = |b: Vec<u8>| match main {
            true => decode_main(b, &origin()).map(drop),
            false => decode_state(b, &origin(), |_| true).map(drop),
        };
        // Every truncation, and a flipped bit at every position.
        for n in 0..bytes.len() {
            assert!(decode(bytes[..n].to_vec()).is_err(), "truncated at {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(b).is_err(), "bit flipped at {i}");
        }
        let mut newer = bytes.clone();
        newer[8] = 9;
        assert!(matches!(decode(newer), Err(Rejected::Format(Some(9)))));
    }
    assert!(matches!(
        decode_main(b"not a snapshot at all".to_vec(), &origin()),
        Err(Rejected::Format(None))
    ));
}

#[test]
fn a_huge_count_in_a_checksummed_file_does_not_allocate() {
    // A well-formed header and checksum around a count no file could hold.
    let o = origin();
    let mut w = Vec::new();
    w.extend_from_slice(b"REDOSNAP");
    w.extend_from_slice(&FORMAT.to_le_bytes());
    for b in [
        &o.producer[..],
        &o.machine[..],
        o.root.as_os_str().as_encoded_bytes(),
    ] {
        w.extend_from_slice(&(b.len() as u32).to_le_bytes());
        w.extend_from_slice(b);
    }
    w.extend_from_slice(&o.device.to_le_bytes());
    w.extend_from_slice(&0u32.to_le_bytes());
    w.extend_from_slice(&u64::MAX.to_le_bytes());
    let sum = blake3::hash(&w);
    w.extend_from_slice(sum.as_bytes());
    assert!(matches!(
        decode_main(w, &o),
        Err(Rejected::Corrupt("count"))
    ));
}

#[test]
fn save_and_load_on_disk() {
    let dir = std::env::temp_dir().join(format!("redo-snapshot-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    save(&dir, &origin(), &contents()).unwrap();
    let loaded = load(&dir, &origin()).unwrap();
    assert_eq!((loaded.verdicts.len(), loaded.recs.len()), (1, 1));
    let (recs, hashes) = loaded.state(|_| true).unwrap();
    assert_eq!((recs.len(), hashes.len()), (1, 1));
    // No temporary left beside them.
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(names, [OsString::from(FILE), OsString::from(STATE_FILE)]);
    fs::remove_file(dir.join(FILE)).unwrap();
    assert!(matches!(load(&dir, &origin()), Err(Rejected::Missing)));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn absorbed_entries_are_used_only_while_their_file_is_unchanged() {
    use crate::fs::mem::MemFs;
    use crate::store::cache::{Loaded as Cached, RecCache};
    let fs = MemFs::default();
    fs.write("/p/.redo/t.rec", "Build: on-disk\n");
    let on_disk = fs.meta("/p/.redo/t.rec").stamp;
    let recs = RecCache::default();
    recs.absorb(vec![(
        PathBuf::from("/p/.redo/t.rec"),
        on_disk,
        rec("from-snapshot"),
    )]);
    let p = Path::new("/p/.redo/t.rec");
    match recs.load(&fs, p).unwrap() {
        Cached::Ok(r) => assert_eq!(r.build, "from-snapshot"),
        _ => panic!("expected the snapshot's entry"),
    }
    // The file changed since: the entry is stale and the file is read.
    fs.rewrite("/p/.redo/t.rec", "Build: newer\n");
    match recs.load(&fs, p).unwrap() {
        Cached::Ok(r) => assert_eq!(r.build, "newer"),
        _ => panic!("expected the file"),
    }
}
