use super::opts_out;

#[test]
fn the_opt_out_is_a_line_of_its_own() {
    assert!(opts_out(b"#!/bin/sh\n# redo: no-cache\ndate\n"));
    assert!(opts_out(b"  # redo: no-cache  \r"));
    assert!(!opts_out(b"echo '# redo: no-cache please'\n"));
    assert!(!opts_out(b"date\n"));
}
