//! `redo-ifchange`: see `redo_client::Tool::Ifchange`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Ifchange);
