//! `redo-cleanup`: see `redo_client::Tool::Cleanup`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Cleanup);
