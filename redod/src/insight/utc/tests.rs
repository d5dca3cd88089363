use super::*;
use std::time::Duration;

#[test]
fn known_dates() {
    let at =
        |s: u64, ms: u64| Utc::of(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms));
    assert_eq!(at(0, 0).stamp(), "19700101T000000.000Z");
    // 2000-02-29 (a leap day of a century leap year) 12:34:56.789.
    assert_eq!(at(951_827_696, 789).stamp(), "20000229T123456.789Z");
    assert_eq!(at(1_709_251_199, 0).readable(), "2024-02-29 23:59:59 UTC");
    assert_eq!(at(1_709_251_200, 0).readable(), "2024-03-01 00:00:00 UTC");
    assert_eq!(
        Utc::of(UNIX_EPOCH - Duration::from_secs(5)).stamp(),
        "19700101T000000.000Z"
    );
}
