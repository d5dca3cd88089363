//! `redo-ifcreate`: see `redo_client::Tool::Ifcreate`.
fn main() {
    redo_client::main(redo_client::Tool::Ifcreate)
}
