//! The watcher's memory across daemons: what it vouches for is saved in the snapshot
//! ([`crate::store::snapshot`]) when the daemon exits, and taken back by the next one only as far
//! as the disk confirms it.
//!
//! Restoring is the same protocol as a stat taken at run time, in bulk: every directory is
//! watched first; then every saved stat is taken again (on several threads: a cold start of a
//! large project is mostly these) and every directory's own stat compared with the one saved
//! with its listing (a directory whose entries changed has another mtime; its listing is read
//! again then). What matches is answered from memory from then on; what does not is returned,
//! so that the verdicts that read it are dropped. A change made after a directory was watched
//! is an event, handled before any request is served; should one be handled while the restore
//! runs (the epoch moved), nothing is restored at all: the daemon then starts as it would
//! without a snapshot.

use super::*;
use crate::store::snapshot::{ListingEntry, StatEntry, StatGroup};

/// What stats take at most, each, for a restore (a cold start of a large project is mostly
/// these): no more threads than that.
const STAT_THREADS: usize = 4;

impl Watcher {
    /// What the watcher vouches for now: its stats, and its listings with each directory's
    /// stat (a listing an event dropped while this ran is left out: its directory's stat may
    /// be newer than it).
    pub fn export(&self) -> (Vec<StatEntry>, Vec<ListingEntry>) {
        let s = &self.shared;
        if !self.enabled() {
            return (Vec::new(), Vec::new());
        }
        self.sync();
        let stats: Vec<StatEntry> = lock(&s.stats)
            .iter()
            .map(|(p, m)| (PathBuf::from(p), unpack(*m)))
            .collect();
        let kept: Vec<(PathBuf, Arc<Listing>)> = lock(&s.listings)
            .iter()
            .map(|(d, l)| (d.clone(), l.clone()))
            .collect();
        let mut listings: Vec<ListingEntry> = kept
            .into_iter()
            .filter_map(|(dir, names)| {
                let dir_meta = DiskFs.lstat(&dir).ok().flatten()?;
                Some(ListingEntry {
                    dir,
                    dir_meta,
                    names: (*names).clone(),
                })
            })
            .collect();
        self.sync();
        let still = lock(&s.listings);
        listings.retain(|l| still.get(&l.dir).is_some_and(|n| **n == l.names));
        (stats, listings)
    }

    /// Takes back what a snapshot says the watcher vouched for, as far as the disk confirms
    /// it (see the module docs). Returns the paths whose stat or presence differs now (every
    /// reader of them must be dropped), or `None` when nothing was restored.
    pub fn restore(
        &self,
        stats: Vec<StatGroup>,
        listings: Vec<ListingEntry>,
    ) -> Option<Vec<PathBuf>> {
        let s = &self.shared;
        if !self.enabled() {
            return None;
        }
        // Watched first: whatever changes from now on is an event.
        for l in &listings {
            if !s.cacheable(&l.dir) {
                // The absence of its names can no longer be vouched for.
                return None;
            }
        }
        let before = s.epoch.load(Ordering::Acquire);
        let mut changed: Vec<PathBuf> = Vec::new();
        // The listings first: each directory's build names as they are now (its stat
        // unchanged, or read again), taken after it was watched.
        let mut fresh_listings = Vec::with_capacity(listings.len());
        for l in listings {
            let same_dir = DiskFs.lstat(&l.dir).ok().flatten() == Some(l.dir_meta);
            let names = match same_dir {
                true => l.names,
                false => {
                    let Ok(names) = DiskFs.build_names(&l.dir) else {
                        return None;
                    };
                    for (n, _) in difference(&l.names, &names) {
                        changed.push(l.dir.join(n));
                    }
                    names
                }
            };
            fresh_listings.push((l.dir, Arc::new(names)));
        }
        let now_listed: HashMap<&Path, &Listing> = fresh_listings
            .iter()
            .map(|(d, l)| (d.as_path(), &**l))
            .collect();
        let mut groups = Vec::with_capacity(stats.len());
        // Build names saved as absent, and still absent from their directory's listing: a
        // stat would say so too (they are most of a project's `.do` candidates).
        let mut absent: Vec<PathBuf> = Vec::new();
        for mut g in stats {
            if !s.cacheable(&g.dir) {
                changed.extend(g.entries.into_iter().map(|(p, _)| p));
                continue;
            }
            if let Some(names) = now_listed.get(g.dir.as_path()) {
                let (gone, rest): (Vec<StatEntry>, Vec<StatEntry>) =
                    g.entries.into_iter().partition(|(p, saved)| {
                        saved.is_none()
                            && p.file_name().is_some_and(|n| {
                                crate::fs::is_build_name(n) && !names.iter().any(|(l, _)| l == n)
                            })
                    });
                absent.extend(gone.into_iter().map(|(p, _)| p));
                g.entries = rest;
            }
            groups.push(g);
        }
        let now = stat_groups(&groups);
        let mut cache = lock(&s.stats);
        let mut kept = lock(&s.listings);
        if s.epoch.load(Ordering::Acquire) != before {
            return None;
        }
        cache.reserve(now.len() + absent.len());
        for path in absent {
            cache.insert(crate::fastmap::key_of(path), None);
        }
        let entries = groups.into_iter().flat_map(|g| g.entries);
        for ((path, saved), now) in entries.zip(now) {
            match now {
                Ok((m, false)) => {
                    if m != saved {
                        changed.push(path.clone());
                    }
                    match pack(m) {
                        Some(kept) => {
                            cache.insert(crate::fastmap::key_of(path), kept);
                        }
                        None => changed.push(path),
                    }
                }
                // A link (never cached), or a stat that failed: not vouched for.
                _ => changed.push(path),
            }
        }
        for (dir, names) in fresh_listings {
            kept.insert(dir, names);
        }
        Some(changed)
    }
}

