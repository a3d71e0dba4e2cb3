//! Redaction of provider keys from text that came from elsewhere (upstream error bodies,
//! transport errors) before it reaches a log line, an error message or a usage row.
//!
//! Known keys are replaced wherever they appear; anything shaped like a key (`sk-…`,
//! `sk-ant-…`, `Bearer …`) is masked too, since providers echo a *wrong* key back ("Incorrect
//! API key provided: sk-abc…") and that key is someone's secret as well.

/// Longest upstream message kept.
const MAX_MESSAGE: usize = 400;

pub fn redact(text: &str, known: &[String]) -> String {
    let mut out = text.to_owned();
    for key in known {
        if key.len() >= 4 && out.contains(key.as_str()) {
            out = out.replace(key.as_str(), "[redacted]");
        }
    }
    let out = mask_key_shapes(&out);
    crate::model::truncate(&out, MAX_MESSAGE)
}

/// Masks tokens that look like API keys.
fn mask_key_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = ["sk-", "Bearer ", "bearer ", "key-", "gsk_", "AIza"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min_by_key(|(i, _)| *i);
        let Some((i, prefix)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + prefix.len()..];
        let token_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(after.len());
        if token_len >= 6 {
            out.push_str(prefix);
            out.push_str("[redacted]");
        } else {
            out.push_str(&rest[i..i + prefix.len() + token_len]);
        }
        rest = &after[token_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_key_shaped_values_are_masked() {
        let known = vec!["my-secret-value-123".to_string()];
        let text = "bad key my-secret-value-123 and Incorrect API key provided: sk-proj-abcdef123456. Authorization: Bearer abcdefghijkl";
        let r = redact(text, &known);
        assert!(!r.contains("my-secret-value-123"), "{r}");
        assert!(!r.contains("abcdef123456"), "{r}");
        assert!(!r.contains("abcdefghijkl"), "{r}");
        assert!(r.contains("sk-[redacted]"), "{r}");
        assert_eq!(redact("task-list ok", &[]), "task-list ok");
        assert!(redact(&"x".repeat(5000), &[]).chars().count() <= 401);
    }
}
