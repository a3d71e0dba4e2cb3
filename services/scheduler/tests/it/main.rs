//! The scheduler in-process (one or several instances per test) over a fresh database.

mod claims;
mod events;
mod queue_metrics;
mod support;
