use super::*;
use crate::sync::lock;

/// A nested request asks the relay for a flush only when the relay may hold something back:
/// before it reads, while it passes something on, or when the pipe has unread bytes.
#[test]
fn a_flush_is_asked_for_only_when_the_relay_may_hold_something() {
    use std::os::fd::AsRawFd;
    let p = DoProcess::default();
    assert!(p.stderr_unsent(), "before the relay reads: flush");
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let pipe = rd.as_raw_fd();
    *lock(p.relay()) = RelayState::Reading { pipe, idle: false };
    assert!(p.stderr_unsent(), "passing something on: flush");
    *lock(p.relay()) = RelayState::Reading { pipe, idle: true };
    assert!(!p.stderr_unsent(), "idle, empty pipe: no flush");
    nix::unistd::write(&wr, b"written before the request\n").unwrap();
    assert!(p.stderr_unsent(), "idle, bytes in the pipe: flush");
    *lock(p.relay()) = RelayState::Over;
    assert!(
        !p.stderr_unsent(),
        "the relay is over: nothing comes through it"
    );
}

/// Before the spawn, and for a client that said what its stderr is, the pipe decides.
#[test]
fn a_nested_clients_stderr_is_told_by_the_pipe_it_names() {
    let p = DoProcess::default();
    assert!(p.relays_stderr_of(Some((1, 2)), None), "pipe not known yet");
    p.set_stderr_pipe(1, 2);
    assert!(p.relays_stderr_of(Some((1, 2)), None));
    assert!(!p.relays_stderr_of(Some((1, 3)), None), "redirected");
    assert!(
        p.relays_stderr_of(None, None),
        "cannot be told: as it always did"
    );
}

#[test]
fn the_clock_after_a_spawn_vouches_for_that_child_only() {
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let recorded = ticks_since_boot();
    let pid = i32::try_from(child.id()).unwrap();
    let actual = start_time(pid).unwrap();
    assert!(!recycled(recorded, actual), "{recorded} vs {actual}");
    // A process started later under the same pid, or long before the record: not ours.
    assert!(recycled(recorded, recorded + 1));
    assert!(recycled(recorded, recorded - START_SLACK - 1));
    // An old journal without a start time: ours.
    assert!(!recycled(0, actual));
    child.kill().unwrap();
    child.wait().unwrap();
}
