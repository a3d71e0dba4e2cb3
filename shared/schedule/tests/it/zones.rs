use chrono_tz::Tz;
use gathering_schedule::{CronExpr, ScheduleError, parse_timezone};

use crate::at;

fn next_in(expr: &str, tz: &str, after: &str) -> String {
    let tz: Tz = parse_timezone(tz).unwrap();
    CronExpr::parse(expr)
        .unwrap()
        .next_after(at(after), tz)
        .unwrap()
        .to_rfc3339()
}

#[test]
fn zones_parse_by_iana_name() {
    assert_eq!(parse_timezone("Europe/Paris").unwrap(), Tz::Europe__Paris);
    assert_eq!(parse_timezone("").unwrap(), Tz::UTC);
    assert_eq!(parse_timezone("UTC").unwrap(), Tz::UTC);
    match parse_timezone("Mars/Olympus") {
        Err(ScheduleError::Invalid { field, reason }) => {
            assert_eq!(field, "timezone");
            assert!(
                reason.contains("unknown time zone 'Mars/Olympus'"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_timezone(&"x".repeat(100)).is_err());
}

#[test]
fn wall_clock_time_in_the_zone() {
    // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
    assert_eq!(
        next_in("0 9 * * *", "Europe/Paris", "2030-01-10T00:00:00Z"),
        "2030-01-10T08:00:00+00:00"
    );
    assert_eq!(
        next_in("0 9 * * *", "Europe/Paris", "2030-07-10T00:00:00Z"),
        "2030-07-10T07:00:00+00:00"
    );
    assert_eq!(
        next_in("0 9 * * *", "Asia/Kolkata", "2030-07-10T00:00:00Z"),
        "2030-07-10T03:30:00+00:00"
    );
}

#[test]
fn a_wall_time_skipped_by_spring_forward_does_not_fire() {
    // New York, 2030-03-10: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    assert_eq!(
        next_in("30 2 * * *", "America/New_York", "2030-03-09T12:00:00Z"),
        "2030-03-11T06:30:00+00:00",
        "next existing 02:30 is the day after (EDT, UTC-4)"
    );
    // Every minute: 01:59 EST is followed by 03:00 EDT, one real minute later.
    assert_eq!(
        next_in("* * * * *", "America/New_York", "2030-03-10T06:59:00Z"),
        "2030-03-10T07:00:00+00:00"
    );
}

#[test]
fn a_repeated_wall_time_fires_once_at_its_first_occurrence() {
    // New York, 2030-11-03: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice.
    let first = next_in("30 1 * * *", "America/New_York", "2030-11-03T00:00:00Z");
    assert_eq!(first, "2030-11-03T05:30:00+00:00", "01:30 EDT (UTC-4)");
    assert_eq!(
        next_in("30 1 * * *", "America/New_York", &first),
        "2030-11-04T06:30:00+00:00",
        "not again at 01:30 EST: the next day"
    );
    // Asked from inside the repeated hour (01:10 EST), the next time is after it, never before.
    let t = next_in("*/20 * * * *", "America/New_York", "2030-11-03T06:10:00Z");
    assert_eq!(t, "2030-11-03T07:00:00+00:00", "02:00 EST");
}

#[test]
fn every_second_across_a_dst_change_moves_forward_by_one_second() {
    let e = CronExpr::parse("* * * * * *").unwrap();
    let tz = parse_timezone("Europe/Paris").unwrap();
    // 2030-03-31 01:59:59 UTC = 02:59:59 CET → 03:00:00 CEST... times keep moving 1 s apart.
    let mut t = at("2030-03-31T00:59:58Z");
    for _ in 0..4 {
        let n = e.next_after(t, tz).unwrap();
        assert_eq!((n - t).num_seconds(), 1, "{t} → {n}");
        t = n;
    }
}
