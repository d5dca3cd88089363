//! The generated work: the same sources, targets and aggregation tree for every tool.
//!
//! * `src/fK.in`, K = 1..=N: a few lines of lower-case text.
//! * `out/fK.out`: `tr a-z A-Z` of `src/fK.in`.
//! * `all`: every `out/fK.out` (a `.do` without output for redo and redo-c, `.PHONY` for
//!   make, `phony` for ninja).
//! * the three-level tree: `t1/gG.t1` cats ten `out/fK.out`, `t2/gH.t2` cats ten `t1/*.t1`,
//!   `tree` cats every `t2/*.t2`.
//!
//! Every tool gets its own copy: `.do` files (the same for redo and redo-c), a Makefile, or a
//! build.ninja. The wide case's copy (`WORK/wide-TOOL`) is the same with a `sleep` before the
//! `tr` of each output ([`generate_with`]).

use crate::{Tool, redo_c};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// Children per node of the aggregation tree.
pub const FANOUT: usize = 10;

pub fn source_name(k: usize) -> String {
    format!("src/f{k}.in")
}

pub fn output_name(k: usize) -> String {
    format!("out/f{k}.out")
}

pub fn source_text(k: usize) -> String {
    format!("source file number {k}\nthe quick brown fox jumps over the lazy dog {k}\n")
}

/// The aggregation tree over N outputs: level-1 groups (paths of their children), level-2
/// groups (indices of level-1 groups).
pub struct TreeShape {
    pub level1: Vec<Vec<String>>,
    pub level2: Vec<Vec<usize>>,
}

impl TreeShape {
    pub fn new(n: usize) -> TreeShape {
        let outputs: Vec<String> = (1..=n).map(output_name).collect();
        let level1: Vec<Vec<String>> = outputs.chunks(FANOUT).map(<[String]>::to_vec).collect();
        let idx: Vec<usize> = (0..level1.len()).collect();
        let level2 = idx.chunks(FANOUT).map(<[usize]>::to_vec).collect();
        TreeShape { level1, level2 }
    }

    pub fn l1_name(g: usize) -> String {
        format!("t1/g{g}.t1")
    }

    pub fn l2_name(g: usize) -> String {
        format!("t2/g{g}.t2")
    }

    pub fn l2_children(&self, h: usize) -> Vec<String> {
        self.level2[h].iter().map(|&g| Self::l1_name(g)).collect()
    }

    pub fn top_children(&self) -> Vec<String> {
        (0..self.level2.len()).map(Self::l2_name).collect()
    }

    /// Every aggregation target with its children, children first: the level-1 groups, the
    /// level-2 groups, then `tree`. Each tool's generator writes one rule per entry.
    pub fn nodes(&self) -> Vec<(String, Vec<String>)> {
        let l1 = (self.level1.iter().enumerate()).map(|(g, c)| (Self::l1_name(g), c.clone()));
        let l2 = (0..self.level2.len()).map(|h| (Self::l2_name(h), self.l2_children(h)));
        l1.chain(l2)
            .chain([("tree".to_string(), self.top_children())])
            .collect()
    }
}

