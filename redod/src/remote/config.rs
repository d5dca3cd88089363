//! `REDO_CACHE*`: what a request's environment asks of the remote cache.
//!
//! | variable | meaning |
//! |---|---|
//! | `REDO_CACHE` | `file:///abs/dir`, `http://host:port/prefix` or `https://…`; unset, empty or `off`: no cache |
//! | `REDO_CACHE_MODE` | `readwrite` (default) or `read` (never uploads) |
//! | `REDO_CACHE_ENV` | `CC,CFLAGS`: variables whose values are part of every key |
//! | `REDO_CACHE_CA` | `/path/ca.pem`: trust this CA (PEM, may hold several) for `https` |
//!
//! HTTP basic-auth credentials come from the URL's userinfo (`https://user:pass@host/`),
//! percent-decoded. They are kept out of [`CacheConfig`]'s `Display` and out of every message.

use super::error::CacheError;
use crate::settings::Env;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Read,
    ReadWrite,
}

/// Where the cache lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// `file:///abs/dir`: `dir/cas/…`, `dir/ac/…`.
    Dir(PathBuf),
    /// `http(s)://host[:port][/prefix]`, without userinfo and without a trailing slash.
    Http {
        base: String,
        user: Option<String>,
        password: Option<String>,
    },
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "file://{}", d.display()),
            // Never the password, not even in debug output.
            Location::Http { base, .. } => f.write_str(base),
        }
    }
}

/// A parsed, validated cache configuration. Equal configurations can share one
/// [`super::RemoteCache`] (and its connection pool): it is `Hash + Eq` for that.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheConfig {
    pub location: Location,
    pub mode: Mode,
    /// `REDO_CACHE_ENV`, sorted and deduplicated (the order the user wrote them in does not
    /// change the key).
    pub env_names: Vec<String>,
    /// `REDO_CACHE_CA`.
    pub ca: Option<PathBuf>,
}

impl fmt::Display for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Read => "read",
            Mode::ReadWrite => "readwrite",
        };
        write!(f, "{} ({mode})", self.location)
    }
}

fn config_err(var: &'static str, what: impl Into<String>, fix: &'static str) -> CacheError {
    CacheError::Config {
        var,
        what: what.into(),
        fix,
    }
}

fn utf8<'e>(env: &'e Env, var: &'static str) -> Result<Option<&'e str>, CacheError> {
    match env.get(var) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(Some)
            .map_err(|_| config_err(var, "not valid UTF-8", "set it to plain text")),
    }
}

/// `%XX` decoding of URL userinfo.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl CacheConfig {
    /// Reads `REDO_CACHE*` from a request's environment. `Ok(None)`: no cache asked for.
    /// One function: one variable after another, each with its own error message.
    pub fn from_env(env: &Env) -> Result<Option<CacheConfig>, CacheError> {
        const URL_FIX: &str =
            "use file:///absolute/dir, http://host:port/prefix or https://host/prefix";
        // `off`: a way to switch a cache set in a profile off for one build.
        let Some(raw) = utf8(env, "REDO_CACHE")?.filter(|s| !s.is_empty() && *s != "off") else {
            return Ok(None);
        };
        let mode = match utf8(env, "REDO_CACHE_MODE")?.unwrap_or("") {
            "" | "readwrite" => Mode::ReadWrite,
            "read" => Mode::Read,
            other => {
                return Err(config_err(
                    "REDO_CACHE_MODE",
                    format!("unknown mode {other:?}"),
                    "use read or readwrite",
                ));
            }
        };
        let mut env_names = Vec::new();
        for n in utf8(env, "REDO_CACHE_ENV")?.unwrap_or("").split(',') {
            let n = n.trim();
            if n.is_empty() {
                continue;
            }
            if n.contains('=') || n.contains('\0') {
                return Err(config_err(
                    "REDO_CACHE_ENV",
                    format!("{n:?} is not a variable name"),
                    "list variable names separated by commas, like CC,CFLAGS",
                ));
            }
            env_names.push(n.to_string());
        }
        env_names.sort();
        env_names.dedup();
        let ca = match env.get("REDO_CACHE_CA").filter(|v| !v.is_empty()) {
            None => None,
            Some(p) => {
                let p = PathBuf::from(p);
                if !p.is_absolute() {
                    return Err(config_err(
                        "REDO_CACHE_CA",
                        format!("{} is not an absolute path", p.display()),
                        "name the CA's PEM file by its absolute path",
                    ));
                }
                Some(p)
            }
        };
        let url = reqwest::Url::parse(raw)
            .map_err(|e| config_err("REDO_CACHE", format!("{raw:?} is not a URL: {e}"), URL_FIX))?;
        let location = match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(config_err(
                        "REDO_CACHE",
                        format!("file URL with a host {raw:?}"),
                        "use file:///absolute/dir (three slashes)",
                    ));
                }
                let dir = url.to_file_path().map_err(|()| {
                    config_err("REDO_CACHE", format!("bad file URL {raw:?}"), URL_FIX)
                })?;
                Location::Dir(dir)
            }
            "http" | "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(config_err("REDO_CACHE", "URL without a host", URL_FIX));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(config_err(
                        "REDO_CACHE",
                        "URL with a query or fragment",
                        "remove the ?… or #… part",
                    ));
                }
                let decode = |s: &str| {
                    percent_decode(s).ok_or_else(|| {
                        config_err(
                            "REDO_CACHE",
                            "bad percent-encoding in the credentials",
                            "encode special characters of user and password as %XX",
                        )
                    })
                };
                let user = match url.username() {
                    "" => None,
                    u => Some(decode(u)?),
                };
                let password = url.password().map(decode).transpose()?;
                let mut bare = url.clone();
                // Both only fail for URLs that cannot have credentials (not http).
                let _ = bare.set_username("");
                let _ = bare.set_password(None);
                let base = bare.as_str().trim_end_matches('/').to_string();
                Location::Http {
                    base,
                    user,
                    password,
                }
            }
            other => {
                return Err(config_err(
                    "REDO_CACHE",
                    format!("unsupported scheme {other:?}"),
                    URL_FIX,
                ));
            }
        };
        if ca.is_some()
            && !matches!(&location, Location::Http { base, .. } if base.starts_with("https:"))
        {
            return Err(config_err(
                "REDO_CACHE_CA",
                "set, but REDO_CACHE is not an https URL",
                "unset REDO_CACHE_CA or use an https:// cache",
            ));
        }
        Ok(Some(CacheConfig {
            location,
            mode,
            env_names,
            ca,
        }))
    }
}

#[cfg(test)]
mod tests;
