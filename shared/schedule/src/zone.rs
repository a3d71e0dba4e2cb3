//! IANA time zones for cron schedules.

use chrono_tz::Tz;

use crate::error::ScheduleError;

/// Parses an IANA zone name (`Europe/Paris`, `America/New_York`, `UTC`). Empty means UTC.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    if name.len() > 64 {
        return Err(ScheduleError::invalid(
            "timezone",
            "unknown time zone: longer than 64 characters",
        ));
    }
    name.parse::<Tz>().map_err(|_| {
        ScheduleError::invalid(
            "timezone",
            format!("unknown time zone '{name}': use an IANA name such as 'Europe/Paris' or 'UTC'"),
        )
    })
}
