use chrono_tz::Tz;
use gathering_schedule::{CronExpr, ScheduleError};

use crate::at;

fn next(expr: &str, after: &str) -> String {
    CronExpr::parse(expr)
        .unwrap()
        .next_after(at(after), Tz::UTC)
        .unwrap()
        .to_rfc3339()
}

fn reason(expr: &str) -> String {
    match CronExpr::parse(expr) {
        Err(ScheduleError::Invalid { field, reason }) => {
            assert_eq!(field, "cron_expression");
            reason
        }
        other => panic!("{expr}: expected an invalid cron expression, got {other:?}"),
    }
}

#[test]
fn five_fields_fire_on_whole_minutes() {
    assert_eq!(
        next("*/15 * * * *", "2030-01-01T10:07:30Z"),
        "2030-01-01T10:15:00+00:00"
    );
    assert_eq!(
        next("0 9 * * *", "2030-01-01T09:00:00Z"),
        "2030-01-02T09:00:00+00:00"
    );
    assert!(!CronExpr::parse("0 9 * * *").unwrap().has_seconds());
}

#[test]
fn six_fields_have_seconds_first() {
    let e = CronExpr::parse("* * * * * *").unwrap();
    assert!(e.has_seconds());
    assert_eq!(
        next("* * * * * *", "2030-01-01T10:00:00Z"),
        "2030-01-01T10:00:01+00:00"
    );
    assert_eq!(
        next("* * * * * *", "2030-01-01T10:00:00.500Z"),
        "2030-01-01T10:00:01+00:00",
        "strictly after a fractional time"
    );
    assert_eq!(
        next("*/20 * * * * *", "2030-01-01T10:00:41Z"),
        "2030-01-01T10:01:00+00:00"
    );
    assert_eq!(
        next("30 0 12 * * *", "2030-01-01T00:00:00Z"),
        "2030-01-01T12:00:30+00:00"
    );
}

#[test]
fn days_of_week_are_numbered_from_sunday_zero() {
    // 2030-01-06 is a Sunday.
    assert_eq!(
        next("0 8 * * 1", "2030-01-06T00:00:00Z"),
        "2030-01-07T08:00:00+00:00",
        "1 = Monday"
    );
    assert_eq!(
        next("0 8 * * 0", "2030-01-01T00:00:00Z"),
        "2030-01-06T08:00:00+00:00",
        "0 = Sunday"
    );
    assert_eq!(
        next("0 8 * * 7", "2030-01-01T00:00:00Z"),
        "2030-01-06T08:00:00+00:00",
        "7 = Sunday"
    );
    assert_eq!(
        next("0 8 * * mon-fri", "2030-01-04T09:00:00Z"),
        "2030-01-07T08:00:00+00:00",
        "Fri → Mon"
    );
    assert_eq!(
        next("0 8 * * 5-7", "2030-01-06T09:00:00Z"),
        "2030-01-11T08:00:00+00:00"
    );
}

#[test]
fn both_day_fields_restricted_means_either() {
    // Vixie cron: the 13th OR a Friday. 2030-01-04 is a Friday, 2030-01-13 a Sunday.
    assert_eq!(
        next("0 0 13 * 5", "2030-01-01T00:00:00Z"),
        "2030-01-04T00:00:00+00:00"
    );
    assert_eq!(
        next("0 0 13 * 5", "2030-01-11T01:00:00Z"),
        "2030-01-13T00:00:00+00:00"
    );
    // A star in either field: the other alone decides.
    assert_eq!(
        next("0 0 13 * *", "2030-01-01T00:00:00Z"),
        "2030-01-13T00:00:00+00:00"
    );
    assert_eq!(
        next("0 0 * * 5", "2030-01-05T00:00:00Z"),
        "2030-01-11T00:00:00+00:00"
    );
}

#[test]
fn names_lists_ranges_steps_and_macros() {
    assert_eq!(
        next("0 0 1 jan,jul *", "2030-02-01T00:00:00Z"),
        "2030-07-01T00:00:00+00:00"
    );
    assert_eq!(
        next("5/20 * * * *", "2030-01-01T00:26:00Z"),
        "2030-01-01T00:45:00+00:00"
    );
    assert_eq!(
        next("0 22-23/1 * * *", "2030-01-01T22:30:00Z"),
        "2030-01-01T23:00:00+00:00"
    );
    assert_eq!(
        next("@hourly", "2030-01-01T22:30:00Z"),
        "2030-01-01T23:00:00+00:00"
    );
    assert_eq!(
        next("@daily", "2030-01-01T22:30:00Z"),
        "2030-01-02T00:00:00+00:00"
    );
    assert_eq!(
        next("@weekly", "2030-01-01T22:30:00Z"),
        "2030-01-06T00:00:00+00:00"
    );
    assert_eq!(
        next("@yearly", "2030-01-01T22:30:00Z"),
        "2031-01-01T00:00:00+00:00"
    );
    assert_eq!(
        next("0 0 29 2 *", "2030-01-01T00:00:00Z"),
        "2032-02-29T00:00:00+00:00",
        "leap day"
    );
}

#[test]
fn invalid_expressions_name_the_problem() {
    assert!(reason("").contains("empty"));
    assert!(reason("* * * *").contains("expected 5 fields"));
    assert!(reason("* * * * * * *").contains("got 7"));
    assert!(
        reason("61 * * * *").contains("minute field: 61 is out of range 0-59"),
        "{}",
        reason("61 * * * *")
    );
    assert!(reason("* 24 * * *").contains("hour field: 24 is out of range 0-23"));
    assert!(reason("* * 0 * *").contains("day-of-month field: 0 is out of range 1-31"));
    assert!(reason("* * * 13 *").contains("month field: 13 is out of range 1-12"));
    assert!(reason("* * * * 8").contains("day-of-week field: 8 is out of range 0-7"));
    assert!(reason("60 * * * * *").contains("second field"));
    assert!(reason("* * * foo *").contains("month field: 'foo' is not a number or a name"));
    assert!(reason("*/0 * * * *").contains("step"));
    assert!(reason("5-1 * * * *").contains("reversed"));
    assert!(reason("* * L * *").contains("day-of-month field: 'L'"));
    assert!(reason("@often").contains("unknown macro"));
    assert!(
        reason("0 0 30 2 *").contains("never matches"),
        "30 February"
    );
    assert!(reason(&"1,".repeat(200)).contains("longer than"));
    // The message carries the expression itself.
    assert!(
        CronExpr::parse("61 * * * *")
            .unwrap_err()
            .to_string()
            .starts_with("cron_expression: invalid cron expression '61 * * * *'")
    );
}

#[test]
fn the_search_is_bounded() {
    // Rare but valid: the next 29 February that is a Monday... or the 29th (either rule).
    let e = CronExpr::parse("0 0 0 29 2 1").unwrap();
    assert!(e.next_after(at("2030-01-01T00:00:00Z"), Tz::UTC).is_some());
    // Nothing after the crate's horizon (2100): the answer is None, quickly.
    let started = std::time::Instant::now();
    let e = CronExpr::parse("0 0 0 1 1 *").unwrap();
    assert!(e.next_after(at("2100-06-01T00:00:00Z"), Tz::UTC).is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
