//! The remote cache against real servers: nginx with WebDAV (http, https with a private CA,
//! basic auth) and the `file://` backend. nginx is required: without it these tests fail and
//! say how to install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use redo_tests::nginx::Nginx;
use redod::remote::backend::{Area, Backend};
use redod::remote::http::HttpBackend;
use redod::remote::{
    ActionKey, CacheConfig, Observed, Probe, ProbeKind, RemoteCache, Restore, TraceDep, Upload,
};
use redod::settings::Env;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_bytes(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
}

fn cache(pairs: &[(&str, &str)]) -> Arc<RemoteCache> {
    let cfg = CacheConfig::from_env(&env(pairs)).unwrap().unwrap();
    RemoteCache::new(cfg).unwrap()
}

/// A checkout: a target `out` in `dir` built from `x.c` and `x.h`, never `y.c`.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new(output: &[u8]) -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.c"), "int main() {}\n").unwrap();
        std::fs::write(dir.path().join("x.h"), "#define X 1\n").unwrap();
        std::fs::write(dir.path().join("out"), output).unwrap();
        Checkout { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn hash(&self, p: &str) -> [u8; 32] {
        *blake3::hash(&std::fs::read(self.path(p)).unwrap()).as_bytes()
    }

    fn deps(&self) -> Vec<TraceDep> {
        vec![
            TraceDep::Ifchange {
                path: b"x.c".to_vec(),
                content: Some(self.hash("x.c")),
            },
            TraceDep::Ifchange {
                path: b"x.h".to_vec(),
                content: Some(self.hash("x.h")),
            },
            TraceDep::Ifcreate {
                path: b"y.c".to_vec(),
            },
        ]
    }

    fn upload(&self, key: ActionKey) -> Upload {
        Upload {
            key,
            output: self.path("out"),
            output_hash: self.hash("out"),
            deps: self.deps(),
            seen: None,
        }
    }

    /// The engine's side of matching, on this checkout.
    fn observe(&self) -> impl FnMut(Probe) -> std::future::Ready<Observed> + use<> {
        let root = self.dir.path().to_path_buf();
        move |p: Probe| {
            let path = root.join(std::str::from_utf8(&p.path).unwrap());
            std::future::ready(match (std::fs::read(&path), p.kind) {
                (Err(_), _) => Observed::Absent,
                (Ok(_), ProbeKind::Existence) => Observed::Exists,
                (Ok(c), ProbeKind::Content) => Observed::Content(*blake3::hash(&c).as_bytes()),
            })
        }
    }
}

/// Uploads in the background and waits for it.
fn upload(c: &Arc<RemoteCache>, up: Upload) -> bool {
    let rt = rt();
    let _in = rt.enter();
    let queued = c.upload(up);
    rt.block_on(c.flush());
    queued
}

fn key(c: &RemoteCache, target: &str) -> ActionKey {
    c.key(target.as_bytes(), b"default.do", [7; 32], &Env::default())
}

