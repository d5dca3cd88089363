#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The daemon seen from outside: shared builds, cycles, Ctrl-C, start-up races, damaged state
//! files, the requester's environment, hostile socket input, lifecycle and access control
//! (docs/DESIGN.md §4, §5, §7; docs/BEHAVIOUR.md §12, §14).

mod common;

use common::{
    EVENTUALLY, Kid, daemons_of, expected_daemon_dir, read_pid, read_until_closed, run_cmd,
    running_daemon, set_mode, signal, spawn,
};
use redo_proto::{Answer, ClientHello, DaemonHello, HELLO_LEN, Identity, PROTOCOL_VERSION};
use redo_tests::{Project, Run, alive, bin, wait_until};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `.redo.*` temporaries left in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".redo."))
        .collect()
}

/// SIGKILLs processes a test found running, in case the product failed to (and the test fails).
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// 1. One build per target, whoever asks.

#[test]
fn concurrent_clients_share_one_build() {
    let p = Project::new();
    p.do_file("warm.do", "echo warm\n");
    p.ifchange(&["warm"]).ok();

    for (target, n) in [("slow", 2), ("slower", 5)] {
        let do_rel = format!("{target}.do");
        p.do_file(&do_rel, "sleep 1\necho built\n");
        let kids: Vec<Kid> = (0..n)
            .map(|_| spawn(&p, "redo-ifchange", &[target]))
            .collect();
        for (i, k) in kids.into_iter().enumerate() {
            let r = k.finish(EVENTUALLY).ok();
            assert!(
                r.built_names().contains(&format!("redo {target}")),
                "client {i} of {n} did not see the completion line of {target}:\n{}",
                r.stderr
            );
        }
        assert_eq!(
            p.runs(&do_rel),
            1,
            "{n} concurrent clients must share one build of {target}"
        );
        assert_eq!(p.read(target), "built\n");
        assert!(temps(&p.root).is_empty(), "{:?}", temps(&p.root));
    }

    // Two top-level builds whose targets both depend on one slow target.
    p.do_file("shared.do", "sleep 1\necho shared\n");
    p.do_file("a.do", "redo-ifchange shared\necho a\n");
    p.do_file("b.do", "redo-ifchange shared\necho b\n");
    let ka = spawn(&p, "redo", &["a"]);
    let kb = spawn(&p, "redo", &["b"]);
    let ra = ka.finish(EVENTUALLY).ok();
    let rb = kb.finish(EVENTUALLY).ok();
    assert_eq!(
        p.runs("shared.do"),
        1,
        "shared built more than once\na:\n{}\nb:\n{}",
        ra.stderr,
        rb.stderr
    );
    assert_eq!((p.runs("a.do"), p.runs("b.do")), (1, 1));
    assert_eq!(
        (p.read("a"), p.read("b"), p.read("shared")),
        ("a\n".into(), "b\n".into(), "shared\n".into())
    );
    assert!(ra.built_names().contains(&"redo a".to_string()), "{ra:?}");
    assert!(rb.built_names().contains(&"redo b".to_string()), "{rb:?}");
}

// ------------------------------------------------------------------------------------------
// 2. Cycles are errors, never hangs.

#[track_caller]
fn assert_cycle(p: &Project, target: &str, members: &[&str]) {
    let started = Instant::now();
    let r = spawn(p, "redo-ifchange", &[target])
        .wait_within(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "redo-ifchange {target} hangs on a dependency cycle (killed after 10 s)\n{}",
                p.daemon_log()
            )
        });
    assert_eq!(
        r.code,
        1,
        "cycle through {target}: expected exit 1 ({:?})\nstderr:\n{}",
        started.elapsed(),
        r.stderr
    );
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("dependency cycle"))
        .unwrap_or_else(|| panic!("no 'dependency cycle' message:\n{}", r.stderr));
    let chain: Vec<&str> = line
        .split("dependency cycle:")
        .nth(1)
        .unwrap()
        .split("->")
        .map(str::trim)
        .collect();
    for m in members {
        assert!(
            chain.contains(m),
            "the cycle message does not name {m}: {line}"
        );
    }
    for m in members {
        assert!(!p.exists(m), "{m} was created by a failed cyclic build");
    }
    assert!(temps(&p.root).is_empty(), "{:?}", temps(&p.root));
}

