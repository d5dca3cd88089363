//! The self-contained HTML timings report: one file with its CSS, its script and the build's
//! data inline (`<script type="application/json" id="timings-data">`), no network, no
//! external script or font, so it opens from a file anywhere.
//!
//! The page (`page.html`, `report.css`, `report.js`) draws on canvases: every target as a
//! bar on its job slot (bars narrower than a pixel merge per pixel column, which keeps a
//! 10,000-target build quick to open), the critical path outlined and linked, the jobs
//! holding a token over time against `-j`, and a sortable table of the slowest
//! [`data::TABLE_ROWS`] target runs. Hover or click shows a target's details. Names are put
//! into the page with `textContent` only; here, the title is HTML-escaped and the data made
//! safe inside its `<script>` ([`super::escape`]).
//!
//! When its script has run, `<body>` carries `data-status="ok"` (or `"error"`, with the
//! messages in `#errors`), `data-bars`, `data-rects` and `data-render-ms`: the browser tests
//! read them.

pub mod data;

use super::Error;
use super::escape::{html_text, json_in_script};
use super::timeline::Timeline;

const PAGE: &str = include_str!("page.html");
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// The report of `timeline`, titled `title` (the project's name).
pub fn render(timeline: &Timeline, title: &str) -> Result<String, Error> {
    let data = serde_json::to_string(&data::Data::of(timeline, title)).map_err(Error::Json)?;
    Ok(fill(
        PAGE,
        &[
            ("TITLE", &html_text(title)),
            ("STYLE", STYLE),
            ("SCRIPT", SCRIPT),
            ("DATA", &json_in_script(&data)),
        ],
    ))
}

/// `template` with each `{{KEY}}` replaced by its value, in one pass: text from a value is
/// never searched for placeholders again. Unknown placeholders stay as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let known = after.find("}}").and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v, close + 2))
        });
        match known {
            Some((value, used)) => {
                out.push_str(value);
                rest = &after[used..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
