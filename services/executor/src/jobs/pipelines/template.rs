//! `{{node_id.field}}` references in node configs, resolved against the outputs of the nodes
//! that ran before (and `trigger_data`). A string that is exactly one reference becomes the
//! referenced value with its JSON type; references inside a longer string are interpolated
//! (strings as they are, anything else as compact JSON). Path segments are object keys or
//! array indices. A reference that does not resolve is a configuration error of the node: a
//! silent empty string would send wrong data to the target.

use serde_json::{Map, Value};

/// Where references are looked up: `root` is the first path segment (a node id).
pub trait Scope {
    fn root(&self, name: &str) -> Option<&Value>;
}

impl Scope for Map<String, Value> {
    fn root(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// Deepest nesting resolved (configs are at most 64 KiB anyway).
const MAX_DEPTH: usize = 32;

/// Resolves every reference in `value` (recursively through objects and arrays).
pub fn resolve(value: &Value, scope: &dyn Scope) -> Result<Value, String> {
    resolve_at(value, scope, 0)
}

fn resolve_at(value: &Value, scope: &dyn Scope, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("config nested too deeply".into());
    }
    Ok(match value {
        Value::String(s) if s.contains("{{") => resolve_str(s, scope)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_at(v, scope, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve_at(v, scope, depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup<'a>(path: &str, scope: &'a dyn Scope) -> Result<&'a Value, String> {
    let mut parts = path.split('.').map(str::trim);
    let unresolved = || format!("unresolved reference '{{{{{path}}}}}'");
    let root = parts
        .next()
        .filter(|p| !p.is_empty())
        .ok_or_else(unresolved)?;
    let mut current = scope.root(root).ok_or_else(unresolved)?;
    for part in parts {
        current = match current {
            Value::Object(m) => m.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(unresolved)?;
    }
    Ok(current)
}

fn resolve_str(s: &str, scope: &dyn Scope) -> Result<Value, String> {
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
    {
        return lookup(inner.trim(), scope).cloned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed reference in '{s}'"));
        };
        match lookup(after[..end].trim(), scope)? {
            Value::String(v) => out.push_str(v),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Map<String, Value> {
        json!({
            "fetch": {"status": 200, "body": {"items": [{"id": "a1"}, {"id": "a2"}]}},
            "trigger": {"user": "ada"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn whole_references_keep_their_type() {
        let s = scope();
        assert_eq!(resolve(&json!("{{fetch.status}}"), &s).unwrap(), json!(200));
        assert_eq!(
            resolve(&json!("{{ fetch.body.items.1.id }}"), &s).unwrap(),
            json!("a2")
        );
        assert_eq!(
            resolve(&json!({"x": ["{{trigger}}"]}), &s).unwrap(),
            json!({"x": [{"user": "ada"}]})
        );
    }

    #[test]
    fn interpolation_and_errors() {
        let s = scope();
        assert_eq!(
            resolve(&json!("user={{trigger.user}} code={{fetch.status}}"), &s).unwrap(),
            json!("user=ada code=200")
        );
        assert_eq!(
            resolve(&json!("{{nope.x}}"), &s).unwrap_err(),
            "unresolved reference '{{nope.x}}'"
        );
        assert!(resolve(&json!("{{fetch.body.items.9}}"), &s).is_err());
        assert!(resolve(&json!("a {{fetch.status"), &s).is_err());
        assert_eq!(resolve(&json!("no refs"), &s).unwrap(), json!("no refs"));
    }
}
