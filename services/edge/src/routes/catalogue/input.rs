//! Input checks shared by the catalogue, agent and memory routes: bounded text without NUL
//! bytes (PostgreSQL refuses them in `text`, which would turn bad input into a 500), bounded
//! lists, and the database refusals that are the caller's fault (a duplicate name, a missing
//! referenced row), told apart from real failures.

use gathering_db::tokio_postgres::error::SqlState;

/// One line of text: `min..=max` characters, no control characters.
pub fn line_ok(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n)
        && !s.chars().any(char::is_control)
        && (min == 0 || !s.trim().is_empty())
}

/// Free text: at most `max` characters, no NUL or other control characters except tab and line
/// breaks.
pub fn text_ok(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

pub fn opt_line_ok(s: &Option<String>, max: usize) -> bool {
    s.as_deref().is_none_or(|s| line_ok(s, 0, max))
}

pub fn opt_text_ok(s: &Option<String>, max: usize) -> bool {
    s.as_deref().is_none_or(|s| text_ok(s, max))
}

/// At most `items` entries, each a line of 1 to `len` characters.
pub fn list_ok(v: &[String], items: usize, len: usize) -> bool {
    v.len() <= items && v.iter().all(|s| line_ok(s, 1, len))
}

pub fn opt_list_ok(v: &Option<Vec<String>>, items: usize, len: usize) -> bool {
    v.as_deref().is_none_or(|v| list_ok(v, items, len))
}

/// A database refusal caused by the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A unique constraint, by name.
    Duplicate(String),
    /// A foreign key, by constraint name.
    Missing(String),
}

/// The refusal in `e`, or `None` when it is a real failure.
pub fn refusal(e: &gathering_db::tokio_postgres::Error) -> Option<Refusal> {
    let db = e.as_db_error()?;
    let constraint = db.constraint().unwrap_or_default().to_owned();
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        Some(Refusal::Duplicate(constraint))
    } else if *db.code() == SqlState::FOREIGN_KEY_VIOLATION {
        Some(Refusal::Missing(constraint))
    } else {
        None
    }
}