#[test]
fn dependency_cycles_fail_fast() {
    let p = Project::new();
    p.do_file("a.do", "redo-ifchange b\necho a\n");
    p.do_file("b.do", "redo-ifchange a\necho b\n");
    p.do_file("x.do", "redo-ifchange x\necho x\n");
    p.do_file("p.do", "redo-ifchange q\necho p\n");
    p.do_file("q.do", "redo-ifchange r\necho q\n");
    p.do_file("r.do", "redo-ifchange p\necho r\n");
    p.do_file("ok.do", "redo-ifchange dep\ncat dep\n");
    p.do_file("dep.do", "echo fine\n");

    assert_cycle(&p, "a", &["a", "b"]);
    let pid = running_daemon(&p);
    // The same cycle again: nothing stale is left in the daemon's wait-for graph.
    assert_cycle(&p, "a", &["a", "b"]);
    assert_cycle(&p, "b", &["a", "b"]);
    assert_cycle(&p, "x", &["x"]);
    assert_cycle(&p, "p", &["p", "q", "r"]);

    // The daemon survived and still serves a normal build.
    assert_eq!(running_daemon(&p), pid);
    let r = p.ifchange(&["ok"]).ok();
    assert_eq!(p.read("ok"), "fine\n");
    assert_eq!(r.built_names(), ["redo . dep", "redo ok"]);
}

// ------------------------------------------------------------------------------------------
// 3. Ctrl-C.

#[test]
fn interrupted_client_kills_its_job() {
    let p = Project::new();
    p.do_file(
        "slow.do",
        // Its stdout is captured off the tree (a memfd): `$3` is the temporary to clean up.
        "echo $$ > shell.pid\nsleep 60 &\necho $! > sleep.pid\n: > \"$3\"\n: > started\nwait\n",
    );
    p.do_file("other.do", "echo other\n");

    let mut client = spawn(&p, "redo", &["slow"]);
    assert!(
        wait_until(EVENTUALLY, || p.exists("started")),
        "slow.do never started\n{}",
        p.daemon_log()
    );
    let shell = read_pid(&p, "shell.pid");
    let sleeper = read_pid(&p, "sleep.pid");
    let _strays = KillOnDrop(vec![shell, sleeper]);
    assert!(alive(shell) && alive(sleeper), "the .do is not running");
    assert!(
        !temps(&p.root).is_empty(),
        "no temp file while the .do runs?"
    );
    assert!(!client.exited(), "the client left before being interrupted");

    signal(client.pid(), nix::sys::signal::Signal::SIGINT);
    let r = client
        .wait_within(Duration::from_secs(10))
        .expect("the interrupted client did not exit");
    assert_ne!(r.code, 0, "an interrupted build is no success: {r:?}");

    assert!(
        wait_until(Duration::from_secs(10), || !alive(shell) && !alive(sleeper)),
        "the .do (shell {shell} alive: {}, sleep {sleeper} alive: {}) outlived its only client\n{}",
        alive(shell),
        alive(sleeper),
        p.daemon_log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || temps(&p.root).is_empty()),
        "temporaries left behind: {:?}",
        temps(&p.root)
    );
    assert!(!p.exists("slow"), "an interrupted target was committed");
    assert!(
        !p.exists(".redo/slow.rec"),
        "an interrupted target got a .rec"
    );

    // The daemon goes on: another target, and the interrupted one (lock and flight released).
    let pid = running_daemon(&p);
    p.ifchange(&["other"]).ok();
    assert_eq!(p.read("other"), "other\n");
    p.do_file("slow.do", "echo quick\n");
    let r = p.ifchange(&["slow"]).ok();
    assert_eq!(p.read("slow"), "quick\n");
    assert_eq!(r.built_names(), ["redo slow"]);
    assert_eq!(running_daemon(&p), pid);
}

#[test]
fn interrupting_one_of_two_waiting_clients_keeps_the_build() {
    let p = Project::new();
    p.do_file("shared.do", ": > started\nsleep 2\necho built\n");
    p.do_file("joined.do", ": > joined.mark\necho joined\n");

    // -j 2: a request's next target starts once the one before it has its job token (at -j 1,
    // only once it is built), and the gate is the flight's, so the first client's setting.
    let mut first = spawn(&p, "redo-ifchange", &["-j", "2", "shared"]);
    assert!(
        wait_until(EVENTUALLY, || p.exists("started")),
        "shared.do never started\n{}",
        p.daemon_log()
    );
    // `joined` starts after the second client has joined the running flight of `shared`.
    let second = spawn(&p, "redo-ifchange", &["-j", "2", "shared", "joined"]);
    assert!(
        wait_until(EVENTUALLY, || p.exists("joined.mark")),
        "the second client never joined the build of shared\n{}",
        p.daemon_log()
    );
    assert!(
        !first.exited(),
        "the first client finished before the interrupt"
    );

    signal(first.pid(), nix::sys::signal::Signal::SIGINT);
    first
        .wait_within(Duration::from_secs(10))
        .expect("the interrupted client did not exit");

    let r = second.finish(EVENTUALLY);
    assert_eq!(
        r.code, 0,
        "the second client lost its build when the first was interrupted:\n{}",
        r.stderr
    );
    assert!(
        r.built_names().contains(&"redo shared".to_string()),
        "{}",
        r.stderr
    );
    assert_eq!(p.read("shared"), "built\n");
    assert_eq!(
        p.runs("shared.do"),
        1,
        "the build was restarted instead of kept"
    );
}

// ------------------------------------------------------------------------------------------
// 4. Start-up race.

