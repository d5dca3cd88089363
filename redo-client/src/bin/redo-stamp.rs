//! `redo-stamp`: see `redo_client::Tool::Stamp`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Stamp);
