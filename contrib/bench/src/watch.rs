//! The watch case (redo only): `redo --watch --events=json all` runs while the benchmark edits
//! one source and reads the round that follows from the client's events, each line stamped
//! when it arrives (a thread reads the client's stdout line by line; the client flushes each
//! event as soon as the daemon goes quiet). Per edit: the time to the `all` target's
//! `finished` event, to the round's `watch waiting` event (what an editor waits for), and
//! from the round's last `target finished` event to its `watch waiting`.

use crate::run::{Bench, Knobs, Stats, progress, tail};
use crate::work::{self, source_name};
use crate::{Case, Res};
use serde_json::Value;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

/// How long the first round (everything checked, nothing to build) may take.
const FIRST_ROUND: Duration = Duration::from_secs(600);
/// How long a round after one edit may take.
const ROUND: Duration = Duration::from_secs(60);
/// No event for this long after a round: the client is waiting for the next change.
const QUIET: Duration = Duration::from_millis(150);
/// How long the client may take to exit after SIGINT.
const EXIT: Duration = Duration::from_secs(10);

/// A round as its events arrived.
#[derive(Debug)]
struct Round {
    /// The `all` target's `finished` event.
    all_finished: Option<Instant>,
    /// The round's last `target finished` event.
    last_finished: Option<Instant>,
    /// Its `watch waiting` event.
    waiting: Instant,
    /// The targets finished in the round.
    built: Vec<String>,
}

/// Reads events until the round's `watch waiting`: an error when a target failed, the round
/// failed, the client's output ended, or `timeout` passed (`what` says what started the
/// round).
fn next_round(lines: &Receiver<(Instant, String)>, timeout: Duration, what: &str) -> Res<Round> {
    let deadline = Instant::now() + timeout;
    let (mut all_finished, mut last_finished, mut built) = (None, None, Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = lines.recv_timeout(left).map_err(|e| match e {
            RecvTimeoutError::Timeout => format!(
                "no `watch waiting` event {} s after {what}",
                timeout.as_secs()
            ),
            RecvTimeoutError::Disconnected => {
                format!("the watch client's output ended before the round after {what} did")
            }
        })?;
        let event: Value = serde_json::from_str(&line)
            .map_err(|e| format!("the watch client wrote a line that is not JSON ({e}): {line}"))?;
        let target = event["target"].as_str().unwrap_or_default();
        match (event["type"].as_str(), event["event"].as_str()) {
            (Some("target"), Some("finished")) => {
                last_finished = Some(at);
                if target == "all" {
                    all_finished = Some(at);
                }
                built.push(target.to_string());
            }
            (Some("target"), Some("failed")) => {
                return Err(format!("{target} failed in the round after {what}: {line}"));
            }
            (Some("watch"), Some("waiting")) => {
                if event["exit_code"].as_i64() != Some(0) {
                    return Err(format!("the round after {what} failed: {line}"));
                }
                return Ok(Round {
                    all_finished,
                    last_finished,
                    waiting: at,
                    built,
                });
            }
            _ => {}
        }
    }
}

