//! Cron expressions: standard 5 fields (`minute hour day-of-month month day-of-week`), or 6 with
//! seconds first, plus the `@hourly`-style macros; evaluated in a time zone.
//!
//! Each field is parsed here (so an error names the field and the value at fault) and expanded
//! to an explicit set, which the `cron` crate then searches. Two differences from the `cron`
//! crate are handled on the way: days of the week are numbered the standard way (0 or 7 =
//! Sunday, not 1), and when both day fields are restricted a day matches if *either* does
//! (Vixie cron's rule, also croniter's), which is built as the union of two schedules.
//!
//! # Time zones
//!
//! A schedule fires at every instant whose wall-clock time in its zone matches. A wall time
//! skipped by a daylight-saving jump does not exist and does not fire; a wall time that occurs
//! twice (clocks set back) fires once, at its first occurrence — so a daily 01:30 job runs
//! once on that night, and an every-minute job pauses during the repeated hour.
//!
//! # Bounds
//!
//! The search never runs past the year 2100 (the `cron` crate's limit), and the walk over wall
//! times that do not map to a new instant is capped at [`MAX_STEPS`], so computing a next time
//! always ends.

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::ScheduleError;

/// Longest expression accepted.
pub const MAX_LEN: usize = 256;
/// Candidate wall times examined per search at most (an hour of seconds skipped by a DST jump
/// is 3,600).
pub const MAX_STEPS: usize = 10_000;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for values `names_from..`.
    names: &'static [&'static str],
    names_from: u32,
    /// `?` allowed (day fields), meaning the same as `*`.
    question: bool,
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
    question: false,
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
    question: false,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
    question: false,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
    question: true,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    names_from: 1,
    question: false,
};
// 7 is accepted as Sunday and folded to 0.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &DAYS,
    names_from: 0,
    question: true,
};

/// One parsed field: a bit per allowed value, and whether it was written as `*`/`?` (which
/// decides how the two day fields combine).
#[derive(Debug, Clone, Copy)]
struct FieldSet {
    bits: u64,
    star: bool,
}

