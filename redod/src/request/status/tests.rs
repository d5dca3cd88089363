use super::*;

fn last(jobs: usize, secs: u64) -> Option<LastBuild> {
    Some(LastBuild {
        jobs,
        took: Duration::from_secs(secs),
    })
}

fn count(done: usize, unfinished: usize) -> Count {
    Count { done, unfinished }
}

#[test]
fn the_total_is_the_last_builds_until_this_one_knows_of_more() {
    assert_eq!(total(count(0, 1), last(5, 10)), 5);
    assert_eq!(total(count(3, 2), last(5, 10)), 5);
    assert_eq!(
        total(count(5, 2), last(5, 10)),
        7,
        "grows past the last build"
    );
    assert_eq!(
        total(count(2, 3), None),
        5,
        "the first build: what is known"
    );
    assert_eq!(total(count(0, 0), None), 0);
}

#[test]
fn the_estimate_is_the_smaller_of_time_left_and_share_of_jobs_left() {
    let s = Duration::from_secs;
    // A clean build again: 10 jobs in 20s, 2s in, 1 done: 18s by time, 18s by count.
    assert_eq!(estimate(1, last(10, 20), s(2)), Some(s(18)));
    // Slower than the last time (1 done after 10s of 20): the time left wins.
    assert_eq!(estimate(1, last(10, 20), s(10)), Some(s(10)));
    // An incremental build that skips most of the last one's work: 9 of 10 done at once.
    assert_eq!(estimate(9, last(10, 20), s(1)), Some(s(2)));
}

#[test]
fn no_estimate_that_is_known_to_be_wrong() {
    let s = Duration::from_secs;
    assert_eq!(estimate(0, None, s(0)), None, "no last build");
    assert_eq!(
        estimate(11, last(10, 20), s(1)),
        None,
        "more jobs than last time"
    );
    assert_eq!(
        estimate(3, last(10, 20), s(20)),
        None,
        "longer than last time"
    );
    assert_eq!(estimate(3, last(10, 20), s(25)), None);
}

#[test]
fn the_line_says_done_total_time_left_and_what_runs() {
    let s = Duration::from_secs;
    let running = vec!["a.do".to_string(), "default.o.do (x.o)".to_string()];
    assert_eq!(
        format_line(count(3, 2), last(5, 10), s(6), &running),
        "3/5 done, about 4s left | running: a.do, default.o.do (x.o)"
    );
    assert_eq!(
        format_line(count(1, 1), None, s(6), &running[..1]),
        "1/2 done | running: a.do"
    );
    assert_eq!(format_line(count(0, 1), None, s(0), &[]), "0/1 done");
    assert_eq!(
        format_line(count(0, 1), last(100, 200), s(70), &[]),
        "0/100 done, about 2m10s left"
    );
}

#[test]
fn short_durations_round_up_to_whole_units() {
    let ms = Duration::from_millis;
    assert_eq!(short(ms(1)), "1s");
    assert_eq!(short(ms(4000)), "4s");
    assert_eq!(short(ms(59_500)), "1m00s");
    assert_eq!(short(ms(3_600_000)), "1h00m");
    assert_eq!(short(ms(3_900_000)), "1h05m");
}
