//! The `--timings` HTML report in a real browser: reports rendered from synthetic timelines
//! (made through the recorder, as the engine will) are opened in headless Chromium, and the
//! rendered page is checked: its script ran without error, every target is listed, the
//! timeline drew a bar for every target run, the critical path is there, and a screenshot is
//! not blank. The 10,000-target report must open in under two seconds, measured in the
//! browser (`performance.now()` when the script is done, written into the DOM).
//!
//! Needs `/usr/bin/chromium` (tests/setup-and-test.sh installs it). The screenshots are
//! taken in each test's temporary directory; with `REDO_TIMINGS_SCREENSHOTS=DIR` they are
//! also copied to DIR (`small.png` is `contrib/trace/example-report.png`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use redo_tests::TempDir;
use redo_tests::chromium::{Chromium, Picture, attribute, count_colour};
use redod::insight::{Outcome, Recorder, Timeline, report};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A recorder and its clock: `at(n)` is n ms into the build.
fn recorder() -> (Recorder, impl Fn(u64) -> Instant) {
    let epoch = Instant::now();
    (Recorder::starting_at(epoch), move |n| epoch + ms(n))
}

const HOSTILE: &str = "gen/</script><b>bold</b> & \"quoted\".h";

/// A small C build at -j3: `all` waits for `prog`, which waits for three objects; one object
/// comes from the cache, `docs` fails, and two names are hostile (markup, not UTF-8).
fn small() -> (Timeline, Vec<String>) {
    let (r, at) = recorder();
    let non_utf8 = OsString::from_vec(b"data/caf\xe9.txt".to_vec());
    let d = |p: &str| Some(PathBuf::from(p));
    r.started_at("all", d("all.do").as_deref(), at(0));
    r.waiting_at("all", ["prog", "docs"], at(5));
    r.started_at("prog", d("prog.do").as_deref(), at(6));
    r.waiting_at("prog", ["src/a.o", "src/b.o", "src/c.o"], at(10));
    for (t, start) in [("src/a.o", 11), ("src/b.o", 11)] {
        r.queued_at(t, at(10));
        r.started_at(t, d("src/default.o.do").as_deref(), at(start));
    }
    r.queued_at("src/c.o", at(10));
    r.queued_at("docs", at(6));
    r.finished_at("src/b.o", Outcome::Cached, at(20));
    r.started_at("src/c.o", d("src/default.o.do").as_deref(), at(21));
    r.depends("src/c.o", HOSTILE);
    r.started_at(HOSTILE, d("gen/default.h.do").as_deref(), at(22));
    r.finished_at(HOSTILE, Outcome::Built, at(40));
    r.finished_at("src/a.o", Outcome::Built, at(90));
    r.started_at(&non_utf8, d("data/default.do").as_deref(), at(91));
    r.finished_at(&non_utf8, Outcome::Built, at(100));
    r.finished_at("src/c.o", Outcome::Built, at(160));
    r.resumed_at("prog", at(161));
    r.started_at("docs", d("docs.do").as_deref(), at(162));
    r.finished_at("docs", Outcome::Failed, at(180));
    r.finished_at("prog", Outcome::Built, at(230));
    r.resumed_at("all", at(231));
    r.finished_at("all", Outcome::Failed, at(235));
    r.up_to_date(4);
    let tl = r.finish_at(ms(236), Some(3), false, at(236));
    let names = tl.spans.iter().map(|s| s.target.clone()).collect();
    (tl, names)
}

/// `n` targets at -j`jobs` under one `all`, durations 1–120 ms from a fixed pseudo-random
/// sequence, each depending on an earlier one; every 50th from the cache, every 997th failed.
fn large(n: usize, jobs: u32) -> Timeline {
    let (r, at) = recorder();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    r.started_at("all", Some(Path::new("all.do")), at(0));
    let names: Vec<String> = (0..n)
        .map(|i| format!("out/dir{}/t{i}.o", i % 37))
        .collect();
    r.waiting_at("all", &names, at(1));
    let mut free_at = vec![1u64; jobs as usize];
    // (time, 0 for an end or 1 for a start, target): at one instant ends come first, as a
    // job hands its token to the next.
    let mut events: Vec<(u64, u8, usize)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let slot = (0..free_at.len()).min_by_key(|&s| free_at[s]).unwrap();
        let start = free_at[slot];
        let end = start + 1 + next(120);
        free_at[slot] = end;
        if i > 0 {
            r.depends(name, &names[next(i as u64) as usize]);
        }
        r.queued_at(name, at(start.saturating_sub(next(4)).max(1)));
        events.push((start, 1, i));
        events.push((end, 0, i));
    }
    events.sort_unstable();
    for (t, kind, i) in events {
        if kind == 1 {
            r.started_at(&names[i], Some(Path::new("default.o.do")), at(t));
            continue;
        }
        let outcome = match i {
            i if i % 997 == 996 => Outcome::Failed,
            i if i % 50 == 0 => Outcome::Cached,
            _ => Outcome::Built,
        };
        r.finished_at(&names[i], outcome, at(t));
    }
    let end = *free_at.iter().max().unwrap();
    r.resumed_at("all", at(end + 1));
    r.finished_at("all", Outcome::Built, at(end + 2));
    r.finish_at(ms(end + 2), Some(jobs), false, at(end + 2))
}

