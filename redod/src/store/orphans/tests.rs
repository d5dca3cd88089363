use super::*;
use std::os::unix::process::CommandExt;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redod-orphans-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".redo")).unwrap();
    dir
}

fn files(dir: &Path, temps: Vec<PathBuf>) -> JobFiles {
    JobFiles {
        target: dir.join("t"),
        rec_path: dir.join(".redo/t.rec"),
        umask: 0o022,
        sync: false,
        temps,
    }
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

#[test]
fn entries_round_trip_and_a_torn_tail_ends_the_replay() {
    let dir = PathBuf::from("/p");
    let entries = vec![
        (
            1,
            Entry::Planned(files(&dir, vec![dir.join(".redo.t.0123")])),
        ),
        (1, Entry::Started { pgid: 42, start: 7 }),
        (2, Entry::Planned(files(&dir, vec![]))),
        (1, Entry::Ended),
    ];
    let mut data: Vec<u8> = entries.iter().flat_map(|(id, e)| encode(*id, e)).collect();
    assert_eq!(replay(&data), entries);
    // Cut anywhere inside the last entry: the others still replay.
    let last = encode(3, &Entry::Ended);
    for cut in 0..last.len() {
        let mut torn = data.clone();
        torn.extend_from_slice(&last[..cut]);
        assert_eq!(replay(&torn), entries, "cut at {cut}");
    }
    // A damaged byte stops the replay there.
    let at = encode(1, &entries[0].1).len() + 6;
    data[at] ^= 0xff;
    assert_eq!(replay(&data), entries[..1]);
}

#[test]
fn sweep_kills_registered_groups_and_removes_temps() {
    let dir = scratch("sweep");
    let journal = dir.join("jobs.journal");
    let temp = dir.join(".redo.t.0123");
    fs::write(&temp, "partial").unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    let reg = Registry::create(&journal).unwrap();
    // A job that ended normally, and one whose daemon "dies" (no Drop).
    drop(RunningJob::new(Some(&reg), 6, files(&dir, vec![])));
    let mut job = RunningJob::new(Some(&reg), 7, files(&dir, vec![temp.clone()]));
    job.started(pgid);
    std::mem::forget(job);
    drop(reg);
    let gate = UmaskGate::new(0o022);
    let swept = sweep(&journal, &gate);
    assert_eq!(
        swept,
        Swept {
            groups_killed: 1,
            temps_removed: 1,
            commits_finished: 0
        }
    );
    assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    assert!(!temp.exists() && !journal.exists());
    assert_eq!(sweep(&journal, &gate), Swept::default());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweep_settles_the_commit_of_a_job_that_never_ended() {
    let dir = scratch("settle");
    let journal = dir.join("jobs.journal");
    let gate = UmaskGate::new(0o022);
    let f = files(&dir, vec![]);
    let rec = crate::store::durable::test_rec;
    crate::store::durable::write_rec(&f.rec_path, &rec("old", b"old"), false, &gate, 0o022)
        .unwrap();
    fs::write(&f.target, "old").unwrap();
    let reg = Registry::create(&journal).unwrap();
    // The job's commit renamed its target, then its daemon died.
    let job = RunningJob::new(Some(&reg), 1, f.clone());
    let w = crate::store::durable::RecWriter::begin(
        &f.rec_path,
        &rec("b1", b"new"),
        false,
        &gate,
        0o022,
    )
    .unwrap();
    fs::write(&f.target, "new").unwrap();
    std::mem::forget((job, w));
    drop(reg);
    assert_eq!(sweep(&journal, &gate).commits_finished, 1);
    let now = crate::store::recfile::parse(&fs::read(&f.rec_path).unwrap()).unwrap();
    assert_eq!(now.build, "b1");
    assert_eq!(
        now.own(b"t").unwrap().0,
        &crate::store::durable::stamp_of(&f.target).unwrap()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_journal_is_compacted_to_what_is_live() {
    let dir = scratch("compact");
    let journal = dir.join("jobs.journal");
    let reg = Registry::create(&journal).unwrap();
    let live = RunningJob::new(Some(&reg), 1, files(&dir, vec![dir.join(".redo.t.live")]));
    let mut id = 2;
    while fs::metadata(&journal).unwrap().len() < COMPACT_AT / 2 {
        drop(RunningJob::new(Some(&reg), id, files(&dir, vec![])));
        id += 1;
    }
    // As much again: past the threshold, so it was compacted on the way.
    for more in id..2 * id {
        drop(RunningJob::new(Some(&reg), more, files(&dir, vec![])));
    }
    assert!(fs::metadata(&journal).unwrap().len() < COMPACT_AT);
    let entries = replay(&fs::read(&journal).unwrap());
    assert!(entries.iter().any(|(i, _)| *i == 1), "the live job is kept");
    std::mem::forget(live);
    drop(reg);
    assert_eq!(sweep(&journal, &UmaskGate::new(0o022)), Swept::default());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_finished_job_takes_its_leftovers_with_it() {
    let dir = scratch("leftovers");
    // A "`.do`" that leaves a background process behind and exits.
    let mut sh = std::process::Command::new("sh")
        .arg("-c")
        .arg("sleep 60 & echo $!")
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pgid = i32::try_from(sh.id()).unwrap();
    let mut job = RunningJob::new(None, 1, files(&dir, vec![]));
    job.started(pgid);
    sh.wait().unwrap();
    assert!(group_exists(pgid), "the background sleep is still there");
    drop(job);
    let until = Instant::now() + Duration::from_secs(3);
    while group_exists(pgid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!group_exists(pgid), "the group is gone with its job");
    fs::remove_dir_all(&dir).unwrap();
}