#[test]
fn twenty_cold_clients_start_one_daemon() {
    let p = Project::new();
    p.do_file("all.do", "sleep 0.3\necho all\n");
    p.do_file("default.do", "echo \"$2\"\n");
    assert!(p.daemon_dir().is_none(), "not a cold project");

    let kids: Vec<Kid> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                spawn(&p, "redo-ifchange", &["all"])
            } else {
                spawn(&p, "redo-ifchange", &[&format!("t{i}")])
            }
        })
        .collect();
    for (i, k) in kids.into_iter().enumerate() {
        let r = k.finish(Duration::from_secs(60));
        assert_eq!(
            r.code,
            0,
            "client {i} failed:\n{}\ndaemon log:\n{}",
            r.stderr,
            p.daemon_log()
        );
    }
    assert_eq!(p.read("all"), "all\n");
    assert_eq!(p.runs("all.do"), 1);
    assert_eq!(p.runs("default.do"), 10);
    for i in (1..20).step_by(2) {
        assert_eq!(p.read(&format!("t{i}")), format!("t{i}\n"));
    }

    // Losers of the race exit at once; one daemon remains.
    let one = wait_until(Duration::from_secs(10), || daemons_of(&p).len() == 1);
    let daemons = daemons_of(&p);
    assert!(
        one,
        "expected exactly one daemon for the project, found {daemons:?}"
    );
    assert_eq!(
        Some(daemons[0]),
        p.daemon_pid(),
        "pid file names another process"
    );
}

// ------------------------------------------------------------------------------------------
// 5. Damaged state files.

#[track_caller]
fn assert_rebuilt_after_damage(p: &Project, pid: i32, runs_before: usize, what: &str) {
    let r = p.ifchange(&["t"]);
    assert_eq!(
        r.code,
        0,
        "{what} .rec: redo-ifchange failed\n{}\ndaemon log:\n{}",
        r.stderr,
        p.daemon_log()
    );
    let warning = r
        .stderr
        .lines()
        .find(|l| l.starts_with("warn") && l.contains(".redo/t.rec"));
    assert!(
        warning.is_some(),
        "{what} .rec: no warning naming .redo/t.rec:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what} .rec: {}", r.stderr);
    assert_eq!(
        p.runs("t.do"),
        runs_before + 1,
        "{what} .rec: t not rebuilt"
    );
    assert_eq!(p.read("t"), "hello\n");
    assert_eq!(
        p.daemon_pid(),
        Some(pid),
        "{what} .rec: the daemon was replaced"
    );
    assert!(
        alive(pid),
        "{what} .rec: the daemon died\n{}",
        p.daemon_log()
    );
    // The new state file is valid: it starts with Build, records t itself, and the next check
    // finds t up to date without a word.
    let rec = p.rec("t");
    assert!(rec.starts_with("Build: "), "{what}: {rec}");
    assert!(rec.contains("Target: t\n"), "{what}: {rec}");
    let r = p.ifchange(&["t"]).ok();
    assert_eq!(r.stderr, "", "{what}: the rewritten .rec is not accepted");
    assert_eq!(p.runs("t.do"), runs_before + 1);
}

#[test]
fn corrupt_rec_means_rebuild_with_a_warning() {
    let p = Project::new();
    p.do_file("t.do", "echo hello\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let good = p.rec("t");

    // Garbage, including bytes that are not UTF-8.
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..300)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    p.write_bytes(".redo/t.rec".as_ref(), &garbage);
    assert_rebuilt_after_damage(&p, pid, 1, "garbage");

    // A copy cut in the middle of a hash (a crash of some other tool while writing).
    let cut = good.rfind("Hash: ").unwrap() + "Hash: ".len() + 20;
    p.write(".redo/t.rec", &good[..cut]);
    assert_rebuilt_after_damage(&p, pid, 2, "truncated");

    // Well-formed recfile syntax, unknown record type.
    p.write(".redo/t.rec", "Build: x\n\nType: bogus\nTarget: t\n");
    assert_rebuilt_after_damage(&p, pid, 3, "unknown-type");

    // Empty.
    p.write(".redo/t.rec", "");
    assert_rebuilt_after_damage(&p, pid, 4, "empty");
}

// ------------------------------------------------------------------------------------------
// 6. GNU recutils reads the state files.