/// The `redo --watch` client and the threads reading its output; killed (and reaped) when
/// dropped while it still runs.
struct Client {
    child: Child,
    lines: Receiver<(Instant, String)>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Client {
    fn start(b: &Bench) -> Res<Client> {
        let mut c = b.env.command(
            crate::Tool::Redo,
            &b.dir,
            &b.env.redo_bin("redo"),
            Knobs::Plain,
        );
        c.args(["--watch", "--events=json", "all"]);
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", crate::run::describe(&c)))?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the watch client's output is not a pipe".into());
        };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            all
        });
        Ok(Client {
            child,
            lines,
            stderr: Some(stderr),
        })
    }

    /// Waits until no event has come for [`QUIET`], waiting out any round that starts
    /// meanwhile (none should: the benchmark's edits are the only changes).
    fn quiesce(&self) -> Res<()> {
        loop {
            match self.lines.recv_timeout(QUIET) {
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the watch client's output ended".into());
                }
                Ok((_, line)) => {
                    let event: Value = serde_json::from_str(&line).unwrap_or_default();
                    if event["type"] == "session" && event["event"] == "started" {
                        next_round(&self.lines, ROUND, "an unexpected change")?;
                    }
                }
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits for the client to exit.
    fn interrupt(&mut self) -> Res<ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("sh")
            .args(["-c", "kill -INT \"$1\"", "sh", &pid])
            .status();
        let deadline = Instant::now() + EXIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let hint = match sigint_ignored() {
                    true => {
                        " (this process ignores SIGINT, and so do its children: run \
                             redo-bench in the foreground, or from a shell with job control)"
                    }
                    false => "",
                };
                return Err(format!(
                    "the watch client (pid {pid}) did not exit within {} s of SIGINT{hint}",
                    EXIT.as_secs()
                ));
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// The end of what the client wrote on stderr (after it exited).
    fn stderr_tail(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .map(|b| tail(&b))
            .unwrap_or_default()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this process ignores SIGINT (bit 2 of `SigIgn` in `/proc/self/status`), as a
/// command started in the background by a shell without job control does: its children
/// inherit that.
fn sigint_ignored() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let mask = s.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|m| m & (1 << (2 - 1)) != 0)
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// The three times of one edit, in milliseconds: to `all` finished, to `watch waiting`, and
/// from the last target finished to `watch waiting`.
fn edit_once(b: &Bench, client: &Client) -> Res<[f64; 3]> {
    let src = b.dir.join(source_name(1));
    let original = work::source_text(1);
    client.quiesce()?;
    let edited = Instant::now();
    OpenOptions::new()
        .append(true)
        .open(&src)
        .and_then(|mut f| f.write_all(b"x"))
        .map_err(|e| format!("cannot append to {}: {e}", src.display()))?;
    let what = format!("appending to {}", source_name(1));
    let round = next_round(&client.lines, ROUND, &what)?;
    work::verify_outputs(&b.dir, std::iter::once(1))?;
    let out = work::output_name(1);
    let (Some(all), Some(last)) = (round.all_finished, round.last_finished) else {
        return Err(format!(
            "no `all` finished in the round after {what}: {round:?}"
        ));
    };
    if !round.built.contains(&out) {
        return Err(format!(
            "{out} was not rebuilt in the round after {what}: {round:?}"
        ));
    }
    let times = [
        ms(edited, all),
        ms(edited, round.waiting),
        ms(last, round.waiting),
    ];
    client.quiesce()?;
    fs::write(&src, &original).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    next_round(&client.lines, ROUND, "restoring the source")?;
    work::verify_outputs(&b.dir, std::iter::once(1))?;
    Ok(times)
}

/// The cases of the watch client's rounds: one warm-up edit, then `--runs` measured ones.
fn rounds(b: &Bench, client: &Client) -> Res<Vec<(Case, Stats)>> {
    next_round(&client.lines, FIRST_ROUND, "the start")?;
    edit_once(b, client).map_err(|e| format!("(warm-up) {e}"))?;
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..b.opts.runs {
        for (s, t) in samples.iter_mut().zip(edit_once(b, client)?) {
            s.push(t);
        }
    }
    let cases = [
        Case::WatchAllFinished,
        Case::WatchWaiting,
        Case::WatchWaitingAfterLast,
    ];
    Ok(cases
        .into_iter()
        .zip(samples)
        .map(|(case, samples)| {
            let s = Stats { samples };
            progress(b.n, b.tool, case.label(), Some(&s));
            (case, s)
        })
        .collect())
}

/// Runs the watch case in `b`'s tree (`all` built): the client started, its rounds timed,
/// then SIGINT, which it must exit on.
pub(crate) fn measure(b: &Bench) -> Res<Vec<(Case, Stats)>> {
    let fail = |e: String| format!("N={} {}, watch: {e}", b.n, b.tool.key());
    let mut client = Client::start(b).map_err(fail)?;
    let measured = rounds(b, &client);
    let stopped = client.interrupt();
    match (measured, stopped) {
        (Err(e), _) => Err(fail(format!(
            "{e}\nthe watch client's stderr ends with:\n{}",
            client.stderr_tail()
        ))),
        (Ok(_), Err(e)) => Err(fail(e)),
        (Ok(cases), Ok(status)) => {
            eprintln!(
                "N={:<6} {:<8} watch client stopped by SIGINT: {status}",
                b.n,
                b.tool.label()
            );
            Ok(cases)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Sender;

    type Line = (Instant, String);

    /// A channel holding `lines`, and its sender (while it lives, the output goes on).
    fn send(lines: &[&str]) -> (Sender<Line>, Receiver<Line>) {
        let (tx, rx) = channel();
        for l in lines {
            tx.send((Instant::now(), l.to_string())).unwrap();
        }
        (tx, rx)
    }

    #[test]
    fn a_round_ends_at_watch_waiting() {
        let (_open, rx) = send(&[
            r#"{"v":1,"type":"session","event":"started","targets":["all"]}"#,
            r#"{"v":1,"type":"target","event":"finished","target":"out/f1.out","level":1}"#,
            r#"{"v":1,"type":"target","event":"finished","target":"all","level":0}"#,
            r#"{"v":1,"type":"session","event":"finished","exit_code":0}"#,
            r#"{"v":1,"type":"watch","event":"waiting","exit_code":0,"inputs":3}"#,
            r#"{"v":1,"type":"session","event":"started","targets":["all"]}"#,
        ]);
        let r = next_round(&rx, Duration::from_secs(1), "x").unwrap();
        assert_eq!(r.built, ["out/f1.out", "all"]);
        assert!(r.all_finished.is_some() && r.last_finished >= r.all_finished);
        assert!(r.waiting >= r.all_finished.unwrap());
        // The next round has not ended: its output stops, so it times out.
        let e = next_round(&rx, Duration::from_millis(10), "the edit").unwrap_err();
        assert!(
            e.contains("no `watch waiting` event 0 s after the edit"),
            "{e}"
        );

        let (_, rx) = send(&[r#"{"v":1,"type":"watch","event":"waiting","exit_code":1}"#]);
        let e = next_round(&rx, Duration::from_secs(1), "the edit").unwrap_err();
        assert!(e.starts_with("the round after the edit failed"), "{e}");
        let (_, rx) = send(&[r#"{"type":"target","event":"failed","target":"out/f1.out"}"#]);
        let e = next_round(&rx, Duration::from_secs(1), "the edit").unwrap_err();
        assert!(e.starts_with("out/f1.out failed"), "{e}");
        let (_, rx) = send(&["redo all (0.1s)"]);
        let e = next_round(&rx, Duration::from_secs(1), "the edit").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let (tx, rx) = send(&[]);
        drop(tx);
        let e = next_round(&rx, Duration::from_secs(1), "the edit").unwrap_err();
        assert!(e.contains("output ended"), "{e}");
        let now = Instant::now();
        assert_eq!(ms(now, now + Duration::from_millis(1500)), 1500.0);
        assert_eq!(ms(now + Duration::from_secs(1), now), 0.0);
    }
}
