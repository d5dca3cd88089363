//! The engine's orchestration, tested in memory: a scripted [`Executor`] stands in for `.do`
//! processes and an in-memory [`MemFs`] for the disk. Requests are served by
//! [`crate::request::serve`] exactly as the clients' are (nested ones carry `parent_job`).

use crate::engine::{BoxFuture, Engine, Executor, Flight, NoProcess};
use crate::engine::{JobError, Ran};
use crate::fs::{Fs, mem::MemFs};
use crate::output::{Sink, Style};
use crate::store::recfile::{self, Dep, Rec};
use redo_proto::msg::ByteBuf;
use redo_proto::{Build, BuildMode, BuildOptions, Command, Request, Terminal};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Output = Arc<dyn Fn(&[String]) -> String + Send + Sync>;

/// What a fake `.do` does: `redo-ifchange deps`, maybe `redo-always`, wait, then write
/// `output(contents of deps)` (or fail).
#[derive(Clone)]
struct Script {
    deps: Vec<String>,
    always: bool,
    fail: bool,
    delay: Duration,
    output: Output,
    /// Also rewrites this file (path, content) while it runs: a `.do` with a side effect.
    touch: Option<(&'static str, &'static str)>,
}

fn script(deps: &[&str]) -> Script {
    Script {
        deps: deps.iter().map(|d| d.to_string()).collect(),
        always: false,
        fail: false,
        delay: Duration::ZERO,
        output: Arc::new(|inputs: &[String]| format!("built from [{}]", inputs.join("|"))),
        touch: None,
    }
}

struct Fake {
    fs: Arc<MemFs>,
    scripts: Mutex<HashMap<PathBuf, Script>>,
    runs: Mutex<HashMap<PathBuf, usize>>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Fake {
    fn set_touch(&self, target: &str, touch: Option<(&'static str, &'static str)>) {
        if let Some(s) = self.scripts.lock().unwrap().get_mut(Path::new(target)) {
            s.touch = touch;
        }
    }

    fn runs(&self, t: &str) -> usize {
        self.runs
            .lock()
            .unwrap()
            .get(Path::new(t))
            .copied()
            .unwrap_or(0)
    }
}

/// Serves `req` as the daemon would.
async fn serve(engine: &Arc<Engine>, req: Request, sink: Sink) -> i32 {
    let ctx = crate::request::Context {
        engine: engine.clone(),
        caches: Arc::default(),
        // Maintenance commands, which would write, are not tested here.
        disk: Arc::new(MemFs::default()),
    };
    crate::request::serve(&ctx, crate::request::Incoming::parse(req), sink, None).await
}

fn request(
    cwd: &Path,
    mode: BuildMode,
    targets: &[&str],
    parent: Option<u64>,
    jobs: Option<u32>,
) -> Request {
    Request {
        command: Command::Build(Build {
            mode,
            targets: targets
                .iter()
                .map(|t| ByteBuf::from(t.as_bytes().to_vec()))
                .collect(),
            options: BuildOptions {
                jobs,
                ..BuildOptions::default()
            },
        }),
        program: ByteBuf::from(b"redo-ifchange".to_vec()),
        cwd: ByteBuf::from(cwd.as_os_str().as_encoded_bytes().to_vec()),
        env: Vec::new(),
        umask: 0o022,
        parent_job: parent,
        make_jobserver: None,
        client_dir: ByteBuf::new(),
        terminal: Terminal::default(),
    }
}

impl Executor for Fake {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        flight: &'a Arc<Flight>,
    ) -> BoxFuture<'a, Result<Ran, JobError>> {
        Box::pin(async move {
            let fail = |msg: &str| JobError::new(std::io::Error::other(msg.to_string()));
            let Some(s) = self.scripts.lock().unwrap().get(&flight.target).cloned() else {
                return Err(fail("no .do found"));
            };
            *self
                .runs
                .lock()
                .unwrap()
                .entry(flight.target.clone())
                .or_default() += 1;
            let token = flight.session.tokens.acquire().await;
            flight.mark_started();
            let job = engine.register_job(flight, Vec::new(), token, Arc::new(NoProcess));
            let (sink, _rx) = Sink::new(engine.next_id(), Style::default());
            if s.always {
                let mut r = request(&flight.dir, BuildMode::Ifchange, &[], Some(job.id()), None);
                r.command = Command::Always;
                assert_eq!(serve(engine, r, sink.clone()).await, 0);
            }
            if !s.deps.is_empty() {
                let deps: Vec<&str> = s.deps.iter().map(String::as_str).collect();
                let nested = request(
                    &flight.dir,
                    BuildMode::Ifchange,
                    &deps,
                    Some(job.id()),
                    None,
                );
                let code = serve(engine, nested, sink).await;
                if code != 0 {
                    return Err(fail("exit status 1"));
                }
            }
            if let Some((path, content)) = s.touch {
                self.fs.rewrite(path, content);
            }
            // "Running its own code": counts towards the concurrency the tokens bound.
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(s.delay).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if s.fail {
                return Err(fail("exit status 1"));
            }
            let inputs: Vec<String> = s
                .deps
                .iter()
                .map(|d| {
                    String::from_utf8(
                        self.fs
                            .read(&flight.dir.join(d))
                            .unwrap()
                            .unwrap_or_default(),
                    )
                    .unwrap()
                })
                .collect();
            let content = (s.output)(&inputs);
            let target = flight.target.to_str().unwrap();
            // Same content: the old file is kept, as the real runner does.
            if self.fs.read(&flight.target).unwrap().as_deref() != Some(content.as_bytes()) {
                self.fs.write(target, &content);
            }
            let mut deps = job.take_records().into_vec();
            let meta = self.fs.meta(target);
            deps.push(Dep::Ifchange {
                target: flight.name.as_encoded_bytes().to_vec(),
                stamp: meta.stamp,
                hash: Some(self.fs.hash(&flight.target).unwrap()),
            });
            let rec = Rec {
                build: flight.session.uuid.clone(),
                deps,
            };
            let rec_path = crate::store::layout::rec_path(&flight.dir, &flight.name);
            self.fs.write(
                rec_path.to_str().unwrap(),
                std::str::from_utf8(&recfile::encode(&rec)).unwrap(),
            );
            Ok(Ran::Built {
                took: s.delay,
                do_rel: None,
                do_path: flight.dir.join("fake.do"),
                cached: false,
            })
        })
    }
}

