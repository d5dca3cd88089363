//! `redo-stamp`: see `redo_client::Tool::Stamp`.
fn main() {
    redo_client::main(redo_client::Tool::Stamp)
}
