//! The shared build cache in the runner ([`crate::remote`]): a target whose flight decided to
//! run it is first looked up (after [`super::run`]'s `prepare`: lock held, `.do` found and
//! hashed), and a matching trace's output is committed as a build would commit it; after a
//! real build's commit the output and its trace are uploaded in the background.
//!
//! Not cached: targets outside the project root or built by a `.do` outside it (their key
//! would name absolute paths that differ between checkouts), `redo-always` targets, targets
//! without output, directories and symbolic links, failed builds, and targets whose `.do`
//! has a line `# redo: no-cache` (read from the `.do` itself, so no protocol change and no
//! new file: the opt-out travels with the script it is about).

use super::run::Ready;
use super::*;
use crate::engine::Want;
use crate::remote::{
    ActionKey, Mode, Observed, Probe, ProbeKind, RemoteCache, Trace, TraceDep, find_match_async,
};

/// The line a `.do` carries to opt out of the cache.
pub(crate) const NO_CACHE: &[u8] = b"# redo: no-cache";

/// The cache a target is looked up in and uploaded to, with its key.
pub(super) struct CacheUse {
    pub(super) cache: Arc<RemoteCache>,
    pub(super) key: ActionKey,
    /// The entry's traces as the lookup saw them, for the upload after a miss
    /// ([`crate::remote::Upload::seen`]).
    pub(super) seen: Option<Vec<Trace>>,
}

/// Whether the `.do`'s content opts out: a line that is [`NO_CACHE`], leading and trailing
/// blanks aside.
pub(crate) fn opts_out(content: &[u8]) -> bool {
    content
        .split(|&c| c == b'\n')
        .any(|l| l.trim_ascii() == NO_CACHE)
}

/// The cache and key for the target of `ready`, or `None` when the request asked for no
/// cache (or a bad one: the request warned about that once) or the target is not cacheable.
pub(super) fn cache_use(
    px: &Processes,
    engine: &Engine,
    flight: &Flight,
    ready: &Ready,
) -> Option<CacheUse> {
    // `find_do` records the `.do` itself last, with the hash it was judged by.
    let do_hash = ready.deps.iter().rev().find_map(|d| match d {
        Dep::Ifchange { hash, .. } => *hash,
        _ => None,
    })?;
    let not = |why: &str| {
        flight.say(
            Msg::Dbg,
            &format!("cache: {}: not cached: {why}", flight.display),
        );
    };
    let cache = px.caches.for_env(&flight.origin.env).ok().flatten()?;
    let key = cache_key(
        engine,
        &*flight.session.fs,
        &cache,
        &flight.origin.env,
        Candidate {
            target: &ready.target,
            rec_path: &ready.rec_path,
            do_path: &ready.dof.path,
            do_hash,
        },
        not,
    )?;
    Some(CacheUse {
        cache,
        key,
        seen: None,
    })
}

/// A target about to be built by a `.do`, as far as its cache key goes.
struct Candidate<'a> {
    target: &'a Path,
    rec_path: &'a Path,
    do_path: &'a Path,
    do_hash: Hash,
}

/// `c`'s key in the request's `cache`, unless `c` is not cacheable (`not` says why).
fn cache_key(
    engine: &Engine,
    fs_: &dyn crate::fs::Fs,
    cache: &RemoteCache,
    env: &crate::settings::Env,
    c: Candidate<'_>,
    not: impl Fn(&str),
) -> Option<ActionKey> {
    let root = paths::root()?;
    if !paths::inside(Some(root), c.target) || !paths::inside(Some(root), c.do_path) {
        not("outside the project root");
        return None;
    }
    // What its last build recorded: a target that had no output or asked for `redo-always`
    // is never in the cache, and asking for it would cost a round trip per build (`all`).
    if let Ok(Loaded::Ok(prev)) = engine.recs().load(fs_, c.rec_path) {
        let name = c.target.file_name().unwrap_or_default().as_bytes();
        let never = prev.deps.iter().any(|d| match d {
            Dep::Always => true,
            Dep::Ifcreate { target } => target == name,
            _ => false,
        });
        if never {
            not("its last build had no output or was redo-always");
            return None;
        }
    }
    match fs::read(c.do_path) {
        Ok(content) if opts_out(&content) => {
            not("its .do says `# redo: no-cache`");
            return None;
        }
        Ok(_) => {}
        Err(e) => {
            not(&crate::store::Error::io("read", c.do_path)(e).to_string());
            return None;
        }
    }
    let key = cache.key(
        paths::bytes(&paths::relative(root, c.target)),
        paths::bytes(&paths::relative(root, c.do_path)),
        c.do_hash,
        env,
    );
    Some(key)
}

