//! What a `.do` declares about its running target without building anything:
//! `redo-ifcreate`, `redo-always`, `redo-stamp`.

use super::*;

pub(crate) fn ifcreate(asked: &Asked, targets: &[redo_proto::msg::ByteBuf]) -> i32 {
    // Nothing to record: done, in a .do or not (`redo-ifcreate $(list)` of an empty list).
    if targets.is_empty() {
        return 0;
    }
    let job = match asked.job("redo-ifcreate") {
        Ok(j) => j,
        Err(c) => return c,
    };
    let mut deps = Vec::new();
    for t in targets {
        let abs = paths::resolve(&asked.origin.cwd, OsStr::from_bytes(t));
        match job.flight.session.fs.exists(&abs) {
            Ok(false) => deps.push(Dep::Ifcreate {
                target: paths::bytes(&paths::relative(&job.flight.dir, &abs)).to_vec(),
            }),
            Ok(true) => {
                return asked.fail(format!(
                    "{} exists: a dependency on its creation would keep the target out of date \
                     forever; use redo-ifchange for existing files",
                    String::from_utf8_lossy(t)
                ));
            }
            Err(e) => return asked.fail(format!("cannot stat {}: {e}", show(&abs))),
        }
    }
    job.record(deps);
    0
}

pub(crate) fn always(asked: &Asked) -> i32 {
    match asked.job("redo-always") {
        Ok(j) => {
            j.record([Dep::Always]);
            0
        }
        Err(c) => c,
    }
}

pub(crate) fn stamp(asked: &Asked, hash: [u8; 32]) -> i32 {
    match asked.job("redo-stamp") {
        Ok(j) => {
            j.record([Dep::Stamp { hash }]);
            0
        }
        Err(c) => c,
    }
}
