#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Soak: many builds in a row through one daemon, with `.do` files that randomly fail, are
//! randomly slow, and clients randomly interrupted (SIGINT, as Ctrl-C) in the middle. The
//! daemon's open descriptors (/proc/<pid>/fd), threads (/proc/<pid>/status Threads) and
//! resident memory (VmRSS) must stay flat, and no process or temporary may be left behind.
//!
//! Default: 200 builds. `REDO_FULL_TESTS=1`: 2000 builds. The schedule comes from a seeded RNG
//! (`REDO_SOAK_SEED=<n>` replays one); run with `--nocapture` to see the figures.

mod common;

use common::{
    Kid, ReapTree, Rng, describe, full, procs_in, running_daemon, signal, temps_under, usage,
};
use redo_tests::{Project, wait_until};
use std::time::{Duration, Instant};

const TARGETS: usize = 4;

#[test]
fn thousands_of_builds_through_one_daemon_stay_flat() {
    let builds = if full() { 2000 } else { 200 };
    let seed = Rng::seed_from_env("REDO_SOAK_SEED");
    println!("soak: seed {seed} (replay with REDO_SOAK_SEED={seed}), {builds} builds");
    let mut rng = Rng::new(seed);

    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.write(
        "default.do",
        "redo-always\n\
         m=$(cat \"modes/$1\")\n\
         case $m in\n\
         fail) echo \"$1 fails on purpose\" >&2; exit 3 ;;\n\
         slow) sleep 0.1 ;;\n\
         esac\n\
         echo \"$1 $(cat round)\"\n",
    );
    let names: Vec<String> = (0..TARGETS).map(|i| format!("t{i}")).collect();
    p.write(
        "all.do",
        &format!("redo-ifchange {0}\ncat {0}\n", names.join(" ")),
    );
    std::fs::create_dir_all(p.path("modes")).unwrap();

    let mut samples: Vec<(usize, common::Usage)> = Vec::new();
    let (mut ok, mut failed, mut interrupted) = (0, 0, 0);
    let mut daemon = None;
    let started = Instant::now();
    for n in 1..=builds {
        p.write("round", &n.to_string());
        let mut any_fail = false;
        for t in &names {
            let mode = if rng.one_in(12) {
                any_fail = true;
                "fail"
            } else if rng.one_in(8) {
                "slow"
            } else {
                "ok"
            };
            p.write(&format!("modes/{t}"), mode);
        }
        let ctrl_c = n > 1 && rng.one_in(8);
        let mut c = p.command("redo");
        c.args(["-j", "2", "all"]);
        let mut client = Kid::spawn(&format!("build {n}"), c);
        if ctrl_c {
            std::thread::sleep(Duration::from_millis(rng.below(200)));
            signal(client.pid(), nix::sys::signal::Signal::SIGINT);
        }
        let _ = client.exited();
        let r = client.finish(Duration::from_secs(60));
        if ctrl_c && r.code != 0 && !any_fail {
            interrupted += 1;
        } else if any_fail {
            assert_ne!(
                r.code, 0,
                "build {n}: a failing .do, yet success:\n{}",
                r.stderr
            );
            failed += 1;
        } else if r.code == 0 {
            let want: String = names.iter().map(|t| format!("{t} {n}\n")).collect();
            assert_eq!(p.read("all"), want, "build {n}");
            ok += 1;
        } else {
            panic!(
                "build {n} failed for no reason:\n{}\n{}",
                r.stderr,
                p.daemon_log()
            );
        }

        let pid = running_daemon(&p);
        assert_eq!(
            *daemon.get_or_insert(pid),
            pid,
            "build {n}: the daemon changed\n{}",
            p.daemon_log()
        );
        if n == 10 || n == builds / 2 || n == builds {
            // Let interrupted jobs be reaped and short-lived helper threads end.
            wait_until(Duration::from_secs(5), || procs_in(&p.root).is_empty());
            std::thread::sleep(Duration::from_millis(600));
            let u = usage(pid).unwrap();
            println!(
                "soak: after build {n:5}: {:3} fds, {:3} threads, {:6} KiB resident ({:?})",
                u.fds,
                u.threads,
                u.rss_kib,
                started.elapsed()
            );
            samples.push((n, u));
        }
    }
    println!("soak: {ok} succeeded, {failed} failed on purpose, {interrupted} interrupted");

    let (start, mid, end) = (samples[0].1, samples[1].1, samples[2].1);
    let strays = procs_in(&p.root);
    assert!(
        strays.is_empty(),
        "processes left behind:\n{}",
        describe(&strays)
    );
    assert!(
        wait_until(Duration::from_secs(5), || temps_under(&p.root).is_empty()),
        "temporaries left: {:?}",
        temps_under(&p.root)
    );
    assert!(
        end.fds <= start.fds + 2,
        "descriptors grow: {} after build 10, {} after build {}, {} at the end",
        start.fds,
        mid.fds,
        builds / 2,
        end.fds
    );
    assert!(
        end.threads <= start.threads + 4,
        "threads grow: {} / {} / {}",
        start.threads,
        mid.threads,
        end.threads
    );
    // Memory may settle after the first builds (allocator arenas, caches filled once), but must
    // not keep growing in the second half.
    assert!(
        end.rss_kib <= mid.rss_kib + mid.rss_kib / 5 + 2048,
        "resident memory grows: {} / {} / {} KiB",
        start.rss_kib,
        mid.rss_kib,
        end.rss_kib
    );
    assert!(
        ok > builds / 4,
        "too few successful builds to mean anything: {ok}"
    );
}
