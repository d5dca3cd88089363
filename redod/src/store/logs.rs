//! Kept job logs (`-k`, `REDO_LOGS=1`; docs/BEHAVIOUR.md §12, §15) and `redo-log`.
//!
//! * `DIR/.redo/T.log`: every stderr line of the `.do`, as `@<TAI64N> <line>`, truncated when
//!   the job starts.
//! * `DIR/.redo/T.log-rec`: one recfile record written when the job ends, success or failure:
//!   `Build PPID Cwd PID Started Finished Duration Cmd Arg* Env* ExitCode Ifchange*`.
//!
//! TAI64N labels follow daemontools: `@` + 16 hex digits of 2^62 + 10 + Unix seconds + 8 hex
//! digits of nanoseconds. Neither file is fsynced or written atomically (as in goredo): they
//! are diagnostics, never inputs of a build decision.

use crate::fs::paths;
use crate::store::{layout, recfile};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TAI_OFFSET: u64 = (1 << 62) + 10;

/// `@4000000065f1a2b3` + nanoseconds: the TAI64N label of `t`.
pub fn tai64n(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("@{:016x}{:08x}", TAI_OFFSET + d.as_secs(), d.subsec_nanos())
}

/// Inverse of [`tai64n`].
pub fn parse_tai64n(label: &[u8]) -> Option<SystemTime> {
    let hex = label.strip_prefix(b"@")?;
    if hex.len() != 24 {
        return None;
    }
    let text = std::str::from_utf8(hex).ok()?;
    let secs = u64::from_str_radix(&text[..16], 16)
        .ok()?
        .checked_sub(TAI_OFFSET)?;
    let nanos = u32::from_str_radix(&text[16..], 16)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Local broken-down time of `t`: (year, month, day, hour, minute, second, millisecond).
#[allow(unsafe_code)]
fn local(t: SystemTime) -> (i32, u32, u32, u32, u32, u32, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(0);
    // SAFETY: `localtime_r` fills the `tm` we own from a valid `time_t`; `tm` is plain data,
    // all-zero is a valid value for it.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let n = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    (
        tm.tm_year + 1900,
        n(tm.tm_mon + 1),
        n(tm.tm_mday),
        n(tm.tm_hour),
        n(tm.tm_min),
        n(tm.tm_sec),
        d.subsec_millis(),
    )
}

/// `2026-11-21 07:01:02`.
pub fn date_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = local(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `07:01:02.123`.
pub fn time_of_day(t: SystemTime) -> String {
    let (.., h, mi, s, ms) = local(t);
    format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
}

/// Writes `.redo/T.log` as the job's stderr is relayed.
pub struct JobLog {
    out: BufWriter<File>,
    /// The last write ended inside a line (its stamp is already written).
    mid_line: bool,
    failed: bool,
}

impl JobLog {
    /// Creates (truncates) the log of target `dir/name`. Call under the requester's umask.
    pub fn create(dir: &Path, name: &OsStr) -> io::Result<JobLog> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .custom_flags(libc::O_CLOEXEC)
            .open(layout::log_path(dir, name))?;
        Ok(JobLog {
            out: BufWriter::new(f),
            mid_line: false,
            failed: false,
        })
    }

    /// Appends stderr bytes, stamping every line that starts here.
    pub fn write(&mut self, chunk: &[u8]) {
        if self.failed {
            return;
        }
        let stamp = tai64n(SystemTime::now());
        let mut r = Ok(());
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            if !self.mid_line {
                r = r
                    .and_then(|()| self.out.write_all(stamp.as_bytes()))
                    .and_then(|()| self.out.write_all(b" "));
            }
            r = r.and_then(|()| self.out.write_all(piece));
            self.mid_line = !piece.ends_with(b"\n");
        }
        if let Err(e) = r.and_then(|()| self.out.flush()) {
            self.failed = true;
            tracing::warn!("cannot write a job log: {e}");
        }
    }

    /// Ends a last unterminated line.
    pub fn finish(mut self) {
        if self.mid_line {
            self.write(b"\n");
        }
    }
}

/// How a job ran, for `.redo/T.log-rec`.
pub struct LogRec {
    pub build: String,
    pub ppid: u32,
    pub cwd: PathBuf,
    pub pid: Option<u32>,
    pub started: SystemTime,
    pub finished: SystemTime,
    pub cmd: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub exit_code: Option<i32>,
    pub ifchange: Vec<Vec<u8>>,
}

impl LogRec {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let num = |out: &mut Vec<u8>, name: &str, v: &dyn std::fmt::Display| {
            recfile::field(out, name, v.to_string().as_bytes())
        };
        recfile::field(&mut out, "Build", self.build.as_bytes());
        num(&mut out, "PPID", &self.ppid);
        recfile::field(&mut out, "Cwd", paths::bytes(&self.cwd));
        if let Some(pid) = self.pid {
            num(&mut out, "PID", &pid);
        }
        recfile::field(&mut out, "Started", tai64n(self.started).as_bytes());
        recfile::field(&mut out, "Finished", tai64n(self.finished).as_bytes());
        let ns = self
            .finished
            .duration_since(self.started)
            .unwrap_or_default()
            .as_nanos();
        num(&mut out, "Duration", &ns);
        recfile::field(&mut out, "Cmd", self.cmd.as_bytes());
        for a in &self.args {
            recfile::field(&mut out, "Arg", a.as_bytes());
        }
        for (k, v) in &self.env {
            let v = super::redact::env_value(k.as_bytes(), v.as_bytes());
            recfile::field(&mut out, "Env", &[k.as_bytes(), b"=", &v].concat());
        }
        if let Some(c) = self.exit_code {
            num(&mut out, "ExitCode", &c);
        }
        for t in &self.ifchange {
            recfile::field(&mut out, "Ifchange", t);
        }
        out
    }

    /// Writes `.redo/T.log-rec` of target `dir/name` (under the requester's umask); on failure
    /// the file is removed and the error returned for a warning.
    pub fn write(&self, dir: &Path, name: &OsStr) -> io::Result<()> {
        let path = layout::log_rec_path(dir, name);
        let r = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .and_then(|mut f| f.write_all(&self.encode()));
        if r.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        r
    }
}

