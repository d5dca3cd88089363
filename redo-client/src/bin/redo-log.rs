//! `redo-log`: see `redo_client::Tool::Log`.
fn main() {
    redo_client::main(redo_client::Tool::Log)
}
