//! gathering-schedule: parsing and validation, next-time search (time zones and DST
//! included), missed-run policies, action settings, and the run/job writes on a real database.

mod action;
mod cron;
mod policy;
mod store;
mod timing;
mod zones;

use chrono::{DateTime, Utc};

/// `2030-01-01T00:00:00Z`-style literal to a UTC time.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}
