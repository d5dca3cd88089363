#![allow(clippy::unwrap_used)]

use super::*;
use crate::insight::timeline::tests::{span, timeline};

#[test]
fn fill_replaces_once_and_keeps_unknown_placeholders() {
    let out = fill("<{{A}}|{{B}}|{{C}}|{{", &[("A", "{{B}}"), ("B", "b")]);
    assert_eq!(out, "<{{B}}|b|{{C}}|{{");
}

/// The JSON between the data element's tags.
fn embedded_data(html: &str) -> serde_json::Value {
    let open = r#"<script type="application/json" id="timings-data">"#;
    let start = html.find(open).unwrap() + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn hostile_names_stay_inside_their_strings() {
    let evil = "</script><script>alert(1)</script>\"'&<!--";
    let tl = timeline(vec![span(evil, 0, 0, 10, &[])], 10, Some(1));
    let html = render(&tl, "<b>proj</b>").unwrap();
    assert!(!html.contains("alert(1)</script>"), "{html}");
    assert!(!html.contains("<b>proj</b>"));
    assert!(html.contains("&lt;b&gt;proj&lt;/b&gt;"));
    let data = embedded_data(&html);
    assert_eq!(data["spans"][0]["t"], evil);
    assert_eq!(data["title"], "<b>proj</b>");
}

#[test]
fn the_page_is_self_contained() {
    let tl = timeline(vec![span("a", 0, 0, 10, &[])], 10, Some(1));
    let html = render(&tl, "p").unwrap();
    for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "the page refers to {external}");
    }
    assert!(!html.contains("{{"), "a placeholder was left");
}

#[test]
fn data_carries_spans_totals_critical_path_and_curve() {
    let mut b = span("b", 1, 5, 30, &["a"]);
    b.outcome = crate::insight::Outcome::Cached;
    let tl = timeline(vec![span("a", 0, 0, 5, &[]), b], 30, Some(2));
    let data = embedded_data(&render(&tl, "p").unwrap());
    assert_eq!(data["wall"], 30_000);
    assert_eq!(data["jobs"], 2);
    assert_eq!(data["totals"]["built"], 1);
    assert_eq!(data["totals"]["cached"], 1);
    assert_eq!(data["critical"], serde_json::json!([0, 1]));
    assert_eq!(data["spans"][1]["o"], "cached");
    assert_eq!(data["spans"][1]["d"], "b.do");
    assert_eq!(data["curve"], serde_json::json!([[0, 1], [30000, 0]]));
    assert_eq!(data["table_rows"], data::TABLE_ROWS);
}
