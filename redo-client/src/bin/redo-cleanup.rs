//! `redo-cleanup`: see `redo_client::Tool::Cleanup`.
fn main() {
    redo_client::main(redo_client::Tool::Cleanup)
}
