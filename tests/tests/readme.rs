#![allow(clippy::unwrap_used, clippy::expect_used)]
//! README.md is true: its tutorial, extracted from the README itself, builds with the real
//! binaries and prints what the README shows; the page stays short; its two set-up commands are
//! where a newcomer looks for them; and every relative link of the README and of the manual
//! (`docs/`, `contrib/`) points at a file and heading that exist.
//!
//! The tutorial is marked in the README with HTML comments (invisible on the rendered page)
//! before fenced code blocks: `<!-- tutorial: setup -->` (shell commands making the project
//! directory), `<!-- tutorial: file NAME -->` (the block is that file's content) and
//! `<!-- tutorial: run -->` (a console session: `$ command` lines, each followed by the lines
//! it prints, stdout then stderr; durations such as `(0.012s)` are not compared).

use redo_tests::{Project, Run, strip_duration};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The most lines the README may have: it is the page a newcomer reads, the reference is in
/// `docs/`.
const README_MAX_LINES: usize = 250;

/// The README's first code block: the command that builds the example with redo.
const TRY_IT: &str = "cargo build --release && cd contrib/examples/hello && \
                      cargo run --release -q --bin redo -- all && cat all";

/// The README's second set-up command: install what the tests need and run them.
const TEST_COMMAND: &str = "tests/setup-and-test.sh";

/// The directory the tutorial's set-up block makes and works in.
const TUTORIAL_DIR: &str = "hello";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn readme() -> String {
    fs::read_to_string(repo_root().join("README.md")).unwrap()
}

/// A fenced code block of a Markdown text.
struct Block {
    /// What follows the opening fence (`sh`, `console`, ...).
    info: String,
    /// The lines between the fences.
    body: String,
    /// The `tutorial: ...` marker of an HTML comment on the line just before the fence.
    marker: Option<String>,
}

/// The fenced code blocks of a Markdown text, in order.
fn code_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let marker = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- tutorial:"))
            .and_then(|m| m.strip_suffix("-->"))
            .map(|m| m.trim().to_string());
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or_else(|| panic!("unclosed code block opened at line {i}"));
        let mut body = lines[start..end].join("\n");
        body.push('\n');
        blocks.push(Block {
            info: info.trim().to_string(),
            body,
            marker,
        });
        i = end + 1;
    }
    blocks
}

/// One `$ command` of a console block and the lines the README says it prints.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn console_steps(body: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in body.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("output before any `$ command`: {line:?}"));
            step.expected.push(line.to_string());
        }
    }
    steps
}

/// Whether a command is one redo command with plain words as arguments: those run through the
/// harness (which knows where the binaries are); anything else runs in `sh`.
fn is_redo_command(command: &str) -> bool {
    command.starts_with("redo") && !command.contains(|c: char| "|&;<>$`'\"(){}*?".contains(c))
}

fn run_step(p: &Project, step: &Step) -> Run {
    if is_redo_command(&step.command) {
        let mut words = step.command.split_whitespace();
        let tool = words.next().unwrap();
        let args: Vec<&str> = words.collect();
        return p.run_in(TUTORIAL_DIR, tool, &args);
    }
    assert!(
        !step.command.contains("redo"),
        "a tutorial command that runs redo must be one plain redo command: {:?}",
        step.command
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&step.command)
        .current_dir(p.path(TUTORIAL_DIR))
        .output()
        .unwrap();
    Run::from_output(out)
}

/// Lines without their durations, for comparing a run with the README.
fn comparable(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| strip_duration(l)).collect()
}

/// Fails (rather than skips) without a C compiler: the tutorial builds a C program.
fn require_cc() {
    let found = ["/usr/local/bin", "/usr/bin", "/bin"].iter().any(|d| {
        fs::metadata(Path::new(d).join("cc"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    assert!(
        found,
        "no C compiler `cc`: the README's tutorial needs one (install gcc)"
    );
}

/// The `Target`s of the `Type: ifchange` records of a `.rec` file.
fn ifchange_targets(rec: &str) -> Vec<&str> {
    rec.split("\n\n")
        .filter(|r| r.lines().any(|l| l == "Type: ifchange"))
        .filter_map(|r| r.lines().find_map(|l| l.strip_prefix("Target: ")))
        .collect()
}

fn leftover_dependency_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".d"))
        .collect()
}

#[test]
fn readme_is_short_and_keeps_its_two_set_up_commands() {
    let text = readme();
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move reference material to docs/"
    );
    let blocks = code_blocks(&text);
    let first = blocks.first().expect("README.md has no code block");
    assert_eq!(
        first.body.trim(),
        TRY_IT,
        "the README's first code block must be the try-it command"
    );
    assert!(
        repo_root().join("contrib/examples/hello/all.do").exists(),
        "the try-it command builds contrib/examples/hello, which is missing"
    );
    assert!(
        blocks.iter().any(|b| b.body.trim() == TEST_COMMAND),
        "the README must show `{TEST_COMMAND}` as a code block of its own"
    );
    let script = fs::metadata(repo_root().join(TEST_COMMAND)).unwrap();
    assert!(
        script.permissions().mode() & 0o111 != 0,
        "{TEST_COMMAND} is not executable"
    );
}

