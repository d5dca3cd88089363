//! The `--json` output as serde types (schema in `contrib/bench/README.md`): `redo-bench
//! --json` writes a [`Bench`] with `serde_json`, the smoke test reads it back into the same
//! types.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};
use std::{fmt, io};

/// The whole object `redo-bench --json` prints.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Bench {
    pub benchmark: String,
    pub schema: u32,
    pub date: String,
    pub machine: Machine,
    /// Tool key → `--version` line.
    pub versions: Ordered<String>,
    pub runs: usize,
    pub warmup_runs: usize,
    pub tools: Vec<String>,
    /// Tool key → case key → command line.
    pub commands: Ordered<Ordered<String>>,
    pub notes: Vec<String>,
    /// The groups of cases run (`--cases`): clean, incremental, client, cache, cold, watch,
    /// scale, wide.
    #[serde(default)]
    pub cases: Vec<String>,
    pub sizes: Vec<Size>,
    /// The wide case, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub work_fs: String,
    /// Clock ticks per second of `/proc/PID/stat` (the daemon's CPU time).
    #[serde(default)]
    pub clk_tck: u64,
    /// Percent of the machine's CPU time stolen by the hypervisor during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_percent: Option<f64>,
}

/// The results for one N.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Size {
    pub n: usize,
    /// Case key → tool key → times; a case missing for a tool is absent.
    pub cases: Ordered<Ordered<Stats>>,
    /// Case key → `redo/<tool>` → redo's median over the tool's.
    pub ratios: Ordered<Ordered<Ms>>,
    /// Present when redo is among the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// The same loop with redo-c's `redo-ifchange`, when redo-c is among the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_redo_c: Option<Client>,
    /// Case key (`clean_j1`, `clean_j2`) → median of redo's daemon CPU time over the targets
    /// built, in milliseconds per target; present when redo is among the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_cpu_ms_per_target: Option<Ordered<Ms>>,
    /// The project's bounds on the clean builds, checked (when the tools they need ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Present when redo is among the tools and its memory could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Daemon>,
    /// The shared-cache case, per backend (redo only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<Cache>,
    /// redo's daemon in the scale case, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_daemon: Option<ScaleDaemon>,
    /// What was not measured at this N, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// redo's daemon in the scale case: started by its warm-up clean build of `tree`, read after
/// the measured ones.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ScaleDaemon {
    pub pid: u64,
    /// The targets of one build of `tree`.
    pub targets: usize,
    /// Resident memory after the clean builds (`VmRSS` of `/proc/PID/status`).
    pub rss_kib: u64,
    /// The most it was resident at once (`VmHWM`).
    pub peak_kib: u64,
}

/// The wide case: `n` targets sleeping `sleep_ms` each, `jobs` jobs, against the ideal.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Wide {
    pub n: usize,
    pub jobs: u32,
    pub sleep_ms: Ms,
    /// `n` × `sleep_ms` / `jobs`.
    pub ideal_ms: Ms,
    /// `wide` → tool key → times.
    pub cases: Ordered<Ordered<Stats>>,
    /// `wide` → `TOOL/ideal` → the tool's median over the ideal.
    pub ratios: Ordered<Ordered<Ms>>,
    /// Median of redo's daemon CPU time per target (the N outputs and `all`), when redo ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_cpu_ms_per_target: Option<Ms>,
    /// The targets per second of daemon CPU time that rate sustains (1000 / the above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_targets_per_cpu_second: Option<Ms>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// The shared-cache case over one backend: cold build with uploads, warm second checkout.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Cache {
    /// `file` or `nginx`.
    pub backend: String,
    pub cold_ms: Stats,
    /// The clean build -j1 without a cache, in turns with the cold runs: the ratios' base
    /// (absent in results saved before it was measured; those used `clean_j1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_ms: Option<Stats>,
    pub warm_ms: Stats,
    /// Cold with uploads over the clean build -j1 without a cache (target: at most 1.10).
    pub cold_over_clean: Ms,
    /// The clean build -j1 without a cache over the warm one (target: at least 4).
    pub clean_over_warm: Ms,
    /// `.do` runs for `out/` targets in a warm build (target: 0).
    pub warm_do_runs: usize,
}

/// One of the project's bounds: `value` (a ratio, milliseconds or MiB) at most `at_most`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Target {
    /// A case key (`clean_j1`, `cold_noop`, `watch_all_finished`, `wide`, ...), or
    /// `scale_daemon`.
    pub case: String,
    /// `redo/redo-c`, `redo/ninja`, `redo/ideal` (ratios of medians),
    /// `daemon_cpu_ms_per_target`, `redo_ms` (redo's median) or `peak_mib`.
    pub measure: String,
    pub value: Ms,
    pub at_most: Ms,
    pub met: bool,
}

/// One case of one tool, in milliseconds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Stats {
    pub median_ms: Ms,
    pub min_ms: Ms,
    pub max_ms: Ms,
    pub samples_ms: Vec<Ms>,
}

/// The client loop: `redo-ifchange` calls from one `.do` next to `/bin/true` (this redo's in
/// `client`, redo-c's in `client_redo_c`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Client {
    pub calls: usize,
    pub redo_ifchange_per_call_ms: Ms,
    pub true_per_call_ms: Ms,
    pub difference_per_call_ms: Ms,
    pub redo_ifchange_loop_ms: Stats,
    pub true_loop_ms: Stats,
}

/// The daemon's memory with the graph loaded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Daemon {
    pub rss_kib: u64,
    pub pid: u64,
    pub cached_state_files: Option<u64>,
    pub cached_hashes: Option<u64>,
}

