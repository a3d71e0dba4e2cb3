use chrono::TimeDelta;
use gathering_schedule::{ScheduleError, ScheduleType, Timing, TimingFields};

use crate::at;

fn fields(kind: &str) -> TimingFields<'_> {
    TimingFields {
        schedule_type: kind,
        ..Default::default()
    }
}

#[test]
fn a_missing_field_is_the_contract_message() {
    for (kind, field) in [
        ("cron", "cron_expression"),
        ("interval", "interval_seconds"),
        ("once", "next_run_at"),
        ("event", "event_trigger"),
    ] {
        let e = Timing::from_fields(&fields(kind)).unwrap_err();
        assert!(matches!(e, ScheduleError::Missing { .. }), "{kind}");
        assert_eq!(
            e.to_string(),
            format!("{field} required for {kind} schedule")
        );
    }
    let blank = TimingFields {
        cron_expression: Some("  "),
        ..fields("cron")
    };
    assert!(matches!(
        Timing::from_fields(&blank),
        Err(ScheduleError::Missing { .. })
    ));
}

#[test]
fn invalid_fields_name_the_problem() {
    let e = Timing::from_fields(&fields("hourly")).unwrap_err();
    assert_eq!(e.field(), Some("schedule_type"));
    let e = Timing::from_fields(&TimingFields {
        interval_seconds: Some(59),
        ..fields("interval")
    })
    .unwrap_err();
    assert_eq!(e.field(), Some("interval_seconds"));
    assert!(e.reason().contains("got 59"));
    let e = Timing::from_fields(&TimingFields {
        event_trigger: Some("drop table; --"),
        ..fields("event")
    })
    .unwrap_err();
    assert_eq!(e.field(), Some("event_trigger"));
    let e = Timing::from_fields(&TimingFields {
        cron_expression: Some("* * * * *"),
        timezone: Some("Nowhere/Land"),
        ..fields("cron")
    })
    .unwrap_err();
    assert_eq!(e.field(), Some("timezone"));
}

#[test]
fn interval_schedules_stay_on_their_grid() {
    let t = Timing::from_fields(&TimingFields {
        interval_seconds: Some(60),
        ..fields("interval")
    })
    .unwrap();
    assert_eq!(t.schedule_type(), ScheduleType::Interval);
    let due = at("2030-01-01T00:00:00Z");
    assert_eq!(t.following(due), Some(at("2030-01-01T00:01:00Z")));
    // After a gap, the next due time is on the grid, not "now + interval".
    assert_eq!(
        t.first_after(due, at("2030-01-01T00:05:30Z")),
        Some(at("2030-01-01T00:06:00Z"))
    );
    assert_eq!(
        t.first_after(due, at("2030-01-01T00:06:00Z")),
        Some(at("2030-01-01T00:07:00Z"))
    );
    // First run: one interval from now, or the start date when it is later.
    let now = at("2030-01-01T12:00:00Z");
    assert_eq!(t.first_due(now, None), Some(now + TimeDelta::seconds(60)));
    assert_eq!(
        t.first_due(now, Some(at("2030-02-01T00:00:00Z"))),
        Some(at("2030-02-01T00:00:00Z"))
    );
}

#[test]
fn once_and_event_schedules() {
    let when = at("2030-05-01T10:00:00Z");
    let t = Timing::from_fields(&TimingFields {
        run_at: Some(when),
        ..fields("once")
    })
    .unwrap();
    assert_eq!(t.first_due(at("2030-01-01T00:00:00Z"), None), Some(when));
    assert_eq!(t.following(when), None, "once: nothing after");
    let t = Timing::from_fields(&TimingFields {
        event_trigger: Some("pipeline_run.completed"),
        ..fields("event")
    })
    .unwrap();
    assert_eq!(
        t.first_due(when, None),
        None,
        "event schedules have no due time"
    );
}

#[test]
fn cron_first_due_honours_the_start_date() {
    let t = Timing::from_fields(&TimingFields {
        cron_expression: Some("0 * * * * *"),
        ..fields("cron")
    })
    .unwrap();
    let now = at("2030-01-01T00:00:10Z");
    assert_eq!(t.first_due(now, None), Some(at("2030-01-01T00:01:00Z")));
    // A start date that is itself a matching time is the first run.
    assert_eq!(
        t.first_due(now, Some(at("2030-01-01T00:05:00Z"))),
        Some(at("2030-01-01T00:05:00Z"))
    );
    // A past start date does not matter.
    assert_eq!(
        t.first_due(now, Some(at("2029-01-01T00:00:00Z"))),
        Some(at("2030-01-01T00:01:00Z"))
    );
}