/// The targets a build of `top` (`all` or `tree`) from nothing runs: the N outputs and the
/// aggregation targets above them (`all` itself; or the groups and `tree`).
pub fn targets_built(n: usize, top: &str) -> usize {
    match top {
        "tree" => n + TreeShape::new(n).nodes().len(),
        _ => n + 1,
    }
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<(), String> {
    let p = dir.join(rel);
    fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

fn mkdir(dir: &Path, rel: &str) -> Result<(), String> {
    let p = dir.join(rel);
    fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

/// Paths relative to a sub-directory one level down (`out/f1.out` → `../out/f1.out`).
fn up(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("../{p}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bytes `all.do`'s one `redo-ifchange` of the N outputs takes in the kernel's limit on
/// a new program's arguments and environment (`ARG_MAX`): every argument and its NUL, one
/// pointer per argument, and the environment (`env_bytes`, its strings and pointers).
pub fn flat_argument_bytes(n: usize, env_bytes: usize) -> usize {
    let args: usize = (1..=n).map(|k| output_name(k).len() + 1).sum();
    let ptr = std::mem::size_of::<usize>();
    "redo-ifchange".len() + 1 + args + ptr * (n + 2) + env_bytes
}

/// Room left for what the daemon and the shell add to a `.do`'s environment (`REDO_*`,
/// `PWD`, ...).
pub const ENV_MARGIN: usize = 64 * 1024;

/// Whether the flat `all` (one `redo-ifchange` naming all N outputs) can run at all: its
/// command line fits in `arg_max` (`getconf ARG_MAX`, a quarter of the stack limit on Linux)
/// with an environment of `env_bytes` and [`ENV_MARGIN`].
pub fn flat_fits(n: usize, arg_max: usize, env_bytes: usize) -> bool {
    flat_argument_bytes(n, env_bytes + ENV_MARGIN) <= arg_max
}

/// Creates `dir` (removing an old one) with the sources and the build description for `tool`.
/// `calls` is the length of the client loop (`loop.do`, redo and redo-c).
pub fn generate(tool: Tool, dir: &Path, n: usize, calls: usize) -> Result<(), String> {
    generate_with(tool, dir, n, calls, None)
}

/// [`generate`], with `sleep SECONDS` run before the `tr` of every output when `sleep` is
/// given (the wide case: targets that take a while without using a CPU).
pub fn generate_with(
    tool: Tool,
    dir: &Path,
    n: usize,
    calls: usize,
    sleep: Option<&str>,
) -> Result<(), String> {
    let sleep_cmd = |sep: &str| sleep.map(|s| format!("sleep {s}{sep}")).unwrap_or_default();
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    for d in ["src", "out", "t1", "t2"] {
        mkdir(dir, d)?;
    }
    for k in 1..=n {
        write(dir, &source_name(k), &source_text(k))?;
    }
    let shape = TreeShape::new(n);
    let outputs: Vec<String> = (1..=n).map(output_name).collect();
    match tool {
        // redo-c reads the same `.do` files (they write `$3`); `.redo/top` means nothing to it.
        Tool::Redo | Tool::RedoC => {
            mkdir(dir, ".redo")?;
            write(dir, ".redo/top", "")?;
            write(
                dir,
                "out/default.out.do",
                &format!(
                    "redo-ifchange ../src/$2.in\n{}tr a-z A-Z <../src/$2.in >$3\n",
                    sleep_cmd("\n")
                ),
            )?;
            write(
                dir,
                "all.do",
                &format!("redo-ifchange {}\n", outputs.join(" ")),
            )?;
            for (name, children) in shape.nodes() {
                // A `.do` runs in its own directory: the groups' are one level down.
                let c = match name.contains('/') {
                    true => up(&children),
                    false => children.join(" "),
                };
                let text = format!("redo-ifchange {c}\ncat {c} >$3\n");
                write(dir, &format!("{name}.do"), &text)?;
            }
            write(
                dir,
                "loop.do",
                &format!(
                    "i=0\nwhile [ $i -lt {calls} ]; do redo-ifchange out/f1.out; i=$((i+1)); done\n"
                ),
            )?;
            write(
                dir,
                "loop-true.do",
                &format!("i=0\nwhile [ $i -lt {calls} ]; do /bin/true; i=$((i+1)); done\n"),
            )?;
        }
        Tool::Make | Tool::MakeR => {
            let mut m = String::from("# generated by redo-bench\n.PHONY: all\n");
            let _ = writeln!(m, "all: {}", outputs.join(" "));
            let _ = writeln!(
                m,
                "out/%.out: src/%.in\n\t{}tr a-z A-Z <$< >$@",
                sleep_cmd("; ")
            );
            for (name, children) in shape.nodes() {
                let _ = writeln!(m, "{name}: {}\n\tcat $^ >$@", children.join(" "));
            }
            write(dir, "Makefile", &m)?;
        }
        Tool::Ninja => {
            let mut b = format!(
                "# generated by redo-bench\nrule up\n  command = {}tr a-z A-Z <$in >$out\n\
                 rule cat\n  command = cat $in >$out\n",
                sleep_cmd("; ")
            );
            for k in 1..=n {
                let _ = writeln!(b, "build {}: up {}", output_name(k), source_name(k));
            }
            let _ = writeln!(b, "build all: phony {}", outputs.join(" "));
            for (name, children) in shape.nodes() {
                let _ = writeln!(b, "build {name}: cat {}", children.join(" "));
            }
            b.push_str("default all\n");
            write(dir, "build.ninja", &b)?;
        }
    }
    Ok(())
}

/// Removes everything a build made (outputs and the tool's state), keeping the sources, the
/// build description and redo's `.redo/top` marker. For redo-c: also the empty `all` (and
/// `loop`, `loop-true`) it makes of a `.do` that writes nothing, and its state files
/// ([`redo_c::STATE_PREFIXES`]) in every directory of the tree.
pub fn clean(tool: Tool, dir: &Path) -> Result<(), String> {
    for (sub, ext) in [("out", ".out"), ("t1", ".t1"), ("t2", ".t2")] {
        let d = dir.join(sub);
        let entries = fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let name = e.file_name();
            if name.to_string_lossy().ends_with(ext) {
                remove_file(&e.path())?;
            }
        }
        if tool == Tool::Redo {
            remove_dir(&d.join(".redo"))?;
        }
    }
    remove_file(&dir.join("tree"))?;
    match tool {
        Tool::Redo => {
            let d = dir.join(".redo");
            let entries =
                fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            for e in entries {
                let e = e.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
                if e.file_name() != "top" {
                    remove_file(&e.path())?;
                }
            }
        }
        Tool::RedoC => {
            for top in ["all", "loop", "loop-true"] {
                remove_file(&dir.join(top))?;
            }
            for sub in [".", "src", "out", "t1", "t2"] {
                let d = dir.join(sub);
                let entries =
                    fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
                for e in entries {
                    let e = e.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
                    if redo_c::is_state_file(&e.file_name().to_string_lossy()) {
                        remove_file(&e.path())?;
                    }
                }
            }
        }
        Tool::Ninja => {
            remove_file(&dir.join(".ninja_log"))?;
            remove_file(&dir.join(".ninja_deps"))?;
        }
        Tool::Make | Tool::MakeR => {}
    }
    Ok(())
}

fn remove_file(p: &Path) -> Result<(), String> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}

fn remove_dir(p: &Path) -> Result<(), String> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = dir.join(rel);
    fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// Checks that `out/fK.out` is the upper-cased `src/fK.in` for every K in `ks`.
pub fn verify_outputs(dir: &Path, ks: impl Iterator<Item = usize>) -> Result<(), String> {
    for k in ks {
        let src = read(dir, &source_name(k))?;
        let out = read(dir, &output_name(k))?;
        if out != src.to_ascii_uppercase() {
            return Err(format!(
                "{} is wrong: {:?}, expected {:?}",
                dir.join(output_name(k)).display(),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&src.to_ascii_uppercase())
            ));
        }
    }
    Ok(())
}

/// Checks `tree` (and so every level below it): the concatenation of all outputs in order.
pub fn verify_tree(dir: &Path, n: usize) -> Result<(), String> {
    let mut expected = Vec::new();
    for k in 1..=n {
        expected.extend(read(dir, &source_name(k))?.to_ascii_uppercase());
    }
    let got = read(dir, "tree")?;
    if got != expected {
        return Err(format!(
            "{} is wrong ({} bytes, expected {})",
            dir.join("tree").display(),
            got.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_checks() {
        let t = TreeShape::new(25);
        assert_eq!(t.level1.len(), 3);
        assert_eq!(
            t.level1[2],
            [
                "out/f21.out",
                "out/f22.out",
                "out/f23.out",
                "out/f24.out",
                "out/f25.out"
            ]
        );
        assert_eq!(t.level2, [vec![0, 1, 2]]);
        assert_eq!(t.top_children(), ["t2/g0.t2"]);

        let dir = std::env::temp_dir().join(format!("redo-bench-unit-{}", std::process::id()));
        generate(Tool::Make, &dir, 3, 1).unwrap();
        assert!(verify_outputs(&dir, 1..=3).is_err());
        for k in 1..=3 {
            fs::write(dir.join(output_name(k)), source_text(k).to_uppercase()).unwrap();
        }
        verify_outputs(&dir, 1..=3).unwrap();
        fs::write(dir.join(output_name(2)), "wrong").unwrap();
        let e = verify_outputs(&dir, 1..=3).unwrap_err();
        assert!(e.contains("out/f2.out is wrong"), "{e}");
        clean(Tool::Make, &dir).unwrap();
        assert!(!dir.join(output_name(1)).exists() && dir.join("Makefile").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flat_all_fits_in_arg_max_up_to_some_n() {
        // N = 10: "redo-ifchange" and 9 names of 11 bytes and "out/f10.out" (12), with their
        // NULs, 12 pointers.
        let ptr = std::mem::size_of::<usize>();
        assert_eq!(flat_argument_bytes(10, 0), 14 + 9 * 11 + 12 + 12 * ptr);
        assert_eq!(
            flat_argument_bytes(10, 100),
            flat_argument_bytes(10, 0) + 100
        );
        // Linux's usual ARG_MAX (8 MiB stack / 4): N = 10000 and 50000 fit, 100000 does not.
        let arg_max = 2 * 1024 * 1024;
        let env = 4000;
        assert!(flat_fits(10_000, arg_max, env) && flat_fits(50_000, arg_max, env));
        assert!(!flat_fits(100_000, arg_max, env));
        assert!(!flat_fits(10, 100, 0));
    }

    #[test]
    fn wide_variant_sleeps_in_every_rule() {
        let base = std::env::temp_dir().join(format!("redo-bench-unit-w-{}", std::process::id()));
        for tool in [Tool::Redo, Tool::Ninja, Tool::Make] {
            let dir = base.join(tool.key());
            generate_with(tool, &dir, 3, 1, Some("0.1")).unwrap();
            let (file, want) = match tool {
                Tool::Ninja => (
                    "build.ninja",
                    "command = sleep 0.1; tr a-z A-Z <$in >$out\n",
                ),
                Tool::Redo => (
                    "out/default.out.do",
                    "redo-ifchange ../src/$2.in\nsleep 0.1\ntr a-z A-Z <../src/$2.in >$3\n",
                ),
                _ => ("Makefile", "\tsleep 0.1; tr a-z A-Z <$< >$@\n"),
            };
            let text = fs::read_to_string(dir.join(file)).unwrap();
            assert!(text.contains(want), "{file}: {text}");
            generate(tool, &dir, 3, 1).unwrap();
            let text = fs::read_to_string(dir.join(file)).unwrap();
            assert!(!text.contains("sleep"), "{file}: {text}");
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn targets_built_counts_the_generated_rules() {
        assert_eq!(targets_built(1000, "all"), 1001);
        // 25 outputs, 3 level-1 groups, 1 level-2 group, tree.
        assert_eq!(targets_built(25, "tree"), 30);
        assert_eq!(targets_built(10000, "tree"), 10000 + 1000 + 100 + 1);
    }

    /// Every file under `dir` (relative paths, sorted).
    fn listing(dir: &Path) -> Vec<String> {
        fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut v = Vec::new();
        walk(dir, dir, &mut v);
        v.sort();
        v
    }

    /// The redo-c clean against the real redo-c: build the tree's targets (and leave behind
    /// the state of a failed and of a killed build), clean, and find exactly the generated
    /// files again; then a build from there runs every `.do`.
    #[test]
    fn redo_c_builds_our_tree_and_clean_removes_all_its_state() {
        use std::os::unix::process::CommandExt as _;
        use std::process::{Command, Stdio};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (Some(src), Some(_)) = (redo_c::source_near(&root), redo_c::cc_version()) else {
            eprintln!("no redo-c source near the checkout, or no cc: test skipped");
            return;
        };
        let base = std::env::temp_dir().join(format!("redo-bench-unit-rc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let bin = base.join("bin");
        redo_c::build(&src, &bin).unwrap();
        let dir = base.join("tree");
        let n = 25;
        generate(Tool::RedoC, &dir, n, 3).unwrap();
        let started = base.join("started");
        write(&dir, "t1/fails.do", "exit 3\n").unwrap();
        let hangs = format!(
            "echo partial >$3\n: >{}\nexec sleep 600\n",
            started.display()
        );
        write(&dir, "t1/hangs.do", &hangs).unwrap();
        let generated = listing(&dir);

        let mut path = bin.clone().into_os_string();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let redo_c = |args: &[&str]| {
            let mut c = Command::new(bin.join(args[0]));
            c.args(&args[1..])
                .current_dir(&dir)
                .env_clear()
                .env("PATH", &path)
                .stdin(Stdio::null());
            c
        };
        let run = |args: &[&str]| {
            let out = redo_c(args).output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, err) = run(&["redo-ifchange", "-j2", "all"]);
        assert!(ok, "{err}");
        verify_outputs(&dir, 1..=n).unwrap();
        assert_eq!(
            fs::read(dir.join("all")).unwrap(),
            b"",
            "redo-c's `all` is an empty file"
        );
        let (ok, err) = run(&["redo-ifchange", "tree"]);
        assert!(ok, "{err}");
        verify_tree(&dir, n).unwrap();
        for top in ["loop", "loop-true"] {
            let (ok, err) = run(&["redo", top]);
            assert!(ok, "{err}");
        }
        // A no-op runs no .do (redo-c prints one line per .do it runs).
        let (ok, err) = run(&["redo-ifchange", "all", "tree"]);
        assert!(ok && err.is_empty(), "{err}");
        assert!(!run(&["redo-ifchange", "t1/fails"]).0);
        // Killed while its .do runs: the temporaries and the lock stay.
        let mut child = redo_c(&["redo-ifchange", "t1/hangs"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !started.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "t1/hangs.do never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let group = format!("-{}", child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap();
        assert!(killed.success());
        let _ = child.wait();

        let built = listing(&dir);
        for prefix in redo_c::STATE_PREFIXES {
            assert!(
                built
                    .iter()
                    .any(|f| f.rsplit('/').next().unwrap().starts_with(prefix)),
                "no {prefix}* file left by redo-c: {built:?}"
            );
        }
        for f in [
            "t1/.lock.fails",
            "t1/.lock.hangs",
            ".dep.all",
            "out/.dep.f1.out",
            "loop",
        ] {
            assert!(built.iter().any(|b| b == f), "no {f} in {built:?}");
        }
        clean(Tool::RedoC, &dir).unwrap();
        assert_eq!(listing(&dir), generated);

        // From nothing again: every output's .do runs.
        let (ok, err) = run(&["redo-ifchange", "all"]);
        assert!(ok, "{err}");
        let runs = err
            .lines()
            .filter(|l| l.contains("# ./default.out.do"))
            .count();
        assert_eq!(runs, n, "{err}");
        verify_outputs(&dir, 1..=n).unwrap();
        fs::remove_dir_all(&base).unwrap();
    }
}
