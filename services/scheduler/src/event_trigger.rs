//! Event schedules: each active schedule whose `event_trigger` equals an event's kind (and
//! whose `event_filter`, if any, the event's payload contains) fires once per such event.
//!
//! The log is read from a cursor stored in `circle.scheduler_cursors` (`gathering_schedule::cursor`). An instance reads only
//! while holding that row's lock (`FOR UPDATE SKIP LOCKED`: the others skip their turn), and
//! in the same transaction records the runs (unique per schedule and event), enqueues their
//! jobs and moves the cursor — so every event is handled once, across any number of
//! instances and crashes. An event fires a schedule only if it was logged after the
//! schedule was created, and never the schedule whose own event it is.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use gathering_core::Shutdown;
use gathering_db::listen::ListenerEvent;
use gathering_db::{GenericClient, Listener};
use gathering_events::{Event, Filter, NewEvent, read_after};
use gathering_schedule::store::{self, InsertedRun, NewRun};
use gathering_schedule::{TriggeredBy, cursor};
use serde_json::{Value, json};

use crate::Error;
use crate::state::Ctx;

/// Events read per transaction.
const READ_LIMIT: i64 = 1000;
const SCHEDULES_SQL: &str = "
SELECT sa.id, sa.event_trigger, sa.created_at, sa.start_date, sa.end_date, sa.max_executions,
       sa.execution_count, sa.allow_concurrent,
       COALESCE(NULLIF(sa.action_config->'event_filter', 'null'::jsonb),
                NULLIF(sa.metadata->'event_filter', 'null'::jsonb)) AS filter,
       EXISTS (SELECT 1 FROM circle.scheduled_action_runs r
               WHERE r.scheduled_action_id = sa.id AND r.status IN ('pending', 'running')
                 AND r.triggered_at > now() - make_interval(secs => sa.timeout_seconds)) AS busy
FROM circle.scheduled_actions sa
WHERE sa.schedule_type = 'event' AND sa.status = 'active' AND sa.event_trigger = ANY($1)
ORDER BY sa.id
FOR UPDATE OF sa";

/// An event schedule, with what this batch of events does to it.
struct EventSchedule {
    id: i64,
    kind: String,
    created_at: DateTime<Utc>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    remaining: Option<i64>,
    count: i32,
    allow_concurrent: bool,
    busy: bool,
    filter: Option<Value>,
    fired: i32,
    expire: bool,
}

pub async fn run(ctx: Arc<Ctx>, mut listener: Listener, shutdown: Shutdown) {
    loop {
        loop {
            if shutdown.is_triggered() {
                return;
            }
            match process(&ctx).await {
                Ok(read) if read as i64 >= READ_LIMIT => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "event schedules: reading the event log failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.event_poll) => {}
            event = listener.recv() => match event {
                Some(ListenerEvent::Notification(_)) | Some(ListenerEvent::Reconnected) => {
                    while listener.try_recv().is_some() {}
                }
                None => return,
            },
            _ = shutdown.wait() => return,
        }
    }
}

/// Handles the next events after the cursor; returns how many were read (0 when another
/// instance holds the cursor or nothing is new).
pub async fn process(ctx: &Ctx) -> Result<usize, Error> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(cursor) = cursor::lock(&tx, cursor::EVENT_SCHEDULES).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    let events = read_after(&tx, cursor, &Filter::default(), READ_LIMIT).await?;
    let Some(last) = events.last().map(Event::cursor) else {
        tx.commit().await?;
        return Ok(0);
    };
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut schedules = load_schedules(&tx, &kinds).await?;

    let mut runs: Vec<NewRun> = Vec::new();
    let mut notes: Vec<NewEvent> = Vec::new();
    if !schedules.is_empty() {
        runs = plan_runs(&mut schedules, &events);
        notes = expirations(&mut schedules, Utc::now());
    }
    let inserted = store::fire(&tx, &runs, "scheduler").await?;
    count_runs(&tx, &schedules, &inserted).await?;
    gathering_events::publish_in(&tx, &notes).await?;
    cursor::advance(&tx, cursor::EVENT_SCHEDULES, last).await?;
    tx.commit().await?;
    let n = inserted.iter().filter(|r| !r.skipped).count() as u64;
    ctx.stats.event_runs.fetch_add(n, Ordering::Relaxed);
    ctx.stats.fired.fetch_add(n, Ordering::Relaxed);
    Ok(events.len())
}

