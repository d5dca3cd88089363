//! `redo-whichdo`: see `redo_client::Tool::Whichdo`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Whichdo);
