//! `redo-targets`: see `redo_client::Tool::Targets`.
fn main() {
    redo_client::main(redo_client::Tool::Targets)
}
