//! `redo-ifcreate`: see `redo_client::Tool::Ifcreate`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Ifcreate);
