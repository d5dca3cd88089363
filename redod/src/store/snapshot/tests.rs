//! The snapshot: what is written is read back whole, and anything else is rejected, never
//! half used.

use super::*;
use crate::fs::mem::MemFs;

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

fn sample() -> (Vec<RecEntry>, Vec<HashEntry>) {
    let rec = Rec {
        build: "b1".into(),
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
    };
    (
        vec![(PathBuf::from("/p/.redo/x.rec"), stamp(1), Arc::new(rec))],
        vec![(PathBuf::from("/p/src"), stamp(2), [5; 32])],
    )
}

#[test]
fn what_is_written_is_read_back() {
    let (recs, hashes) = sample();
    let bytes = encode(&origin(), &recs, &hashes);
    let c = decode(&bytes, &origin()).unwrap();
    assert_eq!(c.recs.len(), 1);
    assert_eq!((&c.recs[0].0, c.recs[0].1), (&recs[0].0, recs[0].1));
    assert_eq!(*c.recs[0].2, *recs[0].2);
    assert_eq!(c.hashes, hashes);
}

#[test]
fn another_origin_is_rejected() {
    let (recs, hashes) = sample();
    let bytes = encode(&origin(), &recs, &hashes);
    let other = |f: fn(&mut Origin)| {
        let mut o = origin();
        f(&mut o);
        decode(&bytes, &o).unwrap_err()
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
}

#[test]
fn every_damage_is_rejected_never_half_used() {
    let (recs, hashes) = sample();
    let bytes = encode(&origin(), &recs, &hashes);
    // Every truncation, and a flipped bit at every position.
    for n in 0..bytes.len() {
        assert!(decode(&bytes[..n], &origin()).is_err(), "truncated at {n}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(decode(&b, &origin()).is_err(), "bit flipped at {i}");
    }
    assert!(matches!(
        decode(b"not a snapshot at all", &origin()),
        Err(Rejected::Format(None))
    ));
    let mut newer = bytes.clone();
    newer[8] = 2;
    assert!(matches!(
        decode(&newer, &origin()),
        Err(Rejected::Format(Some(2)))
    ));
}

#[test]
fn a_huge_count_in_a_checksummed_file_does_not_allocate() {
    // A well-formed header and checksum around a count no file could hold.
    let mut w = Vec::new();
    w.extend_from_slice(MAGIC);
    w.extend_from_slice(&FORMAT.to_le_bytes());
    let o = origin();
    put_bytes(&mut w, &o.producer);
    put_bytes(&mut w, &o.machine);
    put_bytes(&mut w, o.root.as_os_str().as_bytes());
    w.extend_from_slice(&o.device.to_le_bytes());
    w.extend_from_slice(&u64::MAX.to_le_bytes());
    let sum = blake3::hash(&w);
    w.extend_from_slice(sum.as_bytes());
    assert!(matches!(decode(&w, &o), Err(Rejected::Corrupt("count"))));
}

#[test]
fn absorbed_entries_are_used_only_while_their_file_is_unchanged() {
    let fs = MemFs::default();
    fs.write("/p/.redo/t.rec", "Build: on-disk\n");
    let on_disk = fs.meta("/p/.redo/t.rec").stamp;
    let rec = Arc::new(Rec {
        build: "from-snapshot".into(),
        deps: Vec::new(),
    });
    let recs = RecCache::default();
    let hashes = Hashes::default();
    absorb(
        Contents {
            recs: vec![(PathBuf::from("/p/.redo/t.rec"), on_disk, rec)],
            hashes: Vec::new(),
        },
        &recs,
        &hashes,
    );
    let p = Path::new("/p/.redo/t.rec");
    match recs.load(&fs, p).unwrap() {
        crate::store::cache::Loaded::Ok(r) => assert_eq!(r.build, "from-snapshot"),
        _ => panic!("expected the snapshot's entry"),
    }
    // The file changed since: the entry is stale and the file is read.
    fs.rewrite("/p/.redo/t.rec", "Build: newer\n");
    match recs.load(&fs, p).unwrap() {
        crate::store::cache::Loaded::Ok(r) => assert_eq!(r.build, "newer"),
        _ => panic!("expected the file"),
    }
}

#[test]
fn save_and_load_on_disk() {
    let dir = std::env::temp_dir().join(format!("redo-snapshot-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(FILE);
    let (recs, hashes) = sample();
    let (rc, hc) = (RecCache::default(), Hashes::default());
    rc.absorb(recs);
    hc.absorb(hashes);
    save(&path, &origin(), &rc, &hc).unwrap();
    let c = load(&path, &origin()).unwrap();
    assert_eq!((c.recs.len(), c.hashes.len()), (1, 1));
    // No temporary left beside it.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, [OsString::from(FILE)]);
    fs::remove_file(&path).unwrap();
    assert!(matches!(load(&path, &origin()), Err(Rejected::Missing)));
    fs::remove_dir_all(&dir).unwrap();
}
