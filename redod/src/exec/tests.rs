//! Unit tests of the runner's pure parts.
use super::*;

#[test]
fn exit_texts() {
    assert_eq!(exit_text(ExitStatus::from_raw(2 << 8)), "exit status 2");
    assert_eq!(
        exit_text(ExitStatus::from_raw(libc::SIGKILL)),
        "signal: killed"
    );
    assert_eq!(
        exit_text(ExitStatus::from_raw(libc::SIGTERM)),
        "signal: terminated"
    );
}
