//! `redo-dot`: see `redo_client::Tool::Dot`.
fn main() {
    redo_client::main(redo_client::Tool::Dot)
}
