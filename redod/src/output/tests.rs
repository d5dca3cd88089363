use super::*;

#[test]
fn line_format() {
    assert_eq!(
        format(Msg::Redo, 2, "sub/foo.o (../default.o.do) (0.012s)", false),
        b"redo . . sub/foo.o (../default.o.do) (0.012s)\n"
    );
    assert_eq!(
        format(
            Msg::Err,
            1,
            "bar (default.do) (0.002s): exit status 1",
            false
        ),
        b"err  . bar (default.do) (0.002s): exit status 1\n"
    );
    let c = String::from_utf8(format(Msg::Warn, 0, "x", true)).unwrap();
    assert!(c.starts_with("\x1b[35mwarn x") && c.ends_with("\x1b[0m\n"));
    assert_eq!(secs(std::time::Duration::from_millis(1234)), "(1.234s)");
}

#[test]
fn categories() {
    let s = Style {
        no_progress: true,
        ..Style::default()
    };
    assert!(!s.shows(Msg::Redo) && s.shows(Msg::Err) && !s.shows(Msg::Dbg));
    let d = Style::new(
        &Settings {
            debug: true,
            ..Settings::default()
        },
        false,
        0,
    );
    assert!(d.shows(Msg::Dbg) && d.shows(Msg::Wait) && !d.colour);
}