/// Takes a `width`×`height` screenshot of `page` as `dir/name`, checks it is not blank, and
/// copies it to `$REDO_TIMINGS_SCREENSHOTS/name` when that is set.
fn screenshot(chromium: &Chromium, page: &Path, name: &str, size: (u32, u32), min: f64) -> Vec<u8> {
    let path = page.with_file_name(name);
    let shot = chromium.screenshot(page, &path, size.0, size.1).unwrap();
    let picture = Picture::of(&shot.png).unwrap();
    assert!(picture.is_drawn(min), "{}: {picture:?}", path.display());
    if let Some(dir) = std::env::var_os("REDO_TIMINGS_SCREENSHOTS") {
        std::fs::copy(&path, Path::new(&dir).join(name)).unwrap();
    }
    shot.png
}

/// Renders `tl` into `dir/report.html`, opens it (with `#fragment` unless empty) and checks
/// that its script ran to the end without error. Returns the page and its DOM.
fn open(
    chromium: &Chromium,
    dir: &TempDir,
    tl: &Timeline,
    title: &str,
    fragment: &str,
) -> (PathBuf, String) {
    let html = report::render(tl, title).unwrap();
    let page = dir.0.join("report.html");
    std::fs::write(&page, html).unwrap();
    let dom = chromium.dump_dom_at(&page, fragment).unwrap();
    assert_rendered_ok(&dom);
    (page, dom)
}

/// The part of `dom` from the element with `id` to the next `closing` tag.
fn element<'a>(dom: &'a str, id: &str, closing: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let end = start + dom[start..].find(closing).unwrap();
    &dom[start..end]
}