/// Upload from one checkout, restore into another: byte-identical, executable bit kept.
fn round_trip(c: &Arc<RemoteCache>) -> (Checkout, ActionKey) {
    let rt = rt();
    let built = Checkout::new(b"\x7fELF pretend binary\n");
    std::fs::set_permissions(built.path("out"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let k = key(c, "sub/out");
    assert!(upload(c, built.upload(k)));
    assert_eq!(
        c.stats().uploads,
        1,
        "{}",
        c.take_warning().unwrap_or_default()
    );

    let other = Checkout::new(b"");
    std::fs::remove_file(other.path("out")).unwrap();
    let tmp = other.path(".redo.out.tmp");
    match rt.block_on(c.restore(&k, other.observe(), &tmp, true)) {
        Restore::Hit { trace, fetched } => {
            assert_eq!(trace.deps, built.deps());
            assert_eq!(fetched.hash, built.hash("out"));
            assert!(fetched.executable);
        }
        Restore::Miss { reasons } => panic!("miss: {reasons:?} {:?}", c.take_warning()),
    }
    assert_eq!(
        std::fs::read(&tmp).unwrap(),
        std::fs::read(built.path("out")).unwrap()
    );
    assert_ne!(
        std::fs::metadata(&tmp).unwrap().permissions().mode() & 0o111,
        0
    );
    assert_eq!(c.stats().hits, 1);
    assert_eq!(c.stats().errors, 0, "{:?}", c.take_warning());
    (other, k)
}

#[test]
fn blobs_and_entries_over_http() {
    let ng = Nginx::start(false);
    let rt = rt();
    let b = Backend::Http(HttpBackend::new(&ng.url(), None, None, None).unwrap());
    let hex = "ab".repeat(32);
    rt.block_on(async {
        assert_eq!(b.get(Area::Cas, &hex).await.unwrap(), None);
        let blob = |s: &'static [u8]| bytes::Bytes::from_static(s);
        // A small blob is sent without asking, every time.
        assert!(b.put_blob(&hex, blob(b"blob")).await.unwrap(), "sent");
        assert!(b.put_blob(&hex, blob(b"blob")).await.unwrap(), "sent again");
        assert_eq!(
            b.get(Area::Cas, &hex).await.unwrap().as_deref(),
            Some(&b"blob"[..])
        );
        // A big one only when the server does not have it (HEAD).
        let big_hex = "cd".repeat(32);
        let big = bytes::Bytes::from(vec![7u8; 100_000]);
        assert!(b.put_blob(&big_hex, big.clone()).await.unwrap(), "sent");
        assert!(
            !b.put_blob(&big_hex, big).await.unwrap(),
            "present: sent again"
        );
        assert_eq!(b.get(Area::Ac, &hex).await.unwrap(), None);
        b.put(Area::Ac, &hex, blob(b"entry")).await.unwrap();
        assert_eq!(
            b.get(Area::Ac, &hex).await.unwrap().as_deref(),
            Some(&b"entry"[..])
        );
        // Overwriting is allowed (action entries are replaced).
        b.put(Area::Ac, &hex, blob(b"entry2")).await.unwrap();
        assert_eq!(
            b.get(Area::Ac, &hex).await.unwrap().as_deref(),
            Some(&b"entry2"[..])
        );
    });
    assert!(
        ng.file("cas", &hex).exists(),
        "stored under {{prefix}}/cas/"
    );
    assert!(ng.file("ac", &hex).exists(), "stored under {{prefix}}/ac/");
}

#[test]
fn http_round_trip_and_changed_dependency() {
    let ng = Nginx::start(false);
    let c = cache(&[("REDO_CACHE", &ng.url())]);
    let (other, k) = round_trip(&c);
    // The entry is a valid ActionResult holding the trace and naming the output.
    let ar = std::fs::read(ng.file("ac", &k.hex())).unwrap();
    let traces = redod::remote::format::decode_action_result(&ar).unwrap();
    assert_eq!(traces.len(), 1);
    // As a validating server (bazel-remote) checks: every output file's digest names a CAS
    // blob of that size, and uploaded before the entry.
    let ar: redod::remote::format::ActionResult = prost::Message::decode(ar.as_slice()).unwrap();
    assert_eq!(ar.exit_code, 0);
    assert_eq!(ar.output_files.len(), 1);
    for f in &ar.output_files {
        let d = f.digest.as_ref().unwrap();
        let blob = std::fs::read(ng.file("cas", &d.hash)).unwrap();
        assert_eq!(blob.len() as i64, d.size_bytes, "{}", f.path);
        assert_eq!(redod::remote::BlobDigest::of(&blob).hex(), d.hash);
    }

    std::fs::write(other.path("x.h"), "#define X 2\n").unwrap();
    let tmp = other.path(".redo.out.tmp2");
    match rt().block_on(c.restore(&k, other.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert_eq!(reasons, ["trace 0: x.h changed"]),
        Restore::Hit { .. } => panic!("hit with a changed dependency"),
    }
    assert!(!tmp.exists());
    std::fs::write(other.path("x.h"), "#define X 1\n").unwrap();
    std::fs::write(other.path("y.c"), "").unwrap();
    match rt().block_on(c.restore(&k, other.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert_eq!(reasons, ["trace 0: y.c now exists"]),
        Restore::Hit { .. } => panic!("hit with a new ifcreate file"),
    }
    // A key nobody stored.
    let none = key(&c, "never");
    match rt().block_on(c.restore(&none, other.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert_eq!(reasons, ["no cache entry"]),
        Restore::Hit { .. } => panic!("hit without an entry"),
    }
    assert_eq!(c.stats().misses, 3);
    assert_eq!(c.stats().errors, 0);
    assert!(
        c.stats_line()
            .starts_with("remote cache: 1 hit, 3 misses, 1 upload,")
    );
}

#[test]
fn a_flipped_blob_is_a_miss() {
    let ng = Nginx::start(false);
    let c = cache(&[("REDO_CACHE", &ng.url())]);
    let built = Checkout::new(b"the real output\n");
    let k = key(&c, "out");
    upload(&c, built.upload(k));
    let rt = rt();
    let sha = redod::remote::BlobDigest::of(b"the real output\n").hex();
    // Same size, other content: only the SHA-256 check can tell.
    assert_eq!(b"the real output\n".len(), b"the fake output\n".len());
    std::fs::write(ng.file("cas", &sha), b"the fake output\n").unwrap();
    let tmp = built.path(".redo.out.tmp");
    match rt.block_on(c.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => {
            assert!(
                reasons[0].contains("does not match its digest"),
                "{reasons:?}"
            )
        }
        Restore::Hit { .. } => panic!("a tampered blob was used"),
    }
    assert!(!tmp.exists(), "the temporary is removed");
    assert_eq!(c.stats().errors, 1);
    assert!(c.take_warning().unwrap().contains("does not match"));
    // Longer than recorded: refused too.
    std::fs::write(ng.file("cas", &sha), vec![b'x'; 100_000]).unwrap();
    assert!(matches!(
        rt.block_on(c.restore(&k, built.observe(), &tmp, false)),
        Restore::Miss { .. }
    ));
    assert_eq!(c.stats().hits, 0);
}

#[test]
fn corrupt_or_foreign_entries_are_ignored() {
    let ng = Nginx::start(false);
    let c = cache(&[("REDO_CACHE", &ng.url())]);
    let built = Checkout::new(b"out\n");
    let k = key(&c, "out");
    upload(&c, built.upload(k));
    let rt = rt();
    let tmp = built.path(".redo.out.tmp");
    // The output is gone (evicted), the entry still names it.
    let out = redod::remote::BlobDigest::of(b"out\n").hex();
    std::fs::remove_file(ng.file("cas", &out)).unwrap();
    match rt.block_on(c.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert!(reasons[0].contains("missing"), "{reasons:?}"),
        Restore::Hit { .. } => panic!("hit without its output"),
    }
    assert!(!tmp.exists());
    // Garbage in the entry.
    std::fs::write(ng.file("ac", &k.hex()), b"\xff\xfe not protobuf").unwrap();
    match rt.block_on(c.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => {
            assert!(reasons[0].contains("bad ActionResult"), "{reasons:?}")
        }
        Restore::Hit { .. } => panic!("hit from garbage"),
    }
    assert_eq!(c.stats().errors, 2);
    // The next upload replaces the broken entry.
    upload(&c, built.upload(k));
    assert!(matches!(
        rt.block_on(c.restore(&k, built.observe(), &tmp, false)),
        Restore::Hit { .. }
    ));
}

#[test]
fn a_stopped_server_is_a_quick_miss() {
    let mut ng = Nginx::start(false);
    let c = cache(&[("REDO_CACHE", &ng.url())]);
    let built = Checkout::new(b"out\n");
    let k = key(&c, "out");
    ng.stop();
    let rt = rt();
    let t0 = Instant::now();
    let tmp = built.path(".redo.out.tmp");
    match rt.block_on(c.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert!(reasons[0].contains("cannot connect"), "{reasons:?}"),
        Restore::Hit { .. } => panic!("hit from a stopped server"),
    }
    // Further lookups do not even try for a while; uploads fail quietly.
    for _ in 0..10 {
        match rt.block_on(c.restore(&k, built.observe(), &tmp, false)) {
            Restore::Miss { reasons } => assert!(reasons[0].contains("not asked"), "{reasons:?}"),
            Restore::Hit { .. } => panic!("hit from a stopped server"),
        }
    }
    upload(&c, built.upload(k));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.uploads), (0, 11, 0));
    assert_eq!(s.errors, 1, "the pause is not counted again");
    let w = c.take_warning().unwrap();
    // Plain words: what happened and what the build did, not the HTTP library's layers.
    assert!(
        w.contains("cannot connect: connection refused")
            && w.starts_with("shared cache not used, targets built here instead"),
        "{w}"
    );
    assert!(!w.contains("os error") && !w.contains("tcp connect"), "{w}");
    assert_eq!(c.take_warning(), None, "one warning per build");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/cache", l.local_addr().unwrap().port());
    let c = cache(&[("REDO_CACHE", &url)]);
    let built = Checkout::new(b"out\n");
    let k = key(&c, "out");
    let t0 = Instant::now();
    let tmp = built.path(".redo.out.tmp");
    match rt().block_on(c.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert!(reasons[0].contains("timed out"), "{reasons:?}"),
        Restore::Hit { .. } => panic!("hit from a silent server"),
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(13), "{took:?}");
    assert_eq!(c.stats().errors, 1);
    drop(l);
}

#[test]
fn https_with_a_private_ca() {
    let ng = Nginx::start(true);
    let ca = ng.ca();
    let ca = ca.to_str().unwrap();
    let c = cache(&[("REDO_CACHE", &ng.url()), ("REDO_CACHE_CA", ca)]);
    round_trip(&c);
    // Without the CA the server is not trusted: a miss, an error.
    let untrusting = cache(&[("REDO_CACHE", &ng.url())]);
    let built = Checkout::new(b"x");
    let tmp = built.path(".redo.out.tmp");
    let k = key(&untrusting, "sub/out");
    assert!(matches!(
        rt().block_on(untrusting.restore(&k, built.observe(), &tmp, false)),
        Restore::Miss { .. }
    ));
    assert_eq!(untrusting.stats().errors, 1);
    // A CA file that is not PEM is a configuration error naming the variable.
    let bogus = built.path("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let cfg = CacheConfig::from_env(&env(&[
        ("REDO_CACHE", &ng.url()),
        ("REDO_CACHE_CA", bogus.to_str().unwrap()),
    ]))
    .unwrap()
    .unwrap();
    let e = RemoteCache::new(cfg).unwrap_err().to_string();
    assert!(e.starts_with("REDO_CACHE_CA: no PEM certificate"), "{e}");
}

#[test]
fn basic_auth_from_the_url() {
    let ng = Nginx::start_with_auth(false, "builder", "s3cr:t");
    let c = cache(&[("REDO_CACHE", &ng.url_with("builder:s3cr%3At@"))]);
    round_trip(&c);
    // Without credentials: 401, a miss with an error, and no upload.
    let anon = cache(&[("REDO_CACHE", &ng.url())]);
    let built = Checkout::new(b"x");
    let tmp = built.path(".redo.out.tmp");
    let k = key(&anon, "sub/out");
    match rt().block_on(anon.restore(&k, built.observe(), &tmp, false)) {
        Restore::Miss { reasons } => assert!(reasons[0].contains("401"), "{reasons:?}"),
        Restore::Hit { .. } => panic!("hit without credentials"),
    }
    let k2 = key(&anon, "other");
    upload(&anon, built.upload(k2));
    assert_eq!(anon.stats().uploads, 0);
    assert!(!ng.file("ac", &k2.hex()).exists());
    assert!(!anon.take_warning().unwrap().contains("s3cr"));
}

#[test]
fn file_backend() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}/cache", store.path().display());
    let c = cache(&[("REDO_CACHE", &url)]);
    let (_, k) = round_trip(&c);
    assert!(store.path().join("cache/ac").join(k.hex()).is_file());
    // No temporaries left behind.
    for area in ["cas", "ac"] {
        for e in std::fs::read_dir(store.path().join("cache").join(area)).unwrap() {
            let name = e.unwrap().file_name();
            assert_eq!(name.len(), 64, "{name:?}");
        }
    }
}

