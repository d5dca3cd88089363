#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fault injection against the real daemon and clients: cancellation by signal, a `.do`
//! killed under the daemon, start-up races and leftovers of dead daemons, daemons of another
//! version, the idle timer and the runtime directory's life, access control and symlinks,
//! hostile bytes on the socket, read-only and full file systems (docs/DESIGN.md §4, §5, §7).
//!
//! Companion files: `crash.rs` (SIGKILL of the daemon during builds, seeded rounds) and
//! `soak.rs` (thousands of builds through one daemon). Those two have a reduced default form
//! and a full one: set `REDO_FULL_TESTS=1` for the full forms (crash: 50 rounds instead of 10;
//! soak: 2000 builds instead of 200). Everything here always runs in full.
//!
//! Some parts need root (another uid, chattr, mounts, tmpfs); without root they print that
//! they are skipped and the rest still runs. Build the binaries first: `cargo build`.

mod common;

use common::{
    EVENTUALLY, Kid, ReapTree, Rng, daemons_of, describe, expected_daemon_dir, group_members,
    is_root, procs_in, read_pid, read_until_closed, run_cmd, running_daemon, set_mode, signal,
    spawn, temps_under, usage,
};
use nix::sys::signal::Signal;
use redo_proto::codec::{encode_frame, read_frame};
use redo_proto::msg::ByteBuf;
use redo_proto::{
    Answer, Build, BuildMode, BuildOptions, ClientHello, Command as Cmd, DaemonHello, Event,
    HELLO_LEN, Identity, MAX_FRAME, Request, Terminal,
};
use redo_tests::{Project, Run, alive, bin, bin_dir, wait_until};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[track_caller]
fn wait_started(p: &Project, file: &str) {
    assert!(
        wait_until(EVENTUALLY, || p.exists(file)),
        "{file} never appeared\n{}",
        p.daemon_log()
    );
}

/// Asserts that the process groups are gone (every member, not just the leader).
#[track_caller]
fn assert_groups_gone(p: &Project, groups: &[(&str, i32)], what: &str) {
    let gone = wait_until(Duration::from_secs(10), || {
        groups.iter().all(|(_, g)| group_members(*g).is_empty())
    });
    let left: Vec<String> = groups
        .iter()
        .map(|(n, g)| (n, g, group_members(*g)))
        .filter(|(_, _, m)| !m.is_empty())
        .map(|(n, g, m)| format!("{n} (group {g}):\n{}", describe(&m)))
        .collect();
    assert!(
        gone,
        "{what}: process groups still alive 10 s later:\n{}\ndaemon log:\n{}",
        left.join("\n"),
        p.daemon_log()
    );
}

#[track_caller]
fn assert_no_temps(p: &Project, what: &str) {
    let clean = wait_until(Duration::from_secs(5), || temps_under(&p.root).is_empty());
    assert!(
        clean,
        "{what}: temporaries left: {:?}",
        temps_under(&p.root)
    );
}

#[track_caller]
fn assert_no_strays(p: &Project, what: &str) {
    let clean = wait_until(Duration::from_secs(10), || procs_in(&p.root).is_empty());
    assert!(
        clean,
        "{what}: processes still running in the project:\n{}",
        describe(&procs_in(&p.root))
    );
}

/// Runs `redo-ifchange -j 1 args` with a deadline: a leaked lock or token would hang it.
#[track_caller]
fn ifchange_j1(p: &Project, args: &[&str]) -> Run {
    let mut all = vec!["-j", "1"];
    all.extend_from_slice(args);
    spawn(p, "redo-ifchange", &all)
        .wait_within(Duration::from_secs(30))
        .unwrap_or_else(|| {
            panic!(
                "redo-ifchange -j 1 {args:?} hangs (a lock or token was not released)\n{}",
                p.daemon_log()
            )
        })
}

fn daemon_status(p: &Project) -> String {
    p.redo(&["--daemon-status"]).stdout
}

/// How many connected sockets bound to the listening socket `sock` are open (the daemon's
/// side of its client connections), from `/proc/net/unix`; `None` if that cannot be read.
fn client_connections(sock: &Path) -> Option<usize> {
    let table = fs::read_to_string("/proc/net/unix").ok()?;
    let sock = sock.to_str()?;
    // Num RefCount Protocol Flags Type St Inode Path; St 03 = connected.
    Some(
        table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 8 && f[5] == "03" && f[7] == sock)
            .count(),
    )
}

// ------------------------------------------------------------------------------------------
// 1. Cancellation.

/// Ctrl-C on a terminal: the client erases the status line, says `interrupted` once and dies
/// of SIGINT itself (130 to a shell), and the `.do` it started is killed.
#[test]
fn ctrl_c_on_a_terminal_says_interrupted_and_clears_the_status_line() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file(
        "slow.do",
        "echo $$ > slow.pid\n: > started\nsleep 60\necho done\n",
    );
    let redo = bin_dir().join("redo");
    let mut c = p.command_at(Path::new("script"));
    c.args(["-qfec", &format!("{} slow", redo.display()), "/dev/null"]);
    let script = common::Kid::spawn("script", c);
    wait_started(&p, "started");
    let shell = read_pid(&p, "slow.pid");
    // Long enough for the status line to be drawn (every 100 ms).
    std::thread::sleep(Duration::from_millis(400));
    let client = redo_tests::pids_with_cmdline(&format!("{} slow", redo.display()))
        .into_iter()
        .find(|pid| {
            fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e.file_name().is_some_and(|n| n == "redo"))
        })
        .expect("the client under the pty");
    signal(client, Signal::SIGINT);
    let r = script
        .wait_within(Duration::from_secs(10))
        .expect("the interrupted client did not exit");
    assert_eq!(r.code, 130, "dies of SIGINT: {r:?}");
    let status = r
        .stdout
        .rfind("running: slow.do")
        .expect("a status line was drawn");
    let said = r
        .stdout
        .rfind("\r\x1b[Kredo: interrupted\r\n")
        .unwrap_or_else(|| panic!("no interrupted line after erasing: {:?}", r.stdout));
    assert!(status < said, "{:?}", r.stdout);
    assert_eq!(r.stdout.matches("interrupted").count(), 1, "{:?}", r.stdout);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(shell)),
        "the .do outlived the interrupted build"
    );
    assert!(!p.exists("slow"));
}

