//! What to fire when a schedule is claimed: its due times up to now, filtered by the start and
//! end dates and `max_executions`, and — when some were missed — by its missed-run policy.
//!
//! A due time is *missed* when it was superseded (a later due time has also passed) or when it
//! is more than `grace` late. That is what happens when no scheduler instance ran for a while
//! (or they fell that far behind): on a healthy system each due time is claimed within
//! milliseconds and nothing is missed. When anything was missed:
//!
//! - `skip`: nothing fires; the schedule resumes at its next due time after now;
//! - `run_once` (default): one run, for the latest due time;
//! - `catch_up`: every missed due time fires, at most `catch_up_max` (the latest ones).
//!
//! Runs fired for missed due times are marked `recovery`. Listing due times is bounded by
//! `scan_max`; beyond it the rest counts as missed without being listed.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::ScheduleError;
use crate::timing::Timing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedRunPolicy {
    Skip,
    #[default]
    RunOnce,
    CatchUp,
}

impl MissedRunPolicy {
    pub fn parse(s: &str) -> Result<MissedRunPolicy, ScheduleError> {
        Ok(match s {
            "skip" => MissedRunPolicy::Skip,
            "run_once" => MissedRunPolicy::RunOnce,
            "catch_up" => MissedRunPolicy::CatchUp,
            _ => {
                return Err(ScheduleError::invalid(
                    "missed_run_policy",
                    "missed_run_policy must be skip, run_once or catch_up",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MissedRunPolicy::Skip => "skip",
            MissedRunPolicy::RunOnce => "run_once",
            MissedRunPolicy::CatchUp => "catch_up",
        }
    }
}

/// Who started a run (`scheduled_action_runs.triggered_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggeredBy {
    Scheduler,
    Manual,
    Event,
    Recovery,
}

impl TriggeredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggeredBy::Scheduler => "scheduler",
            TriggeredBy::Manual => "manual",
            TriggeredBy::Event => "event",
            TriggeredBy::Recovery => "recovery",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How late a due time may be and still count as on time.
    pub grace: TimeDelta,
    /// Most runs one `catch_up` fires.
    pub catch_up_max: usize,
    /// Most due times listed per claim.
    pub scan_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            grace: TimeDelta::seconds(60),
            catch_up_max: 100,
            scan_max: 1000,
        }
    }
}

/// A claimed schedule's state.
#[derive(Debug, Clone, Copy)]
pub struct DueState {
    /// The first due time not fired yet.
    pub next_run_at: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Runs left before `max_executions`; `None` means no limit.
    pub remaining: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    pub due: DateTime<Utc>,
    pub by: TriggeredBy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub fires: Vec<Fire>,
    /// Due times that will not fire (policy, catch-up bound, `max_executions`); a lower bound
    /// when more were due than `scan_max`.
    pub dropped: u64,
    /// The next due time after now; `None` when the schedule is finished.
    pub next: Option<DateTime<Utc>>,
}

/// Decides what a claim at `now` fires and where the schedule goes next.
pub fn plan(
    timing: &Timing,
    state: &DueState,
    now: DateTime<Utc>,
    policy: MissedRunPolicy,
    limits: &Limits,
) -> Plan {
    let mut due: Vec<DateTime<Utc>> = Vec::new();
    let mut overflowed = false;
    let mut cursor = Some(state.next_run_at);
    while let Some(d) = cursor {
        if d > now || state.end_date.is_some_and(|e| d > e) {
            break;
        }
        if let Some(s) = state.start_date.filter(|s| d < *s) {
            // Not started yet: resume at the first due time from the start date on.
            cursor = timing.first_after(d, s - TimeDelta::nanoseconds(1));
            continue;
        }
        if due.len() >= limits.scan_max.max(1) {
            overflowed = true;
            cursor = timing.first_after(d, now);
            break;
        }
        due.push(d);
        cursor = timing.following(d);
    }
    let mut next = cursor.filter(|d| state.end_date.is_none_or(|e| *d <= e));

    let Some(&last) = due.last() else {
        return Plan {
            fires: Vec::new(),
            dropped: 0,
            next,
        };
    };
    let missed = overflowed || due.len() > 1 || now - last > limits.grace;
    let mut fires: Vec<Fire> = if !missed {
        vec![Fire {
            due: last,
            by: TriggeredBy::Scheduler,
        }]
    } else {
        let recovery = |d: &DateTime<Utc>| Fire {
            due: *d,
            by: TriggeredBy::Recovery,
        };
        match policy {
            MissedRunPolicy::Skip => Vec::new(),
            MissedRunPolicy::RunOnce => vec![recovery(&last)],
            MissedRunPolicy::CatchUp => {
                let from = due.len().saturating_sub(limits.catch_up_max.max(1));
                due[from..].iter().map(recovery).collect()
            }
        }
    };
    if let Some(remaining) = state.remaining {
        let remaining = remaining.max(0) as usize;
        fires.truncate(remaining);
        if fires.len() >= remaining {
            next = None;
        }
    }
    Plan {
        dropped: (due.len() - fires.len()) as u64 + u64::from(overflowed),
        fires,
        next,
    }
}
