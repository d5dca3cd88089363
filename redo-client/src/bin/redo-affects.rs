//! `redo-affects`: see `redo_client::Tool::Affects`.
fn main() {
    redo_client::main(redo_client::Tool::Affects)
}