/// An entry's stat now, and whether it is a link.
type Answer = io::Result<(Option<Meta>, bool)>;

/// The stat of each entry now, group after group (and whether it is a link), as
/// [`DiskFs::stat_noting_links`] answers it, on a few threads. Relative to each directory,
/// opened once (`fstatat`): a cold start of a large project is mostly these.
fn stat_groups(groups: &[StatGroup]) -> Vec<Answer> {
    let total: usize = groups.iter().map(|g| g.entries.len()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, STAT_THREADS);
    // Pieces of an eighth of a thread's share, each within one directory, dealt in turn; each
    // with where its answers go in the result (its group's first entry's place, plus its own
    // start).
    let share = total.div_ceil(threads * 8).max(256);
    let mut first = 0;
    let mut pieces: Vec<(&StatGroup, std::ops::Range<usize>, usize)> = Vec::new();
    for g in groups {
        for a in (0..g.entries.len()).step_by(share) {
            pieces.push((g, a..(a + share).min(g.entries.len()), first + a));
        }
        first += g.entries.len();
    }
    let mut out: Vec<Option<Answer>> = (0..total).map(|_| None).collect();
    std::thread::scope(|scope| {
        // Small pieces dealt in turn: the threads end together.
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<usize> = (t..pieces.len()).step_by(threads).collect();
                let pieces = &pieces;
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|i| (pieces[i].2, stat_piece(pieces[i].0, pieces[i].1.clone())))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A thread that panicked leaves its paths without an answer: not vouched for.
            if let Ok(done) = h.join() {
                for (at, answers) in done {
                    for (k, a) in answers.into_iter().enumerate() {
                        out[at + k] = Some(a);
                    }
                }
            }
        }
    });
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not stat'ed"))))
        .collect()
}

/// The stats of `group`'s entries `range`, relative to the directory.
fn stat_piece(group: &StatGroup, range: std::ops::Range<usize>) -> Vec<Answer> {
    use nix::fcntl::{AtFlags, OFlag};
    let entries = &group.entries[range];
    let dir = nix::fcntl::open(
        &group.dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    entries
        .iter()
        .map(|(path, _)| {
            let (Ok(fd), Some((_, name))) = (&dir, crate::fs::paths::split(path)) else {
                // The directory cannot be opened (gone, not a directory): by path, as the
                // daemon would.
                return DiskFs.stat_noting_links(path);
            };
            let at = |flags| match nix::sys::stat::fstatat(fd, name, flags) {
                Ok(st) => Ok(Some(Meta::from_stat(&st))),
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Ok(None),
                Err(e) => Err(io::Error::from(e)),
            };
            match at(AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(Some(m)) if m.kind == Kind::Link => at(AtFlags::empty()).map(|followed| {
                    let followed = followed.map(|m| Meta { link: true, ..m });
                    (followed, true)
                }),
                other => other.map(|m| (m, false)),
            }
        })
        .collect()
}

/// The names in one listing and not the other (either way): their presence changed.
fn difference<'a>(
    a: &'a [(OsString, Kind)],
    b: &'a [(OsString, Kind)],
) -> impl Iterator<Item = &'a (OsString, Kind)> {
    a.iter()
        .filter(|x| !b.contains(x))
        .chain(b.iter().filter(|x| !a.contains(x)))
}
