//! Escaping what comes from file names (any bytes, shown lossily by the time they get here)
//! before it goes into the report's HTML. The page inserts names with `textContent` only, so
//! two places need escaping here: text in the page's markup, and the JSON data embedded in a
//! `<script type="application/json">` element, which must not contain `</script>` or `<!--`.

/// `s` safe as HTML text or as a quoted attribute value.
pub fn html_text(s: &str) -> String {
    replace_chars(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// JSON text (as serde_json writes it) safe inside a `<script>` element: `<`, `>`, `&` and
/// the line separators U+2028/U+2029 become `\uXXXX` escapes. They can only occur inside JSON
/// strings, where the escape means the same character, so the data parses the same.
pub fn json_in_script(json: &str) -> String {
    replace_chars(json, |c| match c {
        '<' => Some("\\u003c"),
        '>' => Some("\\u003e"),
        '&' => Some("\\u0026"),
        '\u{2028}' => Some("\\u2028"),
        '\u{2029}' => Some("\\u2029"),
        _ => None,
    })
}

/// `s` with each character `with` maps to `Some` replaced by that text.
fn replace_chars(s: &str, with: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match with(c) {
            Some(text) => out.push_str(text),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
