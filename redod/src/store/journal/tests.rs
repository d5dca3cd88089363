use super::*;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redod-journal-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn files(dir: &Path, temps: Vec<PathBuf>) -> JobFiles {
    JobFiles::of_t(dir, temps)
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
fn what_never_ended_is_read_back_in_order() {
    let dir = scratch("unfinished");
    let journal = dir.join(JOURNAL);
    assert_eq!(unfinished(&journal), []);
    let reg = Registry::create(&journal).unwrap();
    reg.planned(5, files(&dir, vec![dir.join("t5")]));
    reg.planned(3, files(&dir, vec![]));
    reg.started(5, 42, 7);
    reg.planned(4, files(&dir, vec![]));
    reg.ended(3);
    drop(reg);
    let left = unfinished(&journal);
    assert_eq!(
        left,
        [
            Unfinished {
                files: Some(files(&dir, vec![dir.join("t5")])),
                group: Some((42, 7)),
            },
            Unfinished {
                files: Some(files(&dir, vec![])),
                group: None,
            },
        ]
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_journal_is_compacted_to_what_is_live() {
    let dir = scratch("compact");
    let journal = dir.join(JOURNAL);
    let reg = Registry::create(&journal).unwrap();
    reg.planned(1, files(&dir, vec![dir.join(".redo.t.live")]));
    let mut id = 2;
    while fs::metadata(&journal).unwrap().len() < COMPACT_AT / 2 {
        reg.planned(id, files(&dir, vec![]));
        reg.ended(id);
        id += 1;
    }
    // As much again: past the threshold, so it was compacted on the way.
    for more in id..2 * id {
        reg.planned(more, files(&dir, vec![]));
        reg.ended(more);
    }
    assert!(fs::metadata(&journal).unwrap().len() < COMPACT_AT);
    let entries = replay(&fs::read(&journal).unwrap());
    assert!(entries.iter().any(|(i, _)| *i == 1), "the live job is kept");
    drop(reg);
    assert_eq!(unfinished(&journal).len(), 1);
    fs::remove_dir_all(&dir).unwrap();
}
