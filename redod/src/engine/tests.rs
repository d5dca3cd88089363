//! Unit tests of the engine's parts: UUIDs, where a flight's output goes, cycles. (Its
//! orchestration is tested in memory through requests: `request::tests::memory`.)

use super::*;
use crate::engine::session::new_uuid;

#[test]
fn uuid_format() {
    let u = new_uuid();
    assert_eq!(u.len(), 36);
    assert_eq!(u.as_bytes()[14], b'4');
    assert!(
        u.chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(u, new_uuid());
}

fn flight(target: &str, session: &Arc<Session>, waiters: Vec<Waiter>) -> Arc<Flight> {
    let origin = Arc::new(Origin {
        cwd: PathBuf::from("/"),
        env: Env::default(),
        umask: 0o022,
        client_dir: PathBuf::new(),
        settings: Settings::default(),
        trace: false,
    });
    Arc::new(Flight {
        target: PathBuf::from(target),
        dir: PathBuf::from("/"),
        name: target.trim_start_matches('/').into(),
        display: target.trim_start_matches('/').into(),
        level: 0,
        force: false,
        session: session.clone(),
        origin,
        seen: Mutex::new(None),
        waiters: Mutex::new(
            waiters
                .into_iter()
                .enumerate()
                .map(|(i, w)| (i as u64, w))
                .collect(),
        ),
        result: watch::channel(None).0,
        started: watch::channel(false).0,
        cancel: CancellationToken::new(),
    })
}

fn job(flight: &Arc<Flight>) -> Arc<Job> {
    Arc::new(Job {
        id: 0,
        flight: flight.clone(),
        records: Mutex::default(),
        token: Mutex::new(None),
        process: Arc::new(NoProcess),
    })
}

fn ids(sinks: &[Sink]) -> Vec<u64> {
    sinks.iter().map(|s| s.id).collect()
}

#[test]
fn text_goes_to_the_nearest_client_events_to_the_top() {
    let fs: Arc<dyn Fs> = Arc::new(crate::fs::mem::MemFs::default());
    let session = Arc::new(Session::new(Tokens::new(1, None), fs, false, None));
    let (top, _t) = Sink::new(
        1,
        Style {
            colour: true,
            ..Style::default()
        },
    );
    let (nested, _n) = Sink::new(
        2,
        Style {
            debug: true,
            ..Style::default()
        },
    );
    let (other, _o) = Sink::new(3, Style::default());
    let (other_nested, _on) = Sink::new(4, Style::default());
    let all = flight("/all", &session, vec![Waiter::Client(top.clone())]);
    let all_job = job(&all);
    let redirected = Waiter::Job {
        job: all_job.clone(),
        sink: nested.clone(),
        redirected: true,
    };
    let direct = Waiter::Job {
        job: all_job.clone(),
        sink: nested.clone(),
        redirected: false,
    };
    // x, asked for by a nested client whose stderr is captured, checks its dependency d.
    let x = flight("/x", &session, vec![redirected.clone()]);
    let d = flight("/d", &session, vec![Waiter::Flight(x.clone())]);
    assert_eq!(ids(&x.sinks()), [2]);
    assert_eq!(ids(&d.sinks()), [2], "a checking flight passes its text up");
    assert_eq!(ids(&d.clients()), [1], "events go to the top-level client");
    // Not redirected: where the job's own text goes.
    let y = flight("/y", &session, vec![direct.clone()]);
    assert_eq!(ids(&y.sinks()), [1]);
    let shown = y.sinks()[0].style;
    assert!(
        shown.debug && shown.colour,
        "as the nested client asked, on the top-level terminal"
    );
    assert!(!x.sinks()[0].style.colour);
    // The first waiter serves a terminal; a later one reaching only that terminal adds
    // nothing, whichever way it reaches it.
    let z = flight("/z", &session, vec![redirected.clone(), direct.clone()]);
    assert_eq!(ids(&z.sinks()), [2]);
    let z = flight("/z", &session, vec![direct.clone(), redirected.clone()]);
    assert_eq!(ids(&z.sinks()), [1]);
    // Another terminal sharing the build gets it too, and so does its own nested client.
    let b = flight("/b", &session, vec![Waiter::Client(other.clone())]);
    let b_nested = Waiter::Job {
        job: job(&b),
        sink: other_nested.clone(),
        redirected: true,
    };
    let z = flight("/z", &session, vec![redirected, b_nested, direct]);
    assert_eq!(ids(&z.sinks()), [2, 4]);
    let mut top_ids = ids(&z.clients());
    top_ids.sort_unstable();
    assert_eq!(top_ids, [1, 3]);
}

#[test]
fn cycles_are_found_with_their_path() {
    let mut t = Tables::default();
    let p = |s: &str| PathBuf::from(s);
    t.waits.insert(p("/b"), HashMap::from_iter([(p("/c"), 1)]));
    t.waits.insert(p("/c"), HashMap::from_iter([(p("/a"), 2)]));
    // a waiting for b closes a → b → c → a.
    assert_eq!(
        t.cycle(&p("/a"), &p("/b")),
        Some(vec![p("/a"), p("/b"), p("/c"), p("/a")])
    );
    assert_eq!(t.cycle(&p("/x"), &p("/b")), None);
    assert_eq!(t.cycle(&p("/a"), &p("/a")), Some(vec![p("/a"), p("/a")]));
    t.remove_edge(&p("/c"), &p("/a"));
    assert!(
        t.cycle(&p("/a"), &p("/b")).is_some(),
        "one of two waits is left"
    );
    t.remove_edge(&p("/c"), &p("/a"));
    assert_eq!(t.cycle(&p("/a"), &p("/b")), None);
    assert!(!t.waits.contains_key(&p("/c")));
}