/// Asks the cache now for `target`'s entry, which its build will look up soon
/// ([`crate::remote::prefetch`]): the request's next target at `-j1`, while this one builds.
/// Only for a target that is absent (a clean build's, so almost surely to be built; a
/// target that exists is likely up to date, and asking would cost the server a request for
/// nothing), with its `.do` found and hashed as [`super::run`]'s lookup would.
pub(super) fn prefetch(
    px: &Processes,
    engine: &Engine,
    session: &Session,
    origin: &Origin,
    target: &Path,
) {
    let fs_ = &*session.fs;
    let Some(cache) = px.caches.for_env(&origin.env).ok().flatten() else {
        return;
    };
    if !matches!(fs_.lstat(target), Ok(None)) {
        return;
    }
    let Some((dir, name)) = paths::split(target) else {
        return;
    };
    let settings = &origin.settings;
    let Some(dof) = dofile::find(fs_, dir, name, settings.top_dir.as_deref())
        .ok()
        .and_then(|l| l.found)
    else {
        return;
    };
    let Some(meta) = fs_.stat(&dof.path).ok().flatten() else {
        return;
    };
    let trust = settings.trust != Trust::None;
    let Ok(do_hash) = engine.hashes().hash(fs_, &dof.path, &meta.stamp, trust) else {
        return;
    };
    let rec_path = crate::store::layout::rec_path(dir, name);
    let c = Candidate {
        target,
        rec_path: &rec_path,
        do_path: &dof.path,
        do_hash,
    };
    if let Some(key) = cache_key(engine, fs_, &cache, &origin.env, c, |_| {}) {
        cache.prefetch(key);
    }
}

/// What the checkout has at a trace's dependency now. A dependency that is a target of this
/// project is brought up to date first, as the out-of-date check would (possibly from the
/// cache itself), through the engine: a cycle is reported, not waited on. Paths come from
/// the cache: they are only resolved against the target's directory, looked at and hashed.
async fn observe(engine: &Arc<Engine>, flight: &Arc<Flight>, probe: Probe) -> Observed {
    let path = paths::resolve(&flight.dir, OsStr::from_bytes(&probe.path));
    let session = &flight.session;
    if probe.kind == ProbeKind::Content
        && paths::inside(paths::root(), &path)
        && engine
            .bring(Want::dependency(flight, path.clone()))
            .await
            .is_err()
    {
        // Failed (and reported): no trace can vouch for it; the `.do` runs and meets the
        // failure itself.
        return Observed::Exists;
    }
    let checker = engine.checker(session, &flight.origin.settings);
    match session.fs.stat(&path) {
        Ok(None) if probe.kind == ProbeKind::Content => match checker.phony_stamp(&path) {
            Ok(Some(h)) => Observed::Content(h),
            Ok(None) => Observed::Absent,
            Err(_) => Observed::Exists,
        },
        Ok(None) => Observed::Absent,
        Ok(Some(m)) if probe.kind == ProbeKind::Content && m.kind != Kind::Dir => {
            match checker.hash(&path, &m.stamp) {
                Ok(h) => Observed::Content(h),
                Err(_) => Observed::Exists,
            }
        }
        Ok(Some(_)) | Err(_) => Observed::Exists,
    }
}