/// SIGTERM or SIGINT to a top-level client whose build runs two nested `.do` files: both
/// process groups (their background children included) die, nothing is committed, no
/// temporaries stay, and the next `-j 1` build of the same targets works (locks and tokens
/// were released).
#[test]
fn signalled_client_kills_every_job_of_its_build() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let p = Project::new();
        let _reap = ReapTree(vec![p.root.clone()]);
        p.do_file("a.do", "echo $$ > a.pid\nredo-ifchange b\necho a\n");
        p.do_file(
            "b.do",
            "echo $$ > b.pid\nsleep 60 &\necho $! > bsleep.pid\n: > b.started\nwait\necho b\n",
        );
        let mut client = spawn(&p, "redo", &["-j", "1", "a"]);
        wait_started(&p, "b.started");
        let (a, b, sleeper) = (
            read_pid(&p, "a.pid"),
            read_pid(&p, "b.pid"),
            read_pid(&p, "bsleep.pid"),
        );
        assert!(group_members(a).contains(&a), "a.do is not a group leader");
        assert!(
            group_members(b).contains(&b) && group_members(b).contains(&sleeper),
            "b.do's background child is not in b.do's group"
        );
        assert!(!client.exited());

        signal(client.pid(), sig);
        let r = client
            .wait_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{sig}: the client did not exit"));
        assert_ne!(r.code, 0, "{sig}: an interrupted build is no success");

        assert_groups_gone(&p, &[("a.do", a), ("b.do", b)], &format!("{sig}"));
        assert_no_strays(&p, &format!("{sig}"));
        assert_no_temps(&p, &format!("{sig}"));
        for f in ["a", "b", ".redo/a.rec", ".redo/b.rec"] {
            assert!(
                !p.exists(f),
                "{sig}: {f} was committed by an interrupted build"
            );
        }

        let pid = running_daemon(&p);
        p.do_file("b.do", "echo b\n");
        let r = ifchange_j1(&p, &["a"]).ok();
        assert_eq!(r.built_names(), ["redo . b", "redo a"], "{sig}");
        assert_eq!((p.read("a"), p.read("b")), ("a\n".into(), "b\n".into()));
        assert_eq!(running_daemon(&p), pid, "{sig}: the daemon was replaced");
    }
}

/// A `.do` killed by SIGKILL in the middle of its run: the job fails ("signal: killed"), and
/// its whole process group goes with it: a background process it started must not live on.
#[test]
fn killed_do_takes_its_process_group_with_it() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file(
        "t.do",
        "echo $$ > t.pid\nsleep 60 &\necho $! > sleep.pid\n: > started\nwait\necho t\n",
    );
    let client = spawn(&p, "redo-ifchange", &["t"]);
    wait_started(&p, "started");
    let (t, sleeper) = (read_pid(&p, "t.pid"), read_pid(&p, "sleep.pid"));
    assert!(group_members(t).contains(&sleeper));

    signal(t, Signal::SIGKILL);
    let r = client.finish(Duration::from_secs(30));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("signal: killed"),
        "the failure does not say the .do was killed:\n{}",
        r.stderr
    );
    assert_groups_gone(&p, &[("t.do", t)], "after its leader was SIGKILLed");
    assert_no_temps(&p, "killed .do");
    assert!(!p.exists("t") && !p.exists(".redo/t.rec"));

    p.do_file("t.do", "echo t\n");
    ifchange_j1(&p, &["t"]).ok();
    assert_eq!(p.read("t"), "t\n");
}

/// A target wanted by a client and by another target's `.do` (whose own client waits for it)
/// keeps building when the first client leaves, and is killed when the last one does.
#[test]
fn shared_build_lives_until_its_last_waiter_leaves() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file(
        "shared.do",
        "echo $$ > shared.pid\n: > shared.started\nsleep 60\necho shared\n",
    );
    p.do_file(
        "x.do",
        "echo $$ > x.pid\n: > x.waiting\nredo-ifchange shared\necho x\n",
    );
    let mut direct = spawn(&p, "redo-ifchange", &["shared"]);
    wait_started(&p, "shared.started");
    let mut via_x = spawn(&p, "redo", &["x"]);
    wait_started(&p, "x.waiting");
    let (shared, x) = (read_pid(&p, "shared.pid"), read_pid(&p, "x.pid"));
    // x.do's nested client has joined the shared flight once 3 connections are open.
    let joined = wait_until(EVENTUALLY, || {
        daemon_status(&p)
            .lines()
            .any(|l| l.trim() == "connections: 3")
    });
    assert!(
        joined,
        "x.do never waited for shared:\n{}",
        daemon_status(&p)
    );

    signal(direct.pid(), Signal::SIGINT);
    assert!(
        wait_until(Duration::from_secs(10), || direct.exited()),
        "the first client did not exit"
    );
    // The daemon has seen it go (its connection closed, its waiter dropped) ...
    assert!(
        wait_until(EVENTUALLY, || daemon_status(&p)
            .lines()
            .any(|l| l.trim() == "connections: 2")),
        "the daemon did not notice the first client leaving:\n{}",
        daemon_status(&p)
    );
    // ... and in the next 1.5 s, shared.do is not killed.
    assert!(
        !wait_until(Duration::from_millis(1500), || !group_members(shared)
            .contains(&shared)),
        "shared.do was killed although x.do still waits for it\n{}",
        p.daemon_log()
    );
    assert!(!via_x.exited());

    signal(via_x.pid(), Signal::SIGINT);
    assert!(
        wait_until(Duration::from_secs(10), || via_x.exited()),
        "the second client did not exit"
    );
    assert_groups_gone(
        &p,
        &[("shared.do", shared), ("x.do", x)],
        "after the last waiter left",
    );
    assert_no_strays(&p, "last waiter left");
    assert_no_temps(&p, "last waiter left");
    assert_eq!(p.runs("shared.do"), 1, "the shared build was restarted");
    assert!(!p.exists("shared") && !p.exists("x"));

    p.do_file("shared.do", "echo shared\n");
    ifchange_j1(&p, &["x"]).ok();
    assert_eq!(p.read("x"), "x\n");
}