#[test]
fn tutorial_builds_as_the_readme_shows() {
    require_cc();
    let blocks = code_blocks(&readme());
    let p = Project::new();

    // The set-up block makes the project directory from nothing.
    let setup: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.marker.as_deref() == Some("setup"))
        .collect();
    assert_eq!(setup.len(), 1, "one `tutorial: setup` block expected");
    assert!(
        setup[0].body.contains(&format!("cd {TUTORIAL_DIR}")),
        "the set-up block should make and enter {TUTORIAL_DIR}/:\n{}",
        setup[0].body
    );
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&setup[0].body)
        .current_dir(&p.root)
        .output()
        .unwrap();
    Run::from_output(out).ok();
    let dir = p.path(TUTORIAL_DIR);
    assert!(
        dir.join(".redo/top").exists(),
        "the set-up made no .redo/top"
    );

    // Every file block, written as shown.
    let mut files = Vec::new();
    for b in &blocks {
        if let Some(name) = b.marker.as_deref().and_then(|m| m.strip_prefix("file ")) {
            fs::write(dir.join(name), &b.body).unwrap();
            files.push(name.to_string());
        }
    }
    for want in [
        "hello.c",
        "default.o.do",
        "version.h.do",
        "hello.do",
        "all.do",
    ] {
        assert!(files.iter().any(|f| f == want), "no tutorial file {want}");
    }

    // Every console session, command by command, printing what the README says.
    let mut commands = 0;
    let mut silent_builds = 0;
    for b in blocks.iter().filter(|b| b.marker.as_deref() == Some("run")) {
        assert_eq!(
            b.info, "console",
            "a `tutorial: run` block is a console block"
        );
        for step in console_steps(&b.body) {
            let r = run_step(&p, &step).ok();
            let got: Vec<String> = r
                .stdout
                .lines()
                .chain(r.stderr.lines())
                .map(String::from)
                .collect();
            assert_eq!(
                comparable(&got),
                comparable(&step.expected),
                "`{}` printed something else than the README shows",
                step.command
            );
            if step.command.starts_with("redo-ifchange") && got.is_empty() {
                silent_builds += 1;
            }
            commands += 1;
        }
    }
    assert!(commands >= 6, "only {commands} tutorial commands found");
    assert!(
        silent_builds >= 2,
        "the tutorial should show a no-op build printing nothing"
    );

    // What the README says without showing it: the dependency files are gone, the compiler's
    // headers are recorded, greet.o does not depend on the generated header.
    assert_eq!(leftover_dependency_files(&dir), Vec::<String>::new());
    let rec = p.rec(&format!("{TUTORIAL_DIR}/hello.o"));
    for want in ["hello.c", "greet.h", "version.h"] {
        assert!(
            ifchange_targets(&rec).contains(&want),
            "hello.o does not depend on {want}:\n{rec}"
        );
    }
    let rec = p.rec(&format!("{TUTORIAL_DIR}/greet.o"));
    assert!(
        !ifchange_targets(&rec).contains(&"version.h"),
        "greet.o should not depend on version.h:\n{rec}"
    );

    // A failed compile leaves no dependency file behind (the trap), and fails the build.
    let greet = fs::read_to_string(dir.join("greet.c")).unwrap();
    fs::write(dir.join("greet.c"), format!("{greet}oops\n")).unwrap();
    let r = p.run_in(TUTORIAL_DIR, "redo-ifchange", &["all"]).fails();
    assert!(
        r.stderr.contains("greet.o"),
        "the error names greet.o:\n{}",
        r.stderr
    );
    assert_eq!(leftover_dependency_files(&dir), Vec::<String>::new());
    fs::write(dir.join("greet.c"), &greet).unwrap();
    p.run_in(TUTORIAL_DIR, "redo-ifchange", &["all"]).ok();
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces made hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A Markdown text without its fenced code blocks and inline code spans (no links there).
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut code = false;
        for part in line.split('`') {
            if !code {
                out.push_str(part);
            }
            code = !code;
        }
        out.push('\n');
    }
    out
}

/// The anchors of a Markdown file's headings (`-1`, `-2`, ... for repeated ones, as GitHub).
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let base = anchor(line.trim_start_matches('#'));
        let mut name = base.clone();
        let mut n = 0;
        while seen.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        seen.insert(name);
    }
    seen
}

/// The pages whose links are checked: the README, the manual, the contrib pages we write.
fn pages() -> Vec<PathBuf> {
    let root = repo_root();
    let mut pages = vec![root.join("README.md")];
    for dir in [
        "docs",
        "contrib/bench",
        "contrib/editors",
        "contrib/events",
        "contrib/examples/hello",
    ] {
        for e in fs::read_dir(root.join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "md") {
                pages.push(path);
            }
        }
    }
    pages
}

#[test]
fn relative_links_point_at_existing_files_and_headings() {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for cap in link.captures_iter(&prose(&text)) {
            let target = &cap[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target, None),
            };
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let Ok(linked) = fs::metadata(&path) else {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            };
            if let Some(fragment) = fragment {
                let text = if linked.is_file() {
                    fs::read_to_string(&path).unwrap()
                } else {
                    String::new()
                };
                if !anchors(&text).contains(fragment) {
                    broken.push(format!("{}: {target}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_manual_page_links_back_to_the_readme() {
    let docs = repo_root().join("docs");
    let mut missing = Vec::new();
    for e in fs::read_dir(&docs).unwrap() {
        let path = e.unwrap().path();
        // Pages only: `docs/images/` holds their pictures.
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        if !text.contains("](../README.md") {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "pages without a link to ../README.md: {missing:?}"
    );
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor(" make → redo"), "make--redo");
    assert_eq!(
        anchor(" Rebuild on save: the `--watch` option"),
        "rebuild-on-save-the---watch-option"
    );
    assert_eq!(anchor(" Linux only"), "linux-only");
    let set = anchors("# A\n## A\n```\n# not\n```\n");
    assert_eq!(set, HashSet::from(["a".to_string(), "a-1".to_string()]));
}
