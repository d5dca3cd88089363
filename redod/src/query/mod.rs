//! The listing commands (docs/BEHAVIOUR.md §16): `redo-targets`, `redo-sources`, `redo-ood`,
//! `redo-affects`, `redo-dot`, answered from the state files through the daemon's caches.
//!
//! A *known target* is a file `X` with a state file `.redo/X.rec` (it need not exist: phony
//! targets have state too). Listings print paths relative to the requester's directory (paths
//! outside the project root as absolute paths), one per line, sorted bytewise. Nothing here
//! runs a `.do` or writes a file.

use crate::fastmap::{HashMap, HashSet};
use crate::fs::paths;
use crate::fs::{Fs, Kind};
use crate::ood::{Checker, Step, Trust, Walk};
use crate::store::cache::{Hashes, Loaded, RecCache};
use crate::store::recfile::{Dep, Rec};
use redo_proto::{QUERY_NO_OUTSIDE, QueryKind};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Graph<'a> {
    pub fs: &'a dyn Fs,
    pub recs: &'a RecCache,
    pub hashes: &'a Hashes,
    pub trust: Trust,
    /// Dependencies declared by targets' last failed attempts (`--watch`: a target that never
    /// built has no state, but its attempt named what it needs).
    pub attempts: Option<&'a HashMap<PathBuf, Vec<Dep>>>,
}

