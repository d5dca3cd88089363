//! `redo-always`: see `redo_client::Tool::Always`.
fn main() {
    redo_client::main(redo_client::Tool::Always)
}
