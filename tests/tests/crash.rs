#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash safety (docs/DESIGN.md §5 "Commit": no partially written target or `.rec` is ever
//! visible, whatever is killed when): the daemon is SIGKILLed at random moments while it
//! builds a tree of 201 targets, round after round.
//!
//! Default: 10 rounds. `REDO_FULL_TESTS=1`: 50 rounds, and the durable commit path (fsync) on.
//! The kill moments come from a seeded RNG: the seed is printed; `REDO_CRASH_SEED=<n>` replays
//! a run. `cargo test -p redo-tests --test crash -- --nocapture` shows the per-round figures.
//!
//! After every kill, and before anything else runs:
//! * every target holds the complete content of some generation (each target's content is
//!   self-validating: a header with its generation, line count and name, then lines that are
//!   a function of those, then `end`): old or new, never partial;
//! * every `.rec` parses (goredo's layout, checked here and by `recsel` when installed).
//!
//! Then the next build must succeed, and when it is done:
//! * every target holds the new generation, every `.rec` parses;
//! * no `.redo.*` temporary remains anywhere in the project;
//! * no process started by the killed daemon is still running. When the daemon is SIGKILLed,
//!   its running `.do` files are orphaned (each is in its own process group) and keep writing
//!   their temporaries; they may run on for a moment, but the next build must not end with any
//!   of them alive or any of their temporaries left behind (the next daemon has to kill or
//!   outlast them and clean up after them), and they must never overwrite a target.

mod common;

use common::{Kid, ReapTree, Rng, bad_recs, describe, full, procs_in, signal, temps_under};
use redo_tests::{Project, alive, wait_until};
use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

const DIRS: usize = 10;
const LEAVES: usize = 19;
/// Kill moments are drawn from 0..this many ms after the build starts (a full build of the
/// tree takes 1-3 s on a loaded 2-core machine; later kills hit finished builds, also a case).
const KILL_WINDOW_MS: u64 = 1500;
const PAD: &str = "................................................";

/// Shell function writing a target's content; [`expected`] is its Rust twin.
const LIB: &str = r#"body() {
    printf 'gen=%s lines=%s name=%s\n' "$1" "$3" "$2"
    i=0
    while [ "$i" -lt "$3" ]; do
        echo "$1 $2 $i ................................................"
        i=$((i + 1))
    done
    echo end
}
"#;

fn leaf_lines(g: u64) -> u64 {
    100 + (g % 4) * 60
}

fn expected(g: u64, name: &str, lines: u64) -> String {
    let mut s = format!("gen={g} lines={lines} name={name}\n");
    for i in 0..lines {
        let _ = writeln!(s, "{g} {name} {i} {PAD}");
    }
    s.push_str("end\n");
    s
}

/// Every target with its line count for a generation.
/// How many body lines a target has in a generation.
type Lines = fn(u64) -> u64;

fn targets() -> Vec<(String, Lines)> {
    let mut out: Vec<(String, Lines)> = Vec::new();
    for d in 0..DIRS {
        for l in 0..LEAVES {
            out.push((format!("d{d}/l{l:02}.leaf"), leaf_lines));
        }
        out.push((format!("d{d}/m.mid"), |_| 40));
    }
    out.push(("all".into(), |_| 20));
    out
}