fn recsel(p: &Project, args: &[&str]) -> String {
    let out = Command::new("recsel")
        .args(args)
        .current_dir(&p.root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run recsel ({e}): GNU recutils is required by this test; install it \
                 (e.g. `apt-get install recutils`)"
            )
        });
    assert!(
        out.status.success(),
        "recsel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn recutils_reads_rec_files() {
    let p = Project::new();
    p.do_file(
        "t.do",
        "redo-ifchange a b\necho \"$REDO_BUILD_UUID\" > uuid.txt\ncat a b\n",
    );
    p.write("a", "A\n");
    p.write("b", "B\n");
    p.ifchange(&["t"]).ok();
    assert_eq!(p.read("t"), "A\nB\n");

    let targets = recsel(
        &p,
        &["-P", "Target", "-e", "Type = \"ifchange\"", ".redo/t.rec"],
    );
    let mut targets: Vec<&str> = targets.lines().filter(|l| !l.is_empty()).collect();
    targets.sort_unstable();
    assert_eq!(targets, ["a", "b", "t", "t.do"], "recsel saw {targets:?}");

    let uuid = p.read("uuid.txt").trim().to_string();
    assert_eq!(uuid.len(), 36, "REDO_BUILD_UUID = {uuid:?}");
    let build = recsel(&p, &["-n", "0", "-p", "Build", ".redo/t.rec"]);
    assert_eq!(build.trim(), format!("Build: {uuid}"));
    let build = recsel(&p, &["-n", "0", "-P", "Build", ".redo/t.rec"]);
    assert_eq!(build.trim(), uuid);
}

// ------------------------------------------------------------------------------------------
// 7. The requester's environment, not the daemon's.

#[test]
fn do_files_see_the_requesters_environment() {
    let p = Project::new();
    p.do_file("t.do", "echo \"FOO=$FOO\"\n");
    for value in ["one", "two", "three"] {
        let mut c = p.command("redo");
        c.arg("t").env("FOO", value);
        run_cmd(c).ok();
        assert_eq!(p.read("t"), format!("FOO={value}\n"));
    }
    // And without it.
    p.redo(&["t"]).ok();
    assert_eq!(p.read("t"), "FOO=\n");
    assert_eq!(p.runs("t.do"), 4);
}

// ------------------------------------------------------------------------------------------
// 8. Hostile bytes on the socket.

/// Sends `bytes` (then half-closes unless `keep_open`), returns what came back before close.
#[track_caller]
fn poke(sock: &Path, bytes: &[u8], keep_open: bool, what: &str) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).unwrap();
    // The daemon may close before reading everything; that is its right.
    let _ = s.write_all(bytes);
    if !keep_open {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    read_until_closed(&mut s).unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[track_caller]
fn assert_accepted_hello(reply: &[u8], what: &str) {
    assert!(
        reply.len() >= HELLO_LEN,
        "{what}: no daemon hello ({reply:?})"
    );
    let h = DaemonHello::decode(reply[..HELLO_LEN].try_into().unwrap())
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(h.answer, Answer::Accepted, "{what}");
    assert_eq!(
        reply.len(),
        HELLO_LEN,
        "{what}: the daemon answered a bad frame with events"
    );
}

#[test]
fn garbage_on_the_socket_closes_only_that_connection() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.do_file("u.do", "echo u\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let sock = p.daemon_dir().unwrap().join("sock");
    let hello = ClientHello::new(false, Identity::ANY).encode();

    // Random bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 7;
            x ^= x >> 9;
            (x & 0xff) as u8
        })
        .collect();
    assert!(!random.starts_with(b"REDO"));
    let reply = poke(&sock, &random, false, "random bytes");
    assert!(reply.is_empty(), "random bytes were answered: {reply:?}");

    // Wrong magic, otherwise a perfect hello.
    let mut bad = hello;
    bad[..4].copy_from_slice(b"ODER");
    let reply = poke(&sock, &bad, false, "wrong magic");
    assert!(reply.is_empty(), "a wrong magic was answered: {reply:?}");

    // A short hello, then close.
    let reply = poke(&sock, &hello[..10], false, "short hello");
    assert!(reply.is_empty(), "{reply:?}");

    // Another protocol version (without the replace flag): refused, daemon unaffected.
    let mut other = ClientHello::new(false, Identity::ANY);
    other.version = PROTOCOL_VERSION.wrapping_add(1);
    let reply = poke(&sock, &other.encode(), false, "other version");
    assert_eq!(reply.len(), HELLO_LEN, "{reply:?}");
    let h = DaemonHello::decode(reply[..].try_into().unwrap()).unwrap();
    assert_eq!(h.answer, Answer::Mismatch);

    // A valid hello, then a 4 GiB length prefix: rejected before allocating, connection kept
    // open on our side so only the daemon can close it.
    let mut msg = hello.to_vec();
    msg.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let reply = poke(&sock, &msg, true, "oversized frame");
    assert_accepted_hello(&reply, "oversized frame");

    // A valid hello, then a frame cut short, then close.
    let mut msg = hello.to_vec();
    msg.extend_from_slice(&100u32.to_be_bytes());
    msg.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let reply = poke(&sock, &msg, false, "truncated frame");
    assert_accepted_hello(&reply, "truncated frame");

    // A valid hello, then a complete frame that is not a request.
    let mut msg = hello.to_vec();
    msg.extend_from_slice(&16u32.to_be_bytes());
    msg.extend_from_slice(&[0xfe; 16]);
    let reply = poke(&sock, &msg, true, "undecodable frame");
    assert_accepted_hello(&reply, "undecodable frame");

    assert!(
        alive(pid),
        "the daemon died of bad input\n{}",
        p.daemon_log()
    );
    assert_eq!(p.daemon_pid(), Some(pid));

    // A connection that sent its hello and then nothing does not hold anybody else up.
    let mut idle = UnixStream::connect(&sock).unwrap();
    idle.write_all(&hello).unwrap();
    let r = p.ifchange(&["u"]).ok();
    assert_eq!(r.built_names(), ["redo u"]);
    assert_eq!(p.read("u"), "u\n");
    drop(idle);

    p.redo(&["t"]).ok();
    assert_eq!(p.runs("t.do"), 2);
    assert_eq!(running_daemon(&p), pid);
}

