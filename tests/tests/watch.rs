#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Rebuild on save, end to end with the real binaries: `redo --watch` (latency, unrelated
//! changes, Ctrl-C, two watchers sharing the work, recovery after a failed round), the daemon's
//! file watcher as a pure accelerator (fault injection: watcher off in the middle of a session,
//! simulated queue overflow, `REDO_NO_WATCH=1`; a watched directory replaced), the request
//! synchronisation (a write immediately followed by a build is always seen), and the JSON event
//! stream validated line by line against `contrib/events/redo-events.schema.json`.
//!
//! Build the binaries first: `cargo build`. The random fault-injection test prints its seed;
//! `REDO_WATCH_SEED=<seed>` replays it.

mod common;

use common::Rng;
use redo_tests::{Project, Run, wait_until};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous limit for what must happen "eventually" (a loaded 2-core machine).
const EVENTUALLY: Duration = Duration::from_secs(30);
/// The issue's bound: a saved edit is rebuilt and reported within this.
const LATENCY: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// A `redo --watch` client in the background.

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// Reads `pipe` line by line on a thread, stamping each line with when it arrived.
fn read_lines(pipe: impl Read + Send + 'static) -> (Lines, std::thread::JoinHandle<()>) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let h = std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let now = Instant::now();
                    let s = String::from_utf8_lossy(&buf);
                    let s = s.strip_suffix('\n').unwrap_or(&s).to_string();
                    l.lock().unwrap().push((now, s));
                }
            }
        }
    });
    (lines, h)
}