/// The daemon is SIGKILLed while a `.do` runs: the `.do` (in its own process group) is
/// orphaned and would go on to write its `$3`. The next build must end with the target built
/// anew, no orphan still running and no temporary left, not even one the orphan writes later;
/// and the orphan must never overwrite the target. (`crash.rs` does this at scale.)
#[test]
fn orphans_of_a_killed_daemon_do_not_outlive_the_next_build() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file(
        "slow.do",
        "echo $$ > slow.pid\n: > started\nsleep 3\necho late >\"$3\"\n",
    );
    let client = spawn(&p, "redo-ifchange", &["slow"]);
    wait_started(&p, "started");
    let orphan = read_pid(&p, "slow.pid");
    let daemon = running_daemon(&p);
    signal(daemon, Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || !alive(daemon)));
    let _ = client.finish(EVENTUALLY);

    p.do_file("slow.do", "echo quick\n");
    let r = p.ifchange(&["slow"]);
    let mut problems = Vec::new();
    if r.code != 0 {
        problems.push(format!("the next build failed:\n{}", r.stderr));
    }
    let orphans = group_members(orphan);
    if !orphans.is_empty() {
        problems.push(format!(
            "the killed daemon's .do still runs after the next build:\n{}",
            describe(&orphans)
        ));
    }
    let temps_now = temps_under(&p.root);
    // Whatever the orphan would have done is done once its process group is gone (3 s later
    // at most: it is killed, or its sleep ends).
    if !wait_until(Duration::from_secs(5), || group_members(orphan).is_empty()) {
        problems.push(format!(
            "the killed daemon's .do still runs 5 s later:\n{}",
            describe(&group_members(orphan))
        ));
    }
    let temps_later = temps_under(&p.root);
    if !temps_now.is_empty() || !temps_later.is_empty() {
        problems.push(format!(
            "temporaries after the next build: {temps_now:?}; a moment later: {temps_later:?}"
        ));
    }
    if p.read("slow") != "quick\n" {
        problems.push(format!("slow holds {:?}", p.read("slow")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------
// 2. One daemon.

#[test]
fn fifty_cold_clients_start_one_daemon() {
    let p = Project::new();
    p.do_file("all.do", "sleep 0.3\necho all\n");
    p.do_file("default.do", "echo \"$2\"\n");
    assert!(p.daemon_dir().is_none(), "not a cold project");

    let started = Instant::now();
    let kids: Vec<Kid> = (0..50)
        .map(|i| {
            let mut c = p.command(if i % 3 == 0 { "redo" } else { "redo-ifchange" });
            let target = if i % 2 == 0 {
                "all".to_string()
            } else {
                format!("t{i}")
            };
            c.arg(&target);
            Kid::spawn(&format!("client {i} ({target})"), c)
        })
        .collect();
    let mut failed = Vec::new();
    for (i, k) in kids.into_iter().enumerate() {
        let r = k.finish(Duration::from_secs(120));
        if r.code != 0 {
            failed.push(format!("client {i}: exit {}:\n{}", r.code, r.stderr));
        }
    }
    println!("fifty cold clients finished in {:?}", started.elapsed());
    assert!(
        failed.is_empty(),
        "{} of 50 clients failed:\n{}\ndaemon log:\n{}",
        failed.len(),
        failed.join("\n"),
        p.daemon_log()
    );
    for i in (1..50).step_by(2) {
        assert_eq!(p.read(&format!("t{i}")), format!("t{i}\n"));
    }
    assert_eq!(p.read("all"), "all\n");
    let one = wait_until(Duration::from_secs(10), || daemons_of(&p).len() == 1);
    assert!(one, "daemons for one project: {:?}", daemons_of(&p));
    assert_eq!(Some(daemons_of(&p)[0]), p.daemon_pid());
}

/// Leftovers a client may find: a socket nobody listens on, a pid file naming a live process
/// that is no daemon, a regular file where the socket should be, an unlocked start lock.
#[test]
fn fabricated_leftovers_are_recovered() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let dir = expected_daemon_dir(&p);
    fs::create_dir_all(&dir).unwrap();
    set_mode(dir.parent().unwrap(), 0o700);
    set_mode(&dir, 0o700);

    // A dead socket and a pid file naming this very test process.
    drop(UnixListener::bind(dir.join("sock")).unwrap());
    fs::write(dir.join("pid"), format!("{}\n", std::process::id())).unwrap();
    fs::write(dir.join("start.lock"), "").unwrap();
    let r = p.ifchange(&["t"]);
    assert_eq!(
        r.code,
        0,
        "dead socket + foreign pid: {}\n{}",
        r.stderr,
        p.daemon_log()
    );
    let first = running_daemon(&p);
    assert_eq!(daemons_of(&p), [first]);

    // Killed daemon, and a regular file in place of its socket.
    signal(first, Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || !alive(first)));
    fs::remove_file(dir.join("sock")).unwrap();
    fs::write(dir.join("sock"), "not a socket").unwrap();
    fs::write(dir.join("pid"), "garbage\n").unwrap();
    let r = p.redo(&["t"]);
    assert_eq!(
        r.code,
        0,
        "regular file as socket: {}\n{}",
        r.stderr,
        p.daemon_log()
    );
    let second = running_daemon(&p);
    assert_ne!(first, second);
    assert_eq!(daemons_of(&p), [second]);
    assert_eq!(p.runs("t.do"), 2);
}

/// A copy of `redod`: same code, another identity (dev/inode/size/mtime).
fn other_redod(p: &Project) -> PathBuf {
    let copy = p.root.parent().unwrap().join("redod-other");
    fs::copy(bin("redod"), &copy).unwrap();
    set_mode(&copy, 0o755);
    copy
}

fn exe_of(pid: i32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

#[test]
fn daemon_of_another_version_is_replaced_by_a_top_level_client() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    let copy = other_redod(&p);
    p.do_file(
        "slow.do",
        ": > started\nsleep 1.5\nredo-ifchange dep\necho slow\n",
    );
    p.do_file("dep.do", "echo dep\n");
    p.do_file("other.do", "echo other\n");

    let mut c = p.command("redo-ifchange");
    c.arg("slow").env("REDO_DAEMON", &copy);
    let old_client = Kid::spawn("redo-ifchange slow (old daemon)", c);
    wait_started(&p, "started");
    let old = running_daemon(&p);
    assert_eq!(exe_of(old), copy, "the first daemon is not the copy");

    let new_client = spawn(&p, "redo-ifchange", &["other"]);
    let r = old_client.finish(EVENTUALLY);
    assert_eq!(
        r.code,
        0,
        "the old daemon did not finish its running build (nested requests included):\n{}\n{}",
        r.stderr,
        p.daemon_log()
    );
    assert_eq!(
        (p.read("slow"), p.read("dep")),
        ("slow\n".into(), "dep\n".into())
    );
    let r = new_client.finish(EVENTUALLY);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, p.daemon_log());
    assert!(
        r.stderr.contains("replacing the running redod"),
        "no word about the replacement:\n{}",
        r.stderr
    );
    assert_eq!(p.read("other"), "other\n");
    assert!(
        wait_until(Duration::from_secs(10), || !alive(old)),
        "the old daemon did not exit after its jobs\n{}",
        p.daemon_log()
    );
    let new = running_daemon(&p);
    assert_ne!(new, old);
    assert_eq!(exe_of(new), bin("redod").canonicalize().unwrap());
    assert_eq!(daemons_of(&p), [new]);
}

