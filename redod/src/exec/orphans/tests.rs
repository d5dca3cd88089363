use super::*;
use crate::fs::DiskFs;
use crate::store::durable::{RecWriter, stamp_of, test_rec, write_rec};
use std::fs;
use std::os::unix::process::CommandExt;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redod-orphans-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".redo")).unwrap();
    dir
}

fn files(dir: &Path, temps: Vec<PathBuf>) -> JobFiles {
    JobFiles::of_t(dir, temps)
}

fn disk() -> Arc<dyn Disk> {
    Arc::new(DiskFs)
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
    drop(RunningJob::new(disk(), Some(&reg), 6, files(&dir, vec![])));
    let mut job = RunningJob::new(disk(), Some(&reg), 7, files(&dir, vec![temp.clone()]));
    job.started(pgid);
    std::mem::forget(job);
    drop(reg);
    let gate = UmaskGate::new(0o022);
    let swept = sweep(&DiskFs, &journal, &gate);
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
    assert_eq!(sweep(&DiskFs, &journal, &gate), Swept::default());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweep_settles_the_commit_of_a_job_that_never_ended() {
    let dir = scratch("settle");
    let journal = dir.join("jobs.journal");
    let gate = UmaskGate::new(0o022);
    let f = files(&dir, vec![]);
    write_rec(
        &DiskFs,
        &f.rec_path,
        &test_rec("old", b"old"),
        false,
        &gate,
        0o022,
    )
    .unwrap();
    fs::write(&f.target, "old").unwrap();
    let reg = Registry::create(&journal).unwrap();
    // The job's commit renamed its target, then its daemon died.
    let job = RunningJob::new(disk(), Some(&reg), 1, f.clone());
    let w = RecWriter::begin(
        &DiskFs,
        &f.rec_path,
        &test_rec("b1", b"new"),
        false,
        &gate,
        0o022,
    )
    .unwrap();
    fs::write(&f.target, "new").unwrap();
    std::mem::forget((job, w));
    drop(reg);
    assert_eq!(sweep(&DiskFs, &journal, &gate).commits_finished, 1);
    let now = crate::store::recfile::parse(&fs::read(&f.rec_path).unwrap()).unwrap();
    assert_eq!(now.build, "b1");
    assert_eq!(
        now.own(b"t").unwrap().0,
        &stamp_of(&DiskFs, &f.target).unwrap()
    );
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
    let mut job = RunningJob::new(disk(), None, 1, files(&dir, vec![]));
    job.started(pgid);
    sh.wait().unwrap();
    assert!(
        signal_group(pgid, None),
        "the background sleep is still there"
    );
    drop(job);
    let until = Instant::now() + Duration::from_secs(3);
    while signal_group(pgid, None) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!signal_group(pgid, None), "the group is gone with its job");
    fs::remove_dir_all(&dir).unwrap();
}
