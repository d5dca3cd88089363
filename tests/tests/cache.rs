#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shared build cache (`REDO_CACHE`) end to end: real binaries on real `.do` trees, two
//! checkouts of one project in different directories sharing one cache, over `file://`, and
//! over http and https against a real nginx with WebDAV.

use redo_tests::nginx::Nginx;
use redo_tests::{Project, Run, TempDir};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cacheable targets of [`checkout`], and what is never served from the cache.
const CACHEABLE: [&str; 3] = ["a.do", "b.do", "c.do"];

/// A small project: `a` from `src.txt`, `b` from `a` and `other.txt` (with `CFLAGS` in its
/// output), `c` from `b`, `always` (redo-always), `nc` (opted out), `all` of them.
fn checkout() -> Project {
    let p = Project::new();
    p.write("src.txt", "source\n")
        .write("other.txt", "other\n")
        .do_file("a.do", "redo-ifchange src.txt\ntr a-z A-Z <src.txt\n")
        .do_file(
            "b.do",
            "redo-ifchange a other.txt\ncat a other.txt\necho \"flags=$CFLAGS\"\n",
        )
        .do_file(
            "c.do",
            "redo-ifchange b\nsed s/^/c:/ b >\"$3\"\nchmod +x \"$3\"\n",
        )
        .do_file("always.do", "redo-always\nredo-ifchange a\ncat a\n")
        .do_file("nc.do", "# redo: no-cache\nredo-ifchange a\ncat a\n")
        .write("all.do", "redo-ifchange c always nc\n");
    p
}

/// `redo-ifchange args` (`redo` would force the targets) with the cache variables.
fn with_cache(p: &Project, cache: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = p.command("redo-ifchange");
    for (k, v) in cache {
        c.env(k, v);
    }
    Run::from_output(c.args(args).output().unwrap())
}

/// Builds `all` in `p` with the cache, then stops its daemon (which waits for the uploads).
fn build_and_upload(p: &Project, cache: &[(&str, &str)]) -> Run {
    let r = with_cache(p, cache, &["all"]).ok();
    p.stop_daemon();
    r
}

