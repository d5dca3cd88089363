//! `redo-sources`: see `redo_client::Tool::Sources`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Sources);
