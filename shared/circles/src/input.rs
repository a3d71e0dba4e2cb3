//! Input rules: every size and count an untrusted caller controls is bounded here, and values
//! are normalised once (competencies lower-cased and de-duplicated, paths without `./`).

use serde_json::Value;

use crate::error::Violation;

pub const MAX_NAME: usize = 100;
pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_RESULT: usize = 200_000;
pub const MAX_COMMENTS: usize = 10_000;
pub const MAX_LIST: usize = 50;
pub const MAX_ITEM: usize = 100;
pub const MAX_PATHS: usize = 200;
pub const MAX_PATH: usize = 1000;
pub const MAX_TOPIC: usize = 500;
pub const MAX_PROMPT: usize = 20_000;
pub const MAX_PARTICIPANTS: usize = 10;
pub const MAX_TURNS: i32 = 50;
/// Members of one circle at most.
pub const MAX_MEMBERS: i64 = 50;
/// Tasks of one circle that are not finished, at most.
pub const MAX_OPEN_TASKS: i64 = 1000;
/// Turns of one conversation, across every start and advance.
pub const MAX_TOTAL_TURNS: i32 = 500;

pub const TASK_STATUSES: [&str; 6] = [
    "pending",
    "assigned",
    "in_progress",
    "in_review",
    "completed",
    "failed",
];

/// A circle name: 1 to 100 characters, letters, digits, space, `_`, `.`, `-`, starting with a
/// letter or digit (it appears in URLs and event topics).
pub fn circle_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(char::is_alphanumeric);
    if !first_ok
        || name.chars().count() > MAX_NAME
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-'))
    {
        return Err(format!(
            "1 to {MAX_NAME} letters, digits, spaces, '_', '.' or '-', starting with a letter or digit"
        ));
    }
    Ok(name.to_owned())
}

/// A list of short labels (competencies, review kinds): at most 50 of 1 to 100 characters,
/// lower-cased, de-duplicated, in order.
pub fn labels(items: &[String]) -> Result<Vec<String>, String> {
    if items.len() > MAX_LIST {
        return Err(format!("at most {MAX_LIST} items"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let v = item.trim().to_lowercase();
        if v.is_empty() {
            continue;
        }
        if v.chars().count() > MAX_ITEM {
            return Err(format!("items of at most {MAX_ITEM} characters"));
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Comma-separated labels (the query parameters of `POST /circles/{name}/agents`).
pub fn csv_labels(raw: Option<&str>) -> Result<Vec<String>, String> {
    let items: Vec<String> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::to_owned)
        .collect();
    labels(&items)
}

/// File paths or resource names: at most `max` of 1 to 1000 characters, `./` removed.
pub fn paths(items: &[String], max: usize) -> Result<Vec<String>, String> {
    if items.len() > max {
        return Err(format!("at most {max} items"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let v = normalise_path(item);
        if v.is_empty() {
            continue;
        }
        if v.chars().count() > MAX_PATH || v.contains('\0') {
            return Err(format!("items of at most {MAX_PATH} characters"));
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn normalise_path(raw: &str) -> String {
    let mut v = raw.trim();
    while let Some(rest) = v.strip_prefix("./") {
        v = rest;
    }
    v.trim_end_matches('/').to_owned()
}

/// A priority: an integer, a numeric string, or low (8) / medium (5) / high (3) / critical
/// (1); clamped to 1..10 (lower is more urgent).
pub fn priority(v: Option<&Value>) -> Result<i16, String> {
    let n = match v {
        None | Some(Value::Null) => 5,
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.round() as i64))
            .ok_or("an integer or low, medium, high, critical")?,
        Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "low" => 8,
            "medium" => 5,
            "high" => 3,
            "critical" => 1,
            other => other
                .parse::<i64>()
                .map_err(|_| "an integer or low, medium, high, critical")?,
        },
        Some(_) => return Err("an integer or low, medium, high, critical".into()),
    };
    Ok(n.clamp(1, 10) as i16)
}

/// Text of at most `max` characters (and at least one non-blank when `required`).
pub fn text(field: &str, v: &str, required: bool, max: usize, out: &mut Vec<Violation>) -> String {
    if required && v.trim().is_empty() {
        out.push(Violation::body(
            field,
            "String should have at least 1 character",
        ));
    } else if v.chars().count() > max {
        out.push(Violation::body(
            field,
            format!("String should have at most {max} characters"),
        ));
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert_eq!(circle_name(" core-team ").unwrap(), "core-team");
        assert!(circle_name("").is_err());
        assert!(circle_name("-x").is_err());
        assert!(circle_name("a/b").is_err());
        assert!(circle_name(&"a".repeat(101)).is_err());
        assert!(circle_name("Équipe 2.0").is_ok());
    }

    #[test]
    fn label_lists() {
        assert_eq!(
            labels(&["Rust".into(), " rust".into(), "".into(), "SQL".into()]).unwrap(),
            vec!["rust", "sql"]
        );
        assert!(labels(&vec!["x".to_string(); 51]).is_err());
        assert!(labels(&["x".repeat(101)]).is_err());
        assert_eq!(csv_labels(Some("a, b,,A")).unwrap(), vec!["a", "b"]);
        assert!(csv_labels(None).unwrap().is_empty());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(None).unwrap(), 5);
        assert_eq!(priority(Some(&json!("high"))).unwrap(), 3);
        assert_eq!(priority(Some(&json!("Critical"))).unwrap(), 1);
        assert_eq!(priority(Some(&json!(42))).unwrap(), 10);
        assert_eq!(priority(Some(&json!(-3))).unwrap(), 1);
        assert_eq!(priority(Some(&json!("7"))).unwrap(), 7);
        assert!(priority(Some(&json!("urgent"))).is_err());
        assert!(priority(Some(&json!([1]))).is_err());
    }

    #[test]
    fn path_lists() {
        assert_eq!(
            paths(
                &["./src/a.rs".into(), "src/a.rs".into(), "docs/".into()],
                10
            )
            .unwrap(),
            vec!["src/a.rs", "docs"]
        );
        assert!(paths(&vec!["a".to_string(); 11], 10).is_err());
    }
}
