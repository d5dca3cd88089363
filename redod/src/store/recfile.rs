//! goredo 1.x state files: `DIR/.redo/T.rec`, GNU recutils format (docs/BEHAVIOUR.md §12).
//!
//! ```text
//! Build: 80143f04-bfff-4673-950c-081d712f573d
//!
//! Type: ifchange
//! Target: default.o.do
//! Size: 123
//! ...
//! Hash: f4929732...
//! ```
//!
//! The first record holds only `Build`; every other record is a dependency with a `Type`.
//! Records are separated by one blank line. Values that contain a newline (file names may) use
//! recutils continuation lines (`+ `). The reader is strict about what goredo writes and
//! reports anything else as [`ParseError`]; callers treat such a file as "out of date", never as
//! fatal.

use crate::fs::{Hash, Stamp, hex, unhex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dep {
    /// Rebuild when `target` comes into existence.
    Ifcreate { target: Vec<u8> },
    /// Rebuild when `target` changes. `hash` is `None` when the file did not exist when
    /// recorded (all six inode fields are then 0): such a dependency is always out of date.
    Ifchange {
        target: Vec<u8>,
        stamp: Stamp,
        hash: Option<Hash>,
    },
    /// Out of date in every new build session.
    Always,
    /// `redo-stamp`. Consulted only for a target without output ([`Rec::phony_stamp`]): its
    /// stamp then stands for its content.
    Stamp { hash: Hash },
}

/// The stamp an `ifchange` record (`stamp`, `hash`) carries for a dependency that had no file
/// but a stamp when recorded: zeroed inode data (no file has inode 0) with a `Hash`, the
/// dependency's stamp. goredo and recutils read it as the record of a missing dependency with
/// a hash (always out of date for goredo).
pub fn recorded_stamp<'h>(stamp: &Stamp, hash: Option<&'h Hash>) -> Option<&'h Hash> {
    hash.filter(|_| *stamp == Stamp::default())
}

/// A job's records as they are gathered, in order: the runner's own, each nested request's,
/// and whole batches shared with the verdicts ([`crate::verdict`]), which are not copied: a
/// no-op `all` of ten thousand targets then records one pointer.
#[derive(Clone, Debug, Default)]
pub struct Records {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Own(Vec<Dep>),
    Shared(std::sync::Arc<[Dep]>),
}

impl Records {
    pub fn extend(&mut self, deps: impl IntoIterator<Item = Dep>) {
        match self.parts.last_mut() {
            Some(Part::Own(v)) => v.extend(deps),
            _ => self.parts.push(Part::Own(deps.into_iter().collect())),
        }
    }

    pub fn share(&mut self, deps: std::sync::Arc<[Dep]>) {
        self.parts.push(Part::Shared(deps));
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dep> {
        self.parts.iter().flat_map(|p| {
            let s: &[Dep] = match p {
                Part::Own(v) => v,
                Part::Shared(a) => a,
            };
            s.iter()
        })
    }

    pub fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Own(v) => v.len(),
                Part::Shared(a) => a.len(),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Whether these records are exactly `deps`, without copying anything.
    pub fn same_as(&self, deps: &[Dep]) -> bool {
        self.len() == deps.len() && self.iter().zip(deps).all(|(a, b)| a == b)
    }

    pub fn into_vec(mut self) -> Vec<Dep> {
        match self.parts.len() {
            0 => Vec::new(),
            1 => match self.parts.pop() {
                Some(Part::Own(v)) => v,
                Some(Part::Shared(a)) => a.to_vec(),
                None => Vec::new(),
            },
            _ => self.iter().cloned().collect(),
        }
    }
}

impl From<Vec<Dep>> for Records {
    fn from(deps: Vec<Dep>) -> Records {
        Records {
            parts: vec![Part::Own(deps)],
        }
    }
}

/// A parsed state file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Rec {
    pub build: String,
    pub deps: Vec<Dep>,
}

impl Rec {
    /// The target's own record (`Type: ifchange`, `Target: <its own name>`): what it looked like
    /// when it was last committed.
    pub fn own(&self, name: &[u8]) -> Option<(&Stamp, Option<&Hash>)> {
        self.deps.iter().find_map(|d| match d {
            Dep::Ifchange {
                target,
                stamp,
                hash,
            } if target == name => Some((stamp, hash.as_ref())),
            _ => None,
        })
    }