/// `redo --watch ...` running in the background, its stderr and stdout read as they come.
struct Watch {
    name: String,
    child: Option<Child>,
    err: Lines,
    out: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The line that ends a round: `redo: built; watching N inputs for changes (Ctrl-C to stop)`.
fn is_round_end(line: &str) -> bool {
    line.starts_with("redo: built; watching ") || line.starts_with("redo: failed; watching ")
}

impl Watch {
    fn spawn(p: &Project, args: &[&str]) -> Watch {
        let mut c = p.command("redo");
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let (err, h1) = read_lines(child.stderr.take().unwrap());
        let (out, h2) = read_lines(child.stdout.take().unwrap());
        Watch {
            name: format!("redo {}", args.join(" ")),
            child: Some(child),
            err,
            out,
            readers: vec![h1, h2],
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    fn err_lines(&self) -> Vec<String> {
        self.err
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn out_lines(&self) -> Vec<String> {
        self.out
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn err_count(&self) -> usize {
        self.err.lock().unwrap().len()
    }

    fn out_count(&self) -> usize {
        self.out.lock().unwrap().len()
    }

    /// What it printed so far, for assertion messages.
    fn transcript(&self) -> String {
        format!(
            "{} stderr:\n{}\n{} stdout:\n{}",
            self.name,
            self.err_lines().join("\n"),
            self.name,
            self.out_lines().join("\n")
        )
    }

    fn wait_in(
        lines: &Lines,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Instant, String)> {
        let start = Instant::now();
        loop {
            {
                let l = lines.lock().unwrap();
                if let Some((i, (t, s))) =
                    l.iter().enumerate().skip(from).find(|(_, (_, s))| pred(s))
                {
                    return Some((i, *t, s.clone()));
                }
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The first stderr line at index `from` or later that satisfies `pred`: its index, when it
    /// arrived, the line.
    fn wait_err(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Instant, String)> {
        Self::wait_in(&self.err, from, limit, pred)
    }

    fn wait_out(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Instant, String)> {
        Self::wait_in(&self.out, from, limit, pred)
    }

    /// Waits for the end of a round printed at index `from` or later; returns its index.
    #[track_caller]
    fn round_end(&self, from: usize, p: &Project) -> (usize, String) {
        match self.wait_err(from, EVENTUALLY, is_round_end) {
            Some((i, _, l)) => (i, l),
            None => panic!(
                "no round ended within {EVENTUALLY:?}\n{}\ndaemon log:\n{}",
                self.transcript(),
                p.daemon_log()
            ),
        }
    }

    fn rounds(&self) -> usize {
        self.err_lines().iter().filter(|l| is_round_end(l)).count()
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the client to exit; its status, or `None` if it still runs after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().unwrap();
        let mut status = None;
        wait_until(limit, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if status.is_some() {
            for h in self.readers.drain(..) {
                let _ = h.join();
            }
        }
        status
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon's status.

fn daemon_status(p: &Project) -> String {
    p.redo(&["--daemon-status"]).ok().stdout
}

/// `file watcher: on|off, N cached stats, H hits, M misses, R resets, D directories watched,
/// V verdicts, U verdict hits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WatcherStatus {
    on: bool,
    cached: u64,
    hits: u64,
    misses: u64,
    resets: u64,
    dirs: u64,
    verdicts: u64,
    verdict_hits: u64,
}

#[track_caller]
fn watcher_status(p: &Project) -> WatcherStatus {
    let text = daemon_status(p);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("file watcher: "))
        .unwrap_or_else(|| panic!("no file watcher line in --daemon-status:\n{text}"));
    let mut parts = line.split(", ");
    let on = match parts.next() {
        Some("on") => true,
        Some("off") => false,
        other => panic!("file watcher state {other:?} in {line:?}"),
    };
    let mut nums = BTreeMap::new();
    for part in parts {
        let (n, what) = part
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad part {part:?} in {line:?}"));
        nums.insert(what.to_string(), n.parse::<u64>().unwrap());
    }
    let get = |k: &str| {
        *nums
            .get(k)
            .unwrap_or_else(|| panic!("no {k:?} in file watcher line {line:?}"))
    };
    WatcherStatus {
        on,
        cached: get("cached stats"),
        hits: get("hits"),
        misses: get("misses"),
        resets: get("resets"),
        dirs: get("directories watched"),
        verdicts: get("verdicts"),
        verdict_hits: get("verdict hits"),
    }
}

/// `connections: N` of `--daemon-status` (not counting the status request itself).
fn connections(p: &Project) -> u64 {
    daemon_status(p)
        .lines()
        .find_map(|l| l.strip_prefix("connections: "))
        .map(|n| n.trim().parse().unwrap())
        .unwrap()
}

fn watch_ctl(p: &Project, op: &str) {
    p.redo(&[&format!("--daemon-watch={op}")]).ok();
}

/// `redo-ifchange args`, optionally with `REDO_NO_WATCH=1` on the request.
fn ifchange_env(p: &Project, args: &[&str], no_watch: bool) -> Run {
    let mut c = p.command("redo-ifchange");
    c.args(args);
    if no_watch {
        c.env("REDO_NO_WATCH", "1");
    }
    Run::from_output(c.output().unwrap())
}

/// Replaces a file the way many editors save: write a temporary, rename it over.
fn save_by_rename(p: &Project, rel: &str, content: &str) {
    let tmp = p.path(&format!("{rel}.swp-tmp"));
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, p.path(rel)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// (a) redo --watch: latency, unrelated changes, Ctrl-C.

#[test]
fn watch_rebuilds_a_saved_edit_within_500ms_and_stops_on_ctrl_c() {
    let p = Project::new();
    p.write("src", "v0\n");
    p.write("unrelated.txt", "nothing\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    let mut w = Watch::spawn(&p, &["--watch", "out"]);
    let (first, line) = w.round_end(0, &p);
    assert!(line.starts_with("redo: built;"), "{}", w.transcript());
    assert_eq!(p.read("out"), "v0\n");
    assert_eq!(p.runs("out.do"), 1);

    let mut latencies = Vec::new();
    let mut from = first + 1;
    for i in 1..=6 {
        let content = format!("edit number {i}\n");
        let t0 = Instant::now();
        if i % 2 == 0 {
            save_by_rename(&p, "src", &content);
        } else {
            fs::write(p.path("src"), &content).unwrap();
        }
        let (idx, seen, _) = w
            .wait_err(from, EVENTUALLY, |l| l.starts_with("redo out ("))
            .unwrap_or_else(|| {
                panic!(
                    "edit {i}: no `redo out` line within {EVENTUALLY:?}\n{}\n{}",
                    w.transcript(),
                    p.daemon_log()
                )
            });
        let latency = seen.duration_since(t0);
        assert_eq!(
            p.read("out"),
            content,
            "edit {i}: `redo out` was reported but out does not hold the new content\n{}",
            w.transcript()
        );
        latencies.push(latency);
        let (end, line) = w.round_end(idx + 1, &p);
        assert!(line.starts_with("redo: built;"), "{}", w.transcript());
        from = end + 1;
    }
    eprintln!("write -> `redo out` line latencies: {latencies:?}");
    for (i, l) in latencies.iter().enumerate() {
        assert!(
            *l < LATENCY,
            "edit {}: rebuilt and reported {l:?} after the write (bound {LATENCY:?}); all: {latencies:?}\n{}",
            i + 1,
            w.transcript()
        );
    }
    assert_eq!(p.runs("out.do"), 7, "one run per edit\n{}", w.transcript());

    // An unrelated file (same directory, watched) changes: no round at all.
    let before = (w.err_count(), p.runs("out.do"));
    p.write("unrelated.txt", "something else\n");
    p.write("new-unrelated.txt", "created\n");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        (w.err_count(), p.runs("out.do")),
        before,
        "an unrelated change started a round\n{}",
        w.transcript()
    );
    // ... and left nothing pending: the next relevant edit makes exactly one round.
    p.write("src", "relevant again\n");
    let (end, _) = w.round_end(before.0, &p);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.runs("out.do"), before.1 + 1, "{}", w.transcript());
    assert_eq!(w.err_count(), end + 1, "{}", w.transcript());
    assert_eq!(p.read("out"), "relevant again\n");

    // Ctrl-C ends the watch: the client exits, the daemon keeps no connection, and an edit
    // afterwards builds nothing.
    assert_eq!(connections(&p), 1, "the watch is the daemon's only client");
    w.signal(nix::sys::signal::Signal::SIGINT);
    let status = w.wait_exit(EVENTUALLY);
    assert!(
        status.is_some(),
        "redo --watch still runs after SIGINT\n{}",
        w.transcript()
    );
    assert!(!status.unwrap().success());
    assert!(
        wait_until(EVENTUALLY, || connections(&p) == 0),
        "the daemon still has a connection after the watch was interrupted:\n{}",
        daemon_status(&p)
    );
    let runs = p.runs("out.do");
    p.write("src", "after the watch\n");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(p.runs("out.do"), runs, "a build ran after the watch ended");
    assert_eq!(p.read("out"), "relevant again\n");
    let st = daemon_status(&p);
    assert!(st.contains("targets in flight: 0"), "{st}");
    assert!(st.contains("running jobs: 0"), "{st}");
}

/// A round that fails on the first build (the usual case: start the watch, fix the error,
/// save) must still watch what the failed build read.
#[test]
fn watch_rebuilds_after_a_failed_first_round() {
    let p = Project::new();
    p.write("src", "bad\n");
    p.do_file(
        "out.do",
        "redo-ifchange src\nif grep -q bad src; then echo 'src:1: error: bad content' >&2; exit 1; fi\ncat src\n",
    );
    let w = Watch::spawn(&p, &["--watch", "out"]);
    let (first, line) = w.round_end(0, &p);
    assert!(line.starts_with("redo: failed;"), "{}", w.transcript());
    p.write("src", "good\n");
    let fixed = w.wait_err(first + 1, Duration::from_secs(10), |l| {
        l.starts_with("redo out (")
    });
    assert!(
        fixed.is_some(),
        "the source of a target whose first round failed was fixed, and nothing was rebuilt \
         within 10 s (the round said: {line:?})\n{}",
        w.transcript()
    );
    assert_eq!(p.read("out"), "good\n");
}

// ---------------------------------------------------------------------------------------------
// (b) Two watchers of one target share each round.

#[test]
fn two_watchers_share_one_build_per_edit() {
    let p = Project::new();
    p.write("src", "v0\n");
    // Long enough that both watchers' rounds meet in the same build.
    p.do_file("out.do", "redo-ifchange src\nsleep 1\ncat src\n");
    let a = Watch::spawn(&p, &["--watch", "out"]);
    a.round_end(0, &p);
    let b = Watch::spawn(&p, &["--watch", "out"]);
    b.round_end(0, &p);
    assert_eq!(p.read("out"), "v0\n");
    // The two first rounds are `redo out` (forced): one run each.
    assert_eq!(p.runs("out.do"), 2);
    assert_eq!(connections(&p), 2);

    for i in 1..=2 {
        let (na, nb) = (a.err_count(), b.err_count());
        let runs = p.runs("out.do");
        let content = format!("shared edit {i}\n");
        p.write("src", &content);
        let (ea, _) = a.round_end(na, &p);
        let (eb, _) = b.round_end(nb, &p);
        assert_eq!(p.read("out"), content);
        // Anything a second build would have done is long visible by now.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            p.runs("out.do"),
            runs + 1,
            "edit {i}: the .do ran more than once for two watchers\n{}\n{}",
            a.transcript(),
            b.transcript()
        );
        for (w, from, end) in [(&a, na, ea), (&b, nb, eb)] {
            let round = &w.err_lines()[from..=end];
            assert!(
                round.iter().any(|l| l.starts_with("redo out (")),
                "edit {i}: a watcher did not report the shared build\n{}",
                w.transcript()
            );
            assert!(round.last().unwrap().starts_with("redo: built;"));
            assert_eq!(w.rounds(), i + 1, "{}", w.transcript());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Fault injection: the watcher off in the middle of a session, overflow, on again,
// REDO_NO_WATCH=1 requests, interleaved with random edits. Results must stay exact.

const SOURCES: [&str; 5] = ["s0", "s1", "s2", "s3", "sub/s4"];

fn random_content(rng: &mut Rng) -> String {
    let len = 1 + rng.below(6) as usize;
    let mut s: String = (0..len)
        .map(|_| b"abcxyz"[rng.below(6) as usize] as char)
        .collect();
    s.push('\n');
    s
}

/// What every target must hold, from the sources.
fn expected(src: &BTreeMap<&str, String>) -> BTreeMap<&'static str, String> {
    let a = format!("{}{}", src["s0"], src["s1"]);
    let b = format!("{a}{}", src["sub/s4"]);
    let c = src["s2"].to_uppercase();
    let all = format!("{b}{c}{}", src["s3"]);
    BTreeMap::from([("a", a), ("sub/b", b), ("c", c), ("all", all)])
}

#[test]
fn fault_injection_never_changes_results() {
    let p = Project::new();
    p.do_file("a.do", "redo-ifchange s0 s1\ncat s0 s1\n");
    p.do_file("sub/b.do", "redo-ifchange ../a s4\ncat ../a s4\n");
    p.do_file("c.do", "redo-ifchange s2\ntr a-z A-Z < s2\n");
    // `all` runs in every build; in the middle of it (after one nested build, before the
    // next) it may switch the daemon's watcher and rewrite a source.
    p.do_file(
        "all.do",
        "redo-always\nredo-ifchange a\nop=$(cat op)\n\
         if [ \"$op\" != none ]; then redo --daemon-watch=\"$op\"; fi\n\
         if [ -s pending ]; then cat pending > s2; : > pending; fi\n\
         redo-ifchange sub/b c s3\ncat sub/b c s3\n",
    );
    let seed = Rng::seed_from_env("REDO_WATCH_SEED");
    eprintln!("fault injection seed: {seed} (replay: REDO_WATCH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let mut src: BTreeMap<&str, String> = BTreeMap::new();
    for s in SOURCES {
        let c = random_content(&mut rng);
        p.write(s, &c);
        src.insert(s, c);
    }
    p.write("op", "none\n");
    p.write("pending", "");
    let mut trace: Vec<String> = Vec::new();
    let check = |src: &BTreeMap<&str, String>, trace: &[String], what: &str| {
        for (t, want) in expected(src) {
            let got = fs::read_to_string(p.path(t)).unwrap_or_else(|e| format!("<{e}>"));
            assert_eq!(
                got,
                want,
                "seed {seed}: after {what}, {t} is stale or wrong\ntrace (last 12):\n{}\n\
                 daemon status:\n{}\ndaemon log:\n{}",
                trace[trace.len().saturating_sub(12)..].join("\n"),
                daemon_status(&p),
                p.daemon_log()
            );
        }
    };
    // The first request starts the daemon: never with REDO_NO_WATCH=1 in its environment.
    p.ifchange(&["all"]).ok();
    check(&src, &trace, "the first build");
    assert!(watcher_status(&p).on);

    let ops = ["none", "none", "none", "off", "on", "overflow"];
    for i in 0..40 {
        let mut step = format!("#{i}:");
        for _ in 0..rng.below(4) {
            let s = SOURCES[rng.below(SOURCES.len() as u64) as usize];
            // Sometimes the same content again (a touch), often the same size.
            let c = if rng.one_in(5) {
                src[s].clone()
            } else {
                random_content(&mut rng)
            };
            if rng.one_in(2) {
                save_by_rename(&p, s, &c);
            } else {
                p.write(s, &c);
            }
            step.push_str(&format!(" edit {s}={:?}", c.trim_end()));
            src.insert(s, c);
        }
        let op = ops[rng.below(ops.len() as u64) as usize];
        p.write("op", &format!("{op}\n"));
        step.push_str(&format!(" mid-session={op}"));
        let pending = rng.one_in(4).then(|| random_content(&mut rng));
        p.write("pending", pending.as_deref().unwrap_or(""));
        if let Some(c) = &pending {
            step.push_str(&format!(" pending s2={:?}", c.trim_end()));
        }
        match rng.below(6) {
            0 => {
                watch_ctl(&p, "off");
                step.push_str(" before=off");
            }
            1 => {
                watch_ctl(&p, "on");
                step.push_str(" before=on");
            }
            2 => {
                watch_ctl(&p, "overflow");
                step.push_str(" before=overflow");
            }
            _ => {}
        }
        let no_watch = rng.one_in(4);
        if no_watch {
            step.push_str(" REDO_NO_WATCH=1");
        }
        // Sometimes a part first, on its own.
        if rng.one_in(3) {
            let part = ["a", "sub/b", "c"][rng.below(3) as usize];
            step.push_str(&format!(" part={part}"));
            trace.push(step.clone());
            ifchange_env(&p, &[part], no_watch).ok();
            let want = &expected(&src)[part];
            assert_eq!(
                &p.read(part),
                want,
                "seed {seed}: {part} built alone is wrong\n{}",
                trace.join("\n")
            );
        }
        trace.push(step);
        ifchange_env(&p, &["all"], no_watch).ok();
        if let Some(c) = pending {
            src.insert("s2", c);
        }
        check(&src, &trace, &format!("build #{i}"));
        if rng.one_in(3) {
            trace.push(format!("#{i}: no-op rebuild"));
            p.write("op", "none\n");
            ifchange_env(&p, &["all"], false).ok();
            check(&src, &trace, &format!("no-op build #{i}"));
        }
    }

    // The watcher is an accelerator: with it on, a no-op build answers stats from memory.
    watch_ctl(&p, "on");
    p.write("op", "none\n");
    p.ifchange(&["sub/b", "c"]).ok();
    p.ifchange(&["sub/b", "c"]).ok();
    let s1 = watcher_status(&p);
    p.ifchange(&["sub/b", "c"]).ok();
    let s2 = watcher_status(&p);
    assert!(s2.on, "{s2:?}");
    assert!(
        s2.hits + s2.verdict_hits > s1.hits + s1.verdict_hits,
        "a no-op build with the watcher on made no cache hit: {s1:?} -> {s2:?}"
    );
    assert!(s2.cached > 0 && s2.dirs > 0, "{s2:?}");
    // A REDO_NO_WATCH=1 request stats everything itself.
    ifchange_env(&p, &["sub/b", "c"], true).ok();
    let s3 = watcher_status(&p);
    assert_eq!(
        (s3.hits, s3.misses, s3.verdict_hits),
        (s2.hits, s2.misses, s2.verdict_hits),
        "a REDO_NO_WATCH=1 build used the cache"
    );
    // Off: reported as such, no cache use, and still correct.
    watch_ctl(&p, "off");
    let off = watcher_status(&p);
    assert!(!off.on, "{off:?}");
    assert_eq!(off.cached, 0, "turning the watcher off forgets the cache");
    p.ifchange(&["sub/b", "c"]).ok();
    src.insert("s0", "changed while off\n".into());
    p.write("s0", "changed while off\n");
    p.ifchange(&["all"]).ok();
    check(&src, &trace, "an edit with the watcher off");
    let off2 = watcher_status(&p);
    assert!(!off2.on);
    assert_eq!((off2.hits, off2.misses), (off.hits, off.misses), "{off2:?}");
    // Overflow clears the cache and counts as a reset.
    watch_ctl(&p, "on");
    p.ifchange(&["sub/b", "c"]).ok();
    let before = watcher_status(&p);
    watch_ctl(&p, "overflow");
    let after = watcher_status(&p);
    assert!(after.resets > before.resets, "{before:?} -> {after:?}");
    assert_eq!(after.cached, 0, "{after:?}");
    p.write("s2", "post overflow\n");
    src.insert("s2", "post overflow\n".into());
    p.ifchange(&["all"]).ok();
    check(&src, &trace, "an edit after an overflow");
}

/// inotify watches follow inodes: a watched directory renamed away no longer reports what
/// happens at its old path. A new directory created there must not be taken as watched.
#[test]
fn a_watched_directory_renamed_away_and_recreated_is_not_trusted() {
    let p = Project::new();
    p.write("sub/deep/f", "v0\n");
    p.write("sub/g", "g0\n");
    p.do_file(
        "out.do",
        "redo-ifchange sub/deep/f sub/g\ncat sub/deep/f sub/g\n",
    );
    p.ifchange(&["out"]).ok();
    assert_eq!(p.read("out"), "v0\ng0\n");
    fs::rename(p.path("sub"), p.path("old-sub")).unwrap();
    p.write("sub/deep/f", "v1\n");
    p.write("sub/g", "g1\n");
    p.ifchange(&["out"]).ok();
    assert_eq!(p.read("out"), "v1\ng1\n");
    for (i, (f, g)) in [("v2", "g2"), ("v3", "g3"), ("v4", "g4")]
        .iter()
        .enumerate()
    {
        p.write("sub/deep/f", &format!("{f}\n"));
        p.write("sub/g", &format!("{g}\n"));
        p.ifchange(&["out"]).ok();
        assert_eq!(
            p.read("out"),
            format!("{f}\n{g}\n"),
            "edit {} in a directory recreated where a watched one was renamed away: not seen\n\
             {}",
            i + 2,
            daemon_status(&p)
        );
    }
}

/// `REDO_NO_WATCH=1` in the environment that starts the daemon: no watcher at all.
#[test]
fn redo_no_watch_in_the_daemons_environment_disables_the_watcher() {
    let p = Project::new();
    p.write("src", "one\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    ifchange_env(&p, &["out"], true).ok();
    let st = daemon_status(&p);
    assert!(st.contains("file watcher: none"), "{st}");
    for i in 0..10 {
        let c = format!("no watch {i}\n");
        p.write("src", &c);
        ifchange_env(&p, &["out"], false).ok();
        assert_eq!(p.read("out"), c);
    }
    let r = p.redo(&["--watch", "out"]).fails();
    assert!(r.stderr.contains("--watch needs the file watcher"), "{r:?}");
    let r = p.redo(&["--daemon-watch=on"]).fails();
    assert!(r.stderr.contains("no file watcher"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// (d) Synchronisation: a change made before a request is sent is seen by it. The daemon's
//     event thread is made to lag (REDO_WATCH_LAG_MS) so that only the request's own reading
//     of the event queue can see the change: without it these fail at once.

/// Starts `p`'s daemon with its event thread lagging `ms`.
fn start_lagging_daemon(p: &Project, ms: u32) {
    let mut c = p.command("redo-targets");
    c.env("REDO_WATCH_LAG_MS", ms.to_string());
    let r = Run::from_output(c.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(watcher_status(p).on);
}

#[test]
fn sync_a_write_then_an_immediate_build_always_sees_it() {
    let p = Project::new();
    start_lagging_daemon(&p, 2000);
    p.write("src", "start\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    for k in 0..100 {
        p.write(&format!("many/f{k}"), "x");
    }
    p.do_file("big.do", "redo-ifchange many/*\n");
    p.ifchange(&["out", "big"]).ok();
    p.ifchange(&["big"]).ok();
    let before = watcher_status(&p);
    assert!(before.cached >= 100, "{before:?}");
    let start = Instant::now();
    for i in 0..200 {
        // Mostly the same size: only the content (and the times) tell the versions apart.
        let c = format!("version {:03}\n", i);
        fs::write(p.path("src"), &c).unwrap();
        let r = p.ifchange(&["out"]);
        assert_eq!(r.code, 0, "iteration {i}: {r:?}");
        assert_eq!(
            p.read("out"),
            c,
            "iteration {i}: the build did not see the write made just before it"
        );
    }
    let after = watcher_status(&p);
    eprintln!("200 write+build iterations: {:?}", start.elapsed());
    assert!(after.on, "{after:?}");
    // The cache was in use all along (else this proves nothing about the synchronisation).
    assert!(after.hits > before.hits, "{before:?} -> {after:?}");
}

#[test]
fn sync_inside_a_do_a_generated_source_is_seen_by_the_next_nested_build() {
    let p = Project::new();
    start_lagging_daemon(&p, 2000);
    p.write("n", "0\n");
    p.do_file(
        "top.do",
        "redo-ifchange n\ncat n > gen.src\nredo-ifchange gen.out\ncat gen.out\n",
    );
    p.do_file("gen.out.do", "redo-ifchange gen.src\ncat gen.src\n");
    p.ifchange(&["top"]).ok();
    assert_eq!(p.read("top"), "0\n");
    for i in 1..=60 {
        let c = format!("{i}\n");
        p.write("n", &c);
        let r = p.ifchange(&["top"]);
        assert_eq!(r.code, 0, "iteration {i}: {r:?}");
        assert_eq!(
            p.read("gen.out"),
            c,
            "iteration {i}: the nested build missed the source its .do had just written"
        );
        assert_eq!(p.read("top"), c, "iteration {i}");
    }
    assert!(watcher_status(&p).on);
}

// ---------------------------------------------------------------------------------------------
// (e) The JSON event stream.

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("contrib/events/redo-events.schema.json")
}

fn validator() -> jsonschema::Validator {
    let text = fs::read_to_string(schema_path()).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Parses and validates every line of an event stream; the events.
#[track_caller]
fn validated(v: &jsonschema::Validator, stdout: &str, what: &str) -> Vec<Value> {
    assert!(
        stdout.is_empty() || stdout.ends_with('\n'),
        "{what}: the stream does not end with a newline: {stdout:?}"
    );
    stdout.lines().map(|l| validate_line(v, l, what)).collect()
}

#[track_caller]
fn validate_line(v: &jsonschema::Validator, line: &str, what: &str) -> Value {
    let ev: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {line:?}"));
    let errors: Vec<String> = v.iter_errors(&ev).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what}: event does not validate against the schema: {line}\n{}",
        errors.join("\n")
    );
    assert_eq!(ev["v"], 1, "{line}");
    ev
}

fn is(ev: &Value, ty: &str, event: &str) -> bool {
    ev["type"] == ty && (event.is_empty() || ev["event"] == event)
}

fn find<'a>(evs: &'a [Value], ty: &str, event: &str, target: &str) -> Vec<&'a Value> {
    evs.iter()
        .filter(|e| is(e, ty, event) && (target.is_empty() || e["target"] == target))
        .collect()
}

#[track_caller]
fn one<'a>(evs: &'a [Value], ty: &str, event: &str, target: &str) -> &'a Value {
    let f = find(evs, ty, event, target);
    assert_eq!(
        f.len(),
        1,
        "expected one {ty} {event} {target} event in:\n{}",
        dump(evs)
    );
    f[0]
}

fn dump(evs: &[Value]) -> String {
    evs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session's frame: started first, finished last, one build id; the summary counts agree
/// with the target events. Returns the summary.
#[track_caller]
fn check_session<'a>(evs: &'a [Value], targets: &[&str], exit_code: i64) -> &'a Value {
    let first = evs.first().expect("no events");
    let last = evs.last().unwrap();
    assert!(is(first, "session", "started"), "{}", dump(evs));
    assert!(is(last, "session", "finished"), "{}", dump(evs));
    assert_eq!(find(evs, "session", "", "").len(), 2, "{}", dump(evs));
    assert_eq!(first["build"], last["build"]);
    assert_eq!(
        first["targets"],
        Value::from(targets.to_vec()),
        "{}",
        dump(evs)
    );
    assert_eq!(last["exit_code"], exit_code, "{}", dump(evs));
    let built = find(evs, "target", "finished", "").len();
    let failed: BTreeSet<String> = find(evs, "target", "failed", "")
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(last["built"], built, "summary built count\n{}", dump(evs));
    assert_eq!(
        last["failed"],
        failed.len(),
        "summary failed count\n{}",
        dump(evs)
    );
    // Every finished or failed target that ran its .do was announced as started.
    for e in find(evs, "target", "finished", "") {
        let s = one(evs, "target", "started", e["target"].as_str().unwrap());
        assert_eq!(s["do"], e["do"]);
        assert_eq!(s["level"], e["level"]);
    }
    last
}

fn run_events(p: &Project, dir: &str, tool: &str, args: &[&str]) -> Run {
    let mut all = vec!["--events=json"];
    all.extend_from_slice(args);
    p.run_in(dir, tool, &all)
}

#[test]
fn json_events_validate_and_carry_the_build() {
    let v = validator();
    let p = Project::new();
    let mut lines = 0usize;
    // Success, nested, in a subdirectory, stderr.
    p.do_file(
        "nest.do",
        "echo 'nest says hi' >&2\nredo-ifchange sub/leaf\ncat sub/leaf\n",
    );
    p.do_file("sub/leaf.do", "echo leaf-err >&2\necho leaf\n");
    let r = run_events(&p, ".", "redo", &["nest"]).ok();
    let evs = validated(&v, &r.stdout, "redo nest");
    lines += evs.len();
    let sum = check_session(&evs, &["nest"], 0);
    assert_eq!(sum["built"], 2);
    assert_eq!(sum["failed"], 0);
    let build = evs[0]["build"].as_str().unwrap();
    assert_eq!(evs[0]["jobs"], 1);
    let nest = one(&evs, "target", "finished", "nest");
    assert_eq!(
        (&nest["do"], &nest["level"]),
        (&"nest.do".into(), &0.into())
    );
    let leaf = one(&evs, "target", "finished", "sub/leaf");
    assert_eq!(
        (&leaf["do"], &leaf["level"]),
        (&"sub/leaf.do".into(), &1.into())
    );
    assert!(nest["duration"].as_f64().unwrap() >= leaf["duration"].as_f64().unwrap());
    assert_eq!(one(&evs, "stderr", "", "nest")["line"], "nest says hi");
    assert_eq!(one(&evs, "stderr", "", "sub/leaf")["line"], "leaf-err");
    // Order: leaf inside nest.
    let pos = |pred: &dyn Fn(&Value) -> bool| evs.iter().position(pred).unwrap();
    assert!(
        pos(&|e| is(e, "target", "started") && e["target"] == "nest")
            < pos(&|e| is(e, "target", "started") && e["target"] == "sub/leaf")
    );
    assert!(
        pos(&|e| is(e, "target", "finished") && e["target"] == "sub/leaf")
            < pos(&|e| is(e, "target", "finished") && e["target"] == "nest")
    );
    // The human output is unchanged, on stderr.
    assert!(r.stderr.contains("redo nest ("), "{}", r.stderr);
    assert_eq!(p.read("nest"), "leaf\n");

    // The same from the subdirectory: paths relative to where the command ran.
    let r = run_events(&p, "sub", "redo", &["../nest", "leaf"]).ok();
    let evs = validated(&v, &r.stdout, "redo ../nest leaf in sub");
    lines += evs.len();
    check_session(&evs, &["../nest", "leaf"], 0);
    assert_ne!(evs[0]["build"], build, "a new build id per session");
    let nest = one(&evs, "target", "finished", "../nest");
    assert_eq!(nest["do"], "../nest.do");
    assert_eq!(one(&evs, "target", "finished", "leaf")["do"], "leaf.do");

    // Nothing to do: a session with no target events.
    let r = run_events(&p, ".", "redo-ifchange", &["nest"]).ok();
    let evs = validated(&v, &r.stdout, "no-op");
    lines += evs.len();
    assert_eq!(evs.len(), 2, "{}", dump(&evs));
    let sum = check_session(&evs, &["nest"], 0);
    assert_eq!((&sum["built"], &sum["failed"]), (&0.into(), &0.into()));

    // Failure with an exit code, stderr with a partial line.
    p.do_file(
        "bad.do",
        "echo line1 >&2\nprintf partial >&2\nsleep 1\necho ' rest' >&2\nexit 3\n",
    );
    let r = run_events(&p, ".", "redo", &["bad"]).fails();
    let evs = validated(&v, &r.stdout, "redo bad");
    lines += evs.len();
    let sum = check_session(&evs, &["bad"], 1);
    assert_eq!((&sum["built"], &sum["failed"]), (&0.into(), &1.into()));
    let failed = one(&evs, "target", "failed", "bad");
    assert_eq!(failed["exit_code"], 3, "{failed}");
    assert_eq!(failed["do"], "bad.do", "{failed}");
    assert_eq!(failed["error"], "exit status 3", "{failed}");
    assert_eq!(failed["level"], 0);
    assert!(failed["duration"].as_f64().unwrap() >= 1.0, "{failed}");
    let errs = find(&evs, "stderr", "", "bad");
    let texts: Vec<(&str, bool, bool)> = errs
        .iter()
        .map(|e| {
            (
                e["line"].as_str().unwrap(),
                e.get("partial").is_some(),
                e.get("continued").is_some(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("line1", false, false),
            ("partial", true, false),
            (" rest", false, true)
        ],
        "{}",
        dump(&evs)
    );
    assert!(r.stderr.contains("err  bad (bad.do) ("));

    // A target modified by hand: a warning naming it.
    p.write("src", "s\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    p.ifchange(&["out"]).ok();
    p.write("out", "edited by hand\n");
    let r = run_events(&p, ".", "redo-ifchange", &["out"]).ok();
    let evs = validated(&v, &r.stdout, "externally modified");
    lines += evs.len();
    check_session(&evs, &["out"], 0);
    let w = one(&evs, "warning", "", "out");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("externally modified"),
        "{w}"
    );

    // A cycle: the failure names it, and the .do files that asked fail with their status.
    p.do_file("cyc1.do", "redo-ifchange cyc2\n");
    p.do_file("cyc2.do", "redo-ifchange cyc1\n");
    let r = run_events(&p, ".", "redo-ifchange", &["cyc1"]).fails();
    let evs = validated(&v, &r.stdout, "cycle");
    lines += evs.len();
    check_session(&evs, &["cyc1"], 1);
    let cycle: Vec<&Value> = find(&evs, "target", "failed", "")
        .into_iter()
        .filter(|e| {
            e["error"]
                .as_str()
                .unwrap()
                .starts_with("dependency cycle: ")
        })
        .collect();
    assert_eq!(cycle.len(), 1, "{}", dump(&evs));
    assert!(cycle[0].get("exit_code").is_none(), "{}", cycle[0]);
    let c2 = find(&evs, "target", "failed", "cyc2");
    assert!(
        c2.iter()
            .any(|e| e["exit_code"] == 1 && e["do"] == "cyc2.do" && e["level"] == 1),
        "{}",
        dump(&evs)
    );

    // No .do: failed without `do`, `duration` or `exit_code`.
    let r = run_events(&p, ".", "redo-ifchange", &["nodo"]).fails();
    let evs = validated(&v, &r.stdout, "no .do");
    lines += evs.len();
    check_session(&evs, &["nodo"], 1);
    let f = one(&evs, "target", "failed", "nodo");
    assert!(
        f["error"].as_str().unwrap() == "no such file, and no .do builds it",
        "{f}"
    );
    for k in ["do", "duration", "exit_code"] {
        assert!(f.get(k).is_none(), "{f}");
    }

    // Parallel jobs: the terminal gets `[target] ` prefixes, the events the raw lines.
    p.do_file("j1.do", "echo from-j1 >&2\nsleep 0.2\necho one\n");
    p.do_file("j2.do", "echo from-j2 >&2\nsleep 0.2\necho two\n");
    let r = run_events(&p, ".", "redo-ifchange", &["-j", "2", "j1", "j2"]).ok();
    let evs = validated(&v, &r.stdout, "-j 2");
    lines += evs.len();
    let sum = check_session(&evs, &["j1", "j2"], 0);
    assert_eq!(sum["built"], 2);
    assert_eq!(evs[0]["jobs"], 2);
    assert_eq!(one(&evs, "stderr", "", "j1")["line"], "from-j1");
    assert_eq!(one(&evs, "stderr", "", "j2")["line"], "from-j2");
    assert!(r.stderr.contains("[j1] from-j1"), "{}", r.stderr);

    // Invalid UTF-8 on stderr is replaced, the line still valid JSON.
    p.write_bytes(Path::new("bin.do"), b"printf 'caf\\351\\n' >&2\necho ok\n");
    let r = run_events(&p, ".", "redo", &["bin"]).ok();
    let evs = validated(&v, &r.stdout, "non-UTF-8 stderr");
    lines += evs.len();
    assert_eq!(one(&evs, "stderr", "", "bin")["line"], "caf\u{fffd}");
    eprintln!("{lines} event lines validated");

    // The validation is not vacuous: malformed events are refused.
    for bad in [
        serde_json::json!({"v": 2, "type": "stderr", "time": 1.0, "target": "x", "line": "y"}),
        serde_json::json!({"v": 1, "type": "target", "event": "failed", "time": 1.0, "target": "x", "level": 0}),
        serde_json::json!({"v": 1, "type": "session", "event": "started", "time": 1.0, "build": "nope", "targets": [], "jobs": 1}),
        serde_json::json!({"v": 1, "type": "watch", "event": "waiting", "time": 1.0, "exit_code": 0}),
        serde_json::json!({"v": 1, "type": "stderr", "target": "x", "line": "y"}),
    ] {
        assert!(!v.is_valid(&bad), "the schema accepts {bad}");
    }
}

/// `continued: true` marks the continuation of a `partial` line, and nothing else.
#[test]
fn json_stderr_continued_only_after_a_partial_line() {
    let v = validator();
    let p = Project::new();
    p.write("x.c", "int x;\n");
    // The usual .do: a nested request first, then a tool writing whole lines to stderr.
    p.do_file(
        "obj.do",
        "redo-ifchange x.c\necho 'x.c:1:5: warning: something' >&2\necho done\n",
    );
    let r = run_events(&p, ".", "redo", &["obj"]).ok();
    let evs = validated(&v, &r.stdout, "redo obj");
    let errs = find(&evs, "stderr", "", "obj");
    assert_eq!(errs.len(), 1, "{}", dump(&evs));
    assert!(
        errs[0].get("continued").is_none() && errs[0].get("partial").is_none(),
        "a whole first line is marked as continuing a partial one: {}",
        errs[0]
    );
}

/// `redo --watch --events=json`: each round is a session, then a `watch` `waiting` event.
#[test]
fn json_events_of_watch_rounds_validate() {
    let v = validator();
    let p = Project::new();
    p.write("src", "one\n");
    p.do_file(
        "out.do",
        "redo-ifchange src\nif grep -q bad src; then echo 'bad source' >&2; exit 4; fi\ncat src\n",
    );
    let w = Watch::spawn(&p, &["--watch", "--events=json", "out"]);
    let (mut end, _) = w.round_end(0, &p);
    for c in ["two\n", "bad\n", "three\n"] {
        p.write("src", c);
        end = w.round_end(end + 1, &p).0;
    }
    // Rounds 1..3 were followed by another round (the client flushed their events then).
    let lines = w.out_lines();
    let evs: Vec<Value> = lines
        .iter()
        .map(|l| validate_line(&v, l, "redo --watch --events=json"))
        .collect();
    let mut rounds: Vec<Vec<Value>> = vec![Vec::new()];
    for e in evs {
        let waiting = is(&e, "watch", "waiting");
        rounds.last_mut().unwrap().push(e);
        if waiting {
            rounds.push(Vec::new());
        }
    }
    assert!(
        rounds.len() >= 4,
        "expected at least 3 complete rounds in:\n{}",
        w.transcript()
    );
    let want = [(0, true), (0, true), (1, false)];
    for (i, (code, built)) in want.iter().enumerate() {
        let r = &rounds[i];
        let waiting = r.last().unwrap();
        assert_eq!(waiting["exit_code"], *code, "round {}: {}", i + 1, dump(r));
        assert_eq!(waiting["inputs"], 2, "round {}: {}", i + 1, dump(r));
        let session = &r[..r.len() - 1];
        check_session(session, &["out"], *code);
        if *built {
            one(session, "target", "finished", "out");
        } else {
            let f = one(session, "target", "failed", "out");
            assert_eq!((&f["exit_code"], &f["do"]), (&4.into(), &"out.do".into()));
            assert_eq!(one(session, "stderr", "", "out")["line"], "bad source");
        }
    }
    assert_eq!(p.read("out"), "three\n");
}

/// A consumer of `redo --watch --events=json` learns that a round is over from its `watch`
/// event: it must arrive when the round ends, not when the next one starts.
#[test]
fn json_watch_waiting_event_arrives_when_the_round_ends() {
    let p = Project::new();
    p.write("src", "one\n");
    p.do_file("out.do", "redo-ifchange src\ncat src\n");
    let w = Watch::spawn(&p, &["--watch", "--events=json", "out"]);
    let mut from_err = 0;
    let mut from_out = 0;
    for round in 1..=2 {
        let (end, _) = w.round_end(from_err, &p);
        let got = w.wait_out(from_out, Duration::from_secs(5), |l| {
            l.contains(r#""type":"watch""#)
        });
        assert!(
            got.is_some(),
            "round {round} ended (stderr says so) but its `watch` `waiting` event has not \
             reached the client's stdout 5 s later\n{}",
            w.transcript()
        );
        from_out = got.unwrap().0 + 1;
        from_err = end + 1;
        p.write("src", "two\n");
    }
    assert!(w.out_count() >= from_out);
}

/// Verdicts ("checked up to date, nothing read since changed") answer a no-op build from one
/// lookup per target. Every kind of change must still reach them, transitively, and be seen by
/// a build started right after it: the event thread lags, so only the request's own reading
/// of the queue can drop a verdict in time.
#[test]
fn verdicts_answer_no_ops_and_every_change_reaches_them() {
    let p = Project::new();
    start_lagging_daemon(&p, 2000);
    // top <- mid.m (default.m.do) <- x (source); top <- deep <- deeper <- y (source).
    p.write("x", "x0\n").write("y", "y0\n");
    p.do_file("default.m.do", "redo-ifchange $2\ncat $2\n");
    p.do_file("deeper.do", "redo-ifchange y\ncat y\n");
    p.do_file("deep.do", "redo-ifchange deeper\ncat deeper\n");
    p.do_file("top.do", "redo-ifchange x.m deep\ncat x.m deep\n");
    let expect = |p: &Project, x: &str, y: &str, what: &str| {
        let r = p.ifchange(&["top"]);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        assert_eq!(p.read("top"), format!("{x}{y}"), "{what}");
    };
    expect(&p, "x0\n", "y0\n", "first build");
    // The first no-op checks and keeps verdicts; the second is answered by them.
    expect(&p, "x0\n", "y0\n", "no-op");
    let before = watcher_status(&p);
    p.clear_runs();
    expect(&p, "x0\n", "y0\n", "no-op answered by verdicts");
    let after = watcher_status(&p);
    assert!(after.verdicts >= 4, "{after:?}");
    assert!(
        after.verdict_hits > before.verdict_hits,
        "{before:?} -> {after:?}"
    );
    assert_eq!(
        p.runs("top.do") + p.runs("deep.do") + p.runs("deeper.do"),
        0
    );

    // A source three levels down: the verdicts of deeper, deep and top all go.
    p.write("y", "y1\n");
    expect(&p, "x0\n", "y1\n", "edit of a deep source");
    expect(&p, "x0\n", "y1\n", "no-op after it");
    // Saved by rename (editors), same size.
    save_by_rename(&p, "y", "y2\n");
    expect(&p, "x0\n", "y2\n", "source saved by rename");
    expect(&p, "x0\n", "y2\n", "no-op");
    // A target removed behind the daemon's back.
    fs::remove_file(p.path("deep")).unwrap();
    expect(&p, "x0\n", "y2\n", "target removed");
    assert!(p.exists("deep"));
    expect(&p, "x0\n", "y2\n", "no-op");
    // A more specific .do appears (an ifcreate record of x.m).
    p.clear_runs();
    p.do_file("x.m.do", "redo-ifchange x\nsed s/x/X/ x\n");
    expect(&p, "X0\n", "y2\n", "new own .do");
    assert_eq!(p.runs("x.m.do"), 1);
    expect(&p, "X0\n", "y2\n", "no-op");
    // The .do used is edited.
    p.do_file("x.m.do", "redo-ifchange x\nsed s/x/Z/ x\n");
    expect(&p, "Z0\n", "y2\n", "edited .do");
    expect(&p, "Z0\n", "y2\n", "no-op");
    // Turning the watcher off and on, and an overflow, forget all verdicts.
    watch_ctl(&p, "overflow");
    assert_eq!(watcher_status(&p).verdicts, 0);
    p.write("x", "x4\n");
    p.write("y", "y4\n");
    expect(&p, "Z4\n", "y4\n", "edits after an overflow");
    // A directory appearing (a new .redo, say) drops every verdict: they are not indexed by
    // directory.
    expect(&p, "Z4\n", "y4\n", "no-op");
    assert!(watcher_status(&p).verdicts > 0);
    fs::create_dir(p.path("newdir")).unwrap();
    p.write("y", "y5\n");
    expect(&p, "Z4\n", "y5\n", "an edit and a new directory");
}