// ------------------------------------------------------------------------------------------
// 9. Lifecycle.

#[test]
fn daemon_status_and_stop() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");

    // No daemon yet: status says so, and does not start one.
    let r = p.redo(&["--daemon-status"]);
    assert!(
        p.daemon_pid().is_none(),
        "--daemon-status started a daemon: {r:?}"
    );

    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let r = p.redo(&["--daemon-status"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.contains(&format!("pid: {pid}").as_str()),
        "status:\n{}",
        r.stdout
    );
    assert!(
        lines.contains(&format!("root: {}", p.root.display()).as_str()),
        "status:\n{}",
        r.stdout
    );

    p.redo(&["--daemon-stop"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "the daemon did not exit after --daemon-stop\n{}",
        p.daemon_log()
    );

    // The next build starts a new daemon by itself.
    let r = p.redo(&["t"]).ok();
    assert_eq!(r.built_names(), ["redo t"]);
    let new = running_daemon(&p);
    assert_ne!(new, pid);
    assert_eq!(daemons_of(&p), [new]);
}

#[test]
fn idle_daemon_exits_but_not_during_a_job() {
    let p = Project::new();
    p.do_file("quick.do", "echo quick\n");
    p.do_file("long.do", ": > started\nsleep 2\necho long\n");

    let mut c = p.command("redo-ifchange");
    c.arg("quick").env("REDO_DAEMON_IDLE", "0.5");
    run_cmd(c).ok();
    let pid = p.daemon_pid().unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || !alive(pid)),
        "with REDO_DAEMON_IDLE=0.5 the daemon is still there 15 s later\n{}",
        p.daemon_log()
    );

    // A new daemon, same idle setting, busy for 2 s: it must not leave in the middle.
    let mut c = p.command("redo");
    c.arg("long").env("REDO_DAEMON_IDLE", "0.5");
    let mut client = Kid::spawn("redo long", c);
    assert!(
        wait_until(EVENTUALLY, || p.exists("started")),
        "long.do never started\n{}",
        p.daemon_log()
    );
    let pid2 = running_daemon(&p);
    assert_ne!(pid2, pid);
    while !client.exited() {
        assert!(
            alive(pid2),
            "the daemon exited for idleness while a job ran\n{}",
            p.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    client.finish(EVENTUALLY).ok();
    assert_eq!(p.read("long"), "long\n");
    assert!(
        wait_until(Duration::from_secs(15), || !alive(pid2)),
        "the daemon did not exit once idle after the job\n{}",
        p.daemon_log()
    );
}

#[test]
fn killed_daemon_leftovers_are_recovered() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let dir = p.daemon_dir().unwrap();

    signal(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
    assert!(dir.join("sock").exists(), "no stale socket to recover from");
    assert!(
        dir.join("pid").exists(),
        "no stale pid file to recover from"
    );

    let r = p.redo(&["t"]);
    assert_eq!(
        r.code,
        0,
        "build after a SIGKILLed daemon failed:\n{}\n{}",
        r.stderr,
        p.daemon_log()
    );
    let new = running_daemon(&p);
    assert_ne!(new, pid);
    assert_eq!(p.runs("t.do"), 2);
    assert_eq!(daemons_of(&p), [new]);
}

// ------------------------------------------------------------------------------------------
// 10. Access control.

#[test]
fn runtime_dir_open_to_others_is_refused() {
    // A fresh project whose runtime dir somebody created 0755: no daemon is started in it.
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let dir = expected_daemon_dir(&p);
    fs::create_dir_all(&dir).unwrap();
    set_mode(dir.parent().unwrap(), 0o700);
    set_mode(&dir, 0o755);
    let r = p.ifchange(&["t"]).fails();
    assert!(r.stderr.contains("chmod 700"), "{}", r.stderr);
    assert!(!dir.join("sock").exists() && !dir.join("pid").exists());
    assert_eq!(p.runs("t.do"), 0);

    set_mode(&dir, 0o700);
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);

    // The same with a daemon already running there.
    set_mode(&dir, 0o755);
    let r = p.redo(&["t"]).fails();
    assert!(r.stderr.contains("chmod 700"), "{}", r.stderr);
    assert_eq!(p.runs("t.do"), 1);
    set_mode(&dir, 0o700);
    p.redo(&["t"]).ok();
    assert_eq!(p.runs("t.do"), 2);
    assert_eq!(running_daemon(&p), pid);
}