impl Graph<'_> {
    fn checker(&self) -> Checker<'_> {
        Checker {
            fs: self.fs,
            hashes: self.hashes,
            trust: self.trust,
            recs: Some(self.recs),
        }
    }

    /// Every known target beneath `dir`, sorted. Symlinked directories are not followed.
    pub fn known_targets(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match self.fs.list(&d) {
                Ok(e) => e,
                // A directory that vanished or that we may not read: nothing known there.
                Err(e) if d != dir => {
                    tracing::debug!("skipping {}: {e}", d.display());
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (name, kind) in entries {
                if kind != Kind::Dir {
                    continue;
                }
                if name == ".redo" {
                    for (file, k) in self.fs.list(&d.join(&name)).unwrap_or_default() {
                        let f = file.as_bytes();
                        if k == Kind::File && !f.starts_with(b".redo.") {
                            if let Some(target) = f.strip_suffix(b".rec") {
                                out.push(d.join(OsStr::from_bytes(target)));
                            }
                        }
                    }
                } else {
                    stack.push(d.join(name));
                }
            }
        }
        out.sort_by(|a, b| paths::bytes(a).cmp(paths::bytes(b)));
        Ok(out)
    }

    /// The parsed state of a target, when it has one that parses.
    fn rec(&self, target: &Path) -> Option<Arc<Rec>> {
        let (dir, name) = paths::split(target)?;
        match self
            .recs
            .load(self.fs, &crate::store::layout::rec_path(dir, name))
        {
            Ok(Loaded::Ok(rec)) => Some(rec),
            _ => None,
        }
    }

    fn has_state(&self, target: &Path) -> bool {
        paths::split(target).is_some_and(|(d, n)| {
            self.fs
                .exists(&crate::store::layout::rec_path(d, n))
                .unwrap_or(false)
        })
    }

    /// Dependencies of `target` recorded in `rec`, resolved: (path, is ifcreate).
    fn deps(target: &Path, rec: &Rec) -> Vec<(PathBuf, bool)> {
        Self::resolve_deps(target, &rec.deps)
    }

    fn resolve_deps(target: &Path, deps: &[Dep]) -> Vec<(PathBuf, bool)> {
        let Some((dir, name)) = paths::split(target) else {
            return Vec::new();
        };
        deps.iter()
            .filter_map(|d| match d {
                Dep::Ifchange { target: t, .. } if t.as_slice() != name.as_bytes() => {
                    Some((paths::resolve(dir, OsStr::from_bytes(t)), false))
                }
                Dep::Ifcreate { target: t } if t.as_slice() != name.as_bytes() => {
                    Some((paths::resolve(dir, OsStr::from_bytes(t)), true))
                }
                _ => None,
            })
            .collect()
    }

    /// Sources the roots depend on, transitively (`.do` files included).
    pub fn sources(&self, roots: &[PathBuf]) -> io::Result<BTreeSet<PathBuf>> {
        let mut sources = BTreeSet::new();
        let mut seen: HashSet<PathBuf> = roots.iter().cloned().collect();
        let mut stack = roots.to_vec();
        while let Some(t) = stack.pop() {
            let Some(rec) = self.rec(&t) else { continue };
            for (dep, ifcreate) in Self::deps(&t, &rec) {
                if ifcreate || seen.contains(&dep) {
                    continue;
                }
                let meta = self.fs.stat(&dep)?;
                if self.checker().is_source(&dep, meta.as_ref())? {
                    sources.insert(dep);
                } else if self.has_state(&dep) {
                    seen.insert(dep.clone());
                    stack.push(dep);
                }
            }
        }
        Ok(sources)
    }

    /// What a change to would make the roots out of date: their sources (`.do` files
    /// included) and the files whose creation they wait for (ifcreate), transitively. One walk
    /// over the targets (a `--watch` round's end makes it over every target of the build).
    pub fn inputs(&self, roots: &[PathBuf]) -> io::Result<HashSet<PathBuf>> {
        let mut inputs = HashSet::default();
        let mut seen: HashSet<PathBuf> = HashSet::default();
        let mut stack = roots.to_vec();
        while let Some(t) = stack.pop() {
            if seen.contains(&t) {
                continue;
            }
            let mut deps = self.rec(&t).map(|r| Self::deps(&t, &r)).unwrap_or_default();
            if let Some(tried) = self.attempts.and_then(|a| a.get(&t)) {
                // What the failed attempt named counts as much as what was recorded.
                deps.extend(Self::resolve_deps(&t, tried));
            }
            seen.insert(t);
            for (dep, ifcreate) in deps {
                if ifcreate {
                    inputs.insert(dep);
                    continue;
                }
                if seen.contains(&dep) || inputs.contains(&dep) {
                    continue;
                }
                let meta = self.fs.stat(&dep)?;
                let attempted = self.attempts.is_some_and(|a| a.contains_key(&dep));
                if !attempted && self.checker().is_source(&dep, meta.as_ref())? {
                    inputs.insert(dep);
                } else if attempted || self.has_state(&dep) {
                    stack.push(dep);
                }
            }
        }
        Ok(inputs)
    }

    /// Whether a build would find `target` out of date. A dependency that is a target and out
    /// of date makes its dependant out of date too: whether the dependant is then really
    /// rebuilt depends on what the dependency's rebuild produces, which only running it tells.
    pub fn is_ood(
        &self,
        target: &Path,
        memo: &mut HashMap<PathBuf, bool>,
        active: &mut HashSet<PathBuf>,
    ) -> io::Result<bool> {
        if let Some(v) = memo.get(target) {
            return Ok(*v);
        }
        let Some((dir, name)) = paths::split(target) else {
            return Ok(false);
        };
        if !active.insert(target.to_path_buf()) {
            // A recorded cycle: the build would report it; here it decides nothing.
            return Ok(false);
        }
        let verdict = match self
            .recs
            .load(self.fs, &crate::store::layout::rec_path(dir, name))?
        {
            Loaded::Missing | Loaded::Corrupt(_) => true,
            Loaded::Ok(rec) => {
                let checker = self.checker();
                let mut walk = Walk::new(&rec, dir, name);
                loop {
                    match walk.next(&checker)? {
                        Step::UpToDate => break false,
                        Step::OutOfDate(_) => break true,
                        Step::Visit(dep) => {
                            if self.is_ood(&dep, memo, active)? {
                                break true;
                            }
                        }
                    }
                }
            }
        };
        active.remove(target);
        memo.insert(target.to_path_buf(), verdict);
        Ok(verdict)
    }

    /// Targets among `all` that depend on one of `files`, transitively (ifchange or ifcreate).
    pub fn affects(&self, all: &[PathBuf], files: &[PathBuf]) -> BTreeSet<PathBuf> {
        let mut dependants: HashMap<PathBuf, Vec<PathBuf>> = HashMap::default();
        for t in all {
            if let Some(rec) = self.rec(t) {
                for (dep, _) in Self::deps(t, &rec) {
                    dependants.entry(dep).or_default().push(t.clone());
                }
            }
        }
        let mut out = BTreeSet::new();
        let mut stack = files.to_vec();
        while let Some(f) = stack.pop() {
            for t in dependants.get(&f).into_iter().flatten() {
                if !files.contains(t) && out.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        out
    }

    /// The graph below `roots` in Graphviz dot, names relative to `cwd` (absolute outside the
    /// project root `top`). `outside: false` leaves files outside `top` out of the picture.
    pub fn dot(
        &self,
        roots: &[PathBuf],
        cwd: &Path,
        top: Option<&Path>,
        outside: bool,
    ) -> io::Result<String> {
        let name = |p: &Path| dot_quote(&paths::show(&paths::shown_in(top, cwd, p)));
        let mut nodes: Vec<String> = Vec::new();
        let mut edges: Vec<String> = Vec::new();
        let mut seen: HashSet<PathBuf> = HashSet::default();
        let mut stack: Vec<PathBuf> = roots.to_vec();
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            let Some(rec) = self.rec(&t) else {
                nodes.push(format!("  {} [shape=box, style=dashed];", name(&t)));
                continue;
            };
            let mut marks = Vec::new();
            if rec.always() {
                marks.push("always");
            }
            if rec.deps.iter().any(|d| matches!(d, Dep::Stamp { .. })) {
                marks.push("stamp");
            }
            let label = if marks.is_empty() {
                String::new()
            } else {
                let rel = paths::show(&paths::shown_in(top, cwd, &t));
                format!(
                    ", style=bold, label={}",
                    dot_quote(&format!("{rel}\n({})", marks.join(", ")))
                )
            };
            nodes.push(format!("  {} [shape=box{label}];", name(&t)));
            for (dep, ifcreate) in Self::deps(&t, &rec) {
                if !outside && !paths::inside(top, &dep) {
                    continue;
                }
                if ifcreate {
                    edges.push(format!("  {} -> {} [style=dotted];", name(&t), name(&dep)));
                    if seen.insert(dep.clone()) {
                        nodes.push(format!(
                            "  {} [shape=plaintext, fontcolor=gray40];",
                            name(&dep)
                        ));
                    }
                    continue;
                }
                edges.push(format!("  {} -> {};", name(&t), name(&dep)));
                let meta = self.fs.stat(&dep)?;
                if self.checker().is_source(&dep, meta.as_ref())? {
                    if seen.insert(dep.clone()) {
                        nodes.push(format!("  {} [shape=ellipse];", name(&dep)));
                    }
                } else {
                    stack.push(dep);
                }
            }
        }
        nodes.sort();
        nodes.dedup();
        edges.sort();
        edges.dedup();
        let mut out = String::from(
            "digraph redo {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n",
        );
        for l in nodes.iter().chain(&edges) {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("}\n");
        Ok(out)
    }
}

/// A dot string literal.
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One path per line, relative to `cwd` (absolute outside the project root `top`), sorted.
fn lines(paths_: impl IntoIterator<Item = PathBuf>, cwd: &Path, top: Option<&Path>) -> Vec<u8> {
    let mut rel: Vec<Vec<u8>> = paths_
        .into_iter()
        .map(|p| paths::bytes(&paths::shown_in(top, cwd, &p)).to_vec())
        .collect();
    rel.sort();
    rel.dedup();
    let mut out = Vec::with_capacity(rel.iter().map(|r| r.len() + 1).sum());
    for r in rel {
        out.extend_from_slice(&r);
        out.push(b'\n');
    }
    out
}

/// Runs one listing for a requester in `cwd` of the daemon's project; returns what goes to
/// stdout.
/// Why a listing could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A directory whose targets were to be listed cannot be read.
    #[error(transparent)]
    Read(#[from] crate::store::Error),
    /// A state file or a dependency could not be read on the way through the graph.
    #[error(transparent)]
    Walk(#[from] io::Error),
}

pub fn run(
    g: &Graph,
    kind: QueryKind,
    cwd: &Path,
    args: &[Vec<u8>],
) -> Result<Vec<u8>, QueryError> {
    run_in(g, kind, paths::root(), cwd, args)
}

/// [`run`] in the project rooted at `top` (`None`: every path counts as inside).
pub fn run_in(
    g: &Graph,
    kind: QueryKind,
    top: Option<&Path>,
    cwd: &Path,
    args: &[Vec<u8>],
) -> Result<Vec<u8>, QueryError> {
    let no_outside = args.iter().any(|a| a == QUERY_NO_OUTSIDE);
    let resolve = |a: &Vec<u8>| paths::resolve(cwd, OsStr::from_bytes(a));
    let given: Vec<PathBuf> = args
        .iter()
        .filter(|a| a.as_slice() != QUERY_NO_OUTSIDE)
        .map(resolve)
        .collect();
    let lines = |p: Vec<PathBuf>| lines(p, cwd, top);
    let all_here = || {
        g.known_targets(cwd)
            .map_err(crate::store::Error::io("read", cwd))
    };
    let roots = || {
        if given.is_empty() {
            all_here()
        } else {
            Ok(given.clone())
        }
    };
    match kind {
        QueryKind::Targets => {
            let dirs = if given.is_empty() {
                vec![cwd.to_path_buf()]
            } else {
                given.clone()
            };
            let mut all = Vec::new();
            for d in &dirs {
                all.extend(
                    g.known_targets(d)
                        .map_err(crate::store::Error::io("read", d))?,
                );
            }
            Ok(lines(all))
        }
        QueryKind::Sources => Ok(lines(g.sources(&roots()?)?.into_iter().collect())),
        QueryKind::Ood => {
            let (mut memo, mut active) = (HashMap::default(), HashSet::default());
            let mut out = Vec::new();
            for t in roots()? {
                if g.is_ood(&t, &mut memo, &mut active)? {
                    out.push(t);
                }
            }
            Ok(lines(out))
        }
        QueryKind::Affects => Ok(lines(g.affects(&all_here()?, &given).into_iter().collect())),
        QueryKind::Dot => Ok(g.dot(&roots()?, cwd, top, !no_outside)?.into_bytes()),
    }
}

#[cfg(test)]
mod tests;
