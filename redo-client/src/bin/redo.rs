//! `redo`: see `redo_client::Tool::Redo`.
fn main() {
    redo_client::main(redo_client::Tool::Redo)
}
