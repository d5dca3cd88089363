//! `redo-whichdo`: the `.do` candidates of one target.

use super::Asked;
use crate::engine::Engine;
use crate::fs::paths;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `redo-whichdo TARGET`.
pub(crate) struct WhichDo {
    pub(super) target: redo_proto::msg::ByteBuf,
}

impl WhichDo {
    pub(super) fn apply(&self, engine: &Engine, asked: &Asked) -> i32 {
        let origin = &asked.origin;
        let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(&self.target));
        let Some((dir, name)) = paths::split(&abs) else {
            return asked.fail(format!(
                "{}: not a file name",
                String::from_utf8_lossy(&self.target)
            ));
        };
        let top = origin.settings.top_dir.as_deref();
        let lookup = match crate::dofile::find(engine.fs(), dir, name, top) {
            Ok(l) => l,
            Err(e) => return asked.fail(e),
        };
        let mut out = Vec::new();
        let line = |out: &mut Vec<u8>, rel: &Path| {
            out.extend_from_slice(paths::bytes(&paths::relative(
                &origin.cwd,
                &paths::resolve(dir, rel),
            )));
            out.push(b'\n');
        };
        for m in &lookup.missing {
            line(&mut out, m);
        }
        if let Some(f) = &lookup.found {
            line(&mut out, &f.rel);
        }
        asked.sink.stdout(out);
        if lookup.found.is_some() { 0 } else { 1 }
    }
}