/// The targets the completion lines say came from the cache, sorted.
fn cached_lines(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r
        .built()
        .into_iter()
        .filter(|l| l.ends_with("(cached)"))
        .filter_map(|l| {
            l.split_whitespace()
                .skip(1)
                .find(|w| *w != ".")
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

fn same_outputs(a: &Project, b: &Project, names: &[&str]) {
    for n in names {
        assert_eq!(
            fs::read(a.path(n)).unwrap(),
            fs::read(b.path(n)).unwrap(),
            "{n} differs between the checkouts"
        );
    }
}

/// The second checkout builds everything cacheable from the cache (no `.do` runs), the rest
/// locally, byte for byte the same; a no-op afterwards is a no-op; the state files it wrote
/// are good for a change of a source afterwards.
fn second_checkout_from(cache: &[(&str, &str)]) {
    let a = checkout();
    build_and_upload(&a, cache);
    let b = checkout();
    let r = with_cache(&b, cache, &["all"]).ok();
    for d in CACHEABLE {
        assert_eq!(b.runs(d), 0, "{d} ran in the second checkout: {}", r.stderr);
    }
    assert_eq!(b.runs("always.do"), 1, "{}", r.stderr);
    assert_eq!(b.runs("nc.do"), 1, "{}", r.stderr);
    assert_eq!(cached_lines(&r), ["a", "b", "c"], "{}", r.stderr);
    same_outputs(&a, &b, &["a", "b", "c", "always", "nc"]);
    assert!(
        fs::metadata(b.path("c")).unwrap().permissions().mode() & 0o100 != 0,
        "the executable bit is restored"
    );
    assert!(!r.stderr.contains("warn"), "{}", r.stderr);
    // Up to date now, from the state the cache hits committed.
    b.clear_runs();
    let r = with_cache(&b, cache, &["c"]).ok();
    assert!(r.built().is_empty(), "{}", r.stderr);
    // A changed source in the second checkout: a local rebuild, exactly of what depends on it.
    b.write("other.txt", "changed\n");
    let r = with_cache(&b, cache, &["c"]).ok();
    assert_eq!(
        (b.runs("a.do"), b.runs("b.do"), b.runs("c.do")),
        (0, 1, 1),
        "{}",
        r.stderr
    );
    assert!(b.read("c").contains("c:changed"));
}

fn file_cache() -> (TempDir, String) {
    let d = TempDir::new("cache");
    let url = format!("file://{}", d.0.display());
    (d, url)
}

#[test]
fn file_cache_serves_a_second_checkout() {
    let (_d, url) = file_cache();
    second_checkout_from(&[("REDO_CACHE", &url)]);
}

#[test]
fn a_hit_is_a_cached_event_and_counted_in_the_daemon_status() {
    let (_d, url) = file_cache();
    let cache = [("REDO_CACHE", url.as_str())];
    build_and_upload(&checkout(), &cache);
    let b = checkout();
    let r = with_cache(&b, &cache, &["--events=json", "c"]).ok();
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/events/redo-events.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(schema).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for e in &events {
        let errors: Vec<String> = validator.iter_errors(e).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{e}: {errors:?}");
    }
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "target" && e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 3, "{}", r.stdout);
    assert!(finished.iter().all(|e| e["cached"] == true), "{}", r.stdout);
    let status = b.redo(&["--daemon-status"]).ok();
    let all = format!("{}{}", status.stdout, status.stderr);
    assert!(all.contains("remote cache: 3 hits"), "{all}");
}

#[test]
fn nginx_serves_a_second_checkout() {
    let n = Nginx::start(false);
    second_checkout_from(&[("REDO_CACHE", &n.url())]);
}

#[test]
fn https_with_a_private_ca() {
    let n = Nginx::start(true);
    let ca = n.ca().display().to_string();
    second_checkout_from(&[("REDO_CACHE", &n.url()), ("REDO_CACHE_CA", &ca)]);
}

#[test]
fn a_changed_source_misses_only_for_its_dependants() {
    let (_d, url) = file_cache();
    let cache = [("REDO_CACHE", url.as_str())];
    build_and_upload(&checkout(), &cache);
    let b = checkout();
    b.write("other.txt", "different\n");
    let r = with_cache(&b, &cache, &["-d", "c"]).ok();
    assert_eq!(
        (b.runs("a.do"), b.runs("b.do"), b.runs("c.do")),
        (0, 1, 1),
        "{}",
        r.stderr
    );
    assert_eq!(cached_lines(&r), ["a"], "{}", r.stderr);
    assert!(
        r.stderr.contains("other.txt changed"),
        "-d says why: {}",
        r.stderr
    );
    // What b built locally was uploaded: a third checkout like it hits.
    b.stop_daemon();
    let c = checkout();
    c.write("other.txt", "different\n");
    with_cache(&c, &cache, &["c"]).ok();
    assert_eq!(c.runs("b.do") + c.runs("c.do"), 0);
}

#[test]
fn a_variable_named_in_redo_cache_env_is_part_of_the_key() {
    let (_d, url) = file_cache();
    let run = |p: &Project, flags: &str| {
        let env = [
            ("REDO_CACHE", url.as_str()),
            ("REDO_CACHE_ENV", "CFLAGS"),
            ("CFLAGS", flags),
        ];
        with_cache(p, &env, &["c"]).ok();
        p.stop_daemon();
    };
    let a = checkout();
    run(&a, "-O2");
    let b = checkout();
    run(&b, "-O0");
    assert_eq!(b.runs("b.do"), 1, "another CFLAGS misses");
    assert!(b.read("b").contains("flags=-O0"));
    let c = checkout();
    run(&c, "-O2");
    assert_eq!(
        c.runs("a.do") + c.runs("b.do") + c.runs("c.do"),
        0,
        "the same CFLAGS hits"
    );
}

#[test]
fn a_flipped_blob_is_rebuilt_locally_with_one_warning() {
    let n = Nginx::start(false);
    let cache = [("REDO_CACHE", n.url())];
    let cache: Vec<(&str, &str)> = cache.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = checkout();
    build_and_upload(&a, &cache);
    // Flip a byte of every blob (the outputs).
    for e in fs::read_dir(n.area("cas")).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = fs::read(&p).unwrap();
        if let Some(b) = bytes.first_mut() {
            *b ^= 1;
        }
        fs::write(&p, bytes).unwrap();
    }
    let b = checkout();
    let r = with_cache(&b, &cache, &["all"]).ok();
    assert!(cached_lines(&r).is_empty(), "{}", r.stderr);
    for d in CACHEABLE {
        assert_eq!(b.runs(d), 1, "{d}: {}", r.stderr);
    }
    same_outputs(&a, &b, &["a", "b", "c"]);
    let warnings = r.stderr.lines().filter(|l| l.contains("warn")).count();
    assert_eq!(warnings, 1, "one warning per build: {}", r.stderr);
}

#[test]
fn a_server_stopped_mid_build_leaves_a_correct_build() {
    let mut n = Nginx::start(false);
    let url = n.url();
    let cache = [("REDO_CACHE", url.as_str())];
    let a = checkout();
    build_and_upload(&a, &cache);
    let b = checkout();
    // `b.do` (changed, so a miss) kills the server before it asks for `a`: the lookups
    // after that fail, and everything is built locally.
    let pid = n.pid().unwrap();
    b.do_file(
        "b.do",
        &format!(
            "kill {pid} 2>/dev/null || true; sleep 0.2\nredo-ifchange a other.txt\ncat a other.txt\necho \"flags=$CFLAGS\"\n"
        ),
    );
    let r = with_cache(&b, &cache, &["all"]).ok();
    n.stop();
    assert_eq!(b.runs("b.do"), 1, "{}", r.stderr);
    assert_eq!(b.runs("c.do"), 1, "c is rebuilt locally: {}", r.stderr);
    same_outputs(&a, &b, &["a", "b", "c", "always", "nc"]);
    assert!(
        r.stderr.contains("warn"),
        "the build says the cache failed: {}",
        r.stderr
    );
    // And the next build, with the server gone, is fine too.
    b.write("src.txt", "new\n");
    let r = with_cache(&b, &cache, &["all"]).ok();
    assert!(b.read("c").contains("c:NEW"), "{}", r.stderr);
}

#[test]
fn parallel_build_from_the_cache() {
    let n = Nginx::start(false);
    let url = n.url();
    let cache = [("REDO_CACHE", url.as_str())];
    let a = checkout();
    for i in 0..8 {
        a.do_file(
            &format!("p{i}.do"),
            &format!("redo-ifchange a\necho {i}; cat a\n"),
        );
    }
    let targets: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let mut args: Vec<&str> = vec!["-j2"];
    args.extend(targets.iter().map(String::as_str));
    with_cache(&a, &cache, &args).ok();
    a.stop_daemon();
    let b = checkout();
    for i in 0..8 {
        b.do_file(
            &format!("p{i}.do"),
            &format!("redo-ifchange a\necho {i}; cat a\n"),
        );
    }
    let r = with_cache(&b, &cache, &args).ok();
    for i in 0..8 {
        assert_eq!(b.runs(&format!("p{i}.do")), 0, "{}", r.stderr);
        assert_eq!(a.read(&format!("p{i}")), b.read(&format!("p{i}")));
    }
    assert_eq!(b.runs("a.do"), 0);
}

#[test]
fn read_mode_and_off_do_not_upload() {
    let (d, url) = file_cache();
    let a = checkout();
    build_and_upload(&a, &[("REDO_CACHE", &url), ("REDO_CACHE_MODE", "read")]);
    let b = checkout();
    build_and_upload(&b, &[("REDO_CACHE", "off")]);
    let entries = fs::read_dir(&d.0).map(|r| r.count()).unwrap_or(0);
    assert_eq!(entries, 0, "nothing written to {}", d.0.display());
}

#[test]
fn a_bad_cache_url_is_one_warning_and_a_local_build() {
    let p = checkout();
    let r = with_cache(&p, &[("REDO_CACHE", "gopher://x")], &["all"]).ok();
    let w: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("REDO_CACHE"))
        .collect();
    assert_eq!(w.len(), 1, "{}", r.stderr);
    assert_eq!(p.runs("c.do"), 1);
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/examples/hello")
}