impl FieldSet {
    fn render(&self, spec: &FieldSpec) -> String {
        let full = (spec.min..=spec.max).all(|v| self.bits & (1 << v) != 0);
        if full {
            return "*".into();
        }
        (spec.min..=spec.max)
            .filter(|v| self.bits & (1 << v) != 0)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_value(spec: &FieldSpec, token: &str) -> Result<u32, String> {
    if let Ok(n) = token.parse::<u32>() {
        if n < spec.min || n > spec.max {
            return Err(format!(
                "{} field: {n} is out of range {}-{}",
                spec.name, spec.min, spec.max
            ));
        }
        return Ok(n);
    }
    let lower = token.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(spec.names_from + i as u32);
    }
    if spec.names.is_empty() {
        Err(format!("{} field: '{token}' is not a number", spec.name))
    } else {
        Err(format!(
            "{} field: '{token}' is not a number or a name ({})",
            spec.name,
            spec.names.join(", ")
        ))
    }
}

fn parse_field(spec: &FieldSpec, text: &str) -> Result<FieldSet, String> {
    let mut bits: u64 = 0;
    let star = text.starts_with('*') || (spec.question && text.starts_with('?'));
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{} field: empty list item in '{text}'", spec.name));
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => {
                let step = s.parse::<u32>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                    format!(
                        "{} field: step '{s}' must be a whole number of at least 1",
                        spec.name
                    )
                })?;
                (b, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if base == "*" || (spec.question && base == "?") {
            (spec.min, spec.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (parse_value(spec, a)?, parse_value(spec, b)?);
            if a > b {
                return Err(format!("{} field: range {base} is reversed", spec.name));
            }
            (a, b)
        } else {
            let v = parse_value(spec, base)?;
            // `5/15`: from 5 to the end, every 15.
            if step > 1 { (v, spec.max) } else { (v, v) }
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(FieldSet { bits, star })
}

/// The standard 5-field form of a macro.
fn expand_macro(expr: &str) -> Option<&'static str> {
    Some(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// A validated cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    with_seconds: bool,
    /// One schedule, or two whose union is meant (both day fields restricted).
    parts: Vec<cron::Schedule>,
}

impl CronExpr {
    /// Parses and validates `expr`; the error says which field is wrong and why, or that the
    /// expression never matches any date.
    pub fn parse(expr: &str) -> Result<CronExpr, ScheduleError> {
        let fail = |reason: String| {
            ScheduleError::invalid(
                "cron_expression",
                format!("invalid cron expression '{}': {reason}", truncate(expr, 80)),
            )
        };
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if trimmed.len() > MAX_LEN {
            return Err(fail(format!("longer than {MAX_LEN} characters")));
        }
        let standard = if trimmed.starts_with('@') {
            expand_macro(trimmed).ok_or_else(|| {
                fail("unknown macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)".into())
            })?
        } else {
            trimmed
        };
        let fields: Vec<&str> = standard.split_whitespace().collect();
        let (with_seconds, sec) = match fields.len() {
            5 => (false, "0"),
            6 => (true, fields[0]),
            n => {
                return Err(fail(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got {n}"
                )));
            }
        };
        let rest = &fields[fields.len() - 5..];
        let second = parse_field(&SECOND, sec).map_err(fail)?;
        let minute = parse_field(&MINUTE, rest[0]).map_err(fail)?;
        let hour = parse_field(&HOUR, rest[1]).map_err(fail)?;
        let dom = parse_field(&DAY_OF_MONTH, rest[2]).map_err(fail)?;
        let month = parse_field(&MONTH, rest[3]).map_err(fail)?;
        let mut dow = parse_field(&DAY_OF_WEEK, rest[4]).map_err(fail)?;
        // Sunday is 0 or 7; the `cron` crate numbers Sunday 1 … Saturday 7.
        if dow.bits & (1 << 7) != 0 {
            dow.bits = (dow.bits & !(1 << 7)) | 1;
        }
        let dow_crate = {
            let full = (0..=6).all(|d| dow.bits & (1 << d) != 0);
            if full {
                "*".to_owned()
            } else {
                (0..=6)
                    .filter(|d| dow.bits & (1 << d) != 0)
                    .map(|d| (d + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let head = format!(
            "{} {} {}",
            second.render(&SECOND),
            minute.render(&MINUTE),
            hour.render(&HOUR)
        );
        let dom_s = dom.render(&DAY_OF_MONTH);
        let month_s = month.render(&MONTH);
        let texts: Vec<String> = if !dom.star && !dow.star {
            vec![
                format!("{head} {dom_s} {month_s} *"),
                format!("{head} * {month_s} {dow_crate}"),
            ]
        } else {
            vec![format!("{head} {dom_s} {month_s} {dow_crate}")]
        };
        let parts = texts
            .iter()
            .map(|t| t.parse::<cron::Schedule>().map_err(|e| fail(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let parsed = CronExpr {
            source: trimmed.to_owned(),
            with_seconds,
            parts,
        };
        if parsed.next_naive(naive_now()).is_none() {
            return Err(fail(
                "it never matches a date (for example 30 February)".into(),
            ));
        }
        Ok(parsed)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for the 6-field form.
    pub fn has_seconds(&self) -> bool {
        self.with_seconds
    }

    /// The next matching wall time strictly after `after`, on a zone-less clock (wall times
    /// are represented as UTC instants).
    fn next_naive(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parts
            .iter()
            .filter_map(|p| p.after(&after).next())
            .min()
    }

    /// The first instant strictly after `after` whose wall time in `tz` matches; `None` when
    /// there is none before 2100 (or the bounded walk found none).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let wall = after.with_timezone(&tz).naive_local();
        let mut cursor = Utc.from_utc_datetime(&wall);
        for _ in 0..MAX_STEPS {
            let candidate = self.next_naive(cursor)?;
            match tz.from_local_datetime(&candidate.naive_utc()) {
                // Skipped by a daylight-saving jump: this wall time never happens.
                LocalResult::None => {}
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    let t = t.with_timezone(&Utc);
                    if t > after {
                        return Some(t);
                    }
                    // A repeated wall time already passed at its first occurrence.
                }
            }
            cursor = candidate;
        }
        None
    }
}

fn naive_now() -> DateTime<Utc> {
    Utc::now()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_expand_to_sets() {
        let f = parse_field(&MINUTE, "*/15").unwrap();
        assert_eq!(f.render(&MINUTE), "0,15,30,45");
        let f = parse_field(&MINUTE, "5/20").unwrap();
        assert_eq!(f.render(&MINUTE), "5,25,45");
        let f = parse_field(&MONTH, "jan-mar,DEC").unwrap();
        assert_eq!(f.render(&MONTH), "1,2,3,12");
        let f = parse_field(&HOUR, "0-23").unwrap();
        assert_eq!(f.render(&HOUR), "*");
        assert!(
            parse_field(&HOUR, "24")
                .unwrap_err()
                .contains("out of range 0-23")
        );
        assert!(
            parse_field(&MINUTE, "5-1")
                .unwrap_err()
                .contains("reversed")
        );
        assert!(parse_field(&MINUTE, "*/0").unwrap_err().contains("step"));
        assert!(parse_field(&MINUTE, "1,,2").unwrap_err().contains("empty"));
        assert!(
            parse_field(&DAY_OF_MONTH, "L")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