/// Uploads run on a runtime thread of their own, not the caller's: one queued where there is
/// no runtime at all still goes (the daemon's thread, which the build needs, does none of it).
#[test]
fn uploads_run_on_their_own_runtime() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let c = cache(&[("REDO_CACHE", &url)]);
    let built = Checkout::new(b"x\n");
    let k = key(&c, "out");
    assert!(tokio::runtime::Handle::try_current().is_err());
    assert!(c.upload(built.upload(k)), "not queued outside a runtime");
    rt().block_on(c.flush());
    assert_eq!(c.stats().uploads, 1, "{:?}", c.take_warning());
    assert!(store.path().join("ac").join(k.hex()).is_file());
}

/// An upload merges its trace with the traces its lookup saw (`seen`), or, not looked up,
/// with the entry it reads again.
#[test]
fn an_upload_merges_with_what_its_lookup_saw() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let c = cache(&[("REDO_CACHE", &url)]);
    let k = key(&c, "out");
    let traces = || {
        let ar = std::fs::read(store.path().join("ac").join(k.hex())).unwrap();
        redod::remote::format::decode_action_result(&ar).unwrap()
    };
    let a = Checkout::new(b"a\n");
    upload(&c, a.upload(k));
    // Another build, other deps (x.h changed).
    let b = Checkout::new(b"b\n");
    std::fs::write(b.path("x.h"), "#define X 2\n").unwrap();
    upload(&c, b.upload(k));
    assert_eq!(traces().len(), 2, "read again and merged");
    // A third build whose lookup saw no entry: its trace alone (the others' are lost, as
    // with a concurrent upload).
    let d = Checkout::new(b"d\n");
    std::fs::write(d.path("x.c"), "int main() { return 1; }\n").unwrap();
    let mut up = d.upload(k);
    up.seen = Some(Vec::new());
    upload(&c, up);
    let t = traces();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].output, redod::remote::BlobDigest::of(b"d\n"));
    // One whose lookup saw the entry: merged with that.
    let mut up = a.upload(k);
    up.seen = Some(t);
    upload(&c, up);
    assert_eq!(traces().len(), 2);
}