/// `name` as the browser serialises it in a text node.
fn as_text(name: &str) -> String {
    name.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// The rendered page ran its script to the end, with no error.
fn assert_rendered_ok(dom: &str) {
    let errors = element(dom, "errors", "</ul>");
    assert!(!errors.contains("<li"), "script errors: {errors}");
    assert_eq!(attribute(dom, "data-status"), Some("ok"), "{dom:.2000}");
}

#[test]
fn a_small_report_shows_every_target_the_critical_path_and_a_picture() {
    let chromium = Chromium::require();
    let dir = TempDir::new("timings-small");
    let (tl, names) = small();
    let (page, dom) = open(&chromium, &dir, &tl, "example <project>", "");
    assert_eq!(
        attribute(&dom, "data-bars"),
        Some(names.len().to_string().as_str())
    );
    let table = element(&dom, "slowest", "</table>");
    for name in &names {
        let cell = format!(">{}</td>", as_text(name));
        assert!(
            table.contains(&cell),
            "{name} missing from the table: {table}"
        );
    }
    assert!(names.contains(&"data/caf\u{fffd}.txt".to_string()));
    // The hostile name stayed text: no <b> element made of it anywhere.
    assert!(!dom.contains("<b>bold</b>"));
    // The critical path: all ← prog ← src/c.o ← the generated header.
    let critical = element(&dom, "critical", "</ol>");
    let order: Vec<usize> = [HOSTILE, "src/c.o", "prog", "all"]
        .iter()
        .map(|n| {
            critical
                .find(&format!(">{}<", as_text(n)))
                .unwrap_or_else(|| panic!("{n} not on the critical path: {critical}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{critical}");
    assert!(!critical.contains(">src/a.o<"));
    let banner = element(&dom, "banner", "</p>");
    assert!(banner.contains("2 target(s) failed"), "{banner}");
    assert!(element(&dom, "totals", "</dl>").contains("<dd>4</dd>"));

    let png = screenshot(&chromium, &page, "small.png", (1280, 1100), 0.02);
    // The canvas holds bars in the report's colours: built blue, failed red, cached green,
    // and the critical path's outline.
    for (what, rgb) in [
        ("built", [0x3b, 0x7d, 0xd8]),
        ("failed", [0xd9, 0x3a, 0x3a]),
        ("cached", [0x2e, 0x9e, 0x5b]),
        ("critical", [0xf0, 0xa5, 0x00]),
    ] {
        let n = count_colour(&png, rgb).unwrap();
        assert!(n > 200, "{what}: {n} pixels in small.png");
    }
}

#[test]
fn hovering_clicking_and_sorting_work_in_the_page() {
    let chromium = Chromium::require();
    let dir = TempDir::new("timings-probe");
    let (tl, names) = small();
    // src/a.o ran on the third slot (lane 2) from 11 to 90 ms; point at 50 ms and click.
    let (page, dom) = open(&chromium, &dir, &tl, "probe", "probe=2,50000;sort=t");
    let details = element(&dom, "details", "</div>");
    assert!(
        details.starts_with("id=\"details\" class=\"details\">src/a.o\n"),
        "{details}"
    );
    assert!(
        details.contains(".do:        src/default.o.do"),
        "{details}"
    );
    let tip = element(&dom, "tip", "</div>");
    assert!(!tip.contains("hidden") && tip.contains("src/a.o"), "{tip}");
    // Sorted by target name, ascending.
    let table = element(&dom, "slowest", "</table>");
    assert!(
        table.contains("<th data-key=\"t\" class=\"sorted-asc\">"),
        "{table}"
    );
    let mut expected: Vec<String> = names.iter().map(|n| as_text(n)).collect();
    expected.sort_by_key(|n| n.to_lowercase());
    let shown: Vec<usize> = expected
        .iter()
        .map(|n| table.find(&format!("<td class=\"name\">{n}</td>")).unwrap())
        .collect();
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "{table}");
    // Pointing at an empty place selects nothing.
    let dom = chromium.dump_dom_at(&page, "probe=4,200000").unwrap();
    assert!(element(&dom, "details", "</div>").contains("Click a bar"));
}

#[test]
fn ten_thousand_targets_open_in_under_two_seconds() {
    let chromium = Chromium::require();
    let dir = TempDir::new("timings-large");
    let tl = large(10_000, 8);
    assert_eq!(tl.spans.len(), 10_001);
    let started = Instant::now();
    let (page, dom) = open(&chromium, &dir, &tl, "large", "");
    let browser = started.elapsed();
    let size = std::fs::metadata(&page).unwrap().len();
    let rendering = Instant::now();
    report::render(&tl, "large").unwrap();
    let rendering = rendering.elapsed();
    assert_eq!(attribute(&dom, "data-bars"), Some("10001"));
    let render_ms: f64 = attribute(&dom, "data-render-ms").unwrap().parse().unwrap();
    let rects: usize = attribute(&dom, "data-rects").unwrap().parse().unwrap();
    eprintln!(
        "10,001 target runs: {size} bytes rendered in {rendering:?}, page open in {render_ms} ms \
         (in the browser), {rects} rectangles drawn, chromium ran {browser:?}"
    );
    assert!(render_ms < 2000.0, "the page took {render_ms} ms to open");
    let rows = element(&dom, "slowest", "</table>").matches("<tr").count();
    assert_eq!(rows, 200 + 1, "200 rows and the heading");
    assert!(element(&dom, "table-note", "</p>").contains("The 200 slowest of 10001"));
    screenshot(&chromium, &page, "large.png", (1280, 900), 0.05);
}

#[test]
fn an_empty_or_interrupted_build_still_renders() {
    let chromium = Chromium::require();
    let dir = TempDir::new("timings-empty");
    let (r, _) = recorder();
    r.up_to_date(12);
    let tl = r.finish(Duration::ZERO, None, false);
    let (_, dom) = open(&chromium, &dir, &tl, "empty", "");
    assert_eq!(attribute(&dom, "data-bars"), Some("0"));
    assert!(element(&dom, "critical", "</ol>").contains("(no targets ran)"));

    let (r, at) = recorder();
    r.started_at("slow", Some(Path::new("slow.do")), at(0));
    r.waiting_at("slow", ["child"], at(1));
    r.started_at("child", None, at(1));
    let tl = r.finish_at(ms(50), Some(2), true, at(50));
    let (_, dom) = open(&chromium, &dir, &tl, "stopped", "");
    assert_eq!(attribute(&dom, "data-bars"), Some("2"));
    assert!(element(&dom, "banner", "</p>").contains("interrupted"));
}
