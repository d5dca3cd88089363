//! `redo-ifchange`: see `redo_client::Tool::Ifchange`.
fn main() {
    redo_client::main(redo_client::Tool::Ifchange)
}