#[test]
fn read_mode_does_not_upload() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let c = cache(&[("REDO_CACHE", &url), ("REDO_CACHE_MODE", "read")]);
    let built = Checkout::new(b"x");
    assert!(!upload(&c, built.upload(key(&c, "out"))));
    assert!(!store.path().join("ac").exists());
}

#[test]
fn an_output_changed_since_its_commit_is_not_uploaded() {
    let store = tempfile::tempdir().unwrap();
    let c = cache(&[("REDO_CACHE", &format!("file://{}", store.path().display()))]);
    let built = Checkout::new(b"first");
    let up = built.upload(key(&c, "out"));
    std::fs::write(built.path("out"), "second").unwrap();
    upload(&c, up);
    assert_eq!(c.stats().uploads, 0);
    assert!(!store.path().join("ac").exists());
}

#[test]
fn concurrent_uploads_of_one_key_are_harmless() {
    let ng = Nginx::start(false);
    let rt = rt();
    let checkouts: Vec<Checkout> = (0..8)
        .map(|i| {
            let c = Checkout::new(format!("output {i}\n").as_bytes());
            std::fs::write(c.path("x.h"), format!("#define X {i}\n")).unwrap();
            c
        })
        .collect();
    let caches: Vec<Arc<RemoteCache>> = (0..8)
        .map(|_| cache(&[("REDO_CACHE", &ng.url())]))
        .collect();
    let k = key(&caches[0], "out");
    let _in = rt.enter();
    for (c, co) in caches.iter().zip(&checkouts) {
        c.upload(co.upload(k));
    }
    rt.block_on(async {
        for c in &caches {
            c.flush().await;
        }
    });
    for c in &caches {
        assert_eq!(c.stats().errors, 0, "{:?}", c.take_warning());
    }
    // Whatever traces survived the race, each restores its own output, and at least the
    // last writer's does.
    let mut hits = 0;
    for (i, co) in checkouts.iter().enumerate() {
        let tmp = co.path(".redo.out.tmp");
        if let Restore::Hit { .. } = rt.block_on(caches[0].restore(&k, co.observe(), &tmp, false)) {
            assert_eq!(
                std::fs::read(&tmp).unwrap(),
                format!("output {i}\n").as_bytes()
            );
            hits += 1;
        }
    }
    assert!(hits >= 1);
    assert_eq!(caches[0].stats().errors, 0);
}

#[test]
fn a_big_output_streams_through() {
    let ng = Nginx::start(false);
    let c = cache(&[("REDO_CACHE", &ng.url())]);
    let big: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let built = Checkout::new(&big);
    let k = key(&c, "big");
    assert!(upload(&c, built.upload(k)));
    assert_eq!(c.stats().uploads, 1, "{:?}", c.take_warning());
    assert!(c.stats().bytes_up > 24 << 20);
    let tmp = built.path(".redo.big.tmp");
    match rt().block_on(c.restore(&k, built.observe(), &tmp, true)) {
        Restore::Hit { fetched, .. } => assert_eq!(fetched.size, 24 << 20),
        Restore::Miss { reasons } => panic!("{reasons:?}"),
    }
    assert!(std::fs::read(&tmp).unwrap() == big);
    // Uploading it again does not send the blob again (HEAD first).
    let up_before = c.stats().bytes_up;
    assert!(upload(&c, built.upload(k)));
    assert!(c.stats().bytes_up - up_before < 1 << 20);
}
