//! `redo-sources`: see `redo_client::Tool::Sources`.
fn main() {
    redo_client::main(redo_client::Tool::Sources)
}
