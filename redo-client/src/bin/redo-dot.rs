//! `redo-dot`: see `redo_client::Tool::Dot`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Dot);
