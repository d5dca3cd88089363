//! `redo-depfix`: see `redo_client::Tool::Depfix`.
fn main() {
    redo_client::main(redo_client::Tool::Depfix)
}