#[test]
fn nested_client_refuses_a_daemon_of_another_version() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    let copy = other_redod(&p);
    p.do_file(
        "outer.do",
        &format!(
            "REDO_DAEMON={} redo-ifchange inner\necho outer\n",
            bin("redod").display()
        ),
    );
    p.do_file("inner.do", "echo inner\n");

    let mut c = p.command("redo-ifchange");
    c.arg("outer").env("REDO_DAEMON", &copy);
    let r = run_cmd(c).fails();
    let daemon = running_daemon(&p);
    assert_eq!(exe_of(daemon), copy);
    assert!(
        r.stderr.contains("another version") && r.stderr.contains("--daemon-stop"),
        "no clear message about the version mismatch:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("outer"),
        "the failed target is not named:\n{}",
        r.stderr
    );
    assert!(!p.exists("inner") && !p.exists("outer"));
    assert_eq!(p.runs("inner.do"), 0);
    // The daemon running the build was not replaced, nor asked to drain.
    assert!(
        daemon_status(&p).lines().any(|l| l == "draining: false"),
        "{}",
        daemon_status(&p)
    );
    let mut c = p.command("redo-ifchange");
    c.arg("inner").env("REDO_DAEMON", &copy);
    run_cmd(c).ok();
    assert_eq!(running_daemon(&p), daemon);
}

/// A `redod` that answers the first hello as a daemon of the next protocol version would when
/// asked to make way (`Replacing`), then exits: what a client meets when the `redod` it
/// starts comes from another build. (Connections that send nothing are the client's probes
/// for a listening daemon.)
const FAKE_REDOD: &str = r#"#!/usr/bin/env python3
import os, socket, sys
rundir = sys.argv[sys.argv.index("--runtime-dir") + 1]
path = os.path.join(rundir, "sock")
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    hello = c.recv(39)
    if hello:
        c.sendall(b"REDO" + (VERSION).to_bytes(2, "big") + bytes([2]) + bytes(32))
    c.close()
    if hello:
        break
os.unlink(path)
"#;

#[test]
fn a_started_daemon_of_another_protocol_is_reported_not_restarted_forever() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    let fake = p.root.parent().unwrap().join("redod-next-protocol");
    let version = (redo_proto::PROTOCOL_VERSION + 1).to_string();
    fs::write(&fake, FAKE_REDOD.replace("VERSION", &version)).unwrap();
    set_mode(&fake, 0o755);
    p.do_file("t.do", "echo t\n");

    let mut c = p.command("redo-ifchange");
    c.arg("t").env("REDO_DAEMON", &fake);
    let r = Kid::spawn("redo-ifchange t (redod of another protocol)", c)
        .wait_within(Duration::from_secs(30))
        .expect("the client kept starting a redod that refuses it");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(&format!("speaks protocol {version}"))
            && r.stderr.contains("REDO_DAEMON")
            && r.stderr.contains(fake.to_str().unwrap()),
        "no clear word about the mismatched redod:\n{}",
        r.stderr
    );
    assert!(!p.exists("t"));
}

// ------------------------------------------------------------------------------------------
// 3. Lifecycle.

#[test]
fn idle_timer_waits_for_connected_clients() {
    let p = Project::new();
    p.do_file("slow.do", ": > started\nsleep 1\necho slow\n");
    let mut c = p.command("redo-ifchange");
    c.arg("slow").env("REDO_DAEMON_IDLE", "0.3");
    let client = Kid::spawn("redo-ifchange slow", c);
    wait_started(&p, "started");
    let pid = running_daemon(&p);
    // A client that said hello and nothing else yet.
    let mut quiet = UnixStream::connect(p.daemon_dir().unwrap().join("sock")).unwrap();
    quiet
        .write_all(&ClientHello::new(false, Identity::ANY).encode())
        .unwrap();
    client.finish(EVENTUALLY).ok();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        assert!(
            alive(pid),
            "the daemon exited for idleness while a client was connected\n{}",
            p.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    drop(quiet);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "REDO_DAEMON_IDLE=0.3: the daemon did not exit once idle\n{}",
        p.daemon_log()
    );

    // 0 = never.
    let mut c = p.command("redo");
    c.arg("slow").env("REDO_DAEMON_IDLE", "0");
    run_cmd(c).ok();
    let pid = running_daemon(&p);
    assert!(
        daemon_status(&p).lines().any(|l| l == "idle exit: never"),
        "{}",
        daemon_status(&p)
    );
    assert!(
        !wait_until(Duration::from_secs(2), || !alive(pid)),
        "REDO_DAEMON_IDLE=0 exited anyway"
    );
}

#[test]
fn daemon_exits_when_its_runtime_dir_or_root_disappears() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    fs::remove_dir_all(p.daemon_dir().unwrap()).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "the daemon outlived its runtime directory"
    );
    // The next client makes a new one.
    p.redo(&["t"]).ok();
    let pid = running_daemon(&p);

    let q = Project::new();
    q.do_file("t.do", "echo t\n");
    q.ifchange(&["t"]).ok();
    let qpid = running_daemon(&q);
    fs::remove_dir_all(&q.root).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(qpid)),
        "the daemon outlived its project root\n{}",
        q.daemon_log()
    );
    assert!(alive(pid), "another project's daemon exited too");
}

// ------------------------------------------------------------------------------------------
// 4. Access control.

/// Puts back ownership and modes of the runtime dirs however the test ends.
struct Restore(Vec<PathBuf>);

impl Drop for Restore {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = nix::unistd::chown(d, Some(nix::unistd::getuid()), None);
            let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn runtime_dir_of_another_owner_or_a_symlink_is_refused() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let dir = expected_daemon_dir(&p);
    let base = dir.parent().unwrap().to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    set_mode(&base, 0o700);
    set_mode(&dir, 0o700);
    let _restore = Restore(vec![base.clone(), dir.clone()]);

    if is_root() {
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        for d in [&dir, &base] {
            nix::unistd::chown(d, nobody, None).unwrap();
            let r = p.ifchange(&["t"]).fails();
            assert!(
                r.stderr.contains("belongs to uid 65534") && r.stderr.contains("XDG_RUNTIME_DIR"),
                "{}: no clear refusal with advice:\n{}",
                d.display(),
                r.stderr
            );
            assert!(
                !dir.join("sock").exists(),
                "a daemon was started in {}",
                d.display()
            );
            nix::unistd::chown(d, Some(nix::unistd::getuid()), None).unwrap();
        }
    } else {
        println!("runtime dir owned by another uid: not root, skipped (the symlink part runs)");
    }

