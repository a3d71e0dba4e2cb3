//! The `calendar` skill: events in iCalendar (`.ics`, RFC 5545) files of the project — create,
//! list (recurring events expanded into their occurrences inside a bounded range), update and
//! delete. Parsing and writing use the `icalendar` crate, recurrence (`RRULE`, `RDATE`,
//! `EXDATE`) its `rrule` integration. An update keeps every property it does not change, so a
//! file written by another program survives the round trip.
//!
//! Times are RFC 3339 (`2026-12-05T10:00:00+01:00`) and stored in UTC; all-day events take a
//! date (`2026-12-05`). Floating times found in a file are read as UTC.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use icalendar::{
    Calendar, CalendarComponent, CalendarDateTime, Component, DatePerhapsTime, Event, EventLike, Tz,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::files::{self, WriteMode};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;
use crate::root::ProjectRoot;

const SKILL: &str = "calendar";
/// Largest calendar file read or written.
pub const MAX_ICS_BYTES: usize = 5 * 1024 * 1024;
/// Most events one file may hold.
pub const MAX_EVENTS: usize = 10_000;
/// Most occurrences one list returns (and expands per event).
pub const MAX_OCCURRENCES: u16 = 1000;
/// Widest range one list expands.
pub const MAX_RANGE_DAYS: i64 = 3660;

/// Calendar files are read, changed and written whole: one change at a time in this process,
/// so two concurrent updates do not lose one another.
static WRITE_LOCK: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Utility, description)
}

fn ics_path() -> Value {
    json!({"type": "string", "minLength": 5, "maxLength": 4096, "pattern": "\\.ics$"})
}

fn event_fields(required: &[&str]) -> Value {
    let when = json!({"type": "string", "minLength": 10, "maxLength": 40});
    json!({
        "type": "object",
        "properties": {
            "path": ics_path(),
            "uid": {"type": "string", "minLength": 1, "maxLength": 255},
            "summary": {"type": "string", "minLength": 1, "maxLength": 1000},
            "description": {"type": "string", "maxLength": 20000},
            "location": {"type": "string", "maxLength": 1000},
            "start": when,
            "end": when,
            "all_day": {"type": "boolean"},
            "rrule": {"type": "string", "maxLength": 500},
        },
        "required": required,
        "additionalProperties": false,
    })
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let mut create = event_fields(&["path", "summary", "start"]);
    if let Some(props) = create["properties"].as_object_mut() {
        props.remove("uid");
    }
    reg.register(
        def(
            "calendar_create_event",
            "Add an event (optionally recurring, RRULE such as FREQ=WEEKLY;COUNT=10) to an .ics file of the project, creating the file if needed",
        )
        .permissions(&[Permission::Write])
        .schema(create)
        .output("{uid, path}"),
        calendar_create_event,
    )?;
    reg.register(
        def(
            "calendar_list_events",
            "List the events of an .ics file and their occurrences (recurrences expanded) between 'from' and 'to'",
        )
        .permissions(&[Permission::Read])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": ics_path(),
                "from": {"type": "string", "minLength": 10, "maxLength": 40},
                "to": {"type": "string", "minLength": 10, "maxLength": 40},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_OCCURRENCES},
            },
            "required": ["path"],
            "additionalProperties": false,
        }))
        .output("{events[{uid, summary, start, end, all_day, rrule, …}], occurrences[{uid, summary, start, end}], truncated}"),
        calendar_list_events,
    )?;
    reg.register(
        def(
            "calendar_update_event",
            "Change an event of an .ics file (fields not given are kept; rrule \"\" stops the recurrence)",
        )
        .permissions(&[Permission::Write])
        .schema(event_fields(&["path", "uid"]))
        .output("{uid, sequence}"),
        calendar_update_event,
    )?;
    reg.register(
        def("calendar_delete_event", "Delete an event from an .ics file")
            .permissions(&[Permission::Write, Permission::Delete])
            .dangerous(ConfirmationType::Destructive)
            .schema(json!({
                "type": "object",
                "properties": {"path": ics_path(), "uid": {"type": "string", "minLength": 1, "maxLength": 255}},
                "required": ["path", "uid"],
                "additionalProperties": false,
            }))
            .output("{uid, deleted}"),
        calendar_delete_event,
    )?;
    Ok(())
}

