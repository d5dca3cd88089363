//! What an action entry holds, and its bytes on the wire.
//!
//! An entry is a valid REAPI `ActionResult` (`remote_execution.proto`, hand-written `prost`
//! structs below with the schema's field numbers, only the fields used), so that servers which
//! validate action entries (bazel-remote) accept it:
//!
//! ```text
//! ac/{key}             ActionResult {
//!                          output_files: [ { path: "redo-output/0", digest: <output of trace 0> }, ... ],
//!                          exit_code: 0,
//!                          execution_metadata: { auxiliary_metadata: [
//!                              Any { type_url: TRACES_TYPE, value: TraceList (protobuf, below) } ] } }
//! cas/{sha256(output)} the target's bytes
//! ```
//!
//! A trace is one build of the target: its recorded dependencies in recorded order (`ifchange`:
//! path relative to the target's directory and BLAKE3 content hash, or absent; `ifcreate`:
//! path) and its output's SHA-256 and size. The traces travel inside the entry, in the
//! field REAPI gives for a worker's own details (`auxiliary_metadata`), so that a lookup is
//! one request and an upload writes two blobs, not three. The output blobs are listed as
//! output files, so that a validating server checks they exist and a garbage-collecting one
//! sees them referenced. Blobs are named by SHA-256 (the protocol's digest function);
//! dependency contents keep redo's BLAKE3, which is what the `.rec` files and the daemon
//! already know.

use super::error::CacheError;
use crate::fs::{Hash, hex, unhex};
use crate::store::recfile::Dep;
use sha2::{Digest as _, Sha256};

/// Part of every key and every trace list: a format change makes old entries unreachable
/// (new keys) and, should one be met anyway, recognisably foreign. 2: the traces inside the
/// entry (1 had them in a CAS blob the entry named).
pub const FORMAT_VERSION: u32 = 2;
/// Traces kept per entry, newest first.
pub const MAX_TRACES: usize = 8;
/// The `Any` type of the trace list in an entry's `auxiliary_metadata`.
pub const TRACES_TYPE: &str = "type.googleapis.com/redo.cache.v2.TraceList";

/// REAPI `Digest` (field numbers of `remote_execution.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Digest {
    #[prost(string, tag = "1")]
    pub hash: String,
    #[prost(int64, tag = "2")]
    pub size_bytes: i64,
}

/// REAPI `OutputFile` (without `contents` and `node_properties`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutputFile {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(message, optional, tag = "2")]
    pub digest: Option<Digest>,
    #[prost(bool, tag = "4")]
    pub is_executable: bool,
}

/// REAPI `ActionResult` (only `output_files`, `exit_code` and `execution_metadata`; unknown
/// fields a server adds are skipped by prost when decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActionResult {
    #[prost(message, repeated, tag = "2")]
    pub output_files: Vec<OutputFile>,
    #[prost(int32, tag = "4")]
    pub exit_code: i32,
    #[prost(message, optional, tag = "9")]
    pub execution_metadata: Option<ExecutedActionMetadata>,
}

/// REAPI `ExecutedActionMetadata` (only `auxiliary_metadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutedActionMetadata {
    #[prost(message, repeated, tag = "11")]
    pub auxiliary_metadata: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceListMsg {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, repeated, tag = "2")]
    traces: Vec<TraceMsg>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceMsg {
    #[prost(message, repeated, tag = "1")]
    deps: Vec<DepMsg>,
    #[prost(message, optional, tag = "2")]
    output: Option<Digest>,
    #[prost(bool, tag = "3")]
    is_file: bool,
    #[prost(bool, tag = "4")]
    executable: bool,
}

const DEP_IFCHANGE: u32 = 1;
const DEP_ABSENT: u32 = 2;
const DEP_IFCREATE: u32 = 3;

#[derive(Clone, PartialEq, prost::Message)]
struct DepMsg {
    #[prost(uint32, tag = "1")]
    kind: u32,
    #[prost(bytes = "vec", tag = "2")]
    path: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    blake3: Vec<u8>,
}

