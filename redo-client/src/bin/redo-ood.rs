//! `redo-ood`: see `redo_client::Tool::Ood`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Ood);
