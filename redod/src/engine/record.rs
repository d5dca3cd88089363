//! Recording a nested request's answer into its job: the dependency records of the targets
//! it asked for, and the batch a verdict may answer the same request with next time
//! ([`crate::verdict`]).

use super::*;
use crate::store::Error;
use crate::verdict::BatchKey;
use std::os::unix::ffi::OsStringExt;

/// Where a batch answer would be kept: the verdicts, its key, their generation before.
pub(crate) type KeptBatch = (Arc<Verdicts>, BatchKey, u64);

/// What [`Engine::kept_batch`] found.
pub(crate) enum Batch {
    /// The request was answered from a kept batch: its records are in its job.
    Answered,
    /// Not answered; where to keep this answer if it turns out to be one.
    Keep(Option<KeptBatch>),
}

impl Engine {
    /// A nested `redo-ifchange` of `names` (from `cwd`) answered in full before, nothing it
    /// depends on changed since: its records again, into `job`, from one lookup. Otherwise
    /// where to keep this answer if it turns out to be one.
    pub(crate) async fn kept_batch(
        &self,
        job: &Job,
        cwd: &Path,
        trust: ood::Trust,
        names: &[u8],
    ) -> Batch {
        let Some(v) = &job.flight.session.verdicts else {
            return Batch::Keep(None);
        };
        let since = v.generation();
        let key = crate::verdict::batch_key(&job.flight.dir, cwd, trust, names);
        if let Some(records) = v.batch(&key, |members| self.any_in_flight(members)) {
            // Nothing is printed on this path, so the `.do`'s earlier stderr needs no flush to
            // stay in order (a flush is a round trip to the relay task).
            job.record_shared(records);
            job.reclaim_token().await;
            return Batch::Answered;
        }
        Batch::Keep(Some((v.clone(), key, since)))
    }

    /// A nested request's targets (`recorded`: each with what [`Engine::bring`] learnt of it)
    /// recorded as dependencies of its job; kept as a batch too when verdicts answered for all
    /// of them.
    pub(crate) fn record_into(
        &self,
        job: &Job,
        recorded: &[(&PathBuf, Option<Known>)],
        batch: Option<KeptBatch>,
        settings: &Settings,
    ) -> Result<(), Error> {
        let session = &job.flight.session;
        let deps = self.dependency_records(&job.flight.dir, recorded, session, settings)?;
        match batch {
            // Kept once, shared by the batch and this job's records.
            Some((v, key, since)) => {
                let deps: Arc<[Dep]> = deps.into();
                let members: Vec<&Path> = recorded.iter().map(|(abs, _)| abs.as_path()).collect();
                v.record_batch(key, &members, deps.clone(), since);
                job.record_shared(deps);
            }
            None => job.record(deps),
        }
        Ok(())
    }

    /// `ifchange` records for the given files, relative to the target directory `dir`. A
    /// missing file gets zeroed inode data and no hash (always out of date), or, when it is a
    /// target committed without output after a `redo-stamp`, its stamp as the hash
    /// ([`crate::store::recfile::recorded_stamp`]); a directory gets no record at all.
    pub(crate) fn dependency_records(
        &self,
        dir: &Path,
        files: &[(&PathBuf, Option<Known>)],
        session: &Session,
        settings: &Settings,
    ) -> Result<Vec<Dep>, Error> {
        let checker = self.checker(session, settings);
        let mut deps = Vec::with_capacity(files.len());
        for (abs, known) in files {
            let rel = paths::relative(dir, abs).into_os_string().into_vec();
            let now = match known {
                Some(k) => k.meta,
                None => session.fs.stat(abs).map_err(Error::io("stat", abs))?,
            };
            match now {
                None => deps.push(Dep::Ifchange {
                    target: rel,
                    stamp: Default::default(),
                    hash: checker
                        .phony_stamp(abs)
                        .map_err(Error::io("read the state of", abs))?,
                }),
                Some(m) if m.kind == crate::fs::Kind::Dir => {}
                Some(m) => {
                    let hash = match known.and_then(|k| k.hash) {
                        Some(h) => h,
                        None => checker
                            .hash(abs, &m.stamp)
                            .map_err(Error::io("read", abs))?,
                    };
                    deps.push(Dep::Ifchange {
                        target: rel,
                        stamp: m.stamp,
                        hash: Some(hash),
                    });
                }
            }
        }
        Ok(deps)
    }
}