    // The runtime dir is a symlink to a perfectly private directory: still refused.
    let elsewhere = p.rundir.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    set_mode(&elsewhere, 0o700);
    fs::remove_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    let r = p.ifchange(&["t"]).fails();
    assert!(r.stderr.contains("symlink"), "{}", r.stderr);
    assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    assert_eq!(p.runs("t.do"), 0);

    fs::remove_file(&dir).unwrap();
    p.ifchange(&["t"]).ok();
}

#[test]
fn socket_symlink_is_not_followed() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let dir = p.daemon_dir().unwrap();
    let sock = dir.join("sock");
    let moved = dir.join("sock.moved");

    let decoy_path = p.root.parent().unwrap().join("decoy.sock");
    let decoy = UnixListener::bind(&decoy_path).unwrap();
    decoy.set_nonblocking(true).unwrap();
    fs::rename(&sock, &moved).unwrap();
    std::os::unix::fs::symlink(&decoy_path, &sock).unwrap();

    let top = p.redo(&["t"]);
    let mut nested = p.command("redo-ifchange");
    nested
        .arg("t")
        .env("REDO_SOCKET", &sock)
        .env("REDO_JOB", "1");
    let nested = run_cmd(nested);
    let contacted = match decoy.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("{e}"),
    };
    assert!(
        !contacted,
        "a client followed the symlink to another socket"
    );
    for (what, r) in [("top-level", &top), ("nested", &nested)] {
        if r.code != 0 {
            assert!(
                r.stderr.contains("symlink"),
                "{what}: refused without saying why:\n{}",
                r.stderr
            );
        }
    }
    assert_ne!(
        nested.code, 0,
        "a nested client was served through a symlink"
    );

    fs::remove_file(&sock).unwrap();
    fs::rename(&moved, &sock).unwrap();
    p.redo(&["t"]).ok();
    assert_eq!(running_daemon(&p), pid);
}

/// What [`another_uid_gets_no_answer`] runs as another uid (a separate process: a uid is
/// per process, and a thread of the test binary cannot drop root alone): connect to the socket
/// `argv[1]`, send the hello `argv[2]` (hex), report how many bytes came back before the
/// daemon closed. Python 3, which the tests need anyway (`tests/setup-and-test.sh`).
const PEER_HELPER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("PEER-CONNECT-ERROR", e)
    sys.exit(0)
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
except OSError:
    pass
s.settimeout(10)
got, closed = 0, False
while True:
    try:
        b = s.recv(256)
    except ConnectionResetError:
        closed = True
        break
    except OSError:
        break
    if not b:
        closed = True
        break
    got += len(b)
print("PEER-READ %d closed=%s" % (got, "true" if closed else "false"))
"#;

#[test]
fn another_uid_gets_no_answer() {
    if !is_root() {
        println!("another_uid_gets_no_answer: not root, skipped");
        return;
    }
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let dir = p.daemon_dir().unwrap();
    let sock = dir.join("sock");
    let dirs = vec![p.rundir.clone(), p.rundir.join("redo"), dir.clone()];
    let _restore = Restore(dirs.clone());
    for d in &dirs {
        set_mode(d, 0o711);
    }
    set_mode(&sock, 0o777);
    let hello: String = ClientHello::new(false, Identity::ANY)
        .encode()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["python3", "-c", PEER_HELPER])
        .arg(&sock)
        .arg(hello)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PEER-READ 0 closed=true"),
        "uid 65534 got an answer (or the connection stayed open):\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(5), || p
            .daemon_log()
            .contains("uid 65534")),
        "the refusal was not logged:\n{}",
        p.daemon_log()
    );
    assert!(alive(pid));
    drop(_restore);
    p.redo(&["t"]).ok();
    assert_eq!(running_daemon(&p), pid);
}

// ------------------------------------------------------------------------------------------
// 5. Hostile bytes on the socket (beyond tests/daemon.rs: seeded random frames, many at once,
//    descriptors not leaked, garbage after a request cancels only that request).

fn request_for(p: &Project, targets: &[&str]) -> Request {
    let env = [
        ("PATH", format!("{}:/usr/bin:/bin", bin_dir().display())),
        ("XDG_RUNTIME_DIR", p.rundir.display().to_string()),
        ("REDO_NO_SYNC", "1".into()),
    ];
    Request {
        command: Cmd::Build(Build {
            mode: BuildMode::Ifchange,
            targets: targets
                .iter()
                .map(|t| ByteBuf::from(t.as_bytes().to_vec()))
                .collect(),
            options: BuildOptions::default(),
        }),
        program: ByteBuf::from(b"redo-ifchange".to_vec()),
        cwd: ByteBuf::from(p.root.display().to_string().into_bytes()),
        env: env
            .iter()
            .map(|(k, v)| {
                (
                    ByteBuf::from(k.as_bytes().to_vec()),
                    ByteBuf::from(v.as_bytes().to_vec()),
                )
            })
            .collect(),
        umask: 0o022,
        parent_job: None,
        make_jobserver: None,
        client_dir: ByteBuf::from(bin_dir().display().to_string().into_bytes()),
        terminal: Terminal::default(),
    }
}

