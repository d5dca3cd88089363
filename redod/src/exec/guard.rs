//! Whose file stands at a target's path before its `.do` runs (docs/BEHAVIOUR.md §9 step 2):
//! redo never overwrites a file it did not write.
//!
//! * **Ours**: nothing is there; or the target's own record says redo wrote what is there. The
//!   content decides, not the stat: a `touch`, `chmod`, `chown`, `cp -a`, a hard link made by
//!   another `.do` (`ln x.o $3`) or a checkout of identical content change the stat only, and
//!   the recorded hash still matches (goredo 1.x would freeze such a target for good). A commit
//!   a dead daemon left half done (its pending state names this content) is ours too.
//! * **Modified**: redo wrote it, and its content changed since: somebody edited the output.
//! * **Not ours**: a file (not a directory) redo has no record of writing: no state file, or
//!   a state file whose last build wrote no file (a phony target). The user's: taken as a
//!   source, never replaced.
//!
//! A damaged state file cannot vouch either way; the file is then taken as ours, so that the
//! rebuild replaces it (the state file's warning was printed by the check).

use super::*;
use crate::fs::Disk;
use crate::ood::Checker;

/// What is at the target's path, judged against its state.
pub(super) enum Found {
    /// The `.do` may replace it. `prev_stamp`/`prev_hash`: what is there now and its recorded
    /// content (when it has an own record); `was_dir`: an earlier build's directory.
    Ours {
        prev_stamp: Option<Stamp>,
        prev_hash: Option<Hash>,
        was_dir: bool,
    },
    /// Written by redo, edited since.
    Modified,
    /// A file redo has no record of writing.
    NotOurs,
}

/// Judges `now` (the target's `lstat`) against the loaded state. Hashes the target only when
/// its stat differs from the recorded one.
pub(super) fn judge(
    disk: &dyn Disk,
    checker: &Checker<'_>,
    loaded: &Loaded,
    target: &Path,
    rec_path: &Path,
    name: &[u8],
    now: Option<Meta>,
) -> io::Result<Found> {
    let Some(now) = now else {
        return Ok(Found::Ours {
            prev_stamp: None,
            prev_hash: None,
            was_dir: false,
        });
    };
    let was_dir = now.kind == Kind::Dir;
    let ours = |prev_hash: Option<Hash>| Found::Ours {
        prev_stamp: Some(now.stamp),
        prev_hash,
        was_dir,
    };
    let rec = match loaded {
        Loaded::Ok(rec) => rec,
        Loaded::Corrupt(_) => return Ok(ours(None)),
        // Only a race gets here (the requester found no state, so a source): still not ours.
        Loaded::Missing if was_dir => return Ok(ours(None)),
        Loaded::Missing => return Ok(Found::NotOurs),
    };
    let Some((stamp, hash)) = rec.own(name) else {
        // A directory target has no own record (its stat changes with every entry).
        return Ok(if was_dir { ours(None) } else { Found::NotOurs });
    };
    if !checker.changed(target, Some(&now), stamp, hash)? {
        return Ok(ours(hash.copied()));
    }
    Ok(
        match durable::interrupted_commit(disk, rec_path, name, target) {
            // What a dead daemon was committing: ours, not an edit.
            Some(h) => ours(Some(h)),
            None => Found::Modified,
        },
    )
}

/// [`Found::Modified`]: the user's edit stands. A warning and no rebuild, or an error with
/// `REDO_STOP_IF_MODIFIED=1`.
pub(super) fn modified(flight: &Flight) -> Result<Ran, JobError> {
    if flight.origin.settings.stop_if_modified {
        return Err(before_run(Error::Modified(flight.display.clone())));
    }
    flight.say(
        Msg::Warn,
        &format!(
            "{} externally modified: not redoing (its content is not what redo wrote; remove it \
             to have it rebuilt, or set REDO_STOP_IF_MODIFIED=1 to make this an error)",
            flight.display
        ),
    );
    Ok(Ran::Kept)
}

/// [`Found::NotOurs`] met by a flight (the requester judged the target before the file
/// appeared, or its last build wrote no file): the file is kept, with the warning of
/// [`crate::engine::not_ours_warning`].
pub(super) fn not_ours(flight: &Flight) {
    if flight.session.first_warning(&flight.target) {
        let do_rel = dofile::find(
            &*flight.session.fs,
            &flight.dir,
            &flight.name,
            flight.origin.settings.top_dir.as_deref(),
        )
        .ok()
        .and_then(|l| l.found)
        .map(|d| d.rel);
        flight.say(
            Msg::Warn,
            &crate::engine::not_ours_warning(&flight.display, do_rel.as_deref()),
        );
    }
}

/// A target redo built, whose `.do` is gone and which no other `.do` builds: its state is
/// removed, so that it is a source from now on (its dependants compare it as one, and rebuild
/// when it is edited), with one warning.
pub(super) fn do_gone(
    disk: &dyn Disk,
    engine: &Engine,
    flight: &Flight,
    rec_path: &Path,
) -> Result<(), JobError> {
    match disk.remove_file(rec_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(before_run(Error::io("remove", rec_path)(e))),
    }
    if !flight.origin.settings.no_sync {
        if let Some(redo_dir) = rec_path.parent() {
            fsync_dir(disk, redo_dir).map_err(before_run)?;
        }
    }
    engine.recs().forget(rec_path);
    engine.wrote(rec_path);
    flight.say(
        Msg::Warn,
        &format!(
            "{}: no .do builds it any more: it is a source from now on",
            flight.display
        ),
    );
    Ok(())
}

/// No file and no `.do`: what the target's requester needs and cannot have. The candidates
/// tried are a debug line.
pub(super) fn no_do(flight: &Flight, tried: &[PathBuf]) -> JobError {
    let tried: Vec<String> = tried.iter().map(|m| show(m)).collect();
    flight.say(
        Msg::Dbg,
        &format!(
            "{}: .do candidates tried: {}",
            flight.display,
            tried.join(", ")
        ),
    );
    before_run(Error::NoDo {
        needed_by: flight.needed_by(),
    })
}
