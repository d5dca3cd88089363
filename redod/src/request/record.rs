//! What a `.do` declares about its running target without building anything:
//! `redo-ifcreate`, `redo-always`, `redo-stamp`.

use super::Asked;
use crate::fs::paths;
use crate::store::recfile::Dep;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// `redo-ifcreate FILE...`: the running target is out of date once one of them exists.
pub(crate) struct Ifcreate {
    pub(super) targets: Vec<redo_proto::msg::ByteBuf>,
}

impl Ifcreate {
    pub(super) fn apply(&self, asked: &Asked) -> i32 {
        // Nothing to record: done, in a .do or not (`redo-ifcreate $(list)` of an empty list).
        if self.targets.is_empty() {
            return 0;
        }
        let job = match asked.job("redo-ifcreate") {
            Ok(j) => j,
            Err(c) => return c,
        };
        let mut deps = Vec::new();
        for t in &self.targets {
            let abs = paths::resolve(&asked.origin.cwd, OsStr::from_bytes(t));
            match job.flight.session.fs.exists(&abs) {
                Ok(false) => deps.push(Dep::Ifcreate {
                    target: paths::bytes(&paths::relative(&job.flight.dir, &abs)).to_vec(),
                }),
                Ok(true) => {
                    return asked.fail(format!(
                        "{} exists: a dependency on its creation would keep the target out of \
                         date forever; use redo-ifchange for existing files",
                        String::from_utf8_lossy(t)
                    ));
                }
                Err(e) => return asked.fail(crate::store::Error::io("stat", &abs)(e)),
            }
        }
        job.record(deps);
        0
    }
}

/// `redo-always`: the running target is out of date in every new build.
pub(crate) struct Always;

impl Always {
    pub(super) fn apply(&self, asked: &Asked) -> i32 {
        match asked.job("redo-always") {
            Ok(j) => {
                j.record([Dep::Always]);
                0
            }
            Err(c) => c,
        }
    }
}

/// `redo-stamp`: the running target's content, for dependants, is this hash of its stdin.
pub(crate) struct Stamp {
    pub(super) hash: [u8; 32],
}

impl Stamp {
    pub(super) fn apply(&self, asked: &Asked) -> i32 {
        match asked.job("redo-stamp") {
            Ok(j) => {
                j.record([Dep::Stamp { hash: self.hash }]);
                0
            }
            Err(c) => c,
        }
    }
}