#[test]
fn hostile_connections_close_alone_and_leak_nothing() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file("t.do", "echo t\n");
    p.do_file(
        "slow.do",
        "echo $$ > slow.pid\n: > started\nsleep 60\necho slow\n",
    );
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let sock = p.daemon_dir().unwrap().join("sock");
    let hello = ClientHello::new(false, Identity::ANY).encode();
    // Once the daemon has closed the last client's connection, take its descriptor count.
    assert!(
        wait_until(EVENTUALLY, || client_connections(&sock) == Some(0)),
        "the daemon keeps a client connection open after the build"
    );
    let before = usage(pid).unwrap();

    let seed = Rng::seed_from_env("REDO_FAULTS_SEED");
    println!("hostile connections: seed {seed} (replay with REDO_FAULTS_SEED={seed})");
    let mut rng = Rng::new(seed);
    let valid = {
        let mut f = Vec::new();
        encode_frame(&request_for(&p, &["t"]), &mut f).unwrap();
        f
    };
    for case in 0..150 {
        let mut msg = Vec::new();
        let with_hello = !rng.one_in(6);
        if with_hello {
            msg.extend_from_slice(&hello);
        }
        match rng.below(5) {
            // Random bytes.
            0 => msg.extend((0..rng.below(2000)).map(|_| rng.next() as u8)),
            // A length over the limit.
            1 => {
                let len = MAX_FRAME as u64 + 1 + rng.below(u64::from(u32::MAX) - MAX_FRAME as u64);
                msg.extend_from_slice(&(len as u32).to_be_bytes());
            }
            // A length promising more than is sent.
            2 => {
                msg.extend_from_slice(&(1000 + rng.below(100_000) as u32).to_be_bytes());
                msg.extend((0..rng.below(500)).map(|_| rng.next() as u8));
            }
            // A valid request with some bytes changed (but never a valid one).
            3 => {
                let mut f = valid.clone();
                for _ in 0..=rng.below(4) {
                    let at = 4 + rng.below(f.len() as u64 - 4) as usize;
                    f[at] ^= 1 + rng.below(255) as u8;
                }
                msg.extend_from_slice(&f);
            }
            // A valid frame length, random payload.
            _ => {
                let n = rng.below(300) as usize;
                msg.extend_from_slice(&(n as u32).to_be_bytes());
                msg.extend((0..n).map(|_| rng.next() as u8));
            }
        }
        let mut s = UnixStream::connect(&sock).unwrap();
        let _ = s.write_all(&msg);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let reply = read_until_closed(&mut s).unwrap_or_else(|e| panic!("case {case}: {e}"));
        // At most a hello and, for a mutated request that still decodes, its answer; never a
        // crash. Only check that the daemon survives and nothing else breaks.
        if !with_hello {
            assert!(reply.is_empty(), "case {case}: answered without a hello");
        }
        assert!(
            alive(pid),
            "case {case} killed the daemon\n{}",
            p.daemon_log()
        );
    }

    // Many at once, all holding their connection open, then gone.
    let many: Vec<UnixStream> = (0..64)
        .map(|i| {
            let mut s = UnixStream::connect(&sock).unwrap();
            if i % 2 == 0 {
                s.write_all(&hello).unwrap();
            }
            s
        })
        .collect();
    p.ifchange(&["t"]).ok();
    drop(many);

    // A valid request, then a second frame while its job runs: only that request goes.
    let mut s = UnixStream::connect(&sock).unwrap();
    let mut msg = hello.to_vec();
    encode_frame(&request_for(&p, &["slow"]), &mut msg).unwrap();
    s.write_all(&msg).unwrap();
    let mut answer = [0u8; HELLO_LEN];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(
        DaemonHello::decode(&answer).unwrap().answer,
        Answer::Accepted
    );
    wait_started(&p, "started");
    let slow = read_pid(&p, "slow.pid");
    s.write_all(&[0, 0, 0, 3, 1, 2, 3]).unwrap();
    let _ = read_until_closed(&mut s).expect("the connection stayed open");
    assert_groups_gone(
        &p,
        &[("slow.do", slow)],
        "request cancelled by a bad second frame",
    );
    assert_no_temps(&p, "bad second frame");

    assert_eq!(running_daemon(&p), pid);
    p.redo(&["t"]).ok();
    let settled = wait_until(Duration::from_secs(10), || {
        usage(pid).is_some_and(|u| u.fds <= before.fds)
    });
    let after = usage(pid).unwrap();
    println!(
        "hostile connections: daemon fds {} before, {} after",
        before.fds, after.fds
    );
    assert!(
        settled,
        "descriptors leaked: {} before, {} after",
        before.fds, after.fds
    );
}

/// Sends hello + `req` on a new connection; returns the first read's bytes and then the rest
/// until the daemon closes.
fn exchange(sock: &Path, req: &Request) -> (Vec<u8>, Vec<u8>) {
    let mut msg = ClientHello::new(false, Identity::ANY).encode().to_vec();
    encode_frame(req, &mut msg).unwrap();
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(&msg).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut first = vec![0u8; 1 << 20];
    let n = s.read(&mut first).unwrap();
    first.truncate(n);
    (first, read_until_closed(&mut s).unwrap())
}

/// The daemon's accepted hello at the start of `bytes`, then its frames, the last one `Done`
/// (which must end `bytes`); returns Done's code.
#[track_caller]
fn hello_then_done(bytes: &[u8], what: &str) -> i32 {
    assert!(bytes.len() > HELLO_LEN, "{what}: {bytes:?}");
    let h = DaemonHello::decode(bytes[..HELLO_LEN].try_into().unwrap()).unwrap();
    assert_eq!(h.answer, Answer::Accepted, "{what}");
    let mut rest = &bytes[HELLO_LEN..];
    let mut buf = Vec::new();
    loop {
        match read_frame::<Event, _>(&mut rest, &mut buf) {
            Ok(Some(Event::Done { code })) => {
                assert!(rest.is_empty(), "{what}: bytes after Done: {rest:?}");
                return code;
            }
            Ok(Some(_)) => {}
            other => panic!("{what}: no complete Done frame ({other:?}) in {bytes:?}"),
        }
    }
}

/// One round trip (docs/DESIGN.md §3): a request answered without waiting comes back in one
/// write, the daemon's hello with its events and `Done`, so that the client reads it once; a
/// client that waits for the hello before sending its request still gets it.
#[test]
fn an_immediate_answer_comes_with_the_hello_in_one_write() {
    let p = Project::new();
    let _reap = ReapTree(vec![p.root.clone()]);
    p.do_file("dep.do", "echo dep\n");
    // The job hands its id to the test and waits while the test asks on its behalf.
    p.do_file(
        "outer.do",
        "redo-ifchange dep\necho \"$REDO_JOB\" > job.id\nwhile [ ! -e go ]; do sleep 0.02; done\necho outer\n",
    );
    let sock = {
        p.ifchange(&["dep"]).ok();
        p.daemon_dir().unwrap().join("sock")
    };

    // A top-level request answered at once: --daemon-status.
    let mut status = request_for(&p, &[]);
    status.command = Cmd::DaemonStatus;
    let (first, rest) = exchange(&sock, &status);
    assert!(rest.is_empty(), "a second write: {rest:?}");
    assert_eq!(hello_then_done(&first, "--daemon-status"), 0);

    // Nested `redo-ifchange dep`, dep up to date, from inside the running job: the loop of
    // `redo-ifchange` calls in a `.do`. The first call may wait; the next ones do not.
    let outer = spawn(&p, "redo-ifchange", &["outer"]);
    wait_started(&p, "job.id");
    let job: u64 = p.read("job.id").trim().parse().unwrap();
    let mut nested = request_for(&p, &["dep"]);
    nested.parent_job = Some(job);
    let (first, rest) = exchange(&sock, &nested);
    let all = [first, rest].concat();
    assert_eq!(hello_then_done(&all, "first nested request"), 0);
    for round in 0..3 {
        let (first, rest) = exchange(&sock, &nested);
        assert!(rest.is_empty(), "round {round}: a second write: {rest:?}");
        assert_eq!(hello_then_done(&first, "nested request"), 0);
    }

    // A client that waits for the daemon's hello before it sends its request.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&ClientHello::new(false, Identity::ANY).encode())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut answer = [0u8; HELLO_LEN];
    s.read_exact(&mut answer)
        .expect("no hello before the request was sent");
    assert_eq!(
        DaemonHello::decode(&answer).unwrap().answer,
        Answer::Accepted
    );
    let mut frame = Vec::new();
    encode_frame(&nested, &mut frame).unwrap();
    s.write_all(&frame).unwrap();
    let rest = read_until_closed(&mut s).unwrap();
    let all = [answer.to_vec(), rest].concat();
    assert_eq!(hello_then_done(&all, "request after the hello"), 0);

    p.write("go", "");
    outer.finish(EVENTUALLY).ok();
    assert_eq!(p.read("outer"), "outer\n");
    assert_eq!(p.runs("dep.do"), 1);
}