/// The active schedules waiting for one of `kinds`, locked until the transaction ends.
async fn load_schedules<C: GenericClient>(
    tx: &C,
    kinds: &[&str],
) -> Result<Vec<EventSchedule>, Error> {
    let rows = tx.query(SCHEDULES_SQL, &[&kinds]).await?;
    let schedules = rows
        .iter()
        .map(|r| {
            let max: Option<i32> = r.try_get("max_executions")?;
            let count: i32 = r.try_get("execution_count")?;
            Ok(EventSchedule {
                id: r.try_get("id")?,
                kind: r.try_get("event_trigger")?,
                created_at: r.try_get("created_at")?,
                start_date: r.try_get("start_date")?,
                end_date: r.try_get("end_date")?,
                remaining: max.map(|m| i64::from(m) - i64::from(count)),
                count,
                allow_concurrent: r.try_get("allow_concurrent")?,
                busy: r.try_get("busy")?,
                filter: r.try_get("filter")?,
                fired: 0,
                expire: false,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?;
    Ok(schedules)
}

/// The runs `events` fire, in the events' order: one per matching schedule and event, skipped
/// when the schedule refuses concurrent runs and one is live; a schedule that reaches its
/// `max_executions` is marked to expire.
fn plan_runs(schedules: &mut [EventSchedule], events: &[Event]) -> Vec<NewRun> {
    let mut by_kind: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in schedules.iter().enumerate() {
        by_kind.entry(s.kind.clone()).or_default().push(i);
    }
    let mut runs = Vec::new();
    for event in events {
        let Some(indices) = by_kind.get(&event.kind) else {
            continue;
        };
        for &i in indices {
            let s = &mut schedules[i];
            if !matches(s, event) {
                continue;
            }
            if s.remaining.is_some_and(|r| i64::from(s.fired) >= r) {
                s.expire = true;
                continue;
            }
            // allow_concurrent off: a run still live (or one fired just now) means skip.
            let skipped = !s.allow_concurrent && (s.busy || s.fired > 0);
            runs.push(NewRun {
                action_id: s.id,
                run_number: s.count.saturating_add(s.fired).saturating_add(1),
                scheduled_for: None,
                event_id: Some(event.id),
                triggered_by: TriggeredBy::Event,
                skipped,
            });
            if !skipped {
                s.fired += 1;
                if s.remaining.is_some_and(|r| i64::from(s.fired) >= r) {
                    s.expire = true;
                }
            }
        }
    }
    runs
}

/// Marks the schedules past their end date (nothing more can fire them) to expire; an
/// `expired` event for each schedule that expires.
fn expirations(schedules: &mut [EventSchedule], now: DateTime<Utc>) -> Vec<NewEvent> {
    let mut notes = Vec::new();
    for s in schedules.iter_mut() {
        if s.end_date.is_some_and(|e| e < now) {
            s.expire = true;
        }
        if s.expire {
            notes.push(store::action_event("expired", s.id, json!({}), "scheduler"));
        }
    }
    notes
}

/// Adds the runs inserted to their schedules' counts and expires those marked to.
async fn count_runs<C: GenericClient>(
    tx: &C,
    schedules: &[EventSchedule],
    inserted: &[InsertedRun],
) -> Result<(), Error> {
    // Count what was inserted (a run that already existed for this event is not recounted).
    let mut fired: HashMap<i64, i32> = HashMap::new();
    for r in inserted.iter().filter(|r| !r.skipped) {
        *fired.entry(r.action_id).or_default() += 1;
    }
    let touched: Vec<&EventSchedule> = schedules
        .iter()
        .filter(|s| s.expire || fired.contains_key(&s.id))
        .collect();
    if touched.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = touched.iter().map(|s| s.id).collect();
    let counts: Vec<i32> = touched
        .iter()
        .map(|s| fired.get(&s.id).copied().unwrap_or(0))
        .collect();
    let expire: Vec<bool> = touched.iter().map(|s| s.expire).collect();
    gathering_schedule::fired::count_event_runs(tx, &ids, &counts, &expire).await?;
    Ok(())
}

/// Whether `event` fires `s`: logged after the schedule was created, within its dates, not
/// the schedule's own event, and containing its filter.
fn matches(s: &EventSchedule, event: &Event) -> bool {
    if event.created_at < s.created_at
        || s.start_date.is_some_and(|d| event.created_at < d)
        || s.end_date.is_some_and(|d| event.created_at > d)
    {
        return false;
    }
    if event.kind.starts_with("scheduled_action.")
        && event.payload.get("action_id").and_then(Value::as_i64) == Some(s.id)
    {
        return false;
    }
    s.filter
        .as_ref()
        .is_none_or(|f| contains(&event.payload, f))
}

/// JSON containment, as PostgreSQL's `jsonb @>`: every key of an object filter is present
/// with a contained value; every element of an array filter is contained in some element.
pub fn contains(value: &Value, filter: &Value) -> bool {
    match (value, filter) {
        (Value::Object(v), Value::Object(f)) => f
            .iter()
            .all(|(k, fv)| v.get(k).is_some_and(|vv| contains(vv, fv))),
        (Value::Array(v), Value::Array(f)) => {
            f.iter().all(|fe| v.iter().any(|ve| contains(ve, fe)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn containment_is_jsonb_like() {
        let p = json!({"pipeline_id": 3, "status": "completed", "tags": ["a", "b"], "n": {"x": 1, "y": 2}});
        assert!(contains(&p, &json!({})));
        assert!(contains(&p, &json!({"pipeline_id": 3})));
        assert!(contains(&p, &json!({"pipeline_id": 3.0})));
        assert!(!contains(&p, &json!({"pipeline_id": "3"})));
        assert!(!contains(&p, &json!({"pipeline_id": 4})));
        assert!(contains(&p, &json!({"tags": ["b"], "n": {"y": 2}})));
        assert!(!contains(&p, &json!({"missing": null})));
    }
}
