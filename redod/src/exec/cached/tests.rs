use super::{opts_out, trace_records};
use crate::fs::mem::MemFs;
use crate::remote::{BlobDigest, Trace, TraceDep};
use crate::store::recfile::Dep;
use std::path::Path;

#[test]
fn the_opt_out_is_a_line_of_its_own() {
    assert!(opts_out(b"#!/bin/sh\n# redo: no-cache\ndate\n"));
    assert!(opts_out(b"  # redo: no-cache  \r"));
    assert!(!opts_out(b"echo '# redo: no-cache please'\n"));
    assert!(!opts_out(b"date\n"));
}

/// A restored target records what its build would have: the `.do` lookup's records first
/// (fresh), then the trace's dependencies with their stat now, never its own output and
/// never one twice. (Its commit is a build's: `commit::tests` stops it at every step.)
#[test]
fn a_restored_target_records_the_lookup_then_the_trace() {
    let fs = MemFs::default();
    fs.write("/p/src.c", "int x;");
    fs.write("/p/t.do", "cc");
    let h = |s: &str| Some(*blake3::hash(s.as_bytes()).as_bytes());
    let lookup = vec![
        Dep::Ifcreate {
            target: b"default.do".to_vec(),
        },
        Dep::Ifchange {
            target: b"t.do".to_vec(),
            stamp: fs.meta("/p/t.do").stamp,
            hash: h("cc"),
        },
    ];
    let trace = Trace {
        deps: vec![
            TraceDep::Ifchange {
                path: b"t.do".to_vec(),
                content: h("an older cc"),
            },
            TraceDep::Ifchange {
                path: b"src.c".to_vec(),
                content: h("int x;"),
            },
            TraceDep::Ifchange {
                path: b"gone.h".to_vec(),
                content: None,
            },
            TraceDep::Ifcreate {
                path: b"config.h".to_vec(),
            },
            TraceDep::Ifchange {
                path: b"t".to_vec(),
                content: h("out"),
            },
        ],
        output: BlobDigest::of(b"out"),
        executable: false,
    };
    let records = trace_records(&lookup, &trace, Path::new("/p"), b"t", &fs).into_vec();
    let mut want = lookup.clone();
    want.extend([
        Dep::Ifchange {
            target: b"src.c".to_vec(),
            stamp: fs.meta("/p/src.c").stamp,
            hash: h("int x;"),
        },
        Dep::Ifchange {
            target: b"gone.h".to_vec(),
            stamp: Default::default(),
            hash: None,
        },
        Dep::Ifcreate {
            target: b"config.h".to_vec(),
        },
    ]);
    assert_eq!(records, want);
}