fn copy_example(to: &Path) {
    for e in fs::read_dir(example_dir()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let built = name == ".redo"
            || name.ends_with(".o")
            || name.ends_with(".d")
            || ["hello", "all", "version.h"].contains(&name.as_str());
        if !built && e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn the_c_example_from_the_cache_runs() {
    let (_d, url) = file_cache();
    let cache = [("REDO_CACHE", url.as_str())];
    let a = Project::new();
    copy_example(&a.root);
    let ra = with_cache(&a, &cache, &["all"]).ok();
    a.stop_daemon();
    let b = Project::new();
    copy_example(&b.root);
    let r = with_cache(&b, &cache, &["-d", "all"]).ok();
    let cached = cached_lines(&r);
    for t in ["hello", "main.o", "greet.o", "about.o", "version.h", "all"] {
        assert!(
            cached.iter().any(|c| c == t),
            "{t} not from the cache: {}\nfirst build: {}",
            r.stderr,
            ra.stderr
        );
    }
    let out = Command::new(b.path("hello")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, fs::read(a.path("all")).unwrap());
}

#[test]
fn a_cycle_met_while_matching_a_trace_is_reported_not_waited_on() {
    let (_d, url) = file_cache();
    let cache = [("REDO_CACHE", url.as_str())];
    let a = Project::new();
    a.write("src", "s\n")
        .do_file("x.do", "redo-ifchange y\ncat y\n")
        .do_file("y.do", "redo-ifchange src\ncat src\n");
    build_and_upload_target(&a, &cache, "x");
    // The second checkout's y asks for x: x's trace names y, so matching it builds y, which
    // waits for x, which is matching its trace: a cycle.
    let b = Project::new();
    b.write("src", "s\n")
        .do_file("x.do", "redo-ifchange y\ncat y\n")
        .do_file("y.do", "redo-ifchange x\ncat src\n");
    let mut c = b.command("redo-ifchange");
    for (k, v) in cache {
        c.env(k, v);
    }
    let mut child = c
        .arg("x")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let done = redo_tests::wait_until(std::time::Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(done, "the build hung: {stderr}");
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cycle"), "{stderr}");
}

fn build_and_upload_target(p: &Project, cache: &[(&str, &str)], target: &str) {
    with_cache(p, cache, &[target]).ok();
    p.stop_daemon();
}

/// At `-j1` the next target's entry is read while the target before it builds: `q`'s entry,
/// removed from the cache while `p.do` runs, was already read, so `q` still comes from the
/// cache (its output verified, its trace matched against this checkout as a lookup's is).
/// Asked only when `q` was about to be needed, this answer is never more than one build step
/// old.
#[test]
fn the_next_targets_entry_is_read_while_the_one_before_it_builds() {
    let (d, url) = file_cache();
    let cache = [("REDO_CACHE", url.as_str())];
    let tree = |p: &Project| {
        let entries = d.0.join("ac");
        p.write("src", "s\n")
            .do_file(
                "p.do",
                &format!(
                    "redo-ifchange src\nsleep 1\nrm -f '{}'/*\ncat src\n",
                    entries.display()
                ),
            )
            .do_file("q.do", "redo-ifchange src\ntr s S <src\n");
    };
    let a = Project::new();
    tree(&a);
    build_and_upload_target(&a, &cache, "q");
    let b = Project::new();
    tree(&b);
    let r = with_cache(&b, &cache, &["-j1", "p", "q"]).ok();
    assert_eq!((b.runs("p.do"), b.runs("q.do")), (1, 0), "{}", r.stderr);
    assert_eq!(cached_lines(&r), ["q"], "{}", r.stderr);
    assert_eq!(b.read("q"), "S\n");
}
