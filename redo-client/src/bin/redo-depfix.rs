//! `redo-depfix`: see `redo_client::Tool::Depfix`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Depfix);