// ------------------------------------------------------------------------------------------
// 6. Resource faults: read-only directories, full disks.

/// Undoes a file-system fault however the test ends.
enum Fault {
    Immutable(PathBuf),
    Mode(PathBuf),
    Mount(PathBuf),
}

impl Drop for Fault {
    fn drop(&mut self) {
        match self {
            Fault::Immutable(p) => {
                let _ = Command::new("chattr").arg("-i").arg(&*p).status();
            }
            Fault::Mode(p) => {
                let _ = fs::set_permissions(&*p, fs::Permissions::from_mode(0o755));
            }
            Fault::Mount(p) => {
                let _ = Command::new("umount").arg("-l").arg(&*p).status();
            }
        }
    }
}

fn sh(cmd: &str, args: &[&Path]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes `dir` read-only as well as this user can: `chattr +i` as root (root ignores mode
/// bits), else mode 0555.
fn read_only(dir: &Path) -> Fault {
    if is_root() {
        assert!(
            sh("chattr", &[Path::new("+i"), dir]),
            "chattr +i {}",
            dir.display()
        );
        Fault::Immutable(dir.to_path_buf())
    } else {
        set_mode(dir, 0o555);
        Fault::Mode(dir.to_path_buf())
    }
}

/// A read-only bind mount of `dir` on itself (root only).
fn read_only_mount(dir: &Path) -> Option<Fault> {
    if !is_root() || !sh("mount", &[Path::new("--bind"), dir, dir]) {
        return None;
    }
    let guard = Fault::Mount(dir.to_path_buf());
    let ro = Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ro.then_some(guard)
}

/// The state of one target, to compare before and after a failed build.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    target: Option<Vec<u8>>,
    rec: Option<Vec<u8>>,
}

fn snapshot(p: &Project, dir: &str, name: &str) -> Snapshot {
    Snapshot {
        target: fs::read(p.path(&format!("{dir}/{name}"))).ok(),
        rec: fs::read(p.path(&format!("{dir}/.redo/{name}.rec"))).ok(),
    }
}

/// Checks a build that failed for a file-system fault, collecting every problem: a clear
/// error naming the path, the old target and its `.rec` untouched, no temporaries.
fn failed_cleanly(
    p: &Project,
    r: &Run,
    before: &Snapshot,
    dir: &str,
    name: &str,
    errno_texts: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    if r.code != 1 {
        problems.push(format!("exit {} instead of 1", r.code));
    }
    let err_line = r.stderr.lines().find(|l| l.starts_with("err"));
    match err_line {
        None => problems.push("no 'err' line".into()),
        Some(l) => {
            if !l.contains(&format!("{dir}/.redo")) {
                problems.push(format!("the error does not name the path in {dir}/: {l}"));
            }
            if !errno_texts.iter().any(|t| l.contains(t)) {
                problems.push(format!("the error does not say {errno_texts:?}: {l}"));
            }
            if l.contains("os error") {
                problems.push(format!("the error has an os error number: {l}"));
            }
        }
    }
    let after = snapshot(p, dir, name);
    if after.target != before.target {
        let show = |t: &Option<Vec<u8>>| match t {
            None => "nothing".to_string(),
            Some(b) if b.len() > 40 => format!("{} bytes", b.len()),
            Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        };
        problems.push(format!(
            "the old target was replaced: {} -> {}",
            show(&before.target),
            show(&after.target)
        ));
    }
    if after.rec != before.rec {
        problems.push("the .rec changed".into());
    }
    // Temps in a read-only directory cannot exist; anywhere else they must not.
    wait_until(Duration::from_secs(3), || temps_under(&p.root).is_empty());
    let temps = temps_under(&p.root);
    if !temps.is_empty() {
        problems.push(format!("temporaries left: {temps:?}"));
    }
    problems
}

#[track_caller]
fn assert_no_problems(what: &str, problems: &[String], r: &Run) {
    assert!(
        problems.is_empty(),
        "{what}:\n  {}\nstderr:\n{}",
        problems.join("\n  "),
        r.stderr
    );
}

/// After the fault is gone, the target builds normally (nothing stale blocks it).
#[track_caller]
fn recovers(p: &Project, target: &str, expect: &str) -> Vec<String> {
    let r = p.ifchange(&[target]);
    let mut problems = Vec::new();
    if r.code != 0 {
        problems.push(format!("the build after the fault failed:\n{}", r.stderr));
    }
    if r.stderr.contains("externally modified") {
        problems.push(format!(
            "after the fault, the daemon takes its own output for an external modification:\n{}",
            r.stderr
        ));
    }
    let got = fs::read_to_string(p.path(target)).unwrap_or_default();
    if got != expect {
        let short = |s: &str| {
            if s.len() > 40 {
                format!("{:?}... ({} bytes)", &s[..20], s.len())
            } else {
                format!("{s:?}")
            }
        };
        problems.push(format!(
            "after the fault {target} holds {}, not {}",
            short(&got),
            short(expect)
        ));
    }
    problems
}

/// As redo words them: the system's text without its `(os error N)`, lower-cased.
const NOT_WRITABLE: &[&str] = &[
    "operation not permitted",
    "permission denied",
    "read-only file system",
];

#[test]
fn read_only_target_directory_fails_cleanly() {
    let p = Project::new();
    p.write("ro/t.do", "echo old\n");
    p.ifchange(&["ro/t"]).ok();
    p.write("ro/t.do", "echo new\n");
    let before = snapshot(&p, "ro", "t");
    assert_eq!(before.target.as_deref(), Some(&b"old\n"[..]));

    let ro = p.path("ro");
    let label = if is_root() { "chattr +i" } else { "mode 0555" };
    let fault = read_only(&ro);
    let r = p.ifchange(&["ro/t"]);
    let problems = failed_cleanly(&p, &r, &before, "ro", "t", NOT_WRITABLE);
    drop(fault);
    assert_no_problems(label, &problems, &r);

    match read_only_mount(&ro) {
        Some(m) => {
            let r = p.ifchange(&["ro/t"]);
            let problems = failed_cleanly(&p, &r, &before, "ro", "t", NOT_WRITABLE);
            drop(m);
            assert_no_problems("read-only bind mount", &problems, &r);
        }
        None => println!("read-only bind mount: needs root and mount, skipped"),
    }
    let problems = recovers(&p, "ro/t", "new\n");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The target's directory is writable, its `.redo/` is not: the commit cannot write the
/// `.rec`. The old target must survive (docs/DESIGN.md §5: no partial state), and after the fault
/// is gone, the next build must rebuild normally.
#[test]
fn read_only_state_directory_fails_cleanly() {
    let p = Project::new();
    p.write("ro/t.do", "echo old\n");
    p.ifchange(&["ro/t"]).ok();
    p.write("ro/t.do", "echo new\n");
    let before = snapshot(&p, "ro", "t");
    let fault = read_only(&p.path("ro/.redo"));
    let r = p.ifchange(&["ro/t"]);
    let mut problems = failed_cleanly(&p, &r, &before, "ro", "t", NOT_WRITABLE);
    drop(fault);
    problems.extend(recovers(&p, "ro/t", "new\n"));
    assert_no_problems("read-only .redo directory", &problems, &r);
}

/// A small tmpfs mounted on `dir` (root only).
fn tmpfs(dir: &Path, size: &str) -> Option<Fault> {
    fs::create_dir_all(dir).unwrap();
    if !is_root() {
        return None;
    }
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0755"),
            "tmpfs",
        ])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Fault::Mount(dir.to_path_buf()))
}