    /// The stamp of target `name` when it was committed without output (the runner's
    /// ifcreate record on the target itself, and no own ifchange record) after a `redo-stamp`:
    /// such a target is up to date without a file, and its dependants compare this instead of
    /// a content hash. The last stamp counts, as the last write to a file would.
    pub fn phony_stamp(&self, name: &[u8]) -> Option<&Hash> {
        let no_output = self
            .deps
            .iter()
            .any(|d| matches!(d, Dep::Ifcreate { target } if target == name));
        if !no_output || self.own(name).is_some() {
            return None;
        }
        self.deps.iter().rev().find_map(|d| match d {
            Dep::Stamp { hash } => Some(hash),
            _ => None,
        })
    }

    pub fn always(&self) -> bool {
        self.deps.iter().any(|d| matches!(d, Dep::Always))
    }

    pub fn ifchange_targets(&self) -> impl Iterator<Item = &[u8]> {
        self.deps.iter().filter_map(|d| match d {
            Dep::Ifchange { target, .. } => Some(target.as_slice()),
            _ => None,
        })
    }

    /// Names recorded both as ifcreate and ifchange (goredo warns about them after a commit).
    pub fn contradictions(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = self
            .deps
            .iter()
            .filter_map(|d| match d {
                Dep::Ifcreate { target } => Some(target.as_slice()),
                _ => None,
            })
            .filter(|t| self.ifchange_targets().any(|c| c == *t))
            .collect();
        out.dedup();
        out
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid format of .rec: line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

fn err(line: usize, what: impl Into<String>) -> ParseError {
    ParseError {
        line,
        what: what.into(),
    }
}

/// One recfile record: fields in order, with the line each started on.
struct RawRecord {
    line: usize,
    fields: Fields,
}

impl RawRecord {
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn int<T: std::str::FromStr + Default>(
        &self,
        name: &str,
        required: bool,
    ) -> Result<T, ParseError> {
        match self.get(name.as_bytes()) {
            None if required => Err(err(self.line, format!("missing {name}"))),
            None => Ok(T::default()),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    err(
                        self.line,
                        format!("bad {name} value '{}'", String::from_utf8_lossy(v)),
                    )
                }),
        }
    }
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty()
        && (n[0].is_ascii_alphabetic() || n[0] == b'%')
        && n[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Splits recfile text into records.
fn records(text: &[u8]) -> Result<Vec<RawRecord>, ParseError> {
    let mut out: Vec<RawRecord> = Vec::new();
    let mut cur: Option<RawRecord> = None;
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if body.is_empty() {
        return Ok(out);
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            out.extend(cur.take());
            continue;
        }
        if line[0] == b'#' {
            continue;
        }
        if line[0] == b'+' {
            let rest = line[1..].strip_prefix(b" ").unwrap_or(&line[1..]);
            let Some((_, v)) = cur.as_mut().and_then(|r| r.fields.last_mut()) else {
                return Err(err(lineno, "continuation line without a field"));
            };
            v.push(b'\n');
            v.extend_from_slice(rest);
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(err(
                lineno,
                format!("not a field: '{}'", String::from_utf8_lossy(line)),
            ));
        };
        let name = &line[..colon];
        if !valid_name(name) {
            return Err(err(
                lineno,
                format!("bad field name '{}'", String::from_utf8_lossy(name)),
            ));
        }
        let value = &line[colon + 1..];
        let value = value
            .strip_prefix(b" ")
            .or_else(|| value.strip_prefix(b"\t"))
            .unwrap_or(value);
        cur.get_or_insert_with(|| RawRecord {
            line: lineno,
            fields: Vec::new(),
        })
        .fields
        .push((name.to_vec(), value.to_vec()));
    }
    out.extend(cur);
    // Descriptor records (`%rec:` ...) are recutils schema, not data.
    out.retain(|r| {
        r.fields
            .first()
            .is_none_or(|(n, _)| n.first() != Some(&b'%'))
    });
    Ok(out)
}

/// One recfile record: `(name, value)` fields in file order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The records of any recfile (also `.log-rec`).
pub fn raw_records(text: &[u8]) -> Result<Vec<Fields>, ParseError> {
    Ok(records(text)?.into_iter().map(|r| r.fields).collect())
}

/// Parses a `.rec` file.
pub fn parse(text: &[u8]) -> Result<Rec, ParseError> {
    let recs = records(text)?;
    let Some(first) = recs.first() else {
        return Err(err(1, "empty file"));
    };
    let build = match first.get(b"Build") {
        Some(b) if !b.is_empty() => {
            String::from_utf8(b.to_vec()).map_err(|_| err(first.line, "Build is not UTF-8"))?
        }
        _ => return Err(err(first.line, "first record has no Build")),
    };
    let mut deps = Vec::with_capacity(recs.len() - 1);
    for r in &recs[1..] {
        let target = || match r.get(b"Target") {
            Some(t) if !t.is_empty() => Ok(t.to_vec()),
            _ => Err(err(r.line, "missing Target")),
        };
        let hash = |required: bool| match r.get(b"Hash") {
            None if !required => Ok(None),
            None => Err(err(r.line, "missing Hash")),
            Some(h) => unhex(h)
                .map(Some)
                .ok_or_else(|| err(r.line, format!("bad Hash '{}'", String::from_utf8_lossy(h)))),
        };
        let dep = match r.get(b"Type") {
            Some(b"ifcreate") => Dep::Ifcreate { target: target()? },
            Some(b"ifchange") => Dep::Ifchange {
                target: target()?,
                stamp: Stamp {
                    size: r.int("Size", true)?,
                    ino: r.int("InodeNum", false)?,
                    ctime_sec: r.int("CtimeSec", true)?,
                    ctime_nsec: r.int("CtimeNsec", true)?,
                    mtime_sec: r.int("MtimeSec", false)?,
                    mtime_nsec: r.int("MtimeNsec", false)?,
                },
                hash: hash(false)?,
            },
            Some(b"always") => Dep::Always,
            Some(b"stamp") => match hash(true)? {
                Some(h) => Dep::Stamp { hash: h },
                None => return Err(err(r.line, "missing Hash")),
            },
            Some(other) => {
                return Err(err(
                    r.line,
                    format!("unknown Type '{}'", String::from_utf8_lossy(other)),
                ));
            }
            None => return Err(err(r.line, "record without Type")),
        };
        deps.push(dep);
    }
    Ok(Rec { build, deps })
}

/// Appends one `Name: value` field; a value with newlines continues on `+ ` lines.
pub fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    let mut lines = value.split(|&b| b == b'\n');
    if let Some(first) = lines.next() {
        out.extend_from_slice(first);
    }
    for more in lines {
        out.extend_from_slice(b"\n+ ");
        out.extend_from_slice(more);
    }
    out.push(b'\n');
}