/// The calendar in `path`; `None` when the file does not exist.
async fn load(root: &ProjectRoot, path: &str) -> Result<Option<Calendar>, ToolError> {
    let abs = root.resolve(path).await?;
    if tokio::fs::symlink_metadata(&abs).await.is_err() {
        return Ok(None);
    }
    let (_, bytes) = files::read_bytes(root, path).await?;
    if bytes.len() > MAX_ICS_BYTES {
        return Err(ToolError::TooLarge(format!(
            "'{path}' is larger than {MAX_ICS_BYTES} bytes"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| ToolError::InvalidInput(format!("'{path}' is not UTF-8 text")))?;
    let cal: Calendar = text.parse().map_err(|e| {
        ToolError::InvalidInput(format!("'{path}' is not a valid iCalendar file: {e}"))
    })?;
    Ok(Some(cal))
}

async fn save(root: &ProjectRoot, path: &str, cal: &Calendar) -> Result<(), ToolError> {
    let text = cal.to_string();
    if text.len() > MAX_ICS_BYTES {
        return Err(ToolError::TooLarge(format!(
            "the calendar would be larger than {MAX_ICS_BYTES} bytes"
        )));
    }
    files::write(root, path, text.as_bytes(), WriteMode::Overwrite, true).await?;
    Ok(())
}

fn bad(msg: String) -> ToolError {
    ToolError::InvalidInput(msg)
}

/// An input time: a date when `all_day`, else RFC 3339 (stored in UTC).
fn when(raw: &str, all_day: bool) -> Result<DatePerhapsTime, ToolError> {
    if all_day {
        let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| bad(format!("'{raw}' is not a date (YYYY-MM-DD)")))?;
        return Ok(DatePerhapsTime::Date(d));
    }
    let dt = DateTime::parse_from_rfc3339(raw).map_err(|_| {
        bad(format!(
            "'{raw}' is not an RFC 3339 time (2026-12-05T10:00:00Z)"
        ))
    })?;
    Ok(DatePerhapsTime::DateTime(CalendarDateTime::Utc(
        dt.with_timezone(&Utc),
    )))
}

/// A time of the file as UTC (dates at midnight; floating times read as UTC).
fn utc(d: &DatePerhapsTime) -> Option<DateTime<Utc>> {
    match d {
        DatePerhapsTime::Date(d) => d.and_hms_opt(0, 0, 0).map(|n| n.and_utc()),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(n)) => Some(n.and_utc()),
        DatePerhapsTime::DateTime(c) => c.try_into_utc(),
    }
}

fn show(d: &DatePerhapsTime) -> Value {
    match d {
        DatePerhapsTime::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        other => json!(utc(other).map(|t| t.to_rfc3339())),
    }
}

/// DTEND − DTSTART (an hour for a timed event without end, a day for an all-day one).
fn length(ev: &Event) -> Duration {
    match (ev.get_start(), ev.get_end()) {
        (Some(s), Some(e)) => match (utc(&s), utc(&e)) {
            (Some(s), Some(e)) if e > s => e - s,
            _ => Duration::zero(),
        },
        (Some(DatePerhapsTime::Date(_)), None) => Duration::days(1),
        _ => Duration::hours(1),
    }
}

/// Sets start, end and rule, checking them together: the end after the start, the rule
/// valid for that start.
fn set_times(
    ev: &mut Event,
    start: DatePerhapsTime,
    end: Option<DatePerhapsTime>,
    rrule: Option<&str>,
) -> Result<(), ToolError> {
    let end = match end {
        Some(e) => e,
        None => {
            let s = utc(&start).ok_or_else(|| bad("the start time cannot be read".into()))?;
            match &start {
                DatePerhapsTime::Date(d) => DatePerhapsTime::Date(*d + Duration::days(1)),
                _ => DatePerhapsTime::DateTime(CalendarDateTime::Utc(s + Duration::hours(1))),
            }
        }
    };
    if matches!(start, DatePerhapsTime::Date(_)) != matches!(end, DatePerhapsTime::Date(_)) {
        return Err(bad(
            "start and end must both be dates or both be times".into()
        ));
    }
    if utc(&end) <= utc(&start) {
        return Err(bad("the end must be after the start".into()));
    }
    ev.starts(start).ends(end);
    match rrule.map(|r| r.trim().trim_start_matches("RRULE:")) {
        Some("") => {
            ev.remove_property("RRULE");
        }
        Some(rule) => {
            if rule.contains(['\n', '\r']) {
                return Err(bad("the rrule must be one line".into()));
            }
            ev.add_property("RRULE", rule);
        }
        None => {}
    }
    if ev.property_value("RRULE").is_some() {
        ev.get_recurrence()
            .map_err(|e| bad(format!("invalid rrule: {e}")))?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct EventInput {
    path: String,
    uid: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start: Option<String>,
    end: Option<String>,
    all_day: Option<bool>,
    rrule: Option<String>,
}

fn set_texts(ev: &mut Event, i: &EventInput) {
    if let Some(s) = &i.summary {
        ev.summary(s);
    }
    if let Some(d) = &i.description {
        ev.description(d);
    }
    if let Some(l) = &i.location {
        ev.location(l);
    }
}

fn events(cal: &Calendar) -> usize {
    cal.components
        .iter()
        .filter(|c| matches!(c, CalendarComponent::Event(_)))
        .count()
}

async fn calendar_create_event(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: EventInput = parse(input)?;
    let root = ctx.root()?;
    let all_day = i.all_day.unwrap_or(false);
    let start = when(i.start.as_deref().unwrap_or_default(), all_day)?;
    let end = i.end.as_deref().map(|e| when(e, all_day)).transpose()?;
    let uid = format!("{}@gathering", uuid::Uuid::new_v4());
    let mut ev = Event::new();
    ev.uid(&uid).timestamp(Utc::now()).sequence(0);
    set_texts(&mut ev, &i);
    set_times(&mut ev, start, end, i.rrule.as_deref())?;
    let _guard = WRITE_LOCK.lock().await;
    let mut cal = load(root, &i.path).await?.unwrap_or_else(Calendar::new);
    if events(&cal) >= MAX_EVENTS {
        return Err(ToolError::TooLarge(format!(
            "'{}' already holds {MAX_EVENTS} events",
            i.path
        )));
    }
    cal.push(ev.done());
    save(root, &i.path, &cal).await?;
    Ok(ToolOutput::ok(
        format!("Event created in {}", i.path),
        json!({"uid": uid, "path": i.path}),
    ))
}

fn find<'a>(cal: &'a mut Calendar, uid: &str) -> Option<&'a mut Event> {
    cal.components.iter_mut().find_map(|c| match c {
        CalendarComponent::Event(e) if e.get_uid() == Some(uid) => Some(e),
        _ => None,
    })
}

async fn existing(root: &ProjectRoot, path: &str) -> Result<Calendar, ToolError> {
    load(root, path)
        .await?
        .ok_or_else(|| ToolError::Missing(format!("'{path}' does not exist")))
}

async fn calendar_update_event(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: EventInput = parse(input)?;
    let root = ctx.root()?;
    let uid = i.uid.clone().unwrap_or_default();
    let _guard = WRITE_LOCK.lock().await;
    let mut cal = existing(root, &i.path).await?;
    let ev = find(&mut cal, &uid)
        .ok_or_else(|| ToolError::Missing(format!("no event '{uid}' in '{}'", i.path)))?;
    set_texts(ev, &i);
    let old_start = ev.get_start();
    let all_day = i
        .all_day
        .unwrap_or(matches!(old_start, Some(DatePerhapsTime::Date(_))));
    let start = match &i.start {
        Some(s) => when(s, all_day)?,
        None => old_start.ok_or_else(|| bad("the event has no start: give one".into()))?,
    };
    let end = match &i.end {
        Some(e) => Some(when(e, all_day)?),
        // A moved start keeps the event's length.
        None if i.start.is_some() => {
            let s = utc(&start).ok_or_else(|| bad("the start cannot be read".into()))?;
            Some(match &start {
                DatePerhapsTime::Date(d) => {
                    DatePerhapsTime::Date(*d + Duration::days(length(ev).num_days().max(1)))
                }
                _ => DatePerhapsTime::DateTime(CalendarDateTime::Utc(s + length(ev))),
            })
        }
        None => ev.get_end(),
    };
    set_times(ev, start, end, i.rrule.as_deref())?;
    let sequence = ev.get_sequence().unwrap_or(0) + 1;
    ev.sequence(sequence).last_modified(Utc::now());
    save(root, &i.path, &cal).await?;
    Ok(ToolOutput::ok(
        format!("Event {uid} updated"),
        json!({"uid": uid, "sequence": sequence}),
    ))
}

#[derive(Deserialize)]
struct DeleteInput {
    path: String,
    uid: String,
}

async fn calendar_delete_event(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: DeleteInput = parse(input)?;
    let root = ctx.root()?;
    let _guard = WRITE_LOCK.lock().await;
    let mut cal = existing(root, &i.path).await?;
    let before = cal.components.len();
    cal.components.retain(
        |c| !matches!(c, CalendarComponent::Event(e) if e.get_uid() == Some(i.uid.as_str())),
    );
    if cal.components.len() == before {
        return Err(ToolError::Missing(format!(
            "no event '{}' in '{}'",
            i.uid, i.path
        )));
    }
    save(root, &i.path, &cal).await?;
    Ok(ToolOutput::ok(
        format!("Event {} deleted", i.uid),
        json!({"uid": i.uid, "deleted": true}),
    ))
}

#[derive(Deserialize)]
struct ListInput {
    path: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u16>,
}

fn range_bound(raw: &str) -> Result<DateTime<Utc>, ToolError> {
    if raw.len() == 10 {
        return utc(&when(raw, true)?).ok_or_else(|| bad(format!("'{raw}' is not a date")));
    }
    utc(&when(raw, false)?).ok_or_else(|| bad(format!("'{raw}' is not a time")))
}

async fn calendar_list_events(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let cal = existing(ctx.root()?, &i.path).await?;
    let from = i
        .from
        .as_deref()
        .map(range_bound)
        .transpose()?
        .unwrap_or_else(Utc::now);
    let to = match &i.to {
        Some(t) => range_bound(t)?,
        None => from + Duration::days(30),
    };
    if to <= from || to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(bad(format!(
            "'to' must be after 'from' and at most {MAX_RANGE_DAYS} days later"
        )));
    }
    let limit = i.limit.unwrap_or(200).min(MAX_OCCURRENCES);
    let mut list = Vec::new();
    let mut occurrences: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let mut truncated = false;
    for ev in cal.events() {
        let uid = ev.get_uid().unwrap_or_default();
        let start = ev.get_start();
        let all_day = matches!(start, Some(DatePerhapsTime::Date(_)));
        list.push(json!({
            "uid": uid,
            "summary": ev.get_summary(),
            "description": ev.get_description(),
            "location": ev.get_location(),
            "start": start.as_ref().map(show),
            "end": ev.get_end().as_ref().map(show),
            "all_day": all_day,
            "rrule": ev.property_value("RRULE"),
        }));
        let Ok(set) = ev.get_recurrence() else {
            continue; // no DTSTART, or a rule rrule cannot read: listed, never expanded
        };
        let len = length(ev);
        // The window starts one event length early so an occurrence still going on at
        // 'from' is listed.
        let after = (from - len).with_timezone(&Tz::UTC);
        let result = set
            .after(after)
            .before(to.with_timezone(&Tz::UTC))
            .all(limit);
        truncated |= result.limited;
        for occ in result.dates {
            let s = occ.with_timezone(&Utc);
            let e = s + len;
            if e <= from && len > Duration::zero() || s > to {
                continue;
            }
            let (start, end) = if all_day {
                (
                    json!(s.date_naive().format("%Y-%m-%d").to_string()),
                    json!(e.date_naive().format("%Y-%m-%d").to_string()),
                )
            } else {
                (json!(s.to_rfc3339()), json!(e.to_rfc3339()))
            };
            occurrences.push((
                s,
                json!({"uid": uid, "summary": ev.get_summary(), "start": start, "end": end, "all_day": all_day}),
            ));
        }
    }
    occurrences.sort_by_key(|(s, _)| *s);
    if occurrences.len() > limit as usize {
        occurrences.truncate(limit as usize);
        truncated = true;
    }
    let occurrences: Vec<Value> = occurrences.into_iter().map(|(_, v)| v).collect();
    Ok(ToolOutput::ok(
        format!(
            "{} event(s), {} occurrence(s) from {} to {}",
            list.len(),
            occurrences.len(),
            from.to_rfc3339(),
            to.to_rfc3339()
        ),
        json!({
            "events": list,
            "occurrences": occurrences,
            "from": from.to_rfc3339(),
            "to": to.to_rfc3339(),
            "truncated": truncated,
        }),
    ))
}