fn free_blocks(dir: &Path) -> (u64, u64) {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    (s.blocks_available() as u64, s.fragment_size() as u64)
}

/// The `.do`'s output does not fit: the job fails with ENOSPC, nothing else changes.
#[test]
fn full_disk_during_the_do_fails_cleanly() {
    let p = Project::new();
    let Some(_mount) = tmpfs(&p.path("full"), "64k") else {
        println!("full disk: needs root and a tmpfs mount, skipped");
        return;
    };
    p.write(
        "full/t.do",
        "if [ -e ../big ]; then head -c 300000 /dev/zero | tr '\\0' x; else echo old; fi\n",
    );
    p.ifchange(&["full/t"]).ok();
    let before = snapshot(&p, "full", "t");
    p.write("big", "");
    let r = p.redo(&["full/t"]);
    let mut problems = failed_cleanly(&p, &r, &before, "full", "t", &["no space left on device"]);
    // The .do's own message names what it wrote; ours must name the target.
    problems.retain(|m| !m.starts_with("the error does not name the path"));
    if !r
        .stderr
        .lines()
        .any(|l| l.starts_with("err") && l.contains("full/t"))
    {
        problems.push("the error line does not name full/t".into());
    }
    let (free, bsize) = free_blocks(&p.path("full"));
    if free * bsize < 40 << 10 {
        problems.push(format!("space not given back: {} bytes free", free * bsize));
    }
    fs::remove_file(p.path("big")).unwrap();
    problems.extend(recovers(&p, "full/t", "old\n"));
    assert_no_problems("output larger than the disk", &problems, &r);
}

/// The output fits, the `.rec` does not: the commit fails after the output was written.
/// A clear error naming the state file, the old target intact, no temporaries.
#[test]
fn full_disk_at_commit_fails_cleanly() {
    let p = Project::new();
    let Some(_mount) = tmpfs(&p.path("full"), "64k") else {
        println!("full disk at commit: needs root and a tmpfs mount, skipped");
        return;
    };
    // Output of exactly the size given in ../size (outside the tmpfs).
    p.write("size", "4");
    p.write(
        "full/t.do",
        "redo-ifchange ../size\nhead -c \"$(cat ../size)\" /dev/zero | tr '\\0' n\n",
    );
    p.ifchange(&["full/t"]).ok();
    // An open descriptor keeps the old target's blocks allocated when the new one is renamed
    // over it, so the rename frees nothing (a hard link would do too, but it changes the
    // target's ctime, which the daemon would rightly take for an external modification).
    let _hold = fs::File::open(p.path("full/t")).unwrap();
    let (free, bsize) = free_blocks(&p.path("full"));
    assert!(free > 4, "tmpfs too small: {free} blocks");
    // Leave exactly two blocks free, and make the new output exactly two blocks.
    fs::write(
        p.path("full/filler"),
        vec![0u8; ((free - 2) * bsize) as usize],
    )
    .unwrap();
    assert_eq!(free_blocks(&p.path("full")).0, 2);
    p.write("size", &(2 * bsize).to_string());
    let before = snapshot(&p, "full", "t");

    let r = p.ifchange(&["full/t"]);
    let mut problems = failed_cleanly(&p, &r, &before, "full", "t", &["no space left on device"]);
    if !r.stderr.contains(".redo") {
        problems.push("the error does not name the state file".into());
    }
    fs::remove_file(p.path("full/filler")).unwrap();
    problems.extend(recovers(&p, "full/t", &"n".repeat(2 * bsize as usize)));
    assert_no_problems("no room for the .rec", &problems, &r);
}

/// The runtime directory's file system is full: the daemon cannot write its log, its pid or its
/// journal, and starts anyway (it used to panic, exit 101, and the client printed an empty
/// reason); the build works, the daemon answers `--daemon-status`.
#[test]
fn full_runtime_directory_the_daemon_starts_anyway() {
    let p = Project::new();
    let Some(_mount) = tmpfs(&p.rundir, "64k") else {
        println!("full runtime directory: needs root and a tmpfs mount, skipped");
        return;
    };
    set_mode(&p.rundir, 0o700);
    // Fill it: whatever fits of a larger file.
    let _ = fs::write(p.rundir.join("filler"), vec![0u8; 256 << 10]);
    assert_eq!(free_blocks(&p.rundir).0, 0, "the tmpfs is not full");
    p.do_file("t.do", "redo-ifchange dep\necho t\n");
    p.do_file("dep.do", "echo dep\n");
    let r = p.ifchange(&["t"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!((p.read("t"), p.read("dep")), ("t\n".into(), "dep\n".into()));
    let r = p.redo(&["--daemon-status"]).ok();
    assert!(
        r.stdout.contains("running jobs") || r.stderr.contains("running jobs"),
        "{r:?}"
    );
    // The pid file may be empty (no room for it): the socket says when the daemon is gone.
    let sock = p.daemon_dir().unwrap().join("sock");
    assert!(sock.exists());
    p.redo(&["--daemon-stop"]).ok();
    assert!(wait_until(Duration::from_secs(10), || !sock.exists()));
}
