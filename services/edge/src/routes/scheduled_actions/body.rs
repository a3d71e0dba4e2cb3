//! Request bodies of `/scheduled-actions` and the checks shared by create and update: lenient
//! time parsing (clients send naive timestamps), field limits, the action's settings, and the
//! first due time.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use gathering_db::tokio_postgres::types::FromSql;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_schedule::action::{self, ActionType};
use gathering_schedule::{ScheduleType, Timing};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::schedule_error;
use crate::error::{ApiError, FieldError, Violations};

/// A `once` time may be this far in the past (clock skew, a slow client); it then runs now.
const ONCE_PAST_TOLERANCE: TimeDelta = TimeDelta::seconds(60);
const MAX_TEXT: usize = 20_000;
const MAX_TAGS: usize = 50;

/// A timestamp as clients send them: RFC 3339 with an offset, or naive (taken as UTC, as
/// Pydantic clients often send).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
            .map(|n| n.and_utc())
        })
}

fn flexible_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(s) => parse_time(s.trim()).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{}' is not a date-time (use ISO 8601, e.g. 2030-01-31T09:00:00Z)",
                s.chars().take(60).collect::<String>()
            ))
        }),
    }
}

/// `Some(None)` when the field is present as `null` (clears it), `None` when absent.
fn nullable_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    flexible_time(d).map(Some)
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Times are ISO 8601, with an offset or naive (taken as UTC).
#[derive(Deserialize, ToSchema)]
pub(super) struct CreateBody {
    pub(super) agent_id: i64,
    /// 1 to 255 characters.
    pub(super) name: String,
    /// What the agent works on (a `run_task` needs one here or in `action_config`).
    pub(super) goal: String,
    /// `cron` (default), `interval`, `once` or `event`.
    #[serde(default = "default_type")]
    pub(super) schedule_type: String,
    /// A `cron` schedule's expression.
    pub(super) cron_expression: Option<String>,
    /// An `interval` schedule's period.
    pub(super) interval_seconds: Option<i64>,
    /// An `event` schedule's event type.
    pub(super) event_trigger: Option<String>,
    /// A `once` schedule's time.
    #[serde(default, deserialize_with = "flexible_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) next_run_at: Option<DateTime<Utc>>,
    pub(super) circle_id: Option<i64>,
    pub(super) description: Option<String>,
    /// 1 to 500 (default 50).
    #[serde(default = "default_max_steps")]
    pub(super) max_steps: i64,
    /// 60 to 86400 (default 3600).
    #[serde(default = "default_timeout")]
    pub(super) timeout_seconds: i64,
    #[serde(default = "yes")]
    pub(super) retry_on_failure: bool,
    /// 0 to 100 (default 3).
    #[serde(default = "default_retries")]
    pub(super) max_retries: i64,
    /// 0 to 86400 (default 300).
    #[serde(default = "default_retry_delay")]
    pub(super) retry_delay_seconds: i64,
    #[serde(default)]
    pub(super) allow_concurrent: bool,
    #[serde(default, deserialize_with = "flexible_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) start_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "flexible_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) end_date: Option<DateTime<Utc>>,
    /// At least 1.
    pub(super) max_executions: Option<i64>,
    /// At most 50 tags of 1 to 100 characters.
    #[serde(default)]
    pub(super) tags: Vec<String>,
    #[serde(default = "empty_object")]
    pub(super) metadata: Value,
    // Beyond the contract's body: what the action does, and how time is read.
    /// `run_task` (default), `execute_pipeline`, `send_notification` or `call_api`
    #[serde(default = "default_action")]
    pub(super) action_type: String,
    /// The action's settings (checked for its type).
    #[serde(default = "empty_object")]
    pub(super) action_config: Value,
    /// An IANA time zone for cron schedules (default UTC).
    pub(super) timezone: Option<String>,
    /// `run_once` (default), `skip` or `catch_up`.
    pub(super) missed_run_policy: Option<String>,
}

fn default_type() -> String {
    "cron".into()
}
fn default_action() -> String {
    "run_task".into()
}
fn default_max_steps() -> i64 {
    50
}
fn default_timeout() -> i64 {
    3600
}
fn default_retries() -> i64 {
    3
}
fn default_retry_delay() -> i64 {
    300
}
fn yes() -> bool {
    true
}
fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Settings shared by create and update, checked in one place.
pub(super) struct Settings<'a> {
    pub(super) name: Option<&'a str>,
    pub(super) goal: Option<&'a str>,
    pub(super) description: Option<&'a str>,
    pub(super) max_steps: Option<i64>,
    pub(super) timeout_seconds: Option<i64>,
    pub(super) max_retries: Option<i64>,
    pub(super) retry_delay_seconds: Option<i64>,
    pub(super) max_executions: Option<Option<i64>>,
    pub(super) tags: Option<&'a [String]>,
}

