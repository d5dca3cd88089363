//! The daemon's structure as `docs/DESIGN.md` §2 states it, checked on the source.
//!
//! * **Layers.** DESIGN.md lists the top-level modules of `redod/src/` from the process down
//!   to the disk, on the line after the `layers:` marker; a module may use only modules after
//!   it. This test reads that line (the one statement of the order: the document and the
//!   check cannot drift apart), finds every reference from one top-level module to another
//!   in the source (`use crate::a::..`, grouped `use crate::{a, b::c}`, `crate::a::f()` in
//!   expressions and types, `super::` chains that climb to the crate root), and fails on an
//!   edge against the order, and on a cycle, naming the files.
//! * **Unit tests.** A module's unit tests are its module `tests`, declared last as
//!   `#[cfg(test)] mod tests;` and kept in the file Rust looks for by default (`x/tests.rs`
//!   for `x.rs` and for `x/mod.rs`): never inline, never moved with `#[path]`.
//!
//! Comments, string and character literals are skipped, so a doc link (`[crate::exec]`) is
//! not a dependency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The marker of the layer line in DESIGN.md.
const MARKER: &str = "<!-- layers:";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules `lib.rs` declares.
fn declared_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let toks = tokens(&lib);
    let mut out = BTreeSet::new();
    for (i, t) in toks.iter().enumerate() {
        if t == "mod" {
            if let (Some(name), Some(end)) = (toks.get(i + 1), toks.get(i + 2)) {
                if end == ";" {
                    out.insert(name.clone());
                }
            }
        }
    }
    out
}

