#[test]
fn records_keep_order_and_compare_without_copying() {
    let d = |t: &str| Dep::Ifcreate {
        target: t.as_bytes().to_vec(),
    };
    let mut r = Records::from(vec![d("a")]);
    r.share(vec![d("b"), d("c")].into());
    r.extend([d("d")]);
    r.extend([d("e")]);
    assert_eq!(r.len(), 5);
    assert!(r.same_as(&[d("a"), d("b"), d("c"), d("d"), d("e")]));
    assert!(!r.same_as(&[d("a"), d("b"), d("c"), d("d")]));
    assert!(!r.same_as(&[d("a"), d("c"), d("b"), d("d"), d("e")]));
    assert_eq!(r.into_vec(), [d("a"), d("b"), d("c"), d("d"), d("e")]);
    assert!(Records::default().is_empty());
    let mut shared = Records::default();
    shared.share(vec![d("x")].into());
    assert_eq!(shared.into_vec(), [d("x")]);
}

use super::*;

const DOC_EXAMPLE: &str = "Build: 80143f04-bfff-4673-950c-081d712f573d

Type: ifcreate
Target: foo.o.do

Type: ifchange
Target: default.o.do
Size: 123
InodeNum: 2345
CtimeSec: 1605721341
CtimeNsec: 253305000
MtimeSec: 1645606823
MtimeNsec: 369936700
Hash: f4929732f96f11e6d4ebe94536b5edef426d00ed0146853e37a87f4295e18eda

Type: always

Type: stamp
Hash: 5bbdf635932cb16b9127e69b6f3872577efed338f0a4ab6f2c7ca3df6ce50cc9
";

#[test]
fn documented_example_round_trips_byte_for_byte() {
    let rec = parse(DOC_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(rec.build, "80143f04-bfff-4673-950c-081d712f573d");
    assert_eq!(rec.deps.len(), 4);
    assert!(rec.always());
    let (stamp, hash) = rec.own(b"default.o.do").unwrap();
    assert_eq!(stamp.ino, 2345);
    assert_eq!(stamp.mtime_nsec, 369936700);
    assert!(hash.is_some());
    assert_eq!(String::from_utf8(encode(&rec)).unwrap(), DOC_EXAMPLE);
}

#[test]
fn odd_names_round_trip() {
    let rec = Rec {
        build: "u".into(),
        deps: vec![
            Dep::Ifcreate {
                target: b"two\nlines\n".to_vec(),
            },
            Dep::Ifchange {
                target: b" sp\xffce ".to_vec(),
                stamp: Stamp::default(),
                hash: None,
            },
            Dep::Ifcreate {
                target: b"+plus: colon".to_vec(),
            },
        ],
    };
    assert_eq!(parse(&encode(&rec)).unwrap(), rec);
}

#[test]
fn missing_dependency_record_has_zeroes_and_no_hash() {
    let rec = Rec {
        build: "u".into(),
        deps: vec![Dep::Ifchange {
            target: b"gone".to_vec(),
            stamp: Stamp::default(),
            hash: None,
        }],
    };
    let text = String::from_utf8(encode(&rec)).unwrap();
    assert!(
        text.contains(
            "Size: 0\nInodeNum: 0\nCtimeSec: 0\nCtimeNsec: 0\nMtimeSec: 0\nMtimeNsec: 0\n"
        )
    );
    assert!(!text.contains("Hash"));
}

#[test]
fn older_records_without_inode_fields_parse_as_zero() {
    let rec = parse(b"Build: b\n\nType: ifchange\nTarget: x\nSize: 3\nCtimeSec: 1\nCtimeNsec: 2\n")
        .unwrap();
    assert_eq!(
        rec.own(b"x").unwrap().0,
        &Stamp {
            size: 3,
            ctime_sec: 1,
            ctime_nsec: 2,
            ..Stamp::default()
        }
    );
}

#[test]
fn corrupt_files_are_errors_not_panics() {
    let cases: &[&[u8]] = &[
        b"",
        b"\n\n",
        b"Type: ifchange\n",
        b"Build: x\n\nType: ifchange\nTarget: a\n",
        b"Build: x\n\nType: ifchange\nTarget: a\nSize: nope\nCtimeSec: 1\nCtimeNsec: 1\n",
        b"Build: x\n\nType: bogus\n",
        b"Build: x\n\nTarget: a\n",
        b"Build: x\n\nType: stamp\n",
        b"Build: x\n\nType: stamp\nHash: XYZ\n",
        b"Build: x\ngarbage line\n",
        b"+ dangling\n",
        b"Build: x\n\nType: ifcreate\n",
        b"\xff\xfe\x00binary",
    ];
    for c in cases {
        assert!(parse(c).is_err(), "{:?}", String::from_utf8_lossy(c));
    }
    // Truncation anywhere inside a valid file never panics.
    let full = DOC_EXAMPLE.as_bytes();
    for cut in 0..full.len() {
        let _ = parse(&full[..cut]);
    }
}

#[test]
fn comments_and_descriptors_are_skipped() {
    let rec = parse(b"# comment\nBuild: b\n\n%rec: Dependency\n\nType: always\n").unwrap();
    assert_eq!(rec.deps, vec![Dep::Always]);
}

#[test]
fn stamp_of_a_target_without_output() {
    let h = [7u8; 32];
    let mut rec = Rec {
        build: "b".into(),
        deps: vec![
            Dep::Stamp { hash: [1u8; 32] },
            Dep::Stamp { hash: h },
            Dep::Ifcreate {
                target: b"config".to_vec(),
            },
        ],
    };
    assert_eq!(
        rec.phony_stamp(b"config"),
        Some(&h),
        "the last stamp counts"
    );
    assert_eq!(
        rec.phony_stamp(b"other"),
        None,
        "no output is recorded by name"
    );
    rec.deps.push(Dep::Ifchange {
        target: b"config".to_vec(),
        stamp: Stamp::default(),
        hash: None,
    });
    assert_eq!(rec.phony_stamp(b"config"), None, "it has output");
    // A dependant's record of it: zeroed inode data, the stamp as Hash; goredo's record
    // of a missing dependency has no Hash.
    assert_eq!(recorded_stamp(&Stamp::default(), Some(&h)), Some(&h));
    assert_eq!(recorded_stamp(&Stamp::default(), None), None);
    let file = Stamp {
        size: 0,
        ino: 5,
        ..Stamp::default()
    };
    assert_eq!(recorded_stamp(&file, Some(&h)), None);
    let dependant = Rec {
        build: "b".into(),
        deps: vec![Dep::Ifchange {
            target: b"config".to_vec(),
            stamp: Stamp::default(),
            hash: Some(h),
        }],
    };
    assert_eq!(parse(&encode(&dependant)).unwrap(), dependant);
}

#[test]
fn contradictions_are_found() {
    let rec = Rec {
        build: "b".into(),
        deps: vec![
            Dep::Ifcreate {
                target: b"x".to_vec(),
            },
            Dep::Ifchange {
                target: b"x".to_vec(),
                stamp: Stamp::default(),
                hash: None,
            },
        ],
    };
    assert_eq!(rec.contradictions(), vec![b"x".as_slice()]);
}
