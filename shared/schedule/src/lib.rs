//! Schedules, as the edge (validation at creation, manual triggers), the scheduler (due times,
//! missed runs, event triggers) and the executor (action settings) all need them.
//!
//! - [`timing`]: cron (5 fields, or 6 with seconds; UTC or an IANA zone), interval, once and
//!   event schedules, validated with the contract's messages, and bounded next-time search.
//! - [`policy`]: what a claim fires — start/end dates, `max_executions`, and the missed-run
//!   policies `skip`, `run_once` (default) and `catch_up` (bounded).
//! - [`action`]: `run_task`, `execute_pipeline`, `send_notification`, `call_api` settings.
//! - [`cursor`]: the scheduler's positions in the event log (`circle.scheduler_cursors`).
//! - [`definition`]: the writes of `circle.scheduled_actions` (create, update, pause, resume,
//!   delete) with their events; this crate owns the table.
//! - [`fired`]: the due times and counts the scheduler moves when it fires schedules.
//! - [`run_state`]: a run's state as the executor moves it (started, completed, failed,
//!   retrying), fenced on the run being open.
//! - [`store`]: run rows, dispatch jobs and `scheduled_action.*` events, written in the
//!   caller's transaction.

pub mod action;
pub mod cron_expr;
pub mod cursor;
pub mod definition;
pub mod error;
pub mod fired;
pub mod policy;
pub mod run_state;
pub mod store;
pub mod timing;
pub mod zone;

pub use action::ActionType;
pub use cron_expr::CronExpr;
pub use error::ScheduleError;
pub use policy::{DueState, Fire, Limits, MissedRunPolicy, Plan, TriggeredBy, plan};
pub use timing::{ScheduleType, Timing, TimingFields};
pub use zone::parse_timezone;
