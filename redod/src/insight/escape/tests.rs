use super::*;

#[test]
fn html_text_escapes_markup() {
    assert_eq!(
        html_text(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(html_text("plain/ü.o"), "plain/ü.o");
}

#[test]
#[allow(clippy::unwrap_used)]
fn json_cannot_close_the_script_and_parses_the_same() {
    let name = "</script><!--\u{2028}&>\u{fffd}";
    let json = serde_json::to_string(&serde_json::json!({ "t": name })).unwrap();
    let safe = json_in_script(&json);
    for bad in ["</", "<!--", "\u{2028}", "&", ">"] {
        assert!(!safe.contains(bad), "{safe} contains {bad:?}");
    }
    let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
    assert_eq!(back["t"], name);
}
