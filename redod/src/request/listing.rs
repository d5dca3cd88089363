//! `redo-targets`, `-sources`, `-ood`, `-affects`, `-dot` and `redo-log`: read-only answers,
//! computed off the async threads.

use super::*;

impl Engine {
    pub(crate) async fn query(
        self: &Arc<Self>,
        asked: &Asked,
        kind: redo_proto::QueryKind,
        args: Vec<redo_proto::msg::ByteBuf>,
    ) -> i32 {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.into_vec()).collect();
        let engine = self.clone();
        let o = asked.origin.clone();
        let out = tokio::task::spawn_blocking(move || {
            let g = engine.graph(&o.settings);
            query::run(&g, kind, &o.cwd, &args)
        })
        .await;
        self.answer(out, &asked.sink, &asked.tool)
    }

    pub(crate) async fn log(
        &self,
        asked: &Asked,
        target: &[u8],
        recursive: bool,
        details: bool,
    ) -> i32 {
        let t = paths::resolve(&asked.origin.cwd, OsStr::from_bytes(target));
        let o = asked.origin.clone();
        let out =
            tokio::task::spawn_blocking(move || logs::show(&t, &o.cwd, recursive, details)).await;
        self.answer(out, &asked.sink, &asked.tool)
    }
}