/// Restores 0700 on the runtime dirs however the test ends.
struct Reclose(Vec<PathBuf>);

impl Drop for Reclose {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn other_users_are_refused() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.do_file("x.do", "echo x\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let dir = p.daemon_dir().unwrap();
    let sock = dir.join("sock");

    if !nix::unistd::geteuid().is_root() {
        println!(
            "other_users_are_refused: not root, skipping the other-uid part (the rest still runs)"
        );
    } else {
        // Open the path to the socket to everybody, so that only the daemon's own check stands
        // between uid 65534 and the build.
        let dirs = vec![p.rundir.clone(), p.rundir.join("redo"), dir.clone()];
        let _reclose = Reclose(dirs.clone());
        for d in &dirs {
            set_mode(d, 0o711);
        }
        set_mode(&sock, 0o777);
        let as_nobody = |args: &[&str], env: &[(&str, &Path)], cwd: &Path| -> Run {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin(args[0]))
                .args(&args[1..])
                .current_dir(cwd)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("REDO_NO_SYNC", "1")
                .stdin(Stdio::null());
            for (k, v) in env {
                c.env(k, v);
            }
            run_cmd(c)
        };

        // A nested-style client talks to the socket directly.
        let r = as_nobody(
            &["redo-ifchange", "x"],
            &[
                ("REDO_SOCKET", sock.as_path()),
                ("REDO_JOB", Path::new("1")),
                ("HOME", Path::new("/")),
            ],
            Path::new("/"),
        );
        assert_eq!(r.code, 1, "uid 65534 was served: {r:?}");
        assert!(
            r.stderr.starts_with("redo-ifchange: "),
            "the client did not run: {r:?}"
        );
        assert!(
            !r.stderr.contains("REDO_JOB="),
            "the daemon read the request of uid 65534: {}",
            r.stderr
        );
        assert!(
            p.daemon_log().contains("65534"),
            "the daemon did not log the refused uid:\n{}",
            p.daemon_log()
        );

        // A top-level client of another uid refuses a runtime dir that is not its own.
        let r = as_nobody(
            &["redo-ifchange", "x"],
            &[("XDG_RUNTIME_DIR", p.rundir.as_path())],
            &p.root,
        );
        assert_eq!(r.code, 1, "uid 65534 was served: {r:?}");
        assert!(
            r.stderr.starts_with("redo-ifchange: ") && r.stderr.contains("runtime directory"),
            "refused for the wrong reason: {r:?}"
        );
        assert_eq!(p.runs("x.do"), 0);
        assert!(!p.exists("x"));
    }

    // The owner is still served, by the same daemon.
    p.ifchange(&["x"]).ok();
    assert_eq!(p.read("x"), "x\n");
    assert_eq!(running_daemon(&p), pid);
}

// ------------------------------------------------------------------------------------------
// 11. Stale nested environment.

#[test]
fn stale_redo_job_is_an_error() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.do_file("x.do", "echo x\n");
    p.ifchange(&["t"]).ok();
    let pid = running_daemon(&p);
    let sock = p.daemon_dir().unwrap().join("sock");

    let mut c = p.command("redo-ifchange");
    c.arg("x")
        .env("REDO_SOCKET", &sock)
        .env("REDO_JOB", "12345");
    let r = run_cmd(c).fails();
    assert!(r.stderr.contains("REDO_JOB"), "{}", r.stderr);

    let mut c = p.command("redo-ifchange");
    c.arg("x").env("REDO_SOCKET", &sock).env("REDO_JOB", "soon");
    let r = run_cmd(c).fails();
    assert!(r.stderr.contains("REDO_JOB"), "{}", r.stderr);

    assert_eq!(p.runs("x.do"), 0);
    assert!(!p.exists("x"));
    assert_eq!(running_daemon(&p), pid);
    p.ifchange(&["x"]).ok();
    assert_eq!(p.read("x"), "x\n");
}

// ------------------------------------------------------------------------------------------
// 12. Cross-process locks (docs/BEHAVIOUR.md §14).

/// A second daemon on the same tree (another runtime directory): `p.command` with it.
fn second_daemon(p: &Project) -> (PathBuf, impl Fn(&str) -> Command + '_) {
    let rundir = p.rundir.with_file_name("run2");
    fs::create_dir_all(&rundir).unwrap();
    set_mode(&rundir, 0o700);
    let dir = rundir.clone();
    (rundir, move |tool: &str| {
        let mut c = p.command(tool);
        c.env("XDG_RUNTIME_DIR", &dir);
        c
    })
}

