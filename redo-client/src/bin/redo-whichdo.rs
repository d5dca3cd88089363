//! `redo-whichdo`: see `redo_client::Tool::Whichdo`.
fn main() {
    redo_client::main(redo_client::Tool::Whichdo)
}