fn num(out: &mut Vec<u8>, name: &str, v: impl std::fmt::Display) {
    field(out, name, v.to_string().as_bytes());
}

/// Encodes `rec` exactly as goredo lays it out: `Build` first, one blank line between records,
/// ifchange fields in the documented order.
pub fn encode(rec: &Rec) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rec.deps.len() * 200);
    field(&mut out, "Build", rec.build.as_bytes());
    for d in &rec.deps {
        out.push(b'\n');
        match d {
            Dep::Ifcreate { target } => {
                field(&mut out, "Type", b"ifcreate");
                field(&mut out, "Target", target);
            }
            Dep::Ifchange {
                target,
                stamp,
                hash,
            } => {
                field(&mut out, "Type", b"ifchange");
                field(&mut out, "Target", target);
                num(&mut out, "Size", stamp.size);
                num(&mut out, "InodeNum", stamp.ino);
                num(&mut out, "CtimeSec", stamp.ctime_sec);
                num(&mut out, "CtimeNsec", stamp.ctime_nsec);
                num(&mut out, "MtimeSec", stamp.mtime_sec);
                num(&mut out, "MtimeNsec", stamp.mtime_nsec);
                if let Some(h) = hash {
                    field(&mut out, "Hash", hex(h).as_bytes());
                }
            }
            Dep::Always => field(&mut out, "Type", b"always"),
            Dep::Stamp { hash } => {
                field(&mut out, "Type", b"stamp");
                field(&mut out, "Hash", hex(hash).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