/// Looks the target up and, on a match, installs the fetched output and its state exactly as
/// a build's commit would. `None`: a miss (why, with `-d`), build locally; every fault of
/// the cache lands here, counted for the build's one warning.
pub(super) async fn restore(
    px: &Processes,
    engine: &Arc<Engine>,
    flight: &Arc<Flight>,
    ready: &Ready,
    cu: &mut CacheUse,
) -> Option<Ran> {
    let started = Instant::now();
    let origin = &flight.origin;
    let settings = &origin.settings;
    let (dir, name) = (&flight.dir, flight.name.as_os_str());
    let miss = |why: &str| {
        flight.say(Msg::Dbg, &format!("cache: {}: miss: {why}", flight.display));
    };
    let looked = cu.cache.lookup(&cu.key).await;
    if looked.traces.is_empty() {
        cu.seen = looked.known.then(Vec::new);
        miss("no usable entry");
        return None;
    }
    let traces = &looked.traces;
    let outcome = find_match_async(traces, |p| {
        let (e, f) = (engine.clone(), flight.clone());
        async move { observe(&e, &f, p).await }
    })
    .await;
    for (i, r) in &outcome.rejected {
        miss(&format!("trace {i}: {r}"));
    }
    let Some(trace) = outcome.matched.and_then(|i| traces.get(i)) else {
        cu.cache.note_miss();
        // Traces at all: the entry was read, so this is what the cache holds.
        cu.seen = Some(looked.traces);
        return None;
    };
    // A hit: the restore is this target's run (a `.do` started after a failed restore ends
    // it as interrupted).
    if let Some((r, t)) = flight.insight() {
        r.started(t, None);
    }
    let sync = !settings.no_sync;
    let tmp = temp_path(dir, name);
    // Journaled, so that a daemon killed during the commit leaves nothing behind; dropped
    // (early return, or the client went away), it removes the temporary.
    let running = RunningJob::new(
        px.disk.clone(),
        px.registry(),
        engine.next_id(),
        JobFiles {
            target: ready.target.clone(),
            rec_path: ready.rec_path.clone(),
            umask: origin.umask,
            sync,
            temps: vec![tmp.clone()],
        },
    );
    // Fetched into a capture, as a `.do`'s stdout is: nothing is made beside the target
    // before the commit, which writes it out as it would a stdout.
    let spill_dir = engine.socket().parent().unwrap_or(Path::new("/tmp"));
    let capture = match durable::capture(spill_dir).and_then(|c| Ok((c.try_clone()?, c))) {
        Ok(c) => c,
        Err(e) => {
            cu.cache.note_miss();
            miss(&format!("cannot make a file to fetch into: {e}"));
            return None;
        }
    };
    if let Err(e) = cu
        .cache
        .fetch_into(&trace.output, false, capture.0, false)
        .await
    {
        miss(&e.to_string());
        return None;
    }
    let commit = Commit {
        dir: dir.clone(),
        name: name.to_os_string(),
        output: Output::Captured {
            file: capture.1,
            size: trace.output.size,
            executable: trace.executable,
        },
        target_kind: px.disk.lstat(&ready.target).ok().flatten().map(|m| m.kind),
        stdout_tmp: tmp,
        prev_hash: ready.prev_hash,
        sync,
        umask: origin.umask,
        rec_path: ready.rec_path.clone(),
        build: flight.session.uuid.clone(),
        deps: trace_records(
            &ready.deps,
            trace,
            dir,
            name.as_bytes(),
            &*flight.session.fs,
        ),
        prev: None,
        rec_temp: None,
    };
    let committed = match commit.run_async(&px.disk, engine).await {
        Ok(c) => c,
        Err(e) => {
            miss(&format!("cannot commit the fetched output: {e}"));
            return None;
        }
    };
    conclude::note_commit(engine, flight, &ready.target, &ready.rec_path, &committed);
    // Landed: what an earlier failed attempt declared no longer matters (`--watch`).
    engine.landed(&flight.target);
    drop(running);
    flight.say(
        Msg::Dbg,
        &format!(
            "cache: {}: hit, {} bytes{}",
            flight.display,
            trace.output.size,
            if committed.kept_same {
                ", same content as before"
            } else {
                ""
            }
        ),
    );
    Some(Ran::Built {
        took: started.elapsed(),
        do_rel: ready.do_rel.clone(),
        do_path: ready.dof.path.clone(),
        cached: true,
    })
}

/// The records of a target restored from `trace`: the `.do` lookup's and the `.do`'s own
/// (`lookup`, fresh), then the trace's dependencies not among them, each with its stat as
/// `fs` answers now, as a nested request would record it. The target's own record is the
/// commit's.
pub(super) fn trace_records(
    lookup: &[Dep],
    trace: &Trace,
    dir: &Path,
    name: &[u8],
    fs: &dyn crate::fs::Fs,
) -> Records {
    let mut deps = lookup.to_vec();
    for d in &trace.deps {
        let path = d.path();
        let seen = deps.iter().any(|r| match r {
            Dep::Ifchange { target, .. } | Dep::Ifcreate { target } => target == path,
            _ => false,
        });
        if seen || path == name {
            continue;
        }
        deps.push(match d {
            TraceDep::Ifchange { path, content } => {
                let abs = paths::resolve(dir, OsStr::from_bytes(path));
                let stamp = match fs.stat(&abs) {
                    Ok(Some(m)) => m.stamp,
                    _ => Stamp::default(),
                };
                Dep::Ifchange {
                    target: path.clone(),
                    stamp,
                    hash: *content,
                }
            }
            TraceDep::Ifcreate { path } => Dep::Ifcreate {
                target: path.clone(),
            },
        });
    }
    let mut records = Records::default();
    records.extend(deps);
    records
}

/// After a real build's commit: queues the upload of a regular-file output with its trace
/// (readwrite mode only). Returns at once.
pub(super) fn upload(flight: &Flight, target: &Path, rec: &Rec, cu: CacheUse) {
    if cu.cache.config().mode == Mode::Read {
        return;
    }
    let name = flight.name.as_bytes();
    let not = |why: &str| {
        flight.say(
            Msg::Dbg,
            &format!("cache: {}: not uploaded: {why}", flight.display),
        );
    };
    let Some((_, Some(hash))) = rec.own(name) else {
        not("no output");
        return;
    };
    if !fs::symlink_metadata(target).is_ok_and(|m| m.is_file()) {
        not("not a regular file");
        return;
    }
    match TraceDep::from_deps(name, rec.deps.iter()) {
        Ok(deps) => {
            cu.cache.upload(crate::remote::Upload {
                key: cu.key,
                output: target.to_path_buf(),
                output_hash: *hash,
                deps,
                seen: cu.seen,
            });
        }
        Err(e) => not(&e.to_string()),
    }
}

#[cfg(test)]
mod tests;
