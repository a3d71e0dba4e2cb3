//! When a schedule fires: cron (in a time zone), interval, once, or on an event. Built from the
//! contract's fields with the contract's messages when one is missing, and answering "the next
//! due time after this one".

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::cron_expr::CronExpr;
use crate::error::ScheduleError;
use crate::zone::parse_timezone;

/// The contract's lower bound for `interval_seconds`.
pub const MIN_INTERVAL_SECONDS: i64 = 60;
/// Ten years: longer intervals are mistakes.
pub const MAX_INTERVAL_SECONDS: i64 = 10 * 366 * 86_400;
pub const MAX_EVENT_TRIGGER_LEN: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    Cron,
    Interval,
    Once,
    Event,
}

impl ScheduleType {
    pub fn parse(s: &str) -> Result<ScheduleType, ScheduleError> {
        Ok(match s {
            "cron" => ScheduleType::Cron,
            "interval" => ScheduleType::Interval,
            "once" => ScheduleType::Once,
            "event" => ScheduleType::Event,
            other => {
                return Err(ScheduleError::invalid(
                    "schedule_type",
                    format!(
                        "unknown schedule_type '{}': expected cron, interval, once or event",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleType::Cron => "cron",
            ScheduleType::Interval => "interval",
            ScheduleType::Once => "once",
            ScheduleType::Event => "event",
        }
    }
}

impl fmt::Display for ScheduleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields a schedule's timing is made of, as the API and the table hold them.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingFields<'a> {
    pub schedule_type: &'a str,
    pub cron_expression: Option<&'a str>,
    pub interval_seconds: Option<i64>,
    pub event_trigger: Option<&'a str>,
    /// The time of a `once` schedule (`next_run_at` in the API).
    pub run_at: Option<DateTime<Utc>>,
    pub timezone: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub enum Timing {
    Cron { expr: CronExpr, tz: Tz },
    Interval { every: TimeDelta },
    Once { at: DateTime<Utc> },
    Event { kind: String },
}

fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

impl Timing {
    /// Validates the fields of `f.schedule_type`: a missing required field is the contract's
    /// 400 ("cron_expression required for cron schedule"); an unusable one names the problem.
    pub fn from_fields(f: &TimingFields<'_>) -> Result<Timing, ScheduleError> {
        let kind = ScheduleType::parse(f.schedule_type)?;
        let missing = |field: &'static str| ScheduleError::Missing {
            field,
            kind: kind.as_str(),
        };
        let tz = parse_timezone(f.timezone.unwrap_or(""))?;
        Ok(match kind {
            ScheduleType::Cron => {
                let raw = present(f.cron_expression).ok_or_else(|| missing("cron_expression"))?;
                Timing::Cron {
                    expr: CronExpr::parse(raw)?,
                    tz,
                }
            }
            ScheduleType::Interval => {
                let secs = f
                    .interval_seconds
                    .ok_or_else(|| missing("interval_seconds"))?;
                if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&secs) {
                    return Err(ScheduleError::invalid(
                        "interval_seconds",
                        format!(
                            "interval_seconds must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}, got {secs}"
                        ),
                    ));
                }
                Timing::Interval {
                    every: TimeDelta::seconds(secs),
                }
            }
            ScheduleType::Once => Timing::Once {
                at: f.run_at.ok_or_else(|| missing("next_run_at"))?,
            },
            ScheduleType::Event => {
                let raw = present(f.event_trigger).ok_or_else(|| missing("event_trigger"))?;
                validate_event_kind(raw)?;
                Timing::Event {
                    kind: raw.to_owned(),
                }
            }
        })
    }

    pub fn schedule_type(&self) -> ScheduleType {
        match self {
            Timing::Cron { .. } => ScheduleType::Cron,
            Timing::Interval { .. } => ScheduleType::Interval,
            Timing::Once { .. } => ScheduleType::Once,
            Timing::Event { .. } => ScheduleType::Event,
        }
    }

    /// The due time that follows `due` (itself a due time of this schedule); `None` when there
    /// is none (once, event, or a cron past 2100).
    pub fn following(&self, due: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Timing::Cron { expr, tz } => expr.next_after(due, *tz),
            Timing::Interval { every } => due.checked_add_signed(*every),
            Timing::Once { .. } | Timing::Event { .. } => None,
        }
    }

    /// The first due time strictly after `t` in the sequence that starts at `anchor` (a due
    /// time): how a schedule resumes after skipping, without drifting (an interval stays on
    /// its grid).
    pub fn first_after(&self, anchor: DateTime<Utc>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if anchor > t {
            return Some(anchor);
        }
        match self {
            Timing::Cron { expr, tz } => expr.next_after(t, *tz),
            Timing::Interval { every } => {
                let step = every.num_milliseconds().max(1);
                let behind = (t - anchor).num_milliseconds();
                let k = behind / step + 1;
                anchor.checked_add_signed(TimeDelta::milliseconds(step.checked_mul(k)?))
            }
            Timing::Once { .. } | Timing::Event { .. } => None,
        }
    }

    /// The first due time of a new (or resumed) schedule at `now`: not before `start`, and for
    /// an interval one period from now unless a later start is given. `None` for events.
    pub fn first_due(
        &self,
        now: DateTime<Utc>,
        start: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let future_start = start.filter(|s| *s > now);
        match self {
            Timing::Cron { expr, tz } => {
                let from = match future_start {
                    // A start that is itself a matching time is the first run.
                    Some(s) => s - TimeDelta::nanoseconds(1),
                    None => now,
                };
                expr.next_after(from, *tz)
            }
            Timing::Interval { every } => match future_start {
                Some(s) => Some(s),
                None => now.checked_add_signed(*every),
            },
            Timing::Once { at } => Some(*at),
            Timing::Event { .. } => None,
        }
    }
}

/// Event kinds are dotted names (`pipeline_run.completed`).
pub fn validate_event_kind(kind: &str) -> Result<(), ScheduleError> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_EVENT_TRIGGER_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::invalid(
            "event_trigger",
            format!(
                "event_trigger must be an event kind such as 'pipeline_run.completed' (letters, digits, '.', '_', '-', ':'; at most {MAX_EVENT_TRIGGER_LEN} characters)"
            ),
        ))
    }
}
