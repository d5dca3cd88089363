#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The query and maintenance commands, end to end (docs/BEHAVIOUR.md §3, §12, §15, §16): the
//! exact lines `redo-targets`, `redo-sources`, `redo-ood`, `redo-affects` and `redo-dot` print
//! on a real tree, `redo-ood` checked against what a following build really rebuilds on random
//! edits, kept logs (`-k`) and `redo-log`, `redo-cleanup`, `redo-depfix`, every command's
//! `--help`, and the shell completions in `contrib/completions`.
//!
//! Every edit of a file a build depends on changes its size: file timestamps come from a coarse
//! kernel clock, so a same-size rewrite within one tick is (rightly, with the default
//! `REDO_INODE_TRUST=ctime`) not seen as a change.

use redo_tests::{Project, Run, TempDir, bin_dir, help_options, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// Helpers

fn stdout_lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(str::to_string).collect()
}

/// Runs a listing command in `dir` (relative to the project root), asserts exit 0 and returns
/// its stdout lines.
#[track_caller]
fn list(p: &Project, dir: &str, tool: &str, args: &[&str]) -> Vec<String> {
    let r = p.run_in(dir, tool, args);
    assert_eq!(
        r.code,
        0,
        "`{tool} {}` in {dir} failed\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    stdout_lines(&r)
}

/// Asserts the exact lines a listing prints.
#[track_caller]
fn assert_list(p: &Project, dir: &str, tool: &str, args: &[&str], expected: &[&str]) {
    let got = list(p, dir, tool, args);
    assert_eq!(got, expected, "`{tool} {}` run in `{dir}`", args.join(" "));
}

fn exec(mut c: Command) -> Run {
    Run::from_output(c.output().unwrap())
}

/// A command of project `p` (its environment, its root as cwd) running `program`, which need
/// not be one of the redo binaries.
fn command_like(p: &Project, program: &str) -> Command {
    let template = p.command("redo");
    let mut c = Command::new(program);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(template.get_current_dir().unwrap())
        .stdin(Stdio::null());
    c
}

/// One recfile record: `(field, value)` in file order.
type Record = Vec<(String, String)>;

fn parse_rec(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut cur: Record = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if let Some(more) = line.strip_prefix("+ ") {
            let last = cur.last_mut().expect("continuation line first");
            last.1.push('\n');
            last.1.push_str(more);
        } else {
            let (k, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            cur.push((k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn fields<'a>(r: &'a Record, name: &str) -> Vec<&'a str> {
    r.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `.redo/NAME.rec` of `target` (relative to `root`).
fn rec_path(root: &Path, target: &str) -> PathBuf {
    let t = Path::new(target);
    let dir = t.parent().unwrap_or(Path::new(""));
    root.join(dir)
        .join(".redo")
        .join(format!("{}.rec", t.file_name().unwrap().to_string_lossy()))
}

/// The `ifchange` records of a target's state file, keyed by their `Target`.
fn ifchange_records(root: &Path, target: &str) -> BTreeMap<String, Record> {
    let text = fs::read_to_string(rec_path(root, target)).unwrap();
    parse_rec(&text)
        .into_iter()
        .filter(|r| field(r, "Type") == Some("ifchange"))
        .map(|r| (field(&r, "Target").unwrap().to_string(), r))
        .collect()
}

fn ino(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// `@` + 24 lowercase hex digits.
fn is_tai64n(s: &str) -> bool {
    s.len() == 25
        && s.starts_with('@')
        && s[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Unix time of a TAI64N label.
fn tai_unix(label: &str) -> (u64, u32) {
    let secs = u64::from_str_radix(&label[1..17], 16).unwrap() - ((1u64 << 62) + 10);
    let nanos = u32::from_str_radix(&label[17..25], 16).unwrap();
    assert!(nanos < 1_000_000_000, "{label}");
    (secs, nanos)
}

fn tai_ns(label: &str) -> u128 {
    let (s, n) = tai_unix(label);
    u128::from(s) * 1_000_000_000 + u128::from(n)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The lines of a `.redo/T.log`: `(label, text)`, each line checked to be `@<24 hex> text`.
#[track_caller]
fn log_lines(p: &Project, log: &str) -> Vec<(String, String)> {
    let text = p.read(log);
    assert!(text.ends_with('\n') || text.is_empty(), "{log}: {text:?}");
    text.lines()
        .map(|l| {
            let (label, rest) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{log}: no label in {l:?}"));
            assert!(is_tai64n(label), "{log}: bad TAI64N label in {l:?}");
            let (secs, _) = tai_unix(label);
            assert!(
                secs.abs_diff(now_unix()) < 600,
                "{log}: label {label} is not about now"
            );
            (label.to_string(), rest.to_string())
        })
        .collect()
}

/// `HH:MM:SS.mmm text` → `text`, or `None` when the line has another form.
fn strip_hms(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    let ok = b.len() >= 13
        && digits(0..2)
        && b[2] == b':'
        && digits(3..5)
        && b[5] == b':'
        && digits(6..8)
        && b[8] == b'.'
        && digits(9..12)
        && b[12] == b' ';
    ok.then(|| &line[13..])
}

/// `== T (ok, 0.012s, started 2026-01-02 03:04:05)` → (T, status) for `redo-log` headers.
fn parse_header(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("== ")?;
    let open = rest.rfind(" (")?;
    let inner = rest[open + 2..].strip_suffix(')')?;
    let parts: Vec<&str> = inner.split(", ").collect();
    if parts.len() != 3 {
        return None;
    }
    let secs = parts[1].strip_suffix('s')?;
    let (whole, frac) = secs.split_once('.')?;
    if whole.is_empty()
        || frac.len() != 3
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let when = parts[2].strip_prefix("started ")?;
    let w = when.as_bytes();
    let shape_ok = w.len() == 19
        && w.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    Some((rest[..open].to_string(), parts[0].to_string()))
}

/// A background command, killed if the test ends before it does.
struct Kid(Option<Child>);

impl Kid {
    fn spawn(mut c: Command) -> Kid {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        Kid(Some(c.spawn().unwrap()))
    }

    #[track_caller]
    fn finish(mut self, limit: Duration) -> Run {
        let done = wait_until(limit, || {
            matches!(self.0.as_mut().unwrap().try_wait(), Ok(Some(_)))
        });
        assert!(done, "the background build did not finish within {limit:?}");
        Run::from_output(self.0.take().unwrap().wait_with_output().unwrap())
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fixed tree

/// The targets of [`fixed_tree`], sorted.
/// The targets that produce a file (`all` is phony).
const OUTPUTS: &[&str] = &["clock", "gen.h", "lib/a.out", "lib/sub/b.out", "version"];

const TARGETS: &[&str] = &[
    "all",
    "clock",
    "gen.h",
    "lib/a.out",
    "lib/sub/b.out",
    "version",
];

/// * `all` (phony: writes nothing) ← `lib/a.out lib/sub/b.out gen.h version clock`;
/// * `lib/a.out`, `lib/sub/b.out` built by `lib/default.out.do` (in the parent directory of
///   `lib/sub`) from `lib/a.in`, `lib/sub/b.in`;
/// * `gen.h` ← `gen.h.in`, and `redo-ifcreate gen.override`;
/// * `version` ← `VERSION`, with `redo-stamp`;
/// * `clock`: `redo-always`.
fn fixed_tree() -> Project {
    let p = Project::new();
    p.do_file(
        "all.do",
        "redo-ifchange lib/a.out lib/sub/b.out gen.h version clock\n",
    )
    .do_file(
        "lib/default.out.do",
        "redo-ifchange \"$2.in\"\necho \"building $1\" >&2\necho \"out $1\"\ncat \"$2.in\"\n",
    )
    .write("lib/a.in", "a\n")
    .write("lib/sub/b.in", "b\n")
    .do_file(
        "gen.h.do",
        "redo-ifcreate gen.override\nredo-ifchange gen.h.in\ncat gen.h.in\n",
    )
    .write("gen.h.in", "#define X 1\n")
    .do_file(
        "version.do",
        "redo-ifchange VERSION\nredo-stamp <VERSION\ncat VERSION\n",
    )
    .write("VERSION", "1.0\n")
    .do_file("clock.do", "redo-always\necho tick\n");
    p
}

/// [`fixed_tree`], built.
fn built_tree() -> Project {
    let p = fixed_tree();
    p.ifchange(&["all"]).ok();
    assert_eq!(p.read("lib/sub/b.out"), "out sub/b.out\nb\n");
    assert!(!p.exists("all"), "all is phony");
    p
}

// ---------------------------------------------------------------------------------------------
// 1. Exact listings

#[test]
fn listings_on_a_fixed_tree_from_the_root_and_from_subdirectories() {
    let p = built_tree();

    // From the root.
    assert_list(&p, ".", "redo-targets", &[], TARGETS);
    assert_list(
        &p,
        ".",
        "redo-targets",
        &["lib"],
        &["lib/a.out", "lib/sub/b.out"],
    );
    assert_list(
        &p,
        ".",
        "redo-sources",
        &[],
        &[
            "VERSION",
            "all.do",
            "clock.do",
            "gen.h.do",
            "gen.h.in",
            "lib/a.in",
            "lib/default.out.do",
            "lib/sub/b.in",
            "version.do",
        ],
    );
    // ifcreate records are not sources; targets are not sources.
    assert_list(
        &p,
        ".",
        "redo-sources",
        &["gen.h"],
        &["gen.h.do", "gen.h.in"],
    );
    assert_list(
        &p,
        ".",
        "redo-sources",
        &["lib/sub/b.out", "version"],
        &[
            "VERSION",
            "lib/default.out.do",
            "lib/sub/b.in",
            "version.do",
        ],
    );
    // Just built: only the phony and the always targets are out of date.
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);
    assert_list(&p, ".", "redo-ood", &["lib/a.out", "gen.h", "version"], &[]);
    assert_list(
        &p,
        ".",
        "redo-affects",
        &["lib/sub/b.in"],
        &["all", "lib/sub/b.out"],
    );
    assert_list(
        &p,
        ".",
        "redo-affects",
        &["lib/default.out.do"],
        &["all", "lib/a.out", "lib/sub/b.out"],
    );
    // ifcreate edges count; the arguments themselves are not listed.
    assert_list(
        &p,
        ".",
        "redo-affects",
        &["gen.override"],
        &["all", "gen.h"],
    );
    assert_list(
        &p,
        ".",
        "redo-affects",
        &["lib/sub/default.out.do"],
        &["all", "lib/sub/b.out"],
    );
    assert_list(&p, ".", "redo-affects", &["VERSION", "version"], &["all"]);
    assert_list(&p, ".", "redo-affects", &["lib/a.out"], &["all"]);
    assert_list(&p, ".", "redo-affects", &["nothing.here"], &[]);

    // From lib: paths relative to it, only what is beneath it by default.
    assert_list(&p, "lib", "redo-targets", &[], &["a.out", "sub/b.out"]);
    assert_list(
        &p,
        "lib",
        "redo-targets",
        &[".."],
        &[
            "../all",
            "../clock",
            "../gen.h",
            "../version",
            "a.out",
            "sub/b.out",
        ],
    );
    assert_list(
        &p,
        "lib",
        "redo-sources",
        &[],
        &["a.in", "default.out.do", "sub/b.in"],
    );
    assert_list(
        &p,
        "lib",
        "redo-sources",
        &["../gen.h"],
        &["../gen.h.do", "../gen.h.in"],
    );
    assert_list(&p, "lib", "redo-ood", &[], &[]);
    assert_list(&p, "lib", "redo-ood", &["../all"], &["../all"]);
    assert_list(&p, "lib", "redo-affects", &["sub/b.in"], &["sub/b.out"]);
    assert_list(&p, "lib/sub", "redo-targets", &[], &["b.out"]);
    assert_list(
        &p,
        "lib/sub",
        "redo-sources",
        &[],
        &["../default.out.do", "b.in"],
    );
    assert_list(
        &p,
        "lib/sub",
        "redo-affects",
        &["../default.out.do"],
        &["b.out"],
    );

    // A changed source: its dependants (and theirs) become out of date; nothing is run.
    p.clear_runs();
    p.write("lib/sub/b.in", "b, edited\n");
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock", "lib/sub/b.out"]);
    assert_list(&p, "lib", "redo-ood", &[], &["sub/b.out"]);
    assert_list(&p, "lib/sub", "redo-ood", &["b.out"], &["b.out"]);
    assert_list(&p, ".", "redo-ood", &["lib/a.out"], &[]);
    assert_eq!(p.runs("lib/default.out.do"), 0, "redo-ood ran a .do");
    assert_eq!(p.read("lib/sub/b.out"), "out sub/b.out\nb\n");

    // A file an ifcreate waits for appears; a more specific .do appears.
    p.write("gen.override", "");
    assert_list(
        &p,
        ".",
        "redo-ood",
        &[],
        &["all", "clock", "gen.h", "lib/sub/b.out"],
    );
    fs::remove_file(p.path("gen.override")).unwrap();
    p.write("lib/sub/default.out.do", "echo more specific\n");
    assert_list(
        &p,
        ".",
        "redo-ood",
        &["lib/a.out", "lib/sub/b.out"],
        &["lib/sub/b.out"],
    );
    fs::remove_file(p.path("lib/sub/default.out.do")).unwrap();

    // A .do gains a dependency on a new source: out of date now, affected once rebuilt.
    p.write("gen.extra", "extra\n");
    p.do_file(
        "gen.h.do",
        "redo-ifcreate gen.override\nredo-ifchange gen.h.in gen.extra\ncat gen.h.in gen.extra\n",
    );
    assert_list(
        &p,
        ".",
        "redo-ood",
        &[],
        &["all", "clock", "gen.h", "lib/sub/b.out"],
    );
    assert_list(&p, ".", "redo-affects", &["gen.extra"], &[]);
    p.ifchange(&["all"]).ok();
    assert_eq!(p.runs("lib/default.out.do"), 1, "only b.out is rebuilt");
    assert_eq!(p.runs("gen.h.do"), 1);
    assert_eq!(p.runs("version.do"), 0);
    assert_eq!(p.read("lib/sub/b.out"), "out sub/b.out\nb, edited\n");
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);
    assert_list(&p, ".", "redo-affects", &["gen.extra"], &["all", "gen.h"]);
    assert_list(
        &p,
        ".",
        "redo-sources",
        &["gen.h"],
        &["gen.extra", "gen.h.do", "gen.h.in"],
    );

    // redo-affects needs an argument.
    let r = p.run("redo-affects", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}

#[test]
fn redo_dot_on_the_fixed_tree() {
    let p = built_tree();
    let out = p.run("redo-dot", &[]).ok().stdout;
    assert!(out.starts_with("digraph redo {\n"), "{out}");
    assert!(out.ends_with("}\n"), "{out}");
    let body: Vec<&str> = out.lines().skip(1).filter(|l| *l != "}").collect();
    let solid: BTreeSet<&str> = body
        .iter()
        .copied()
        .filter(|l| l.contains(" -> ") && !l.contains("style=dotted"))
        .map(str::trim)
        .collect();
    let expected_solid: BTreeSet<&str> = [
        "\"all\" -> \"all.do\";",
        "\"all\" -> \"clock\";",
        "\"all\" -> \"gen.h\";",
        "\"all\" -> \"lib/a.out\";",
        "\"all\" -> \"lib/sub/b.out\";",
        "\"all\" -> \"version\";",
        "\"clock\" -> \"clock.do\";",
        "\"gen.h\" -> \"gen.h.do\";",
        "\"gen.h\" -> \"gen.h.in\";",
        "\"lib/a.out\" -> \"lib/a.in\";",
        "\"lib/a.out\" -> \"lib/default.out.do\";",
        "\"lib/sub/b.out\" -> \"lib/default.out.do\";",
        "\"lib/sub/b.out\" -> \"lib/sub/b.in\";",
        "\"version\" -> \"VERSION\";",
        "\"version\" -> \"version.do\";",
    ]
    .into_iter()
    .collect();
    assert_eq!(solid, expected_solid, "ifchange edges\n{out}");
    let dotted: BTreeSet<&str> = body
        .iter()
        .copied()
        .filter(|l| l.contains(" -> ") && l.contains("style=dotted"))
        .map(str::trim)
        .collect();
    let expected_dotted: BTreeSet<&str> = [
        "\"gen.h\" -> \"gen.override\" [style=dotted];",
        "\"lib/a.out\" -> \"lib/a.out.do\" [style=dotted];",
        "\"lib/sub/b.out\" -> \"lib/sub/b.out.do\" [style=dotted];",
        "\"lib/sub/b.out\" -> \"lib/sub/default.do\" [style=dotted];",
        "\"lib/sub/b.out\" -> \"lib/sub/default.out.do\" [style=dotted];",
    ]
    .into_iter()
    .collect();
    assert_eq!(dotted, expected_dotted, "ifcreate edges\n{out}");
    for l in &body[2..] {
        let l = l.trim();
        assert!(
            l.starts_with('"') && l.ends_with(';'),
            "not a node or edge statement: {l:?}\n{out}"
        );
    }
    // A node's attribute line: `"name" [...]`.
    let node = |name: &str| -> String {
        let prefix = format!("\"{name}\" [");
        body.iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no node line for {name}\n{out}"))
            .to_string()
    };
    for t in ["all", "gen.h", "lib/a.out", "lib/sub/b.out"] {
        let n = node(t);
        assert!(n.contains("shape=box"), "{n}");
        assert!(!n.contains("bold"), "{n}");
    }
    for s in [
        "VERSION",
        "all.do",
        "gen.h.in",
        "lib/a.in",
        "lib/default.out.do",
        "lib/sub/b.in",
    ] {
        assert!(node(s).contains("shape=ellipse"), "{}", node(s));
    }
    let clock = node("clock");
    assert!(
        clock.contains("shape=box") && clock.contains("style=bold") && clock.contains("(always)"),
        "{clock}"
    );
    let version = node("version");
    assert!(
        version.contains("shape=box")
            && version.contains("style=bold")
            && version.contains("(stamp)"),
        "{version}"
    );

    // Roots given, from a subdirectory: only what is below them, names relative to the cwd.
    let sub = p.run_in("lib", "redo-dot", &["a.out"]).ok().stdout;
    assert!(sub.starts_with("digraph redo {\n"), "{sub}");
    assert!(sub.contains("\"a.out\" -> \"a.in\";"), "{sub}");
    assert!(sub.contains("\"a.out\" -> \"default.out.do\";"), "{sub}");
    assert!(
        sub.contains("\"a.out\" -> \"a.out.do\" [style=dotted];"),
        "{sub}"
    );
    assert!(
        !sub.contains("all") && !sub.contains("b.out") && !sub.contains("lib/"),
        "{sub}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. redo-ood agrees with the next build (property)

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Directories of the random tree (`""` is the root), each with its parent before it.
const DIRS: &[&str] = &["", "d1/", "d1/d2/", "e/"];

fn parent_dir(dir: &str) -> Option<&'static str> {
    match dir {
        "" => None,
        "d1/d2/" => Some("d1/"),
        _ => Some(""),
    }
}

/// `to` (relative to the root) as seen from directory `from`.
fn rel_from(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let t: Vec<&str> = to.split('/').collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = "../".repeat(f.len() - common);
    out.push_str(&t[common..].join("/"));
    out
}

#[derive(Clone, Copy, Debug)]
enum Input {
    Source(usize),
    Target(usize),
}

struct Model {
    sources: Vec<String>,
    /// (path, inputs)
    targets: Vec<(String, Vec<Input>)>,
    /// Existing `.do` files.
    dos: BTreeSet<String>,
    version: usize,
}

impl Model {
    fn dir_of(path: &str) -> &str {
        path.rfind('/').map_or("", |i| &path[..=i])
    }

    /// The `.do` a build uses for target `t`.
    fn do_for(&self, t: usize) -> String {
        let path = &self.targets[t].0;
        let own = format!("{path}.do");
        if self.dos.contains(&own) {
            return own;
        }
        let mut dir = Some(Self::dir_of(path));
        while let Some(d) = dir {
            let candidate = format!("{d}default.out.do");
            if self.dos.contains(&candidate) {
                return candidate;
            }
            dir = parent_dir(d);
        }
        panic!("no .do for {path}")
    }

    /// A `.do` (at `path`) building any `.out` target from its `.deps` list; its header makes
    /// its output differ from every other version's.
    fn write_do(&mut self, p: &Project, path: &str) {
        self.version += 1;
        let dir = Self::dir_of(path);
        let up = "../".repeat(dir.matches('/').count());
        let v = self.version;
        let body = format!(
            "echo \"{dir}$1\" >> {up}runs.log\n\
             cd \"$(dirname \"$1\")\"\n\
             b=$(basename \"$1\" .out)\n\
             redo-ifchange \"$b.deps\"\n\
             deps=$(cat \"$b.deps\")\n\
             if [ -n \"$deps\" ]; then redo-ifchange $deps; fi\n\
             echo \"== $b by {path} v{v}\"\n\
             for f in $deps; do cat \"$f\"; done\n\
             # {pad}\n",
            pad = "#".repeat(v),
        );
        p.write(path, &body);
        self.dos.insert(path.to_string());
    }

    fn new(p: &Project, rng: &mut Rng) -> Model {
        let mut m = Model {
            sources: Vec::new(),
            targets: Vec::new(),
            dos: BTreeSet::new(),
            version: 0,
        };
        for i in 0..5 {
            let path = format!("{}s{i}.src", rng.pick(DIRS));
            p.write(&path, &format!("source {i}\n"));
            m.sources.push(path);
        }
        for i in 0..8 {
            let path = format!("{}t{i}.out", rng.pick(DIRS));
            let mut inputs = Vec::new();
            for _ in 0..rng.below(3) {
                inputs.push(Input::Source(rng.below(m.sources.len())));
            }
            if i > 0 {
                for _ in 0..rng.below(3) {
                    inputs.push(Input::Target(rng.below(i)));
                }
            }
            if i == 0 && inputs.is_empty() {
                inputs.push(Input::Source(0));
            }
            let dir = Self::dir_of(&path).to_string();
            let mut deps: Vec<String> = inputs
                .iter()
                .map(|inp| match *inp {
                    Input::Source(s) => rel_from(&dir, &m.sources[s]),
                    Input::Target(t) => rel_from(&dir, &m.targets[t].0),
                })
                .collect();
            deps.dedup();
            let stem = path.strip_suffix(".out").unwrap();
            p.write(&format!("{stem}.deps"), &format!("{}\n", deps.join(" ")));
            m.targets.push((path, inputs));
        }
        m.write_do(p, "default.out.do");
        m.write_do(p, "d1/default.out.do");
        for t in 0..m.targets.len() {
            if rng.below(3) == 0 {
                let own = format!("{}.do", m.targets[t].0);
                m.write_do(p, &own);
            }
        }
        let all: Vec<String> = m.targets.iter().map(|(t, _)| t.clone()).collect();
        p.write(
            "all.do",
            &format!("redo-ifchange {} clock\n", all.join(" ")),
        );
        p.write("clock.do", "redo-always\necho tick\n");
        m
    }

    /// Targets whose output changes when `direct` ones do: direct ones and their dependants.
    fn closure(&self, direct: BTreeSet<usize>) -> BTreeSet<String> {
        let mut dirty = direct;
        loop {
            let before = dirty.len();
            for (t, (_, inputs)) in self.targets.iter().enumerate() {
                if inputs
                    .iter()
                    .any(|i| matches!(i, Input::Target(d) if dirty.contains(d)))
                {
                    dirty.insert(t);
                }
            }
            if dirty.len() == before {
                break;
            }
        }
        dirty
            .into_iter()
            .map(|t| self.targets[t].0.clone())
            .collect()
    }

    /// Applies one random edit; returns its description and the targets it makes a build
    /// rebuild.
    fn edit(&mut self, p: &Project, rng: &mut Rng, n: usize) -> (String, BTreeSet<String>) {
        let before: Vec<String> = (0..self.targets.len()).map(|t| self.do_for(t)).collect();
        let users = |m: &Model, d: &str| -> BTreeSet<usize> {
            (0..m.targets.len()).filter(|t| before[*t] == d).collect()
        };
        let (what, direct) = match rng.below(6) {
            0 | 1 => {
                let s = rng.below(self.sources.len());
                let path = self.sources[s].clone();
                let mut text = p.read(&path);
                text.push_str(&format!("edit {n}\n"));
                p.write(&path, &text);
                let direct = (0..self.targets.len())
                    .filter(|t| {
                        self.targets[*t]
                            .1
                            .iter()
                            .any(|i| matches!(i, Input::Source(x) if *x == s))
                    })
                    .collect();
                (format!("edit source {path}"), direct)
            }
            2 => {
                // Same content, new timestamps: nothing to rebuild.
                let path = self.pick_source(rng);
                let text = p.read(&path);
                std::thread::sleep(Duration::from_millis(10));
                p.write(&path, &text);
                (format!("rewrite {path} unchanged"), BTreeSet::new())
            }
            3 => {
                let dos: Vec<String> = self.dos.iter().cloned().collect();
                let d = rng.pick(&dos).clone();
                self.write_do(p, &d);
                (format!("edit {d}"), users(self, &d))
            }
            4 => {
                // A new, more specific .do (ifcreate).
                let mut candidates: Vec<String> = DIRS
                    .iter()
                    .map(|d| format!("{d}default.out.do"))
                    .chain(self.targets.iter().map(|(t, _)| format!("{t}.do")))
                    .filter(|d| !self.dos.contains(d))
                    .collect();
                candidates.sort();
                if candidates.is_empty() {
                    return (String::from("nothing"), BTreeSet::new());
                }
                let d = rng.pick(&candidates).clone();
                self.write_do(p, &d);
                let direct = (0..self.targets.len())
                    .filter(|t| self.do_for(*t) != before[*t])
                    .collect();
                (format!("create {d}"), direct)
            }
            _ => {
                let removable: Vec<String> = self
                    .dos
                    .iter()
                    .filter(|d| *d != "default.out.do")
                    .cloned()
                    .collect();
                if removable.is_empty() {
                    return (String::from("nothing"), BTreeSet::new());
                }
                let d = rng.pick(&removable).clone();
                fs::remove_file(p.path(&d)).unwrap();
                self.dos.remove(&d);
                let direct = (0..self.targets.len())
                    .filter(|t| self.do_for(*t) != before[*t])
                    .collect();
                (format!("remove {d}"), direct)
            }
        };
        (what, self.closure(direct))
    }

    fn pick_source(&self, rng: &mut Rng) -> String {
        rng.pick(&self.sources).clone()
    }
}

/// Targets whose `.do` ran since the last `clear_runs` (`all.do` and `clock.do` do not log).
fn ran(p: &Project) -> Vec<String> {
    let text = fs::read_to_string(p.path("runs.log")).unwrap_or_default();
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn ood_targets(p: &Project) -> BTreeSet<String> {
    let lines = list(p, ".", "redo-ood", &[]);
    assert!(
        lines.iter().any(|l| l == "all") && lines.iter().any(|l| l == "clock"),
        "the phony and the always target are always out of date: {lines:?}"
    );
    lines
        .into_iter()
        .filter(|l| l != "all" && l != "clock")
        .collect()
}

fn ood_agrees_with_build(seed: u64) {
    println!("redo-ood property: seed {seed} (set REDO_TEST_SEED to replay)");
    let mut rng = Rng(seed);
    let p = Project::new();
    let mut m = Model::new(&p, &mut rng);
    let describe = |m: &Model| {
        m.targets
            .iter()
            .enumerate()
            .map(|(i, (t, inputs))| format!("  {i}: {t} <- {inputs:?} by {}", m.do_for(i)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    println!("tree:\n{}", describe(&m));
    p.ifchange(&["all"]).ok();
    let all: BTreeSet<String> = m.targets.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        ran(&p).into_iter().collect::<BTreeSet<_>>(),
        all,
        "seed {seed}: first build"
    );
    assert!(
        ood_targets(&p).is_empty(),
        "seed {seed}: out of date right after a build"
    );
    for round in 0..8 {
        let (what, expected) = m.edit(&p, &mut rng, round);
        println!("round {round}: {what} -> rebuilds {expected:?}");
        let ctx = format!("seed {seed}, round {round}: {what}\n{}", describe(&m));
        let ood = ood_targets(&p);
        p.clear_runs();
        p.ifchange(&["all"]).ok();
        let ran = ran(&p);
        let ran_set: BTreeSet<String> = ran.iter().cloned().collect();
        assert_eq!(
            ran.len(),
            ran_set.len(),
            "{ctx}\na target built twice: {ran:?}"
        );
        assert_eq!(
            ood, ran_set,
            "{ctx}\nredo-ood (left) disagrees with what the build ran (right)"
        );
        assert_eq!(
            ran_set, expected,
            "{ctx}\nthe build ran (left) other targets than the edit changes (right)"
        );
        assert!(
            ood_targets(&p).is_empty(),
            "{ctx}\nstill out of date after the build"
        );
    }
}

#[test]
fn redo_ood_agrees_with_what_the_next_build_rebuilds() {
    let seed = std::env::var("REDO_TEST_SEED")
        .ok()
        .map(|s| s.parse().expect("REDO_TEST_SEED: a number"))
        .unwrap_or(0x5eed_2024);
    ood_agrees_with_build(seed);
    ood_agrees_with_build(seed ^ 0x00c0_ffee);
}

// ---------------------------------------------------------------------------------------------
// 3. redo-dot rendered by Graphviz

#[track_caller]
fn render(dot: &str) -> String {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "Graphviz `dot` is not installed: run tests/setup-and-test.sh (it installs graphviz) to run this test"
        ),
        Err(e) => panic!("cannot run dot: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let r = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(
        r.code, 0,
        "dot -Tsvg rejected:\n{dot}\nstderr:\n{}",
        r.stderr
    );
    assert!(
        r.stdout.starts_with("<?xml") || r.stdout.contains("<svg"),
        "not SVG: {}",
        r.stdout
    );
    r.stdout
}

#[test]
fn redo_dot_output_renders_with_graphviz() {
    let p = built_tree();
    let svg = render(&p.run("redo-dot", &[]).ok().stdout);
    for name in ["lib/sub/b.out", "gen.override", "VERSION"] {
        assert!(svg.contains(name), "{name} not drawn:\n{svg}");
    }
    render(&p.run_in("lib", "redo-dot", &["sub/b.out"]).ok().stdout);
    render(&p.run("redo-dot", &["version", "clock"]).ok().stdout);
}

// ---------------------------------------------------------------------------------------------
// 4. Kept logs and redo-log

/// A target two directories down depending on a source and a target in a directory outside
/// the project root: listings, `redo-dot` (with and without `--no-outside`), `redo-log` and
/// `-d` messages show those as absolute paths, never as `../../../../tmp/...`.
#[test]
fn paths_outside_the_project_root_are_absolute() {
    let p = Project::new();
    let outside = TempDir::new("outside");
    let ext = outside.0.join("ext.h");
    let gen_ = outside.0.join("gen");
    let (ext_s, gen_s) = (ext.to_str().unwrap(), gen_.to_str().unwrap());
    let gen_do = format!("{gen_s}.do");
    fs::write(&ext, "v1\n").unwrap();
    fs::write(&gen_do, "echo gen-log >&2\necho G\n").unwrap();
    p.write(
        "sub/deep/t.do",
        &format!("redo-ifchange {gen_s} {ext_s}\necho t-log >&2\ncat {ext_s} {gen_s}\n"),
    );
    p.run("redo-ifchange", &["-k", "sub/deep/t"]).ok();

    assert_list(
        &p,
        ".",
        "redo-sources",
        &["sub/deep/t"],
        &[ext_s, &gen_do, "sub/deep/t.do"],
    );
    assert_list(
        &p,
        "sub/deep",
        "redo-sources",
        &["t"],
        &[ext_s, &gen_do, "t.do"],
    );

    let dot = p.run_in("sub", "redo-dot", &["deep/t"]).ok().stdout;
    for edge in [
        format!("  \"deep/t\" -> \"{ext_s}\";"),
        format!("  \"deep/t\" -> \"{gen_s}\";"),
        format!("  \"{gen_s}\" -> \"{gen_do}\";"),
        "  \"deep/t\" -> \"deep/t.do\";".to_string(),
    ] {
        assert!(dot.lines().any(|l| l == edge), "no `{edge}` in\n{dot}");
    }
    assert!(!dot.contains(".."), "{dot}");
    let inside = p.run_in("sub", "redo-dot", &["--no-outside", "deep/t"]);
    let inside = inside.ok().stdout;
    assert!(!inside.contains(outside.0.to_str().unwrap()), "{inside}");
    assert!(
        inside
            .lines()
            .any(|l| l == "  \"deep/t\" -> \"deep/t.do\";"),
        "{inside}"
    );

    let log = p.run_in("sub", "redo-log", &["-r", "deep/t"]).ok().stdout;
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("== {gen_s} (ok"))),
        "{log}"
    );
    assert!(log.lines().any(|l| l.starts_with("== deep/t (ok")), "{log}");
    assert!(!log.contains(".."), "{log}");

    fs::write(&ext, "v2 longer\n").unwrap();
    fs::write(&gen_do, "echo G2\n").unwrap();
    let r = p.run("redo-ifchange", &["-d", "sub/deep/t"]).ok();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with(&format!("redo . {gen_s} ("))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("ood: sub/deep/t: {gen_s} changed"))
            && r.stderr
                .contains(&format!("ood: {gen_s}: {gen_do} changed")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("../"), "{}", r.stderr);
}

fn log_project() -> Project {
    let p = Project::new();
    p.write(
        "top.do",
        "echo top-start >&2\nredo-ifchange dep1 dep2\necho top-end >&2\ncat dep1 dep2\n",
    )
    .write(
        "dep1.do",
        "echo dep1 line1 >&2\necho dep1 line2 >&2\necho d1\n",
    )
    .write(
        "dep2.do",
        "redo-ifchange dep1\necho dep2 says >&2\necho d2\n",
    )
    .write("bad.do", "echo about to fail >&2\nexit 3\n")
    .write("quiet.do", "echo hush >&2\necho q\n")
    .write("envlog.do", "echo from env >&2\necho e\n")
    .write("plain.do", "echo not kept >&2\necho p\n")
    .write("sub/x.do", "echo in sub >&2\necho x\n");
    p
}

#[test]
fn kept_logs_and_log_rec() {
    let p = log_project();
    let r = p.redo(&["-k", "top"]).ok();
    assert!(r.stderr.contains("top-start"), "{}", r.stderr);
    assert_eq!(p.read("top"), "d1\nd2\n");

    // .redo/T.log: only the .do's own stderr lines, stamped, in order.
    let top = log_lines(&p, ".redo/top.log");
    assert_eq!(
        top.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["top-start", "top-end"]
    );
    assert!(
        tai_ns(&top[0].0) < tai_ns(&top[1].0),
        "stamps must increase: {top:?}"
    );
    let dep1 = log_lines(&p, ".redo/dep1.log");
    assert_eq!(
        dep1.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["dep1 line1", "dep1 line2"]
    );
    assert!(tai_ns(&dep1[0].0) <= tai_ns(&dep1[1].0), "{dep1:?}");
    let dep2 = log_lines(&p, ".redo/dep2.log");
    assert_eq!(
        dep2.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["dep2 says"]
    );

    // .redo/T.log-rec.
    let recs = parse_rec(&p.read(".redo/top.log-rec"));
    assert_eq!(recs.len(), 1, "one record");
    let lr = &recs[0];
    let state = parse_rec(&p.read(".redo/top.rec"));
    let build = field(&state[0], "Build").unwrap();
    assert_eq!(field(lr, "Build"), Some(build), "{lr:?}");
    assert!(field(lr, "PPID").unwrap().parse::<u32>().is_ok(), "{lr:?}");
    assert!(field(lr, "PID").unwrap().parse::<u32>().is_ok(), "{lr:?}");
    let cwd = field(lr, "Cwd").unwrap();
    assert!(
        Path::new(cwd) == p.root || Path::new(cwd) == fs::canonicalize(&p.root).unwrap(),
        "Cwd {cwd}"
    );
    let started = field(lr, "Started").unwrap();
    let finished = field(lr, "Finished").unwrap();
    assert!(is_tai64n(started) && is_tai64n(finished), "{lr:?}");
    let duration: u128 = field(lr, "Duration").unwrap().parse().unwrap();
    assert_eq!(
        duration,
        tai_ns(finished) - tai_ns(started),
        "Duration is Finished - Started in ns"
    );
    assert!(
        tai_ns(started) <= tai_ns(&top[0].0) && tai_ns(started) < tai_ns(finished),
        "Started precedes the job's lines and Finished"
    );
    assert_eq!(field(lr, "Cmd"), Some("/bin/sh"));
    let args = fields(lr, "Arg");
    assert_eq!(args.len(), 5, "{args:?}");
    assert_eq!(args[..4], ["-e", "top.do", "top", "top"]);
    assert!(args[4].starts_with(".redo.top."), "$3: {}", args[4]);
    let env = fields(lr, "Env");
    assert!(env.contains(&"REDO_LOGS=1"), "{env:?}");
    assert!(
        env.contains(&format!("REDO_BUILD_UUID={build}").as_str()),
        "{env:?}"
    );
    assert!(field(lr, "ExitCode").is_none(), "{lr:?}");
    let ifchange = fields(lr, "Ifchange");
    for t in ["top.do", "dep1", "dep2"] {
        assert!(ifchange.contains(&t), "{ifchange:?}");
    }
    let names: Vec<&str> = lr.iter().map(|(k, _)| k.as_str()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("Build") < pos("PPID")
            && pos("PPID") < pos("Cwd")
            && pos("Cwd") < pos("PID")
            && pos("PID") < pos("Started")
            && pos("Started") < pos("Finished")
            && pos("Finished") < pos("Duration")
            && pos("Duration") < pos("Cmd")
            && pos("Cmd") < pos("Arg")
            && pos("Arg") < pos("Env")
            && pos("Env") < pos("Ifchange"),
        "field order: {names:?}"
    );

    // Rebuilding truncates the log.
    p.redo(&["-k", "top"]).ok();
    assert_eq!(log_lines(&p, ".redo/top.log").len(), 2);

    // A failing job: ExitCode.
    let r = p.redo(&["-k", "bad"]);
    assert_eq!(r.code, 1, "{r:?}");
    let bad = parse_rec(&p.read(".redo/bad.log-rec"));
    assert_eq!(field(&bad[0], "ExitCode"), Some("3"), "{bad:?}");
    assert_eq!(
        log_lines(&p, ".redo/bad.log")
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>(),
        ["about to fail"]
    );

    // -s: not shown, still kept.
    let r = p.redo(&["-k", "-s", "quiet"]).ok();
    assert!(!r.stderr.contains("hush"), "{}", r.stderr);
    assert_eq!(log_lines(&p, ".redo/quiet.log")[0].1, "hush");

    // REDO_LOGS=1 is -k.
    let mut c = p.command("redo");
    c.env("REDO_LOGS", "1").arg("envlog");
    exec(c).ok();
    assert_eq!(log_lines(&p, ".redo/envlog.log")[0].1, "from env");
    let e = parse_rec(&p.read(".redo/envlog.log-rec"));
    assert!(fields(&e[0], "Env").contains(&"REDO_LOGS=1"));

    // Without either, nothing is kept.
    p.redo(&["plain"]).ok();
    assert!(!p.exists(".redo/plain.log") && !p.exists(".redo/plain.log-rec"));

    // A target in a subdirectory keeps its log in its own .redo.
    p.redo(&["-k", "sub/x"]).ok();
    assert_eq!(log_lines(&p, "sub/.redo/x.log")[0].1, "in sub");
}

/// `redo-log` output lines without their `HH:MM:SS.mmm ` prefix (asserting it).
#[track_caller]
fn shown(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            strip_hms(l)
                .unwrap_or_else(|| panic!("not `HH:MM:SS.mmm text`: {l:?}"))
                .to_string()
        })
        .collect()
}

/// `-k` keeps how each job ran, but never a secret: the values of variables named like one,
/// and the user information of URLs, are `<redacted>` in the `.log-rec` and in `redo-log -c`.
#[test]
fn kept_job_environments_are_redacted() {
    let p = Project::new();
    p.write("t.do", "echo t\n");
    let mut c = p.command("redo");
    c.args(["-k", "t"])
        .env("GITHUB_TOKEN", "ghp_hunter2")
        .env("DEPLOY_KEY", "k3y")
        .env("DB_PASSWORD", "pw1")
        .env("MIRROR_URL", "https://alice:s3cret@mirror.example/x")
        .env("PLAIN", "visible");
    let r = Run::from_output(c.output().unwrap()).ok();
    assert_eq!(r.built_names(), ["redo t"]);
    let logrec = p.read(".redo/t.log-rec");
    let shown = p.run("redo-log", &["-c", "t"]).ok().stdout;
    for text in [&logrec, &shown] {
        for secret in ["ghp_hunter2", "k3y", "pw1", "alice", "s3cret"] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
        for kept in [
            "GITHUB_TOKEN=<redacted>",
            "DEPLOY_KEY=<redacted>",
            "DB_PASSWORD=<redacted>",
            "MIRROR_URL=https://<redacted>@mirror.example/x",
            "PLAIN=visible",
        ] {
            assert!(text.contains(kept), "{kept} missing from:\n{text}");
        }
    }
}

#[test]
fn redo_log_plain_recursive_and_details() {
    let p = log_project();
    p.redo(&["-k", "top"]).ok();

    let r = p.run("redo-log", &["top"]).ok();
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(shown(&out), ["top-start", "top-end"], "{}", r.stdout);

    // From a subdirectory, and of a target in a subdirectory.
    p.redo(&["-k", "sub/x"]).ok();
    let r = p.run("redo-log", &["sub/x"]).ok();
    assert_eq!(shown(&r.stdout.lines().collect::<Vec<_>>()), ["in sub"]);
    let r = p.run_in("sub", "redo-log", &["x"]).ok();
    assert_eq!(shown(&r.stdout.lines().collect::<Vec<_>>()), ["in sub"]);
    let r = p.run_in("sub", "redo-log", &["../top"]).ok();
    assert_eq!(
        shown(&r.stdout.lines().collect::<Vec<_>>()),
        ["top-start", "top-end"]
    );

    // -r: sections for the dependencies built in the same build, in the order they finished.
    let r = p.run("redo-log", &["-r", "top"]).ok();
    let mut sections: Vec<(String, String, Vec<&str>)> = Vec::new();
    for l in r.stdout.lines() {
        if let Some((t, status)) = parse_header(l) {
            sections.push((t, status, Vec::new()));
        } else {
            assert!(!l.starts_with("=="), "bad header {l:?}\n{}", r.stdout);
            sections
                .last_mut()
                .unwrap_or_else(|| panic!("output before the first header:\n{}", r.stdout))
                .2
                .push(l);
        }
    }
    let order: Vec<&str> = sections.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(order, ["dep1", "dep2", "top"], "{}", r.stdout);
    assert!(sections.iter().all(|(_, s, _)| s == "ok"), "{}", r.stdout);
    assert_eq!(shown(&sections[0].2), ["dep1 line1", "dep1 line2"]);
    assert_eq!(shown(&sections[1].2), ["dep2 says"]);
    assert_eq!(shown(&sections[2].2), ["top-start", "top-end"]);

    // Only the same build: dep2 rebuilt alone later is not part of top's build any more.
    p.redo(&["-k", "dep2"]).ok();
    let r = p.run("redo-log", &["-r", "top"]).ok();
    let heads: Vec<String> = r
        .stdout
        .lines()
        .filter_map(parse_header)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(heads, ["dep1", "top"], "{}", r.stdout);

    // -c: how the job ran.
    let r = p.run("redo-log", &["-c", "top"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    let (t, status) = parse_header(lines[0]).unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!((t.as_str(), status.as_str()), ("top", "ok"));
    for want in [
        "   cmd: /bin/sh",
        "   arg: -e",
        "   arg: top.do",
        "   env: REDO_LOGS=1",
    ] {
        assert!(lines.contains(&want), "missing {want:?}\n{}", r.stdout);
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("   cwd: ") && l.ends_with("/p")),
        "{}",
        r.stdout
    );
    let tail: Vec<&str> = lines
        .iter()
        .copied()
        .skip(1)
        .filter(|l| !l.starts_with("   "))
        .collect();
    assert_eq!(shown(&tail), ["top-start", "top-end"], "{}", r.stdout);

    // -r -c together.
    let r = p.run("redo-log", &["-r", "-c", "top"]).ok();
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("   cmd: "))
            .count(),
        2,
        "{}",
        r.stdout
    );

    // A failed job.
    p.redo(&["-k", "bad"]).fails();
    let r = p.run("redo-log", &["bad"]).ok();
    assert_eq!(
        shown(&r.stdout.lines().collect::<Vec<_>>()),
        ["about to fail"]
    );
    let r = p.run("redo-log", &["-r", "bad"]).ok();
    let first = r.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        parse_header(first),
        Some(("bad".to_string(), "exit 3".to_string())),
        "{}",
        r.stdout
    );

    // No log kept.
    p.redo(&["plain"]).ok();
    for t in ["plain", "never-built"] {
        let r = p.run("redo-log", &[t]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
        assert!(r.stderr.contains("redo -k"), "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. redo-cleanup

/// `lib/sub/b.out` → (`lib/sub/`, `b.out`).
fn split_target(t: &str) -> (&str, &str) {
    t.rfind('/').map_or(("", t), |i| (&t[..=i], &t[i + 1..]))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `DIR/.redo/NAME<suffix>` for every target of [`TARGETS`], relative to `from` (a prefix of
/// the targets' directories, `""` or `lib/`).
fn state_files(from: &str, suffixes: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for t in TARGETS {
        let Some(t) = t.strip_prefix(from) else {
            continue;
        };
        let (dir, name) = split_target(t);
        for s in suffixes {
            v.push(format!("{dir}.redo/{name}{s}"));
        }
    }
    v.sort();
    v
}

/// The lock files a build of every target leaves: one `.redo/.lock` per directory with targets.
fn lock_files(from: &str) -> Vec<String> {
    let mut v: Vec<String> = TARGETS
        .iter()
        .filter_map(|t| t.strip_prefix(from))
        .map(|t| format!("{}.redo/.lock", split_target(t).0))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn redo_cleanup_modes() {
    let p = fixed_tree();
    p.redo(&["-k", "all"]).ok();
    // Leftovers of interrupted builds, and look-alikes that are not redo's.
    p.write("lib/sub/.redo.b.out.0123456789abcdef", "tmp");
    p.write(".redo/.redo.all.rec.0123456789abcdef", "tmp");
    p.write("lib/.redo.tmpdir.0123/inside", "tmp");
    p.write("notes.log", "mine");
    p.write("lib/x.lock", "mine");
    p.write("lib/sub/.redo/user.txt", "not state, but in .redo");
    let tmp = [
        ".redo/.redo.all.rec.0123456789abcdef",
        "lib/.redo.tmpdir.0123",
        "lib/sub/.redo.b.out.0123456789abcdef",
    ];

    assert_list(&p, ".", "redo-cleanup", &["-n", "tmp"], &tmp);
    assert!(p.exists("lib/sub/.redo.b.out.0123456789abcdef") && p.exists("lib/.redo.tmpdir.0123"));
    assert_list(&p, ".", "redo-cleanup", &["tmp"], &tmp);
    for t in tmp {
        assert!(!p.exists(t), "{t} not removed");
    }
    assert_list(&p, ".", "redo-cleanup", &["tmp"], &[]);

    let logs = state_files("", &[".log", ".log-rec"]);
    let locks = lock_files("");
    let mut both = [logs.clone(), locks.clone()].concat();
    both.sort();
    assert_list(
        &p,
        ".",
        "redo-cleanup",
        &["-n", "log", "lock"],
        &strs(&both),
    );
    assert_list(
        &p,
        "lib",
        "redo-cleanup",
        &["-n", "log"],
        &strs(&state_files("lib/", &[".log", ".log-rec"])),
    );
    assert!(p.exists("lib/.redo/a.out.log") && p.exists(".redo/.lock"));
    p.run("redo-log", &["lib/a.out"]).ok();

    assert_list(&p, ".", "redo-cleanup", &["log"], &strs(&logs));
    for l in &logs {
        assert!(!p.exists(l), "{l} not removed");
    }
    let r = p.run("redo-log", &["lib/a.out"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_list(&p, ".", "redo-cleanup", &["lock"], &strs(&locks));
    for l in &locks {
        assert!(!p.exists(l), "{l} not removed");
    }
    assert!(
        p.exists("notes.log") && p.exists("lib/x.lock"),
        "not redo's files"
    );
    // The state is intact: nothing is out of date.
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);

    // full: everything in the .redo directories but the top marker.
    let recs = state_files("", &[".rec"]);
    let mut full = recs.clone();
    full.push("lib/sub/.redo/user.txt".into());
    full.push("lib/sub/.redo.b.out.4567".into());
    // The outputs redo built go with their state (`all` is phony: it has none)...
    full.extend(OUTPUTS.iter().map(|o| o.to_string()));
    // ...except one changed by hand since: that is the user's, kept with a warning.
    p.write("version", "edited by hand\n");
    full.retain(|f| f != "version");
    full.sort();
    p.write("lib/sub/.redo.b.out.4567", "tmp");
    assert_list(&p, ".", "redo-cleanup", &["-n", "full"], &strs(&full));
    assert_list(&p, ".", "redo-targets", &[], TARGETS);
    let r = p.run("redo-cleanup", &["full"]).ok();
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), strs(&full));
    assert_eq!(
        r.stderr.trim_end(),
        "warn version changed since redo built it: kept (remove it yourself if it is not needed)"
    );
    assert_eq!(p.read("version"), "edited by hand\n");
    assert!(p.exists(".redo/top"), "the top marker is not state");
    assert!(
        !p.exists("lib/.redo") && !p.exists("lib/sub/.redo"),
        "empty .redo dirs removed"
    );
    assert!(!p.exists("lib/sub/.redo.b.out.4567"));
    assert!(
        !p.exists("lib/a.out") && p.exists("notes.log"),
        "built outputs go with their state, other files stay"
    );
    assert_list(&p, ".", "redo-targets", &[], &[]);

    // Usage errors.
    p.write("lib/.redo.again.0123", "tmp");
    for args in [
        &["everything"][..],
        &[][..],
        &["-n"][..],
        &["tmp", "bogus"][..],
    ] {
        let r = p.run("redo-cleanup", args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty());
    }
    assert!(
        p.exists("lib/.redo.again.0123"),
        "a usage error removes nothing"
    );
}

#[test]
fn build_after_redo_cleanup_full_rebuilds_everything() {
    let p = built_tree();
    let removed = list(&p, ".", "redo-cleanup", &["full"]);
    let mut expected = [state_files("", &[".rec"]), lock_files("")].concat();
    expected.extend(OUTPUTS.iter().map(|o| o.to_string()));
    expected.sort();
    assert_eq!(removed, strs(&expected));
    for o in OUTPUTS {
        assert!(
            !p.exists(o),
            "{o}: a stale output would be taken for a source"
        );
    }
    assert_list(&p, ".", "redo-targets", &[], &[]);
    p.clear_runs();
    let r = p.ifchange(&["all"]);
    assert_eq!(
        r.code, 0,
        "the first build after `redo-cleanup full` (targets still on disk) failed:\n{}",
        r.stderr
    );
    for (d, n) in [
        ("all.do", 1),
        ("lib/default.out.do", 2),
        ("gen.h.do", 1),
        ("version.do", 1),
        ("clock.do", 1),
    ] {
        assert_eq!(p.runs(d), n, "{d} after redo-cleanup full");
    }
    assert_list(&p, ".", "redo-targets", &[], TARGETS);
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);
    // The targets are targets again: a source edit rebuilds them.
    p.write("lib/a.in", "a, edited\n");
    p.ifchange(&["all"]).ok();
    assert_eq!(p.read("lib/a.out"), "out a.out\na, edited\n");
}

#[test]
fn redo_cleanup_and_depfix_are_refused_during_a_build() {
    let p = fixed_tree();
    p.do_file(
        "slow.do",
        "redo-ifchange lib/a.out\n: > started\nwhile [ ! -e go ]; do sleep 0.02; done\necho slow\n",
    );
    p.do_file(
        "inner.do",
        "if redo-cleanup tmp 2>inner.err; then echo cleanup ran; else echo \"cleanup refused $?\"; fi\n\
         if redo-depfix 2>>inner.err; then echo depfix ran; else echo \"depfix refused $?\"; fi\n",
    );
    p.ifchange(&["all"]).ok();
    p.write("lib/.redo.left.0123", "tmp");

    let mut c = p.command("redo-ifchange");
    c.arg("slow");
    let kid = Kid::spawn(c);
    assert!(
        wait_until(Duration::from_secs(10), || p.exists("started")),
        "the slow build did not start"
    );
    for (tool, args) in [("redo-cleanup", &["full"][..]), ("redo-depfix", &[][..])] {
        let r = p.run(tool, args);
        assert_eq!(r.code, 1, "{tool} {args:?} during a build: {r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
        assert!(r.stderr.contains("build is running"), "{r:?}");
    }
    assert!(
        p.exists("lib/.redo.left.0123") && p.exists("lib/.redo/a.out.rec"),
        "a refused cleanup removed something"
    );
    p.write("go", "");
    let r = kid.finish(Duration::from_secs(20));
    assert_eq!(r.code, 0, "the build failed: {r:?}");
    assert_eq!(p.read("slow"), "slow\n");

    // Inside a .do: refused too.
    p.ifchange(&["inner"]).ok();
    assert_eq!(p.read("inner"), "cleanup refused 1\ndepfix refused 1\n");
    let err = p.read("inner.err");
    assert!(err.contains("inside a .do"), "{err}");
    assert!(p.exists("lib/.redo.left.0123"));

    // Once the build is over, it runs.
    assert_list(&p, ".", "redo-cleanup", &["tmp"], &["lib/.redo.left.0123"]);
}

// ---------------------------------------------------------------------------------------------
// 6. redo-depfix

/// Asserts every ifchange record of every target in `root` but `except` (target, dependency)
/// records the dependency's current inode and mtime.
#[track_caller]
fn assert_records_current(root: &Path, except: Option<(&str, &str)>) {
    for t in TARGETS {
        let dir = Path::new(t).parent().unwrap_or(Path::new(""));
        for (dep, r) in ifchange_records(root, t) {
            if except == Some((t, dep.as_str())) {
                continue;
            }
            let path = root.join(dir).join(&dep);
            let Ok(meta) = fs::metadata(&path) else {
                continue; // phony
            };
            assert_eq!(
                field(&r, "InodeNum").unwrap().parse::<u64>().unwrap(),
                meta.ino(),
                "{t}: record of {dep} has another inode"
            );
            assert_eq!(
                field(&r, "MtimeSec").unwrap().parse::<i64>().unwrap(),
                meta.mtime(),
                "{t}: record of {dep} has another mtime"
            );
        }
    }
}

fn all_recs() -> Vec<String> {
    let mut v: Vec<String> = TARGETS
        .iter()
        .map(|t| {
            let (dir, name) = split_target(t);
            format!("{dir}.redo/{name}.rec")
        })
        .collect();
    v.sort();
    v
}

#[track_caller]
fn depfix(p: &Project, trust: Option<&str>) -> Vec<String> {
    let mut c = p.command("redo-depfix");
    if let Some(t) = trust {
        c.env("REDO_INODE_TRUST", t);
    }
    let r = exec(c).ok();
    let mut v = stdout_lines(&r);
    v.sort();
    v
}

/// Built non-phony, non-always targets.
const FILES: &[&str] = &["lib/a.out", "gen.h", "version", "lib/sub/b.out"];

#[test]
fn redo_depfix_after_cp_a() {
    let p = built_tree();
    let q = Project::new();
    fs::remove_dir_all(&q.root).unwrap();
    let mut cp = Command::new("cp");
    cp.arg("-a").arg(&p.root).arg(&q.root);
    exec(cp).ok();
    q.clear_runs();
    assert_ne!(
        ino(&p.path("lib/a.in")),
        ino(&q.path("lib/a.in")),
        "cp -a made new inodes"
    );

    // Nothing changed in content: nothing to rebuild but the phony and always targets.
    assert_list(&q, ".", "redo-ood", &[], &["all", "clock"]);
    // A source changed in the copy before depfix.
    q.write("lib/sub/b.in", "b, changed in the copy\n");
    let old_b_in = ifchange_records(&q.root, "lib/sub/b.out")["b.in"].clone();

    assert_eq!(
        depfix(&q, None),
        all_recs(),
        "every .rec has a new inode to record"
    );
    assert_records_current(&q.root, Some(("lib/sub/b.out", "b.in")));
    assert_eq!(
        ifchange_records(&q.root, "lib/sub/b.out")["b.in"],
        old_b_in,
        "the changed source keeps its old record"
    );
    assert_eq!(
        depfix(&q, None),
        Vec::<String>::new(),
        "nothing left to fix"
    );
    assert_list(&q, ".", "redo-ood", &[], &["all", "clock", "lib/sub/b.out"]);

    // The next build runs no .do for what did not change, and rebuilds what did.
    let r = q.ifchange(&["lib/a.out", "gen.h", "version"]).ok();
    assert!(r.built().is_empty(), "{r:?}");
    assert_eq!(
        fs::read_to_string(q.path("runs.log")).unwrap_or_default(),
        ""
    );
    q.ifchange(&["all"]).ok();
    assert_eq!(q.runs("lib/default.out.do"), 1);
    assert_eq!(q.runs("gen.h.do") + q.runs("version.do"), 0);
    assert_eq!(
        q.read("lib/sub/b.out"),
        "out sub/b.out\nb, changed in the copy\n"
    );
    assert_list(&q, ".", "redo-ood", &[], &["all", "clock"]);

    // The original is untouched.
    assert_eq!(p.read("lib/sub/b.out"), "out sub/b.out\nb\n");
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);
    assert_list(&p, "lib", "redo-depfix", &[], &[]);
}

#[test]
fn redo_depfix_after_touching_everything_with_mtime_trust() {
    let p = built_tree();
    // Touch every file of the tree: new mtimes, same contents.
    let mut touch = command_like(&p, "sh");
    touch.args([
        "-c",
        "find . -path ./.redo -prune -o -type f ! -path '*/.redo/*' -exec touch -d '2030-01-02 03:04:05' {} +",
    ]);
    exec(touch).ok();
    assert_eq!(
        fs::metadata(p.path("lib/a.in")).unwrap().mtime(),
        fs::metadata(p.path("lib/a.out")).unwrap().mtime()
    );
    assert_list(&p, ".", "redo-ood", &[], &["all", "clock"]);

    let fixed = depfix(&p, Some("mtime"));
    assert_eq!(fixed, all_recs());
    assert_records_current(&p.root, None);
    assert_eq!(depfix(&p, Some("mtime")), Vec::<String>::new());

    p.clear_runs();
    let mut c = p.command("redo-ifchange");
    c.env("REDO_INODE_TRUST", "mtime").args(FILES);
    let r = exec(c).ok();
    assert!(r.built().is_empty(), "{r:?}");
    assert_eq!(
        fs::read_to_string(p.path("runs.log")).unwrap_or_default(),
        ""
    );

    // From a subdirectory: only the state files beneath it.
    p.write("lib/sub/b.in", "b2\n");
    exec({
        let mut c = command_like(&p, "touch");
        c.args(["-d", "2031-01-01", "lib/a.in", "gen.h.in"]);
        c
    })
    .ok();
    assert_list(&p, "lib", "redo-depfix", &[], &[".redo/a.out.rec"]);
    assert_list(&p, ".", "redo-ood", FILES, &["lib/sub/b.out"]);
    assert_eq!(depfix(&p, None), [".redo/gen.h.rec"]);
}

// ---------------------------------------------------------------------------------------------
// 7. --help and unknown options

/// The options `redo` and `redo-ifchange` share.
const BUILD_OPTS: &[&str] = &[
    "-j",
    "-x",
    "-xx",
    "-k",
    "-s",
    "-f",
    "-d",
    "-log-pid",
    "-log-wait",
    "-log-lock",
    "-log-js",
    "-no-progress",
    "-no-status",
    "-events",
];

/// Each tool with the options its `--help` must document.
const TOOLS: &[(&str, &[&str])] = &[
    (
        "redo",
        &["-daemon-status", "-daemon-stop", "-daemon-watch", "-watch"],
    ),
    ("redo-ifchange", &[]),
    ("redo-ifcreate", &[]),
    ("redo-always", &[]),
    ("redo-stamp", &[]),
    ("redo-whichdo", &[]),
    ("redo-targets", &[]),
    ("redo-sources", &[]),
    ("redo-ood", &[]),
    ("redo-affects", &[]),
    ("redo-dot", &[]),
    ("redo-log", &["-r", "-c"]),
    ("redo-cleanup", &["-n"]),
    ("redo-depfix", &[]),
];

/// Whether `help` has an option line for `opt`, with one dash or two.
fn documents(help: &str, opt: &str) -> bool {
    let bare = opt.trim_start_matches('-');
    help_options(help)
        .iter()
        .any(|n| n.trim_start_matches('-') == bare)
}

#[test]
fn every_command_answers_help_and_rejects_unknown_options() {
    let p = Project::new();
    assert_eq!(TOOLS.len(), 14);
    for (tool, opts) in TOOLS {
        assert!(bin_dir().join(tool).exists(), "{tool} is not built");
        for h in ["--help", "-h"] {
            let r = p.run(tool, &[h]);
            assert_eq!(r.code, 0, "{tool} {h}: {r:?}");
            let first = r.stdout.lines().next().unwrap_or_default();
            assert!(
                first == format!("usage: {tool}") || first.starts_with(&format!("usage: {tool} ")),
                "{tool} {h}: {}",
                r.stdout
            );
            let build = if matches!(*tool, "redo" | "redo-ifchange") {
                BUILD_OPTS
            } else {
                &[]
            };
            for o in opts.iter().chain(build).copied().chain(["-h", "--help"]) {
                assert!(
                    documents(&r.stdout, o),
                    "{tool} --help does not document {o}:\n{}",
                    r.stdout
                );
            }
        }
        for bad in ["--no-such-option", "-Q"] {
            let r = p.run(tool, &[bad, "x"]);
            assert_eq!(r.code, 2, "{tool} {bad}: {r:?}");
            assert!(r.stdout.is_empty(), "{tool} {bad}: {r:?}");
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{tool} {bad}: one line expected: {r:?}");
            assert!(lines[0].contains("--help"), "{tool} {bad}: {r:?}");
            assert!(
                lines[0].contains(bad),
                "{tool} {bad}: names the option: {r:?}"
            );
        }
    }
    let cleanup = p.run("redo-cleanup", &["--help"]).stdout;
    for kind in ["tmp", "log", "lock", "full"] {
        assert!(cleanup.contains(kind), "{cleanup}");
    }
    // The options the help documents are accepted.
    assert_eq!(p.run("redo-log", &["-r", "-c", "nothing"]).code, 1);
    p.run("redo-cleanup", &["-n", "tmp"]).ok();
    assert!(p.exists(".redo/top"));
}

// ---------------------------------------------------------------------------------------------
// 8. Shell completions

fn completions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/completions")
        .canonicalize()
        .unwrap()
}

/// Runs `script` in `bash` after sourcing `redo.bash`, in the project's root.
#[track_caller]
fn bash(p: &Project, script: &str) -> Vec<String> {
    let mut c = command_like(p, "bash");
    let full = format!(
        "source '{}'\n{script}",
        completions_dir().join("redo.bash").display()
    );
    c.args(["--norc", "--noprofile", "-c", &full]);
    let r = match c.output() {
        Ok(o) => Run::from_output(o),
        Err(e) => panic!("bash is required for this test: {e}"),
    };
    assert_eq!(r.code, 0, "bash failed:\n{script}\n{r:?}");
    let mut v: Vec<String> = stdout_lines(&r);
    v.sort();
    v.dedup();
    v
}

/// What `_redo` offers for the words `words` (the last one being completed).
fn complete(p: &Project, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    bash(
        p,
        &format!(
            "COMP_WORDS=({})\nCOMP_CWORD={}\n_redo\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            quoted.join(" "),
            words.len() - 1
        ),
    )
}

#[test]
fn bash_completion() {
    let p = built_tree();
    assert_eq!(
        bash(&p, "compgen -c redo-if"),
        ["redo-ifchange", "redo-ifcreate"]
    );
    for (tool, _) in TOOLS {
        assert_eq!(
            bash(&p, &format!("complete -p {tool}")),
            [format!("complete -F _redo {tool}")]
        );
    }
    // Known targets, phony ones too (`all` is no file).
    let offered = complete(&p, &["redo-ifchange", "al"]);
    assert!(offered.contains(&"all".to_string()), "{offered:?}");
    let offered = complete(&p, &["redo-ifchange", ""]);
    for t in TARGETS {
        assert!(
            offered.contains(&t.to_string()),
            "{t} not offered: {offered:?}"
        );
    }
    let offered = complete(&p, &["redo", "lib/sub/b."]);
    assert!(
        offered.contains(&"lib/sub/b.out".to_string()),
        "{offered:?}"
    );
    let offered = complete(&p, &["redo-log", "-"]);
    assert!(
        offered.contains(&"-r".to_string()) && offered.contains(&"-c".to_string()),
        "{offered:?}"
    );
    assert!(!offered.contains(&"-k".to_string()), "{offered:?}");
    assert_eq!(
        complete(&p, &["redo-cleanup", ""]),
        ["full", "lock", "log", "tmp"]
    );
    assert_eq!(complete(&p, &["redo-cleanup", "-n", "l"]), ["lock", "log"]);
    let offered = complete(&p, &["redo-ifchange", "-n"]);
    assert_eq!(offered, ["-no-progress", "-no-status"]);
    assert_eq!(
        complete(&p, &["redo", "--daemon-watch=o"]),
        ["off", "on", "overflow"]
    );
    // Targets a NAME.do would build, never built: offered (not default*.do), in subdirectories
    // too.
    p.write("never.do", "echo never\n");
    p.write("lib/later.do", "echo later\n");
    let offered = complete(&p, &["redo-ifchange", "ne"]);
    assert_eq!(offered, ["never", "never.do"]);
    let offered = complete(&p, &["redo", "lib/la"]);
    assert!(offered.contains(&"lib/later".to_string()), "{offered:?}");
    let offered = complete(&p, &["redo", "def"]);
    assert!(!offered.contains(&"default".to_string()), "{offered:?}");
}

/// Option names without their dashes: the completions offer goredo's forms (`-log-pid`),
/// `--help` prints `--log-pid`; both are accepted.
fn bare(names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    names
        .into_iter()
        .map(|n| {
            n.split('=')
                .next()
                .unwrap_or_default()
                .trim_start_matches('-')
                .to_string()
        })
        .collect()
}

/// Single-quoted words of a piece of shell text.
fn quoted(text: &str) -> Vec<String> {
    text.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The options `_redo` (zsh) gives `tool`: the `_arguments` specs of its `case $service`
/// branch (or of `*)`), arrays (`$common`) expanded; a spec's option is its leading `-name`
/// after an optional exclusion list `(...)`.
fn zsh_options(text: &str, tool: &str) -> BTreeSet<String> {
    let mut arrays: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if let Some(name) = l.strip_suffix("=(") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != ")").collect();
            arrays.insert(name.to_string(), quoted(&body.join("\n")));
        }
    }
    let cases = text.split("case $service in").nth(1).unwrap_or_default();
    let branches: Vec<(Vec<&str>, &str)> = cases
        .split(";;")
        .filter_map(|b| {
            let (label, body) = b.trim_start().split_once(')')?;
            Some((label.split('|').collect(), body))
        })
        .collect();
    let body = branches
        .iter()
        .find(|(labels, _)| labels.contains(&tool))
        .or_else(|| branches.iter().find(|(labels, _)| labels == &["*"]))
        .map(|(_, body)| *body)
        .unwrap_or_default();
    let mut specs = quoted(body);
    for (name, items) in &arrays {
        if body.contains(&format!("${name}")) {
            specs.extend(items.iter().cloned());
        }
    }
    let names = specs.into_iter().filter_map(|spec| {
        let spec = match spec.strip_prefix('(') {
            Some(rest) => rest.split_once(')')?.1.to_string(),
            None => spec,
        };
        let name: String = spec
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        (name.starts_with('-') && name.len() > 1).then_some(name)
    });
    bare(names)
}

/// The options `redo.fish` gives `tool`: its `complete -c` lines naming it (directly or
/// through a `for c in ...` loop, lists from `set -l` expanded), `-s`/`-o`/`-l` NAME each.
fn fish_options(text: &str, tool: &str) -> BTreeSet<String> {
    let mut vars: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut looping: Vec<&str> = Vec::new();
    let mut names = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["set", "-l", name, rest @ ..] => {
                vars.insert(name, rest.to_vec());
            }
            ["for", _, "in", rest @ ..] => {
                looping = rest
                    .iter()
                    .flat_map(|w| match w.strip_prefix('$') {
                        Some(v) => vars.get(v).cloned().unwrap_or_default(),
                        None => vec![*w],
                    })
                    .collect();
            }
            ["end"] => looping.clear(),
            ["complete", rest @ ..] => {
                let mut cmds = Vec::new();
                let mut options = Vec::new();
                for pair in rest.windows(2) {
                    match pair {
                        ["-c", "$c"] => cmds.extend(looping.iter().copied()),
                        ["-c", c] => cmds.push(*c),
                        ["-s" | "-o" | "-l", n] => options.push(n.to_string()),
                        _ => {}
                    }
                }
                if cmds.contains(&tool) {
                    names.extend(options);
                }
            }
            _ => {}
        }
    }
    bare(names)
}

/// Every completion file offers each command exactly the options its `--help` lists: an option
/// added to the table and not to a completion (or removed from it and not from one) fails here.
#[test]
fn completions_offer_exactly_the_options_of_help() {
    let p = Project::new();
    let zsh = fs::read_to_string(completions_dir().join("_redo")).unwrap();
    let fish = fs::read_to_string(completions_dir().join("redo.fish")).unwrap();
    let mut problems = Vec::new();
    for (tool, _) in TOOLS {
        let r = p.run(tool, &["--help"]).ok();
        let help = bare(help_options(&r.stdout));
        assert!(
            help.contains("help") && help.contains("version"),
            "{help:?}"
        );
        let offered = [
            ("bash", bare(complete(&p, &[tool, "-"]))),
            ("zsh", zsh_options(&zsh, tool)),
            ("fish", fish_options(&fish, tool)),
        ];
        for (shell, got) in offered {
            if got != help {
                problems.push(format!(
                    "{shell}, {tool}: missing {:?}, not in --help {:?}",
                    help.difference(&got).collect::<Vec<_>>(),
                    got.difference(&help).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn zsh_and_fish_completions_parse() {
    let dir = completions_dir();
    let mut checked = 0;
    for (shell, args, file) in [
        ("zsh", &["-n"][..], "_redo"),
        ("fish", &["--no-execute"][..], "redo.fish"),
    ] {
        match Command::new(shell).args(args).arg(dir.join(file)).output() {
            Ok(o) => {
                let r = Run::from_output(o);
                assert_eq!(r.code, 0, "{shell} rejects {file}: {r:?}");
                assert!(r.stderr.is_empty(), "{shell} on {file}: {r:?}");
                checked += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("notice: {shell} is not installed; {file} not checked");
            }
            Err(e) => panic!("cannot run {shell}: {e}"),
        }
    }
    println!("{checked} completion file(s) checked");
}