struct World {
    fs: Arc<MemFs>,
    fake: Arc<Fake>,
    engine: Arc<Engine>,
}

impl World {
    fn new(scripts: &[(&str, Script)]) -> World {
        let fs = Arc::new(MemFs::default());
        let fake = Arc::new(Fake {
            fs: fs.clone(),
            scripts: Mutex::new(
                scripts
                    .iter()
                    .map(|(t, s)| (PathBuf::from(t), s.clone()))
                    .collect(),
            ),
            runs: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        // A real `.do` file per scripted target, so that they are targets and not sources.
        for (t, _) in scripts {
            fs.write(&format!("{t}.do"), "# fake");
        }
        let engine = Engine::new(
            fs.clone(),
            fake.clone(),
            PathBuf::from("/nonexistent/sock"),
            None,
            0o022,
        );
        World { fs, fake, engine }
    }

    /// A top-level request from `/p`, with a 10 s watchdog (a hang is a failure).
    async fn top(&self, mode: BuildMode, targets: &[&str], jobs: Option<u32>) -> i32 {
        let (sink, _rx) = Sink::new(self.engine.next_id(), Style::default());
        let req = request(Path::new("/p"), mode, targets, None, jobs);
        tokio::time::timeout(Duration::from_secs(10), serve(&self.engine, req, sink))
            .await
            .expect("request hung")
    }

    async fn ifchange(&self, targets: &[&str]) -> i32 {
        self.top(BuildMode::Ifchange, targets, None).await
    }

    async fn redo(&self, targets: &[&str]) -> i32 {
        self.top(BuildMode::Redo, targets, None).await
    }

    fn read(&self, p: &str) -> String {
        String::from_utf8(self.fs.read(Path::new(p)).unwrap().unwrap()).unwrap()
    }
}

#[tokio::test]
async fn builds_then_noop_then_rebuilds_what_changed() {
    let w = World::new(&[
        ("/p/a", script(&["b", "src1"])),
        ("/p/b", script(&["src2"])),
    ]);
    w.fs.write("/p/src1", "one");
    w.fs.write("/p/src2", "two");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!(w.read("/p/a"), "built from [built from [two]|one]");
    assert_eq!((w.fake.runs("/p/a"), w.fake.runs("/p/b")), (1, 1));
    // Up to date: nothing runs.
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!((w.fake.runs("/p/a"), w.fake.runs("/p/b")), (1, 1));
    // A touched source with the same content rebuilds nothing.
    w.fs.touch("/p/src2");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!((w.fake.runs("/p/a"), w.fake.runs("/p/b")), (1, 1));
    // A deep change rebuilds the chain, bottom-up.
    w.fs.rewrite("/p/src2", "TWO");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!((w.fake.runs("/p/a"), w.fake.runs("/p/b")), (2, 2));
    assert_eq!(w.read("/p/a"), "built from [built from [TWO]|one]");
}

#[tokio::test]
async fn early_cutoff_when_a_dependency_rebuilds_to_the_same_content() {
    let mut b = script(&["src"]);
    b.output = Arc::new(|i: &[String]| format!("length {}", i[0].len()));
    let w = World::new(&[("/p/a", script(&["b"])), ("/p/b", b)]);
    w.fs.write("/p/src", "abc");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    w.fs.rewrite("/p/src", "xyz");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!(w.fake.runs("/p/b"), 2, "b's input changed");
    assert_eq!(
        w.fake.runs("/p/a"),
        1,
        "b's output did not: a is not rebuilt"
    );
    w.fs.rewrite("/p/src", "longer");
    assert_eq!(w.ifchange(&["a"]).await, 0);
    assert_eq!(w.fake.runs("/p/a"), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_build() {
    let mut slow = script(&[]);
    slow.delay = Duration::from_millis(100);
    let w = World::new(&[("/p/slow", slow)]);
    let (x, y, z) = tokio::join!(
        w.ifchange(&["slow"]),
        w.ifchange(&["slow"]),
        w.redo(&["slow"])
    );
    assert_eq!((x, y, z), (0, 0, 0));
    // The two `redo-ifchange` share one build; the forced `redo` (asked while it ran) waits
    // for it, then runs the target itself, as goredo does.
    assert_eq!(w.fake.runs("/p/slow"), 2);
}

#[tokio::test]
async fn cycles_fail_instead_of_hanging() {
    let w = World::new(&[
        ("/p/a", script(&["b"])),
        ("/p/b", script(&["c"])),
        ("/p/c", script(&["a"])),
        ("/p/self", script(&["self"])),
    ]);
    assert_eq!(w.ifchange(&["a"]).await, 1);
    assert_eq!(w.ifchange(&["self"]).await, 1);
    let (jobs, flights) = w.engine.activity();
    assert_eq!(
        (jobs, flights),
        (0, 0),
        "nothing left running after a cycle"
    );
    // The daemon still builds normally afterwards.
    w.fake
        .scripts
        .lock()
        .unwrap()
        .insert(PathBuf::from("/p/c"), script(&[]));
    assert_eq!(w.ifchange(&["a"]).await, 0);
}

#[tokio::test]
async fn always_runs_once_per_session() {
    let mut al = script(&[]);
    al.always = true;
    let w = World::new(&[
        ("/p/top", script(&["x", "y"])),
        ("/p/x", script(&["al"])),
        ("/p/y", script(&["al"])),
        ("/p/al", al),
    ]);
    assert_eq!(w.redo(&["top"]).await, 0);
    assert_eq!(w.fake.runs("/p/al"), 1);
    // A new session: out of date again, once.
    assert_eq!(w.ifchange(&["top"]).await, 0);
    assert_eq!(w.fake.runs("/p/al"), 2);
    assert!(w.read("/p/.redo/al.rec").contains("Type: always"));
}

#[tokio::test]
async fn redo_is_forced_and_sequential_ifchange_is_not() {
    let mut bad = script(&[]);
    bad.fail = true;
    let w = World::new(&[
        ("/p/a", script(&[])),
        ("/p/bad", bad),
        ("/p/c", script(&[])),
    ]);
    assert_eq!(w.redo(&["a", "bad", "c"]).await, 1);
    assert_eq!(
        (
            w.fake.runs("/p/a"),
            w.fake.runs("/p/bad"),
            w.fake.runs("/p/c")
        ),
        (1, 1, 0),
        "redo stops at the first failure"
    );
    assert_eq!(w.redo(&["a"]).await, 0);
    assert_eq!(w.fake.runs("/p/a"), 2, "redo rebuilds an up-to-date target");
    assert_eq!(w.ifchange(&["bad", "c", "c", "./c"]).await, 1);
    assert_eq!(
        w.fake.runs("/p/c"),
        1,
        "siblings of a failure still build, de-duplicated"
    );
}

#[tokio::test]
async fn sources_are_never_built() {
    let w = World::new(&[]);
    w.fs.write("/p/default.do", "# would match anything");
    w.fs.write("/p/src.c", "int x;");
    assert_eq!(w.ifchange(&["src.c"]).await, 0);
    assert_eq!(w.redo(&["src.c"]).await, 0);
    assert_eq!(w.fake.runs("/p/src.c"), 0);
}

#[tokio::test]
async fn tokens_bound_concurrency_and_nesting_lends_them() {
    let mut leaves = Vec::new();
    for i in 0..6 {
        let mut s = script(&[]);
        s.delay = Duration::from_millis(30);
        leaves.push((format!("/p/leaf{i}"), s));
    }
    let names: Vec<String> = (0..6).map(|i| format!("leaf{i}")).collect();
    let mut scripts: Vec<(&str, Script)> = leaves
        .iter()
        .map(|(t, s)| (t.as_str(), s.clone()))
        .collect();
    let top = script(&names.iter().map(String::as_str).collect::<Vec<_>>());
    scripts.push(("/p/top", top));
    let w = World::new(&scripts);
    // -j 2: the top's .do waits in its nested request without holding a token, and never more
    // than two leaves run at once.
    assert_eq!(w.top(BuildMode::Ifchange, &["top"], Some(2)).await, 0);
    assert_eq!(w.fake.peak.load(Ordering::SeqCst), 2);
    for i in 0..6 {
        assert_eq!(w.fake.runs(&format!("/p/leaf{i}")), 1);
    }
}

#[tokio::test]
async fn deep_nesting_at_j1_does_not_deadlock() {
    let w = World::new(&[
        ("/p/t1", script(&["t2"])),
        ("/p/t2", script(&["t3"])),
        ("/p/t3", script(&["t4"])),
        ("/p/t4", script(&["t5"])),
        ("/p/t5", script(&[])),
    ]);
    assert_eq!(w.top(BuildMode::Ifchange, &["t1"], Some(1)).await, 0);
    assert_eq!(w.fake.peak.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_leaving_cancels_what_only_it_waited_for() {
    let mut slow = script(&[]);
    slow.delay = Duration::from_secs(30);
    let w = World::new(&[("/p/slow", slow)]);
    let gone = tokio::time::timeout(Duration::from_millis(50), w.ifchange(&["slow"])).await;
    assert!(gone.is_err(), "the request was still running");
    // The flight is cancelled: nothing committed, nothing left in the tables.
    let idle = async {
        while w.engine.activity() != (0, 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), idle)
        .await
        .expect("flight not cancelled");
    assert!(w.fs.read(Path::new("/p/slow")).unwrap().is_none());
    assert!(w.fs.read(Path::new("/p/.redo/slow.rec")).unwrap().is_none());
}

#[tokio::test]
async fn a_shared_build_survives_one_waiter_leaving() {
    let mut slow = script(&[]);
    slow.delay = Duration::from_millis(200);
    let w = World::new(&[("/p/slow", slow)]);
    let impatient = tokio::time::timeout(Duration::from_millis(50), w.ifchange(&["slow"]));
    let patient = w.ifchange(&["slow"]);
    let (first, second) = tokio::join!(impatient, patient);
    assert!(first.is_err());
    assert_eq!(second, 0);
    assert_eq!(w.fake.runs("/p/slow"), 1);
    assert!(w.fs.read(Path::new("/p/slow")).unwrap().is_some());
}

#[tokio::test]
async fn a_failed_dependency_fails_its_dependants_once() {
    let mut bad = script(&[]);
    bad.fail = true;
    let w = World::new(&[("/p/a", script(&["bad"])), ("/p/bad", bad)]);
    assert_eq!(w.ifchange(&["a"]).await, 1);
    assert_eq!(w.fake.runs("/p/bad"), 1);
    assert!(w.fs.read(Path::new("/p/a")).unwrap().is_none());
    // A failed target is retried by the next session.
    assert_eq!(w.ifchange(&["a"]).await, 1);
    assert_eq!(w.fake.runs("/p/bad"), 2);
}

/// Two dependants of a failed target in one session: its `.do` runs once, both fail, and the
/// session's summary names who needed it.
#[tokio::test]
async fn a_failed_target_runs_once_per_session() {
    let mut bad = script(&[]);
    bad.fail = true;
    let w = World::new(&[
        ("/p/top", script(&["a", "c"])),
        ("/p/a", script(&["bad"])),
        ("/p/c", script(&["bad"])),
        ("/p/bad", bad),
    ]);
    assert_eq!(w.ifchange(&["top"]).await, 1);
    assert_eq!(w.fake.runs("/p/bad"), 1);
    assert_eq!((w.fake.runs("/p/a"), w.fake.runs("/p/c")), (1, 1));
    // Forced, in the next session: run again, once.
    assert_eq!(w.redo(&["bad", "bad"]).await, 1);
    assert_eq!(w.fake.runs("/p/bad"), 2);
}

/// A request's targets are judged in order: a verdict of a later target is not answered before
/// an earlier one was built, which may change what the later one read.
#[tokio::test]
async fn a_later_targets_verdict_waits_for_the_earlier_builds() {
    let verdicts = Arc::new(crate::verdict::Verdicts::default());
    let World { fs, fake, engine } =
        World::new(&[("/p/w", script(&["in"])), ("/p/r", script(&["src"]))]);
    let w = World {
        fs,
        fake,
        engine: engine.with_verdicts(verdicts.clone()),
    };
    w.fs.report_to(verdicts.clone());
    w.fs.write("/p/src", "old");
    w.fs.write("/p/in", "1");
    assert_eq!(w.ifchange(&["w", "r"]).await, 0);
    // A no-op: verdicts now vouch for both.
    assert_eq!(w.ifchange(&["w", "r"]).await, 0);
    assert_eq!((w.fake.runs("/p/w"), w.fake.runs("/p/r")), (1, 1));
    // w is out of date, and its rebuild writes src, which r reads.
    w.fs.rewrite("/p/in", "2");
    w.fake.set_touch("/p/w", Some(("/p/src", "new")));
    assert_eq!(w.ifchange(&["w", "r"]).await, 0);
    assert_eq!(w.fake.runs("/p/r"), 2);
    assert_eq!(w.read("/p/r"), "built from [new]");
}

#[tokio::test]
async fn nested_requests_record_dependencies_relative_to_the_target() {
    let w = World::new(&[
        ("/p/sub/t", script(&["../src", "x/y"])),
        ("/p/sub/x/y", script(&[])),
    ]);
    w.fs.write("/p/src", "s");
    assert_eq!(w.ifchange(&["sub/t"]).await, 0);
    let rec = recfile::parse(w.read("/p/sub/.redo/t.rec").as_bytes()).unwrap();
    let names: Vec<String> = rec
        .ifchange_targets()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    assert_eq!(names, ["../src", "x/y", "t"]);
}

/// With a filesystem that reports its changes to the verdicts (as the watcher does), a no-op
/// is answered from them, no `.do` runs, and a change anywhere below still rebuilds exactly
/// what it must, bottom-up.
#[tokio::test]
async fn verdicts_answer_no_ops_and_changes_reach_them() {
    let verdicts = Arc::new(crate::verdict::Verdicts::default());
    let World { fs, fake, engine } = World::new(&[
        ("/p/a", script(&["b", "src1"])),
        ("/p/b", script(&["src2"])),
        ("/p/c", script(&["src1"])),
    ]);
    let engine = engine.with_verdicts(verdicts.clone());
    let w = World { fs, fake, engine };
    w.fs.report_to(verdicts.clone());
    w.fs.write("/p/src1", "one");
    w.fs.write("/p/src2", "two");
    let runs = |w: &World| ["/p/a", "/p/b", "/p/c"].map(|t| w.fake.runs(t));
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    assert_eq!(runs(&w), [1, 1, 1]);
    // The first no-op checks fully and keeps verdicts; the next is answered by them.
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    let (held, hits) = verdicts.stats();
    assert_eq!(held, 3, "a, b and c");
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    assert!(verdicts.stats().1 > hits);
    assert_eq!(runs(&w), [1, 1, 1]);
    // A change two levels below a: b and then a are rebuilt, c is not.
    w.fs.rewrite("/p/src2", "TWO");
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    assert_eq!(runs(&w), [2, 2, 1]);
    assert_eq!(w.read("/p/a"), "built from [built from [TWO]|one]");
    // A source shared by two targets.
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    w.fs.rewrite("/p/src1", "ONE");
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    assert_eq!(runs(&w), [3, 2, 2]);
    // A target's own file changed behind redo's back: rebuilt (its record no longer matches).
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    w.fs.remove("/p/c");
    assert_eq!(w.ifchange(&["a", "c"]).await, 0);
    assert_eq!(runs(&w), [3, 2, 3]);
    // A forced build never asks a verdict.
    assert_eq!(w.redo(&["b"]).await, 0);
    assert_eq!(runs(&w)[1], 3);
}

/// A session remembers no source's stat: a `.do` that changes a source another target of the
/// same session reads (after that source was seen in the session) makes that target out of
/// date on the spot, as goredo's check at every request would, and what is kept as a verdict
/// is the check made from the new stat.
#[tokio::test]
async fn a_source_a_do_changes_is_seen_later_in_the_same_session() {
    let verdicts = Arc::new(crate::verdict::Verdicts::default());
    let mut m = script(&[]);
    m.always = true;
    // r's output does not depend on its inputs: rebuilt, it leaves t's walk going on to m, q.
    let mut r = script(&["src", "other"]);
    r.output = Arc::new(|_: &[String]| "r".to_string());
    let World { fs, fake, engine } = World::new(&[
        ("/p/t", script(&["r", "m", "q"])),
        ("/p/r", r),
        ("/p/m", m),
        ("/p/q", script(&["src"])),
    ]);
    let w = World {
        fs,
        fake,
        engine: engine.with_verdicts(verdicts.clone()),
    };
    w.fs.report_to(verdicts.clone());
    w.fs.write("/p/src", "old");
    w.fs.write("/p/other", "1");
    assert_eq!(w.ifchange(&["t"]).await, 0);
    assert_eq!(w.ifchange(&["t"]).await, 0);
    assert_eq!(w.read("/p/q"), "built from [old]");
    // r is out of date (its own source changed): rebuilding it reads src's stat in this
    // session. Then m rewrites src, then q is checked: from src's stat now.
    w.fs.rewrite("/p/other", "2");
    w.fake.set_touch("/p/m", Some(("/p/src", "new")));
    assert_eq!(w.ifchange(&["t"]).await, 0);
    assert_eq!(w.fake.runs("/p/r"), 2, "r was rebuilt");
    assert_eq!(
        w.fake.runs("/p/q"),
        2,
        "q saw the change within the session"
    );
    assert_eq!(w.read("/p/q"), "built from [new]");
    w.fake.set_touch("/p/m", None);
    // The next session has nothing left to do for q.
    assert_eq!(w.ifchange(&["q"]).await, 0);
    assert_eq!(w.fake.runs("/p/q"), 2);
}