/// The generation a target's content is complete for, or what is wrong with it.
fn generation(p: &Project, name: &str, lines: Lines) -> Result<u64, String> {
    let text = fs::read(p.path(name)).map_err(|e| format!("{name}: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| format!("{name}: not UTF-8"))?;
    let header = text.lines().next().unwrap_or("");
    let g: u64 = header
        .strip_prefix("gen=")
        .and_then(|r| r.split(' ').next())
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| format!("{name}: bad header {header:?} ({} bytes)", text.len()))?;
    if text != expected(g, name, lines(g)) {
        return Err(format!(
            "{name}: partial or mixed content: header {header:?}, {} bytes, expected {}",
            text.len(),
            expected(g, name, lines(g)).len()
        ));
    }
    Ok(g)
}

fn setup(p: &Project) {
    p.write("lib.sh", LIB);
    p.write("gen", "0\n");
    // Odd leaves write to $3, even ones to stdout; one leaf per directory is slow, so that
    // orphans sometimes outlive the daemon for a while.
    p.write(
        "default.leaf.do",
        "redo-ifchange gen\n\
         . ./lib.sh\n\
         g=$(cat gen)\n\
         case $1 in\n\
         d0/l00.leaf) sleep 1 ;;\n\
         */l00.leaf) sleep 0.2 ;;\n\
         esac\n\
         case $1 in\n\
         *[13579].leaf) exec >\"$3\" ;;\n\
         esac\n\
         body \"$g\" \"$1\" $((100 + (g % 4) * 60))\n",
    );
    let leaves: Vec<String> = (0..LEAVES)
        .map(|l| format!("\"$d/l{l:02}.leaf\""))
        .collect();
    p.write(
        "default.mid.do",
        &format!(
            "d=${{1%/*}}\n\
             redo-ifchange {}\n\
             . ./lib.sh\n\
             body \"$(cat gen)\" \"$1\" 40\n",
            leaves.join(" ")
        ),
    );
    let mids: Vec<String> = (0..DIRS).map(|d| format!("d{d}/m.mid")).collect();
    p.write(
        "all.do",
        &format!(
            "redo-ifchange {}\n. ./lib.sh\nbody \"$(cat gen)\" all 20 >\"$3\"\n",
            mids.join(" ")
        ),
    );
    for d in 0..DIRS {
        fs::create_dir_all(p.path(&format!("d{d}"))).unwrap();
    }
}

fn build(p: &Project, sync: bool) -> Kid {
    let mut c = p.command("redo-ifchange");
    c.args(["-j", "6", "all"]);
    if sync {
        c.env_remove("REDO_NO_SYNC");
    }
    Kid::spawn("redo-ifchange -j 6 all", c)
}

#[test]
fn sigkill_during_builds_never_leaves_partial_state() {
    let rounds = if full() { 50 } else { 10 };
    let sync = full();
    let seed = Rng::seed_from_env("REDO_CRASH_SEED");
    println!(
        "crash: seed {seed} (replay with REDO_CRASH_SEED={seed}), {rounds} rounds, fsync {sync}"
    );
    let mut rng = Rng::new(seed);

    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    setup(&p);
    let all = targets();
    assert_eq!(all.len(), 201);

    let started = Instant::now();
    let r = build(&p, sync).finish(Duration::from_secs(300));
    let full_build = started.elapsed();
    assert_eq!(
        r.code,
        0,
        "first build failed:\n{}\n{}",
        r.stderr,
        p.daemon_log()
    );
    for (name, lines) in &all {
        assert_eq!(generation(&p, name, *lines), Ok(0));
    }
    println!("crash: first full build {full_build:?}");

    let mut violations: Vec<String> = Vec::new();
    let mut killed_mid_build = 0;
    let mut orphans_seen = 0;
    for round in 1..=rounds {
        let g = round as u64;
        p.write("gen", &format!("{g}\n"));
        let mut client = build(&p, sync);
        // Independent of measured timings, so that a seed replays the same schedule.
        let delay = Duration::from_millis(rng.below(KILL_WINDOW_MS));
        std::thread::sleep(delay);
        let daemon = p.daemon_pid();
        let was_running = !client.exited();
        if let Some(pid) = daemon {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
            assert!(
                wait_until(Duration::from_secs(10), || !alive(pid)),
                "daemon {pid} survived SIGKILL"
            );
        }
        if was_running {
            killed_mid_build += 1;
        }
        let _ = client.finish(Duration::from_secs(60));

        // Right after the kill: old or new, never partial; every .rec readable.
        let orphans = procs_in(&p.root);
        orphans_seen += orphans.len();
        let mut at_kill = Vec::new();
        for (name, lines) in &all {
            match generation(&p, name, *lines) {
                Ok(found) if found <= g => {}
                Ok(found) => at_kill.push(format!("{name}: generation {found} from the future")),
                Err(e) => at_kill.push(e),
            }
        }
        at_kill.extend(bad_recs(&p.root));
        let temps_at_kill = temps_under(&p.root).len();

        // The next build succeeds and cleans up.
        let t = Instant::now();
        let next = build(&p, sync).finish(Duration::from_secs(300));
        let took = t.elapsed();
        let mut after = Vec::new();
        if next.code != 0 {
            after.push(format!(
                "the build after the kill failed ({}):\n{}",
                next.code, next.stderr
            ));
        }
        // A target whose commit was cut short is the daemon's own doing, not somebody
        // else's edit: it must be rebuilt, not skipped for an "external modification".
        let modified: Vec<&str> = next
            .stderr
            .lines()
            .filter(|l| l.contains("externally modified"))
            .collect();
        if !modified.is_empty() {
            after.push(format!(
                "the next build takes the killed daemon's own interrupted commits for external \
                 modifications and does not rebuild them:\n{}",
                modified.join("\n")
            ));
        }
        for (name, lines) in &all {
            match generation(&p, name, *lines) {
                Ok(found) if found == g => {}
                Ok(found) => after.push(format!("{name}: generation {found}, expected {g}")),
                Err(e) => after.push(e),
            }
        }
        after.extend(bad_recs(&p.root));
        // A moment's grace for processes that are being killed right now.
        wait_until(Duration::from_secs(1), || {
            procs_in(&p.root).is_empty() && temps_under(&p.root).is_empty()
        });
        let strays = procs_in(&p.root);
        if !strays.is_empty() {
            after.push(format!(
                "{} process(es) of the killed daemon's jobs still running after the next build:\n{}",
                strays.len(),
                describe(&strays)
            ));
        }
        let temps = temps_under(&p.root);
        if !temps.is_empty() {
            after.push(format!(
                "{} temporaries left after the next build, e.g. {}",
                temps.len(),
                temps
                    .iter()
                    .take(3)
                    .map(|t| t.strip_prefix(&p.root).unwrap().display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        println!(
            "crash: round {round}: kill after {delay:?} ({}), {} orphan process(es), {temps_at_kill} temps at kill; next build {took:?}: {} problem(s) at kill, {} after",
            if was_running {
                "mid-build"
            } else {
                "build already done"
            },
            orphans.len(),
            at_kill.len(),
            after.len()
        );
        for v in at_kill.iter().chain(&after) {
            println!("crash:   {v}");
        }
        for v in at_kill {
            violations.push(format!("round {round}, right after the kill: {v}"));
        }
        for v in after {
            violations.push(format!("round {round}, after the next build: {v}"));
        }
        // Let stray orphans finish before the next round so rounds stay independent.
        for pid in procs_in(&p.root) {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    println!(
        "crash: {rounds} rounds, {killed_mid_build} kills mid-build, {orphans_seen} orphaned processes seen, {} violations",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations, the first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
