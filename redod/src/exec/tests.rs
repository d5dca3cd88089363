//! Unit tests of the runner's pure parts.
use super::*;

#[test]
fn exit_texts() {
    assert_eq!(exit_text(ExitStatus::from_raw(2 << 8)), "exit status 2");
    assert_eq!(
        exit_text(ExitStatus::from_raw(libc::SIGKILL)),
        "signal: killed"
    );
    assert_eq!(
        exit_text(ExitStatus::from_raw(libc::SIGTERM)),
        "signal: terminated"
    );
}

mod guard_judge {
    use super::super::guard::{Found, judge};
    use crate::fs::{Fs, mem::MemFs};
    use crate::ood::{Checker, Trust};
    use crate::store::cache::{Hashes, Loaded};
    use crate::store::recfile::{Dep, Rec};
    use std::path::Path;
    use std::sync::Arc;

    /// A state file for `/p/x` recording its content now.
    fn recorded(fs: &MemFs) -> Loaded {
        let x = Path::new("/p/x");
        Loaded::Ok(Arc::new(Rec {
            build: "b".into(),
            deps: vec![Dep::Ifchange {
                target: b"x".to_vec(),
                stamp: fs.meta("/p/x").stamp,
                hash: Some(fs.hash(x).unwrap()),
            }],
        }))
    }

    fn judged(fs: &MemFs, loaded: &Loaded) -> Found {
        let hashes = Hashes::default();
        let c = Checker {
            fs,
            hashes: &hashes,
            trust: Trust::Ctime,
            recs: None,
        };
        let x = Path::new("/p/x");
        let now = fs.lstat(x).unwrap();
        judge(fs, &c, loaded, x, Path::new("/p/.redo/x.rec"), b"x", now).unwrap()
    }

    #[test]
    fn a_new_stat_with_the_recorded_content_is_ours() {
        let fs = MemFs::default();
        fs.write("/p/x", "built");
        let rec = recorded(&fs);
        assert!(matches!(
            judged(&fs, &rec),
            Found::Ours {
                prev_hash: Some(_),
                ..
            }
        ));
        // touch, chmod, a hard link, a checkout: the stat moves, the content does not.
        fs.touch("/p/x");
        assert!(matches!(
            judged(&fs, &rec),
            Found::Ours {
                prev_hash: Some(_),
                ..
            }
        ));
        fs.rewrite("/p/x", "built");
        assert!(matches!(
            judged(&fs, &rec),
            Found::Ours {
                prev_hash: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn another_content_is_modified() {
        let fs = MemFs::default();
        fs.write("/p/x", "built");
        let rec = recorded(&fs);
        fs.rewrite("/p/x", "edited");
        assert!(matches!(judged(&fs, &rec), Found::Modified));
        // Same size, other bytes: the hash tells.
        fs.rewrite("/p/x", "bu1lt");
        assert!(matches!(judged(&fs, &rec), Found::Modified));
    }

    #[test]
    fn a_file_without_a_record_of_its_own_is_not_ours() {
        let fs = MemFs::default();
        fs.write("/p/x", "mine");
        assert!(matches!(judged(&fs, &Loaded::Missing), Found::NotOurs));
        let phony = Loaded::Ok(Arc::new(Rec {
            build: "b".into(),
            deps: vec![Dep::Ifcreate {
                target: b"x".to_vec(),
            }],
        }));
        assert!(matches!(judged(&fs, &phony), Found::NotOurs));
        // A directory target has no own record: ours.
        let fs = MemFs::default();
        fs.mkdir("/p/x");
        assert!(matches!(judged(&fs, &phony), Found::Ours { .. }));
        // Nothing there: ours to write.
        let fs = MemFs::default();
        fs.mkdir("/p");
        assert!(matches!(
            judged(&fs, &Loaded::Missing),
            Found::Ours {
                prev_stamp: None,
                ..
            }
        ));
    }
}

#[test]
fn only_a_script_with_a_shebang_or_a_binary_runs_as_a_program() {
    assert!(kernel_runs(b"#!/bin/sh\necho hi\n"));
    assert!(kernel_runs(b"\x7fELF\x02\x01\x01\x00\x00"));
    assert!(!kernel_runs(b"echo hi\n"), "text without #!");
    assert!(!kernel_runs(b""), "empty");
    assert!(!kernel_runs(b" #!/bin/sh\n"), "#! must come first");
}