/// A blob's name in the CAS: SHA-256 and size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlobDigest {
    pub sha256: [u8; 32],
    pub size: u64,
}

impl BlobDigest {
    pub fn of(bytes: &[u8]) -> BlobDigest {
        BlobDigest {
            sha256: Sha256::digest(bytes).into(),
            size: bytes.len() as u64,
        }
    }

    pub fn hex(&self) -> String {
        hex(&self.sha256)
    }

    fn to_msg(self) -> Digest {
        Digest {
            hash: self.hex(),
            size_bytes: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }

    fn from_msg(d: Option<&Digest>) -> Result<BlobDigest, FormatError> {
        let d = d.ok_or(FormatError::NoDigest)?;
        let sha256 =
            unhex(d.hash.as_bytes()).ok_or_else(|| FormatError::BadDigest(d.hash.clone()))?;
        let size = u64::try_from(d.size_bytes).map_err(|_| FormatError::NegativeSize)?;
        Ok(BlobDigest { sha256, size })
    }
}

/// Why an entry of the cache cannot be read as redo's: a miss, with this as its reason.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("digest missing")]
    NoDigest,
    #[error("bad digest {0:?}")]
    BadDigest(String),
    #[error("negative size")]
    NegativeSize,
    #[error("bad trace list: {0}")]
    TraceList(prost::DecodeError),
    #[error("unknown format version {0}")]
    Version(u32),
    #[error("bad dependency hash")]
    DependencyHash,
    #[error("unknown dependency kind {0}")]
    DependencyKind(u32),
    #[error("bad ActionResult: {0}")]
    ActionResult(prost::DecodeError),
    /// A valid entry without redo's traces: Bazel's, or another format version's.
    #[error("no redo traces in it: not a redo entry of this format version")]
    NotOurs,
}

/// One recorded dependency of a trace.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TraceDep {
    /// `redo-ifchange`: `content` is its BLAKE3 hash (for a target without output, its
    /// `redo-stamp`, as the `.rec` records it), `None` when it did not exist.
    Ifchange {
        path: Vec<u8>,
        content: Option<Hash>,
    },
    /// `redo-ifcreate`: it did not exist.
    Ifcreate { path: Vec<u8> },
}

impl TraceDep {
    pub fn path(&self) -> &[u8] {
        match self {
            TraceDep::Ifchange { path, .. } | TraceDep::Ifcreate { path } => path,
        }
    }

    /// The dependencies of a committed target as its `.rec` lists them (`name`: the target's
    /// own file name, whose own record is skipped). Paths stay as recorded: relative to the
    /// target's directory. `redo-always` targets are not cacheable (they must run), nor are
    /// targets committed without output (their own `ifcreate` record).
    pub fn from_deps<'d>(
        name: &[u8],
        deps: impl IntoIterator<Item = &'d Dep>,
    ) -> Result<Vec<TraceDep>, CacheError> {
        let mut out = Vec::new();
        for d in deps {
            match d {
                Dep::Always => return Err(CacheError::NotCacheable("redo-always".into())),
                Dep::Stamp { .. } => {}
                Dep::Ifchange { target, .. } if target == name => {}
                Dep::Ifcreate { target } if target == name => {
                    return Err(CacheError::NotCacheable("no output".into()));
                }
                Dep::Ifchange { target, hash, .. } => out.push(TraceDep::Ifchange {
                    path: target.clone(),
                    content: *hash,
                }),
                Dep::Ifcreate { target } => out.push(TraceDep::Ifcreate {
                    path: target.clone(),
                }),
            }
        }
        Ok(out)
    }
}

/// One build of a target: what it read, what it made.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trace {
    pub deps: Vec<TraceDep>,
    /// The output file's blob (only regular files are cached).
    pub output: BlobDigest,
    pub executable: bool,
}

