use chrono::{DateTime, TimeDelta, Utc};
use gathering_schedule::{
    DueState, Limits, MissedRunPolicy, Plan, Timing, TimingFields, TriggeredBy, plan,
};

use crate::at;

fn every_second() -> Timing {
    Timing::from_fields(&TimingFields {
        schedule_type: "cron",
        cron_expression: Some("* * * * * *"),
        ..Default::default()
    })
    .unwrap()
}

fn state(next: &str) -> DueState {
    DueState {
        next_run_at: at(next),
        start_date: None,
        end_date: None,
        remaining: None,
    }
}

fn run(state: &DueState, now: &str, policy: MissedRunPolicy) -> Plan {
    plan(&every_second(), state, at(now), policy, &Limits::default())
}

fn dues(p: &Plan) -> Vec<DateTime<Utc>> {
    p.fires.iter().map(|f| f.due).collect()
}

#[test]
fn on_time_fires_the_due_time_and_moves_on() {
    for policy in [
        MissedRunPolicy::Skip,
        MissedRunPolicy::RunOnce,
        MissedRunPolicy::CatchUp,
    ] {
        let p = run(
            &state("2030-01-01T00:00:00Z"),
            "2030-01-01T00:00:00.004Z",
            policy,
        );
        assert_eq!(dues(&p), vec![at("2030-01-01T00:00:00Z")]);
        assert_eq!(p.fires[0].by, TriggeredBy::Scheduler);
        assert_eq!(p.next, Some(at("2030-01-01T00:00:01Z")));
        assert_eq!(p.dropped, 0);
    }
}

#[test]
fn missed_runs_follow_the_policy() {
    // Due at :00 but nobody ran until :04.5 — five due times passed.
    let s = state("2030-01-01T00:00:00Z");
    let now = "2030-01-01T00:00:04.500Z";
    let skip = run(&s, now, MissedRunPolicy::Skip);
    assert!(skip.fires.is_empty());
    assert_eq!(skip.dropped, 5);
    let once = run(&s, now, MissedRunPolicy::RunOnce);
    assert_eq!(
        dues(&once),
        vec![at("2030-01-01T00:00:04Z")],
        "one run, for the latest"
    );
    assert_eq!(once.fires[0].by, TriggeredBy::Recovery);
    assert_eq!(once.dropped, 4);
    let all = run(&s, now, MissedRunPolicy::CatchUp);
    assert_eq!(all.fires.len(), 5);
    assert!(all.fires.iter().all(|f| f.by == TriggeredBy::Recovery));
    for p in [&skip, &once, &all] {
        assert_eq!(
            p.next,
            Some(at("2030-01-01T00:00:05Z")),
            "resumes after now"
        );
    }
}

#[test]
fn one_due_time_later_than_the_grace_is_missed_too() {
    let hourly = Timing::from_fields(&TimingFields {
        schedule_type: "cron",
        cron_expression: Some("0 * * * *"),
        ..Default::default()
    })
    .unwrap();
    let s = state("2030-01-01T10:00:00Z");
    let limits = Limits::default();
    let late = at("2030-01-01T10:30:00Z");
    let p = plan(&hourly, &s, late, MissedRunPolicy::Skip, &limits);
    assert!(p.fires.is_empty(), "30 minutes late is missed");
    assert_eq!(p.next, Some(at("2030-01-01T11:00:00Z")));
    let p = plan(
        &hourly,
        &s,
        at("2030-01-01T10:00:30Z"),
        MissedRunPolicy::Skip,
        &limits,
    );
    assert_eq!(p.fires.len(), 1, "30 s late is within the 60 s grace");
}

#[test]
fn catch_up_is_bounded() {
    let s = state("2030-01-01T00:00:00Z");
    let limits = Limits {
        catch_up_max: 10,
        ..Limits::default()
    };
    let p = plan(
        &every_second(),
        &s,
        at("2030-01-01T01:00:00Z"),
        MissedRunPolicy::CatchUp,
        &limits,
    );
    assert_eq!(p.fires.len(), 10);
    assert_eq!(
        p.fires.last().unwrap().due,
        at("2030-01-01T00:16:39Z"),
        "scan stops at 1000"
    );
    assert!(p.dropped >= 990);
    assert_eq!(
        p.next,
        Some(at("2030-01-01T01:00:01Z")),
        "resumes after now, past the scan"
    );
}

#[test]
fn dates_and_max_executions_limit_firing() {
    let mut s = state("2030-01-01T00:00:00Z");
    s.end_date = Some(at("2030-01-01T00:00:02Z"));
    let p = run(&s, "2030-01-01T00:00:02Z", MissedRunPolicy::CatchUp);
    assert_eq!(p.fires.len(), 3);
    assert_eq!(p.next, None, "past the end date: finished");

    let mut s = state("2030-01-01T00:00:00Z");
    s.start_date = Some(at("2030-01-01T00:00:03Z"));
    let p = run(&s, "2030-01-01T00:00:01Z", MissedRunPolicy::CatchUp);
    assert!(p.fires.is_empty(), "not started yet");
    assert_eq!(p.next, Some(at("2030-01-01T00:00:03Z")));

    let mut s = state("2030-01-01T00:00:00Z");
    s.remaining = Some(2);
    let p = run(&s, "2030-01-01T00:00:04Z", MissedRunPolicy::CatchUp);
    assert_eq!(p.fires.len(), 2);
    assert_eq!(p.next, None, "max_executions reached");
    s.remaining = Some(0);
    let p = run(&s, "2030-01-01T00:00:00Z", MissedRunPolicy::CatchUp);
    assert!(p.fires.is_empty());
    assert_eq!(p.next, None);
}

#[test]
fn once_fires_once() {
    let t = Timing::from_fields(&TimingFields {
        schedule_type: "once",
        run_at: Some(at("2030-01-01T00:00:00Z")),
        ..Default::default()
    })
    .unwrap();
    let s = state("2030-01-01T00:00:00Z");
    let p = plan(
        &t,
        &s,
        at("2030-01-01T00:00:00.010Z"),
        MissedRunPolicy::Skip,
        &Limits::default(),
    );
    assert_eq!(p.fires.len(), 1);
    assert_eq!(p.next, None);
    // Two hours late: policy decides.
    let late = at("2030-01-01T02:00:00Z");
    assert!(
        plan(&t, &s, late, MissedRunPolicy::Skip, &Limits::default())
            .fires
            .is_empty()
    );
    let p = plan(&t, &s, late, MissedRunPolicy::RunOnce, &Limits::default());
    assert_eq!(p.fires[0].by, TriggeredBy::Recovery);
}

#[test]
fn policies_parse() {
    assert_eq!(
        MissedRunPolicy::parse("catch_up").unwrap(),
        MissedRunPolicy::CatchUp
    );
    assert_eq!(MissedRunPolicy::default(), MissedRunPolicy::RunOnce);
    assert!(MissedRunPolicy::parse("sometimes").is_err());
    let _ = TimeDelta::zero();
}
