#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The man pages of `contrib/man`: one per command and `redod(8)`, each listing exactly the
//! options its command's `--help` lists (both ways: a page cannot miss an option, nor keep
//! one that is gone), and each rendering with `groff -man -ww` without a warning.
//!
//! The pages are hand-written roff; `--help` (the clients' option table, clap for redod) is
//! the reference they are held to.

use redo_tests::{bin, help_options};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/man")
}

/// Every page: the commands in section 1, the daemon in section 8.
fn pages() -> Vec<(String, PathBuf)> {
    redo_proto::commands::NAMES
        .iter()
        .map(|n| (n.to_string(), man_dir().join(format!("{n}.1"))))
        .chain([("redod".to_string(), man_dir().join("redod.8"))])
        .collect()
}

/// A roff line as text: `\-` and `\ ` unescaped, font changes (`\fB`) and quotes dropped.
fn unroff(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('f') => {
                    chars.next();
                }
                Some('&') => {}
                Some(other) => out.push(other),
                None => {}
            },
            ('"', _) => {}
            (c, _) => out.push(c),
        }
    }
    out
}

/// The options a page documents: the tags (the line after each `.TP`) of its OPTIONS section,
/// each comma-separated name up to a space, `=` or `[`, as `help_options` reads `--help`.
fn page_options(text: &str) -> BTreeSet<String> {
    let mut in_options = false;
    let mut after_tp = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if let Some(section) = line.strip_prefix(".SH ") {
            in_options = section.trim() == "OPTIONS";
            continue;
        }
        if !in_options {
            continue;
        }
        if line.trim() == ".TP" {
            after_tp = true;
            continue;
        }
        if !after_tp {
            continue;
        }
        after_tp = false;
        let tag = unroff(line.split_once(' ').map_or("", |(_, rest)| rest));
        for name in tag.split(',') {
            let name = name
                .trim()
                .split([' ', '=', '['])
                .next()
                .unwrap_or_default();
            if name.starts_with('-') {
                found.insert(name.to_string());
            }
        }
    }
    found
}

/// What `--help` lists: for redod, its own and its `serve` command's.
fn help_of(name: &str) -> BTreeSet<String> {
    let run = |args: &[&str]| {
        let out = Command::new(bin(name)).args(args).output().unwrap();
        assert!(out.status.success(), "{name} {args:?}: {out:?}");
        help_options(&String::from_utf8(out.stdout).unwrap())
    };
    let mut options = run(&["--help"]);
    if name == "redod" {
        options.extend(run(&["serve", "--help"]));
    }
    options
}

#[test]
fn every_command_has_a_page_listing_exactly_its_options() {
    let mut problems = Vec::new();
    for (name, page) in pages() {
        let Ok(text) = std::fs::read_to_string(&page) else {
            problems.push(format!("{name}: no man page {}", page.display()));
            continue;
        };
        let section = if name == "redod" { 8 } else { 1 };
        let th = format!(".TH {} {section} ", name.to_uppercase());
        if !text.lines().any(|l| l.starts_with(&th)) {
            problems.push(format!("{name}: no '{th}...' title line"));
        }
        let documented = page_options(&text);
        let help = help_of(&name);
        assert!(help.contains("--help"), "{name}: {help:?}");
        for missing in help.difference(&documented) {
            problems.push(format!(
                "{name}: --help lists {missing}, the man page does not"
            ));
        }
        for extra in documented.difference(&help) {
            problems.push(format!(
                "{name}: the man page lists {extra}, --help does not"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // No page without a command.
    let mut files: Vec<String> = std::fs::read_dir(man_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut want: Vec<String> = pages()
        .iter()
        .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(files, want);
}

#[test]
fn pages_render_without_warnings() {
    for (name, page) in pages() {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-Tutf8", "-P-bou"])
            .arg(&page)
            .output()
            .unwrap_or_else(|e| {
                panic!("groff is needed ({e}): apt-get install groff-base (tests/setup-and-test.sh does)")
            });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{name}: groff:\n{stderr}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NAME") && text.contains("OPTIONS"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn the_option_reader_sees_every_form() {
    let page = ".SH OPTIONS\n.TP\n.B \\-j\\ N\nJobs.\n.TP\n.B \\-\\-events=json\nE.\n.TP\n\
                .BI \\-\\-root\\  dir\nR.\n.TP\n.B \\-h, \\-\\-help\nH.\n.SH ENVIRONMENT\n.TP\n\
                .B \\-x\nnot an option section\n";
    let got: Vec<String> = page_options(page).into_iter().collect();
    assert_eq!(got, ["--events", "--help", "--root", "-h", "-j"]);
}
