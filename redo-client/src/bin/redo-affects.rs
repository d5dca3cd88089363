//! `redo-affects`: see `redo_client::Tool::Affects`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Affects);