/// The order DESIGN.md states: the backquoted names on the line after the marker.
fn stated_order() -> Vec<String> {
    let design = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DESIGN.md");
    let text = std::fs::read_to_string(&design).unwrap();
    let mut lines = text.lines().skip_while(|l| !l.starts_with(MARKER));
    assert!(
        lines.next().is_some(),
        "docs/DESIGN.md has no `{MARKER}` line: the layer order must be stated there"
    );
    let line = lines.next().unwrap_or_default();
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Identifiers and punctuation of Rust source, without comments, strings and characters
/// (each literal becomes one `"` token). Lifetimes are skipped.
fn tokens(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0usize);
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(skip) = raw_string(rest) {
            i += skip;
            out.push("\"".into());
        } else if c == b'"' || (matches!(c, b'b' | b'c') && rest.get(1) == Some(&b'"')) {
            i += if c == b'"' { 1 } else { 2 };
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push("\"".into());
        } else if c == b'\'' || (c == b'b' && rest.get(1) == Some(&b'\'')) {
            let q = if c == b'b' { i + 1 } else { i };
            match (b.get(q + 1), b.get(q + 2)) {
                // '\n', '\'', '\u{..}'
                (Some(b'\\'), _) => {
                    i = q + 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                    out.push("\"".into());
                }
                // 'x' (one byte; a multi-byte character is not an identifier either)
                (Some(_), Some(b'\'')) => {
                    i = q + 3;
                    out.push("\"".into());
                }
                // A lifetime, or a multi-byte character: its quote alone.
                _ => i = q + 1,
            }
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            out.push(String::from_utf8_lossy(&b[start..i]).into_owned());
        } else if rest.starts_with(b"::") {
            out.push("::".into());
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

/// The length of the raw string literal at the start of `b` (`r"…"`, `r#"…"#`, `br#"…"#`).
fn raw_string(b: &[u8]) -> Option<usize> {
    let mut i = match b {
        [b'r', ..] => 1,
        [b'b' | b'c', b'r', ..] => 2,
        _ => return None,
    };
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    i += hashes;
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let end = b[i + 1..].windows(close.len()).position(|w| w == close)?;
    Some(i + 1 + end + close.len())
}

/// The module path of a source file below `src/` (`engine/check.rs` → `[engine, check]`,
/// `engine/mod.rs` → `[engine]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The top-level modules named by paths from the crate root in `toks`: after `crate::`, or
/// after as many `super::` as the file is deep (`depth`). A group `{a, b::c}` names each of
/// its items' first segment.
fn references(toks: &[String], depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let at_root = if toks[i] == "crate" && toks.get(i + 1).is_some_and(|t| t == "::") {
            Some(i + 2)
        } else if toks[i] == "super" && (i == 0 || toks[i - 1] != "::") {
            let mut j = i;
            let mut n = 0;
            while toks.get(j).is_some_and(|t| t == "super")
                && toks.get(j + 1).is_some_and(|t| t == "::")
            {
                n += 1;
                j += 2;
            }
            (n > 0 && n == depth).then_some(j)
        } else {
            None
        };
        let Some(at) = at_root else {
            i += 1;
            continue;
        };
        match toks.get(at).map(String::as_str) {
            Some("{") => {
                // Each item's first segment, at the group's own depth.
                let (mut d, mut j, mut first) = (0usize, at, true);
                while let Some(t) = toks.get(j) {
                    match t.as_str() {
                        "{" => {
                            d += 1;
                            first = d == 1;
                        }
                        "}" => {
                            d -= 1;
                            if d == 0 {
                                break;
                            }
                        }
                        "," if d == 1 => first = true,
                        name if first && d == 1 => {
                            out.push(name.to_string());
                            first = false;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j;
            }
            Some(name) => {
                out.push(name.to_string());
                i = at;
            }
            None => i = at,
        }
    }
    out
}

/// Top-level module → the top-level modules it uses, each with the files that do.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn graph(modules: &BTreeSet<String>) -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g = Graph::new();
    for f in files {
        let rel = f.strip_prefix(src()).unwrap().to_path_buf();
        let path = module_path(&rel);
        let Some(top) = path.first().filter(|t| modules.contains(*t)) else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(&f).unwrap();
        for used in references(&tokens(&text), path.len()) {
            if modules.contains(&used) && used != *top {
                g.entry(top.clone())
                    .or_default()
                    .entry(used)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    g
}

/// A cycle of `g`, as `a -> b -> a`, if it has one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flat_map(BTreeMap::keys) {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, next, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(g, n, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_module_uses_one_above_it() {
    let modules = declared_modules();
    let order = stated_order();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        order.len(),
        "docs/DESIGN.md names a module twice in its layers: {order:?}"
    );
    let unlisted: Vec<&String> = modules.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&modules).collect();
    assert!(
        unlisted.is_empty() && unknown.is_empty(),
        "the layers in docs/DESIGN.md and the modules of lib.rs differ: not placed in the \
         layers {unlisted:?}; no such module {unknown:?}"
    );
    let g = graph(&modules);
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap_or(usize::MAX);
    let mut wrong = Vec::new();
    for (from, uses) in &g {
        for (to, files) in uses {
            if rank(from) > rank(to) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                wrong.push(format!(
                    "{from} uses {to}, which is above it ({})",
                    files.join(", ")
                ));
            }
        }
    }
    let cycle = find_cycle(&g).map(|c| format!("import cycle: {}", c.join(" -> ")));
    wrong.extend(cycle);
    assert!(
        wrong.is_empty(),
        "the daemon's layers (docs/DESIGN.md §2) do not hold:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn unit_tests_are_in_their_modules_default_tests_file() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        let toks = tokens(&std::fs::read_to_string(&f).unwrap());
        for (i, t) in toks.iter().enumerate() {
            let next = |k: usize| toks.get(i + k).map(String::as_str);
            if t == "#" && next(1) == Some("[") && next(2) == Some("path") {
                wrong.push(format!("{rel}: #[path] moves a module away from its file"));
            }
            if t == "mod" && next(1) == Some("tests") {
                if next(2) != Some(";") {
                    wrong.push(format!("{rel}: inline `mod tests {{`"));
                }
                let before: Vec<&str> = toks[i.saturating_sub(12)..i]
                    .iter()
                    .map(String::as_str)
                    .collect();
                if !before.windows(2).any(|w| w == ["cfg", "("]) {
                    wrong.push(format!("{rel}: `mod tests` without #[cfg(test)]"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unit tests go in the module `tests`, `#[cfg(test)] mod tests;`, in its default file \
         (docs/DESIGN.md §2):\n  {}",
        wrong.join("\n  ")
    );
}

/// The scanner itself: what counts as a reference and what does not.
#[test]
fn references_are_found_in_uses_groups_paths_and_super_chains() {
    let src = r#"
        //! [crate::daemon] in a doc comment is no dependency
        use crate::fs::{self, Fs};
        use crate::{engine::{Engine, Want}, store as st, ood};
        pub(super) fn f() -> crate::exec::Ran { let s = "crate::query"; let c = '{'; }
        /* crate::remote */ fn g<'a>(x: &'a str) { super::super::verdict::key(x); }
        use super::sibling;
    "#;
    let found = references(&tokens(src), 2);
    assert_eq!(found, ["fs", "engine", "store", "ood", "exec", "verdict"]);
    // One level deep, `super::` is the crate root.
    assert_eq!(references(&tokens("use super::watch::X;"), 1), ["watch"]);
    let mut g = Graph::new();
    let edge = |g: &mut Graph, a: &str, b: &str| {
        g.entry(a.into()).or_default().entry(b.into()).or_default();
    };
    edge(&mut g, "a", "b");
    edge(&mut g, "b", "c");
    assert_eq!(find_cycle(&g), None);
    edge(&mut g, "c", "a");
    assert_eq!(
        find_cycle(&g).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".into())
    );
}