/// A time in milliseconds (or a ratio). Written as an integer when it is one, else rounded
/// to three decimals; `null` when not finite (read back as NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ms(pub f64);

impl Serialize for Ms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if !v.is_finite() {
            s.serialize_none()
        } else if v.fract() == 0.0 && v.abs() < 1e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64((v * 1000.0).round() / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ms, D::Error> {
        Ok(Ms(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
    }
}

/// A JSON object whose members keep their order (cases in table order, tools as given).
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Ordered<V> {
    /// The member `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<V> FromIterator<(String, V)> for Ordered<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Ordered(iter.into_iter().collect())
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered<V>, D::Error> {
        struct Members<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Members<V> {
            type Value = Ordered<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry()? {
                    out.push(member);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// The report as JSON text: two-space indents, arrays of plain values on one line, a final
/// newline.
pub fn to_pretty(b: &Bench) -> Result<String, String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Layout::default());
    b.serialize(&mut ser).map_err(|e| format!("JSON: {e}"))?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| format!("JSON: {e}"))
}

/// `serde_json`'s pretty layout, except that an array whose first element is a plain value
/// (all of ours are homogeneous) stays on one line: `"samples_ms": [1.2, 1.3]`.
#[derive(Default)]
struct Layout {
    indent: usize,
    /// Per open array: `None` until its first element shows whether it is flat.
    arrays: Vec<Option<bool>>,
    /// Per open object: whether it has members.
    objects: Vec<bool>,
    /// `begin_array_value` seen, separator not yet written: whether it is the first.
    pending: Option<bool>,
}

impl Layout {
    fn pad<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Before a value: the separator of the array element it is, if it is one.
    fn value<W: ?Sized + io::Write>(&mut self, w: &mut W, container: bool) -> io::Result<()> {
        let Some(first) = self.pending.take() else {
            return Ok(());
        };
        let flat = match self.arrays.last_mut() {
            Some(f) => *f.get_or_insert(!container),
            None => false,
        };
        if flat {
            if !first {
                w.write_all(b", ")?;
            }
            Ok(())
        } else {
            w.write_all(if first { b"\n" } else { b",\n" })?;
            self.pad(w)
        }
    }
}

macro_rules! plain {
    ($($name:ident: $t:ty),* $(,)?) => {
        $(
            fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W, v: $t) -> io::Result<()> {
                self.value(w, false)?;
                CompactFormatter.$name(w, v)
            }
        )*
    };
}

impl Formatter for Layout {
    plain!(
        write_bool: bool,
        write_i8: i8,
        write_i16: i16,
        write_i32: i32,
        write_i64: i64,
        write_i128: i128,
        write_u8: u8,
        write_u16: u16,
        write_u32: u32,
        write_u64: u64,
        write_u128: u128,
        write_f32: f32,
        write_f64: f64,
        write_number_str: &str,
        write_byte_array: &[u8],
        write_raw_fragment: &str,
    );

    fn write_null<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.value(w, false)?;
        w.write_all(b"null")
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.value(w, false)?;
        w.write_all(b"\"")
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.value(w, true)?;
        self.arrays.push(None);
        self.indent += 1;
        w.write_all(b"[")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pending = Some(first);
        Ok(())
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent = self.indent.saturating_sub(1);
        if self.arrays.pop().flatten() == Some(false) {
            w.write_all(b"\n")?;
            self.pad(w)?;
        }
        w.write_all(b"]")
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.value(w, true)?;
        self.objects.push(false);
        self.indent += 1;
        w.write_all(b"{")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if let Some(any) = self.objects.last_mut() {
            *any = true;
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.pad(w)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent = self.indent.saturating_sub(1);
        if self.objects.pop() == Some(true) {
            w.write_all(b"\n")?;
            self.pad(w)?;
        }
        w.write_all(b"}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_member_order_round_trip() {
        let s = Stats {
            median_ms: Ms(1.5),
            min_ms: Ms(2.0),
            max_ms: Ms(1.23456),
            samples_ms: vec![Ms(f64::NAN)],
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"median_ms":1.5,"min_ms":2,"max_ms":1.235,"samples_ms":[null]}"#
        );
        let back: Stats = serde_json::from_str(&text).unwrap();
        assert_eq!(back.max_ms, Ms(1.235));
        assert!(back.samples_ms[0].0.is_nan());

        let o: Ordered<u32> = [("z".to_string(), 1), ("a".to_string(), 2)]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(text, r#"{"z":1,"a":2}"#);
        let back: Ordered<u32> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, o);
        assert_eq!(back.get("a"), Some(&2));
        assert!(serde_json::from_str::<Ordered<u32>>(r#"{"a": 1,}"#).is_err());
    }

    #[test]
    fn layout_keeps_plain_arrays_on_one_line() {
        #[derive(Serialize)]
        struct T {
            a: Vec<Ms>,
            b: Vec<Ordered<u32>>,
            c: Ordered<u32>,
            d: Vec<String>,
            e: Option<u32>,
        }
        let t = T {
            a: vec![Ms(1.0), Ms(2.5)],
            b: vec![Ordered(vec![("x".into(), 1)]), Ordered(vec![])],
            c: Ordered(vec![]),
            d: vec![],
            e: None,
        };
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Layout::default());
        t.serialize(&mut ser).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\n  \"a\": [1, 2.5],\n  \"b\": [\n    {\n      \"x\": 1\n    },\n    {}\n  ],\n  \"c\": {},\n  \"d\": [],\n  \"e\": null\n}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["a"][1], 2.5);
    }
}
