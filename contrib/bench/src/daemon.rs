//! redo's daemon as the benchmark sees it from outside: stopping it (and waiting until its
//! process is gone, so that the next command starts a new one) and reading its memory from
//! `/proc/PID/status`.

use crate::Res;
use crate::run::{Bench, capture, status_field};
use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a daemon may take to exit after `redo --daemon-stop` (it first finishes the
/// jobs it runs; there are none between the benchmark's runs).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Stops the daemon of `b`'s project and waits until its process has exited. Its pid comes
/// from `redo --daemon-status` (which fails when no daemon runs: then there is nothing to
/// stop); `redo --daemon-stop` only asks, so the benchmark then polls `/proc/PID` until the
/// process is gone or a zombie (exited, not yet reaped by whoever adopted it).
pub(crate) fn stop_and_wait(b: &Bench) -> Res<()> {
    let Some(pid) = b
        .daemon_status()
        .ok()
        .and_then(|s| status_field(&s, "pid:"))
    else {
        return Ok(());
    };
    capture(b.redo_cmd(&["--daemon-stop"]))?;
    b.daemon_pid.set(None);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while alive(pid) {
        if Instant::now() > deadline {
            return Err(format!(
                "redod (pid {pid}) of {} still runs {} s after redo --daemon-stop",
                b.dir.display(),
                STOP_TIMEOUT.as_secs()
            ));
        }
        sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn alive(pid: u64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| proc_state(&s).is_some_and(|state| state != 'Z' && state != 'X'))
}

/// The state letter of a `/proc/PID/status` text (`State:\tS (sleeping)`).
fn proc_state(status: &str) -> Option<char> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|v| v.trim().chars().next())
}

/// A `kB` field of a `/proc/PID/status` text (`VmRSS:\t  5060 kB`), in KiB.
pub fn proc_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// The daemon's resident memory now and at its peak (`VmRSS`, `VmHWM`), in KiB, and its pid.
pub(crate) fn memory(b: &Bench) -> Res<(u64, u64, u64)> {
    let out = b.daemon_status()?;
    let pid = status_field(&out, "pid:")
        .ok_or_else(|| format!("no pid in redo --daemon-status:\n{out}"))?;
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field =
        |f: &str| proc_status_kib(&status, f).ok_or_else(|| format!("no {f} in {path}:\n{status}"));
    Ok((field("VmRSS")?, field("VmHWM")?, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields() {
        let status = "Name:\tredod\nState:\tS (sleeping)\nVmHWM:\t   12840 kB\n\
                      VmRSS:\t    9132 kB\nThreads:\t2\n";
        assert_eq!(proc_status_kib(status, "VmRSS"), Some(9132));
        assert_eq!(proc_status_kib(status, "VmHWM"), Some(12840));
        assert_eq!(proc_status_kib(status, "VmRS"), None);
        assert_eq!(proc_status_kib(status, "Threads"), None);
        assert_eq!(proc_state(status), Some('S'));
        assert_eq!(proc_state("State:\tZ (zombie)\n"), Some('Z'));
        let own = fs::read_to_string("/proc/self/status").unwrap();
        assert!(
            proc_status_kib(&own, "VmHWM").is_some_and(|k| k > 0),
            "{own}"
        );
        assert!(alive(u64::from(std::process::id())));
        assert!(!alive(u64::from(u32::MAX)));
    }
}
