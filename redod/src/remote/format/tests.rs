use super::*;
use crate::fs::Stamp;

fn trace(n: u8) -> Trace {
    Trace {
        deps: vec![
            TraceDep::Ifchange {
                path: b"a.c".to_vec(),
                content: Some([n; 32]),
            },
            TraceDep::Ifchange {
                path: b"gone.h".to_vec(),
                content: None,
            },
            TraceDep::Ifcreate {
                path: b"../new\nline.h".to_vec(),
            },
        ],
        output: BlobDigest::of(&[n]),
        executable: n % 2 == 0,
    }
}

#[test]
fn traces_round_trip() {
    let ts = vec![trace(1), trace(2)];
    assert_eq!(decode_traces(&encode_traces(&ts)), Ok(ts));
}

#[test]
fn foreign_bytes_are_errors() {
    assert!(decode_traces(b"\xff\xff\xff").is_err());
    let future = prost::Message::encode_to_vec(&TraceListMsg {
        version: FORMAT_VERSION + 1,
        traces: vec![],
    });
    assert!(
        decode_traces(&future)
            .unwrap_err()
            .to_string()
            .contains("unknown format version")
    );
    // A Bazel entry: a valid ActionResult without our traces.
    let bazel = prost::Message::encode_to_vec(&ActionResult {
        output_files: vec![OutputFile {
            path: "bazel-out/x".into(),
            digest: Some(BlobDigest::of(b"x").to_msg()),
            is_executable: false,
        }],
        exit_code: 0,
        execution_metadata: None,
    });
    assert!(
        decode_action_result(&bazel)
            .unwrap_err()
            .to_string()
            .contains("not a redo entry")
    );
    assert!(decode_action_result(b"\x0a\x05garbage").is_err());
}

#[test]
fn action_result_holds_traces_and_names_outputs() {
    let ts = vec![trace(1), trace(2), trace(1)];
    let bytes = encode_action_result(&ts);
    assert_eq!(decode_action_result(&bytes), Ok(ts));
    let ar: ActionResult = prost::Message::decode(bytes.as_slice()).unwrap();
    assert_eq!(ar.output_files.len(), 2, "outputs deduplicated");
    assert_eq!(ar.output_files[0].digest, Some(trace(1).output.to_msg()));
    assert_eq!(ar.output_files[1].digest, Some(trace(2).output.to_msg()));
    // Field numbers of remote_execution.proto: output_files = 2 (tag 0x12), and in
    // OutputFile path = 1 (0x0a), digest = 2 (0x12); Digest hash = 1, size_bytes = 2;
    // execution_metadata = 9 (tag 0x4a), in it auxiliary_metadata = 11 (tag 0x5a).
    assert_eq!(bytes[0], 0x12);
    let f = prost::Message::encode_to_vec(&ar.output_files[0]);
    assert_eq!(f[0], 0x0a);
    let m = prost::Message::encode_to_vec(ar.execution_metadata.as_ref().unwrap());
    assert_eq!(m[0], 0x5a);
    let only_metadata = prost::Message::encode_to_vec(&ActionResult {
        output_files: vec![],
        exit_code: 0,
        execution_metadata: ar.execution_metadata,
    });
    assert_eq!(only_metadata[0], 0x4a);
}

#[test]
fn merge_keeps_newest_first_and_bounded() {
    let mut all = Vec::new();
    for n in 0..20u8 {
        all = merge(trace(n), all);
    }
    assert_eq!(all.len(), MAX_TRACES);
    assert_eq!(all[0], trace(19));
    assert_eq!(all[7], trace(12));
    // Same deps, new output: replaced, not duplicated.
    let mut t = trace(19);
    t.output = BlobDigest::of(b"other");
    let merged = merge(t.clone(), all);
    assert_eq!(merged[0], t);
    assert_eq!(merged.iter().filter(|x| x.deps == t.deps).count(), 1);
}

#[test]
fn from_deps_skips_own_record_and_refuses_always() {
    let st = Stamp::default();
    let deps = vec![
        Dep::Ifcreate {
            target: b"default.do".to_vec(),
        },
        Dep::Ifchange {
            target: b"x.do".to_vec(),
            stamp: st,
            hash: Some([3; 32]),
        },
        Dep::Stamp { hash: [9; 32] },
        Dep::Ifchange {
            target: b"x".to_vec(),
            stamp: st,
            hash: Some([4; 32]),
        },
    ];
    let t = TraceDep::from_deps(b"x", &deps).unwrap();
    assert_eq!(
        t,
        vec![
            TraceDep::Ifcreate {
                path: b"default.do".to_vec()
            },
            TraceDep::Ifchange {
                path: b"x.do".to_vec(),
                content: Some([3; 32])
            },
        ]
    );
    assert!(TraceDep::from_deps(b"x", &[Dep::Always]).is_err());
    let phony = [Dep::Ifcreate {
        target: b"x".to_vec(),
    }];
    assert!(TraceDep::from_deps(b"x", &phony).is_err());
}
