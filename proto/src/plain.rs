//! System errors in plain words, for messages people read: `permission denied`, not
//! `Permission denied (os error 13)`.
//!
//! std's `io::Error` prints an operating-system error as the C library's text followed by
//! ` (os error N)`; the number says nothing to a user. [`words`] keeps the text, lower-cased
//! to sit inside a sentence, and drops the number; other errors (std's own, or one made with
//! a message) print as they are. [`fix`] adds, for the errors a user can do something about,
//! what to do.

use std::io;

/// `e` as a phrase: `no space left on device`, `connection refused`.
pub fn words(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // "Permission denied" → "permission denied"; an all-caps word (`EOF`) stays.
        Some(c) if c.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    }
}

/// What a user can do about `e` met on `path`, as a sentence to append (empty when there is
/// nothing better to say than the error itself).
pub fn fix(e: &io::Error, path: &std::path::Path) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            " Check the permissions of {} and its parent directories, or set XDG_RUNTIME_DIR \
             to a directory of your own.",
            path.display()
        ),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => format!(
            " The file system holding {} is full: free some space there.",
            path.display()
        ),
        io::ErrorKind::ReadOnlyFilesystem => format!(
            " The file system holding {} is read-only: set XDG_RUNTIME_DIR to a writable \
             directory of your own.",
            path.display()
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_lose_their_number() {
        let e = io::Error::from_raw_os_error(13);
        assert_eq!(words(&e), "permission denied");
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(words(&e), "no space left on device");
        assert!(fix(&e, std::path::Path::new("/run/x")).contains("full"));
        let e = io::Error::other("EOF while reading");
        assert_eq!(words(&e), "EOF while reading");
        let e = io::Error::other("a symlink; refusing");
        assert_eq!(words(&e), "a symlink; refusing");
    }
}
