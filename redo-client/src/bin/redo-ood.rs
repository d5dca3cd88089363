//! `redo-ood`: see `redo_client::Tool::Ood`.
fn main() {
    redo_client::main(redo_client::Tool::Ood)
}