#[test]
fn two_daemons_on_one_tree_never_build_one_target_at_once() {
    let p = Project::new();
    p.do_file("slow.do", "sleep 1\necho slow\n");
    p.do_file("quick.do", "echo quick\n");
    let (_rundir2, other) = second_daemon(&p);
    let first = spawn(&p, "redo-ifchange", &["slow"]);
    assert!(wait_until(EVENTUALLY, || p.runs("slow.do") == 1));

    // The second daemon waits for the first's build of `slow` and does not run it again;
    // as goredo does, a target another process built is not this build's: an error.
    let started = Instant::now();
    let mut c = other("redo-ifchange");
    c.arg("slow");
    let second = Kid::spawn("second redo-ifchange slow", c);
    // Meanwhile another target of the same directory is not held up by that lock.
    let mut c = other("redo-ifchange");
    c.arg("quick");
    run_cmd(c).ok();
    assert_eq!(p.read("quick"), "quick\n");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "quick waited for slow's lock: {:?}",
        started.elapsed()
    );

    let second = second.finish(Duration::from_secs(30));
    first.finish(Duration::from_secs(30)).ok();
    assert_eq!(second.code, 1, "{second:?}");
    assert!(second.stderr.contains("build differs"), "{}", second.stderr);
    assert_eq!(p.runs("slow.do"), 1, "two daemons built slow at once");
    assert_eq!(p.read("slow"), "slow\n");
    // One lock file for the directory, none per target.
    assert!(p.exists(".redo/.lock"));
    assert!(!p.exists(".redo/slow.lock") && !p.exists(".redo/quick.lock"));

    // The second daemon, asked again, finds it up to date (the first committed it).
    let mut c = other("redo-ifchange");
    c.arg("slow");
    run_cmd(c).ok();
    assert_eq!(p.runs("slow.do"), 1);
    let mut c = other("redo");
    c.arg("--daemon-stop");
    run_cmd(c).ok();
}

#[test]
fn goredos_lock_file_is_honoured_when_it_exists() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.write(".redo/t.lock", "");
    // goredo building `t`: a POSIX lock on its lock file, held for a second.
    let holder = Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\n\
             print('held', flush=True)\ntime.sleep(1)\n",
        )
        .arg(p.path(".redo/t.lock"))
        .stdout(Stdio::piped())
        .spawn();
    let mut holder = holder.expect("python3 (tests/setup-and-test.sh installs it)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    let started = Instant::now();
    let r = p.ifchange(&["t"]);
    let waited = started.elapsed();
    holder.wait().unwrap();
    // It waited for the lock, and since nobody built `t` meanwhile, says so.
    assert!(
        waited >= Duration::from_millis(500),
        "did not wait: {waited:?}"
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("was not built"), "{}", r.stderr);
    assert_eq!(p.runs("t.do"), 0, "built while goredo held the lock");
    // Free now: built.
    p.ifchange(&["t"]).ok();
    assert_eq!(p.read("t"), "t\n");
}

// ------------------------------------------------------------------------------------------
// 11. Start-up failures in plain words, and the runtime directories of dead daemons.

/// A daemon that exits at start-up: the client shows what it said, before its log (a fake
/// `redod` on the pipe) and after (the real one, refusing its environment, in its log).
#[test]
fn a_daemon_failing_at_start_up_says_why() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let fake = p.root.parent().unwrap().join("fake-redod");
    fs::write(
        &fake,
        "#!/bin/sh\necho 'fake-redod: no luck today' >&2\nexit 3\n",
    )
    .unwrap();
    set_mode(&fake, 0o755);
    let r = run_cmd({
        let mut c = p.command("redo-ifchange");
        c.arg("t").env("REDO_DAEMON", &fake);
        c
    })
    .fails();
    assert!(
        r.stderr
            .contains("fake-redod exited at start-up (exit status 3):\nfake-redod: no luck today"),
        "{}",
        r.stderr
    );
    let r = run_cmd({
        let mut c = p.command("redo-ifchange");
        c.arg("t").env("REDO_DAEMON_IDLE", "soon");
        c
    })
    .fails();
    assert!(
        r.stderr.contains("exited at start-up (exit status 1)")
            && r.stderr
                .contains("REDO_DAEMON_IDLE='soon' is not a number of seconds"),
        "{}",
        r.stderr
    );
    assert_eq!(p.runs("t.do"), 0);
    p.ifchange(&["t"]).ok();
}

/// System errors come in words with the path, never as `(os error N)`.
#[test]
fn client_errors_are_plain_words() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let file = p.root.parent().unwrap().join("not-a-dir");
    fs::write(&file, "").unwrap();
    type Env<'a> = &'a [(&'a str, &'a Path)];
    let cases: [(&str, Env, String); 2] = [
        (
            "runtime dir under a file",
            &[("XDG_RUNTIME_DIR", &file)],
            format!("redo-ifchange: cannot inspect {}/redo/", file.display()),
        ),
        (
            "nested client of a daemon that is gone",
            &[
                ("REDO_SOCKET", Path::new("/nonexistent/sock")),
                ("REDO_JOB", Path::new("7")),
            ],
            "redo-ifchange: cannot reach the redo daemon at /nonexistent/sock that runs this .do \
             (no such file or directory)"
                .to_string(),
        ),
    ];
    for (what, env, want) in cases {
        let mut c = p.command("redo-ifchange");
        c.arg("t").envs(env.iter().copied());
        let r = run_cmd(c).fails();
        assert!(r.stderr.contains(&want), "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains(": not a directory.")
                || r.stderr.contains("(no such file or directory)"),
            "{what}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("os error"), "{what}: {}", r.stderr);
    }
}