pub fn encode_traces(traces: &[Trace]) -> Vec<u8> {
    let msg = TraceListMsg {
        version: FORMAT_VERSION,
        traces: traces
            .iter()
            .map(|t| TraceMsg {
                deps: t
                    .deps
                    .iter()
                    .map(|d| match d {
                        TraceDep::Ifchange {
                            path,
                            content: Some(h),
                        } => DepMsg {
                            kind: DEP_IFCHANGE,
                            path: path.clone(),
                            blake3: h.to_vec(),
                        },
                        TraceDep::Ifchange {
                            path,
                            content: None,
                        } => DepMsg {
                            kind: DEP_ABSENT,
                            path: path.clone(),
                            blake3: Vec::new(),
                        },
                        TraceDep::Ifcreate { path } => DepMsg {
                            kind: DEP_IFCREATE,
                            path: path.clone(),
                            blake3: Vec::new(),
                        },
                    })
                    .collect(),
                output: Some(t.output.to_msg()),
                is_file: true,
                executable: t.executable,
            })
            .collect(),
    };
    prost::Message::encode_to_vec(&msg)
}

/// A trace list blob. Anything not of this format version is an error (a foreign or future
/// entry: ignored by the caller). Traces whose output is not a file are skipped.
pub fn decode_traces(bytes: &[u8]) -> Result<Vec<Trace>, FormatError> {
    let msg: TraceListMsg = prost::Message::decode(bytes).map_err(FormatError::TraceList)?;
    if msg.version != FORMAT_VERSION {
        return Err(FormatError::Version(msg.version));
    }
    let mut out = Vec::new();
    for t in msg.traces {
        if !t.is_file {
            continue;
        }
        let output = BlobDigest::from_msg(t.output.as_ref())?;
        let mut deps = Vec::with_capacity(t.deps.len());
        for d in t.deps {
            deps.push(match d.kind {
                DEP_IFCHANGE => TraceDep::Ifchange {
                    content: Some(
                        Hash::try_from(d.blake3.as_slice())
                            .map_err(|_| FormatError::DependencyHash)?,
                    ),
                    path: d.path,
                },
                DEP_ABSENT => TraceDep::Ifchange {
                    path: d.path,
                    content: None,
                },
                DEP_IFCREATE => TraceDep::Ifcreate { path: d.path },
                k => return Err(FormatError::DependencyKind(k)),
            });
        }
        out.push(Trace {
            deps,
            output,
            executable: t.executable,
        });
    }
    Ok(out)
}

/// The entry for `traces`: the outputs they refer to, and the traces themselves.
pub fn encode_action_result(traces: &[Trace]) -> Vec<u8> {
    let mut files = Vec::new();
    let mut seen: Vec<BlobDigest> = Vec::new();
    for t in traces {
        if seen.contains(&t.output) {
            continue;
        }
        seen.push(t.output);
        files.push(OutputFile {
            path: format!("redo-output/{}", seen.len() - 1),
            digest: Some(t.output.to_msg()),
            is_executable: t.executable,
        });
    }
    prost::Message::encode_to_vec(&ActionResult {
        output_files: files,
        exit_code: 0,
        execution_metadata: Some(ExecutedActionMetadata {
            auxiliary_metadata: vec![Any {
                type_url: TRACES_TYPE.into(),
                value: encode_traces(traces),
            }],
        }),
    })
}

/// The traces an entry holds. An entry without them is not ours (a Bazel entry, or one of
/// another format version).
pub fn decode_action_result(action_result: &[u8]) -> Result<Vec<Trace>, FormatError> {
    let ar: ActionResult =
        prost::Message::decode(action_result).map_err(FormatError::ActionResult)?;
    let list = ar
        .execution_metadata
        .iter()
        .flat_map(|m| &m.auxiliary_metadata)
        .find(|a| a.type_url == TRACES_TYPE)
        .ok_or(FormatError::NotOurs)?;
    decode_traces(&list.value)
}

/// `new` first, then the older traces that recorded other dependencies, at most
/// [`MAX_TRACES`]. An older trace with the same dependency list is replaced (its inputs now
/// give `new`'s output).
pub fn merge(new: Trace, old: Vec<Trace>) -> Vec<Trace> {
    let mut out = vec![new];
    for t in old {
        if out.len() >= MAX_TRACES {
            break;
        }
        if !out.iter().any(|o| o.deps == t.deps) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests;
