//! `redo-whichdo`: the `.do` candidates of one target.

use super::*;

impl Engine {
    pub(crate) fn whichdo(&self, origin: &Origin, target: &[u8], sink: &Sink, tool: &str) -> i32 {
        let abs = paths::resolve(&origin.cwd, OsStr::from_bytes(target));
        let Some((dir, name)) = paths::split(&abs) else {
            sink.error(&format!(
                "{tool}: {}: not a file name",
                String::from_utf8_lossy(target)
            ));
            return 1;
        };
        let lookup =
            match crate::dofile::find(&*self.fs, dir, name, origin.settings.top_dir.as_deref()) {
                Ok(l) => l,
                Err(e) => {
                    sink.error(&format!("{tool}: {e}"));
                    return 1;
                }
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
        sink.stdout(out);
        if lookup.found.is_some() { 0 } else { 1 }
    }
}