pub(super) fn check_settings(s: &Settings<'_>) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if let Some(name) = s.name {
        v.check(
            !name.trim().is_empty() && name.chars().count() <= 255,
            "name",
            "name must be 1 to 255 characters",
        );
    }
    if let Some(goal) = s.goal {
        v.check(
            goal.len() <= MAX_TEXT,
            "goal",
            "goal is too long (20000 bytes at most)",
        );
    }
    if let Some(d) = s.description {
        v.check(
            d.len() <= MAX_TEXT,
            "description",
            "description is too long (20000 bytes at most)",
        );
    }
    if let Some(n) = s.max_steps {
        v.check(
            (1..=500).contains(&n),
            "max_steps",
            "max_steps must be 1 to 500",
        );
    }
    if let Some(n) = s.timeout_seconds {
        v.check(
            (60..=86_400).contains(&n),
            "timeout_seconds",
            "timeout_seconds must be 60 to 86400",
        );
    }
    if let Some(n) = s.max_retries {
        v.check(
            (0..=100).contains(&n),
            "max_retries",
            "max_retries must be 0 to 100",
        );
    }
    if let Some(n) = s.retry_delay_seconds {
        v.check(
            (0..=86_400).contains(&n),
            "retry_delay_seconds",
            "retry_delay_seconds must be 0 to 86400",
        );
    }
    if let Some(Some(n)) = s.max_executions {
        v.check(
            (1..=i64::from(i32::MAX)).contains(&n),
            "max_executions",
            "max_executions must be at least 1",
        );
    }
    if let Some(tags) = s.tags {
        v.check(
            tags.len() <= MAX_TAGS
                && tags
                    .iter()
                    .all(|t| !t.is_empty() && t.chars().count() <= 100),
            "tags",
            "at most 50 tags of 1 to 100 characters",
        );
    }
    v.finish()
}

/// The action's settings, and for `run_task` that there is a goal to work on.
pub(super) fn check_action(
    kind: &str,
    config: &Value,
    metadata: &Value,
    goal: &str,
) -> Result<ActionType, ApiError> {
    let action = ActionType::parse(kind).map_err(schedule_error)?;
    action::validate(action, config, metadata).map_err(schedule_error)?;
    if action == ActionType::RunTask
        && goal.trim().is_empty()
        && config
            .get("goal")
            .and_then(Value::as_str)
            .is_none_or(|g| g.trim().is_empty())
    {
        return Err(ApiError::Validation(vec![FieldError::body(
            "goal",
            "goal must not be empty for a run_task action",
        )]));
    }
    Ok(action)
}

/// Checks dates against each other and against the first due time; returns the first due
/// time (`next_run_at`), `None` for event schedules.
pub(super) fn first_due(
    timing: &Timing,
    now: DateTime<Utc>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let field = |f: &str, m: &str| Err(ApiError::Validation(vec![FieldError::body(f, m)]));
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return field("end_date", "end_date is before start_date");
    }
    if end.is_some_and(|e| e < now) {
        return field("end_date", "end_date is in the past");
    }
    if let Timing::Once { at } = timing
        && *at < now - ONCE_PAST_TOLERANCE
    {
        return field("next_run_at", "next_run_at is in the past");
    }
    let first = timing.first_due(now, start);
    if timing.schedule_type() != ScheduleType::Event {
        match first {
            None => return field("cron_expression", "the schedule has no future due time"),
            Some(f) if end.is_some_and(|e| f > e) => {
                return field("end_date", "end_date is before the first due time");
            }
            _ => {}
        }
    }
    Ok(first)
}

/// The body's value when it has one, else the stored column's.
pub(super) fn or_stored<'a, T: FromSql<'a>>(
    given: Option<T>,
    cur: &'a Row,
    col: &str,
) -> Result<T, PgError> {
    match given {
        Some(v) => Ok(v),
        None => cur.try_get(col),
    }
}

pub(super) async fn db_now(
    client: &impl gathering_db::GenericClient,
) -> Result<DateTime<Utc>, ApiError> {
    Ok(client.query_one("SELECT now()", &[]).await?.try_get(0)?)
}

/// Absent fields are left unchanged; `description`, `end_date` and `max_executions` may be
/// `null` to clear them. Timing fields must fit the schedule's type.
#[derive(Deserialize, ToSchema)]
pub(super) struct UpdateBody {
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) description: Option<Option<String>>,
    pub(super) goal: Option<String>,
    pub(super) cron_expression: Option<String>,
    pub(super) interval_seconds: Option<i64>,
    pub(super) max_steps: Option<i64>,
    pub(super) timeout_seconds: Option<i64>,
    pub(super) retry_on_failure: Option<bool>,
    pub(super) max_retries: Option<i64>,
    pub(super) allow_concurrent: Option<bool>,
    #[serde(default, deserialize_with = "nullable_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) end_date: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) max_executions: Option<Option<i64>>,
    pub(super) tags: Option<Vec<String>>,
    // Beyond the contract's body.
    pub(super) retry_delay_seconds: Option<i64>,
    pub(super) event_trigger: Option<String>,
    #[serde(default, deserialize_with = "flexible_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) next_run_at: Option<DateTime<Utc>>,
    pub(super) timezone: Option<String>,
    pub(super) missed_run_policy: Option<String>,
    pub(super) action_type: Option<String>,
    pub(super) action_config: Option<Value>,
    pub(super) metadata: Option<Value>,
}

impl UpdateBody {
    pub(super) fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.goal.is_none()
            && self.cron_expression.is_none()
            && self.interval_seconds.is_none()
            && self.max_steps.is_none()
            && self.timeout_seconds.is_none()
            && self.retry_on_failure.is_none()
            && self.max_retries.is_none()
            && self.allow_concurrent.is_none()
            && self.end_date.is_none()
            && self.max_executions.is_none()
            && self.tags.is_none()
            && self.retry_delay_seconds.is_none()
            && self.event_trigger.is_none()
            && self.next_run_at.is_none()
            && self.timezone.is_none()
            && self.missed_run_policy.is_none()
            && self.action_type.is_none()
            && self.action_config.is_none()
            && self.metadata.is_none()
    }

    pub(super) fn touches_timing(&self) -> bool {
        self.cron_expression.is_some()
            || self.interval_seconds.is_some()
            || self.event_trigger.is_some()
            || self.next_run_at.is_some()
            || self.timezone.is_some()
    }
}
