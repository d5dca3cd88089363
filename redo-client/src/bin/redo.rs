//! `redo`: see `redo_client::Tool::Redo`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Redo);
