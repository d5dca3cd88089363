//! What is never written to a kept log (`-k`'s `.log-rec`, shown by `redo-log -c`): the values
//! of variables that hold secrets by their name (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`,
//! `*PASSWD*`, `*CREDENTIAL*`, `*_KEY`, in any case), and the user information of URLs
//! (`https://user:password@host/` → `https://<redacted>@host/`, as `REDO_CACHE` may carry).
//! Logs are kept beside the project and read by whoever can read it; a job's environment is
//! the user's shell's.

use std::borrow::Cow;

/// What stands in for a secret.
pub const REDACTED: &[u8] = b"<redacted>";

/// Whether variable `name` holds a secret by its name.
pub fn secret_name(name: &[u8]) -> bool {
    let upper = name.to_ascii_uppercase();
    const WORDS: [&[u8]; 5] = [b"TOKEN", b"SECRET", b"PASSWORD", b"PASSWD", b"CREDENTIAL"];
    WORDS
        .iter()
        .any(|w| upper.windows(w.len()).any(|x| x == *w))
        || upper.ends_with(b"_KEY")
}

/// The value of variable `name` as a log may show it.
pub fn env_value<'a>(name: &[u8], value: &'a [u8]) -> Cow<'a, [u8]> {
    if secret_name(name) {
        return Cow::Borrowed(REDACTED);
    }
    url_userinfo(value)
}

/// `value` with the user information of every URL in it (`scheme://userinfo@`) redacted.
pub fn url_userinfo(value: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(at) = find(&value[i..], b"://").map(|p| p + i) {
        let start = at + 3;
        // The authority ends at the first '/', '?', '#' or blank; userinfo is before its last '@'.
        let end = value[start..]
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#') || b.is_ascii_whitespace())
            .map_or(value.len(), |p| p + start);
        if let Some(userinfo_end) = value[start..end].iter().rposition(|&b| b == b'@') {
            let o = out.get_or_insert_with(|| Vec::with_capacity(value.len()));
            o.extend_from_slice(&value[copied..start]);
            o.extend_from_slice(REDACTED);
            copied = start + userinfo_end;
        }
        i = end.max(start);
    }
    match out {
        None => Cow::Borrowed(value),
        Some(mut o) => {
            o.extend_from_slice(&value[copied..]);
            Cow::Owned(o)
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
