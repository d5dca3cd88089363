//! The shortest path through the product: build, no-op, change, rebuild.

use redo_tests::Project;

#[test]
fn build_noop_change_rebuild() {
    let p = Project::new();
    p.do_file("all.do", "redo-ifchange hello\n");
    p.do_file("hello.do", "redo-ifchange hello.in\ntr a-z A-Z <hello.in\n");
    p.write("hello.in", "hi\n");

    let r = p.redo(&[]).ok();
    assert_eq!(p.read("hello"), "HI\n");
    assert_eq!(r.built_names(), ["redo . hello", "redo all"]);
    assert_eq!((p.runs("all.do"), p.runs("hello.do")), (1, 1));

    // Nothing changed: `redo-ifchange hello` runs nothing and prints nothing.
    let r = p.ifchange(&["hello"]).ok();
    assert_eq!(r.stderr, "");
    assert_eq!(p.runs("hello.do"), 1);

    p.write("hello.in", "there\n");
    p.ifchange(&["hello"]).ok();
    assert_eq!(p.read("hello"), "THERE\n");
    assert_eq!(p.runs("hello.do"), 2);
}
