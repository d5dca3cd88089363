//! `redo-targets`, `-sources`, `-ood`, `-affects`, `-dot` and `redo-log`: read-only answers,
//! computed off the async threads.

use super::Asked;
use crate::engine::Engine;
use crate::fs::paths;
use crate::{query, store::logs};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// One of the listings, with its operands.
pub(crate) struct Query {
    pub(super) kind: redo_proto::QueryKind,
    pub(super) args: Vec<redo_proto::msg::ByteBuf>,
}

impl Query {
    pub(super) async fn apply(self, engine: &Arc<Engine>, asked: &Asked) -> i32 {
        let args: Vec<Vec<u8>> = self.args.into_iter().map(|a| a.into_vec()).collect();
        let (engine, o, kind) = (engine.clone(), asked.origin.clone(), self.kind);
        let out = tokio::task::spawn_blocking(move || {
            query::run(&engine.graph(&o.settings), kind, &o.cwd, &args)
        })
        .await;
        asked.answer(out)
    }
}

/// `redo-log [-r] [-c] TARGET`.
pub(crate) struct Log {
    pub(super) target: redo_proto::msg::ByteBuf,
    pub(super) recursive: bool,
    pub(super) details: bool,
}

impl Log {
    pub(super) async fn apply(self, asked: &Asked) -> i32 {
        let t = paths::resolve(&asked.origin.cwd, OsStr::from_bytes(&self.target));
        let (o, recursive, details) = (asked.origin.clone(), self.recursive, self.details);
        let out =
            tokio::task::spawn_blocking(move || logs::show(&t, &o.cwd, recursive, details)).await;
        asked.answer(out)
    }
}