/// Makes `dir` look unchanged for `age` (its mtime that far back).
fn age(dir: &Path, age: Duration) {
    let then = std::time::SystemTime::now() - age;
    fs::File::open(dir).unwrap().set_modified(then).unwrap();
}

/// A client that starts a daemon removes the runtime directories of dead daemons beside its
/// own (quiet for a minute; a killed one's for a day), never a live daemon's, a fresh one or
/// a directory that is not redo's.
#[test]
fn dead_daemons_runtime_dirs_are_removed_by_the_next_start() {
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    let base = p.rundir.join("redo");
    // Dead daemons of other projects sharing this XDG_RUNTIME_DIR, made by real daemons.
    let others: Vec<Project> = (0..4).map(|_| Project::new()).collect();
    let mut dirs = Vec::new();
    for (i, o) in others.iter().enumerate() {
        o.do_file("t.do", "echo t\n");
        let mut c = o.command("redo-ifchange");
        c.arg("t").env("XDG_RUNTIME_DIR", &p.rundir);
        run_cmd(c).ok();
        let dir = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|d| !dirs.contains(d))
            .unwrap();
        let pid = pid_in(&dir);
        dirs.push(dir.clone());
        match i {
            // 0: a live daemon (quiet for ten minutes by its mtime): kept.
            0 => {}
            // 1: exited, quiet for two minutes: removed.
            // 2: exited a moment ago: kept.
            1 | 2 => {
                signal(pid, nix::sys::signal::Signal::SIGTERM);
                assert!(wait_until(EVENTUALLY, || !alive(pid)));
            }
            // 3: killed (its socket left behind), quiet for two minutes: kept for a day.
            _ => {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
                assert!(wait_until(EVENTUALLY, || !alive(pid)));
            }
        }
    }
    let ten_min = Duration::from_secs(600);
    let two_min = Duration::from_secs(120);
    age(&dirs[0], ten_min);
    age(&dirs[1], two_min);
    age(&dirs[3], two_min);
    // Not redo's: no start lock in it.
    let foreign = base.join("somebody-elses");
    fs::create_dir_all(&foreign).unwrap();
    age(&foreign, ten_min);

    p.ifchange(&["t"]).ok();
    let left: Vec<PathBuf> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let own = expected_daemon_dir(&p);
    for (dir, kept) in [
        (&dirs[0], true),
        (&dirs[1], false),
        (&dirs[2], true),
        (&dirs[3], true),
        (&foreign, true),
        (&own, true),
    ] {
        assert_eq!(left.contains(dir), kept, "{}: {left:?}", dir.display());
    }
    // The live daemon still serves its project.
    let mut c = others[0].command("redo");
    c.arg("t").env("XDG_RUNTIME_DIR", &p.rundir);
    run_cmd(c).ok();

    // A day later the killed one's goes too, at the next start.
    age(&dirs[3], Duration::from_secs(25 * 3600));
    // (Not `p.stop_daemon()`: it takes the first directory it finds for the project's.)
    let pid = pid_in(&own);
    p.redo(&["--daemon-stop"]).ok();
    assert!(wait_until(EVENTUALLY, || !alive(pid)));
    p.ifchange(&["t"]).ok();
    assert!(!dirs[3].exists() && dirs[0].exists());
    for (o, dir) in others.iter().zip(&dirs) {
        let mut c = o.command("redo");
        c.arg("--daemon-stop").env("XDG_RUNTIME_DIR", &p.rundir);
        run_cmd(c);
        let _ = fs::remove_dir_all(dir);
    }
    let _ = fs::remove_dir_all(&foreign);
}

/// The pid in a runtime directory's pid file.
fn pid_in(dir: &Path) -> i32 {
    fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Sums the voluntary context switches of every thread of `pid`: how often it woke up.
fn wakeups(pid: i32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                total += n.trim().parse::<u64>().unwrap();
            }
        }
    }
    total
}

#[test]
fn an_idle_daemon_sleeps() {
    // Idle, the daemon looks once a second whether its project is still there, and its
    // watcher's thread once a second whether it is still wanted: a few wake-ups a second,
    // not one every 100 ms.
    let p = Project::new();
    p.do_file("t.do", "echo t\n");
    p.redo(&["t"]).ok();
    let pid = p.daemon_pid().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before = wakeups(pid);
    std::thread::sleep(Duration::from_secs(4));
    let woke = wakeups(pid) - before;
    assert!(
        woke <= 16,
        "the idle daemon woke {woke} times in 4 s\n{}",
        p.daemon_log()
    );
    // And it still answers at once.
    p.redo(&["t"]).ok();
}