/// A `.log-rec` read back, with what `redo-log` shows.
struct Kept {
    target: PathBuf,
    build: Vec<u8>,
    started: Option<SystemTime>,
    finished: Option<SystemTime>,
    duration_ns: Option<u64>,
    exit_code: Option<i32>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    ifchange: Vec<PathBuf>,
}

/// Why `redo-log` has nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A `.log-rec` that cannot be read.
    #[error(transparent)]
    Read(#[from] super::Error),
    /// A `.log-rec` that does not parse (`path`: it, as shown).
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: recfile::ParseError,
    },
    /// No log was kept for the target (`target`: as the requester would name it).
    #[error("no log for {0}: build it with redo -k (or REDO_LOGS=1) to keep its log")]
    NotKept(String),
}

fn read_kept(target: &Path) -> Result<Option<Kept>, LogError> {
    let Some((dir, name)) = paths::split(target) else {
        return Ok(None);
    };
    let path = layout::log_rec_path(dir, name);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(super::Error::io("read", &path)(e).into()),
    };
    let fields = recfile::raw_records(&text)
        .map_err(|source| LogError::Parse {
            path: paths::show(&path),
            source,
        })?
        .into_iter()
        .next()
        .unwrap_or_default();
    let get = |n: &[u8]| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_slice())
    };
    let num = |n: &[u8]| {
        get(n)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
    };
    Ok(Some(Kept {
        target: target.to_path_buf(),
        build: get(b"Build").unwrap_or_default().to_vec(),
        started: get(b"Started").and_then(parse_tai64n),
        finished: get(b"Finished").and_then(parse_tai64n),
        duration_ns: num(b"Duration").and_then(|n| u64::try_from(n).ok()),
        exit_code: num(b"ExitCode").and_then(|n| i32::try_from(n).ok()),
        ifchange: fields
            .iter()
            .filter(|(k, _)| k == b"Ifchange")
            .map(|(_, v)| paths::resolve(dir, OsStr::from_bytes(v)))
            .collect(),
        fields,
    }))
}

/// `redo-log [-r] [-c] target`: the target's kept log with readable timestamps; with
/// `recursive`, first the logs of its dependencies built in the same build, in the order they
/// finished; with `details`, how each job ran.
/// One function: the listing is one pass over the jobs of a build, in finishing order.
pub fn show(
    target: &Path,
    cwd: &Path,
    recursive: bool,
    details: bool,
) -> Result<Vec<u8>, LogError> {
    let rel = |p: &Path| paths::show(&paths::shown(cwd, p));
    let Some(top) = read_kept(target)? else {
        return Err(LogError::NotKept(rel(target)));
    };
    let mut jobs = vec![];
    if recursive {
        let mut seen = std::collections::HashSet::from([target.to_path_buf()]);
        let mut stack = top.ifchange.clone();
        while let Some(dep) = stack.pop() {
            if !seen.insert(dep.clone()) {
                continue;
            }
            if let Some(k) = read_kept(&dep)? {
                if k.build == top.build {
                    stack.extend(k.ifchange.iter().cloned());
                    jobs.push(k);
                }
            }
        }
        jobs.sort_by_key(|k| k.finished);
    }
    jobs.push(top);
    let headers = recursive || details;
    let mut out = Vec::new();
    for k in &jobs {
        if headers {
            let status = match k.exit_code {
                Some(c) => format!("exit {c}"),
                None => "ok".into(),
            };
            let took = k
                .duration_ns
                .map(|n| format!(", {:.3}s", n as f64 / 1e9))
                .unwrap_or_default();
            let when = k
                .started
                .map(|t| format!(", started {}", date_time(t)))
                .unwrap_or_default();
            out.extend_from_slice(
                format!("== {} ({status}{took}{when})\n", rel(&k.target)).as_bytes(),
            );
        }
        if details {
            for (name, v) in &k.fields {
                if matches!(
                    name.as_slice(),
                    b"Cmd" | b"Arg" | b"Cwd" | b"Env" | b"PID" | b"PPID"
                ) {
                    out.extend_from_slice(b"   ");
                    out.extend_from_slice(&name.to_ascii_lowercase());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(v);
                    out.push(b'\n');
                }
            }
        }
        let Some((dir, name)) = paths::split(&k.target) else {
            continue;
        };
        let log = std::fs::read(layout::log_path(dir, name)).unwrap_or_default();
        for line in log.split_inclusive(|&b| b == b'\n') {
            // `@` + 24 hex digits, then a space.
            match line.split_first_chunk::<26>() {
                Some((label, rest)) if label[25] == b' ' => match parse_tai64n(&label[..25]) {
                    Some(t) => {
                        out.extend_from_slice(time_of_day(t).as_bytes());
                        out.push(b' ');
                        out.extend_from_slice(rest);
                    }
                    None => out.extend_from_slice(line),
                },
                _ => out.extend_from_slice(line),
            }
        }
        if out.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
