//! Condition nodes (A13), without any expression evaluation: the literals `true`/`false`
//! (any case), `input.<field>` (the truthiness of that field in the first predecessor output
//! that has it; absent is false), a predecessor id (the truthiness of its output), and any
//! other non-empty string is true. A condition that is not a string is judged by its
//! truthiness (after `{{…}}` references resolved, `{{check.ok}}` is a boolean).

use serde_json::{Map, Value};

/// Python's truthiness, which the earlier implementation's conditions used.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

pub fn evaluate(condition: &Value, inputs: &Map<String, Value>) -> bool {
    let Value::String(expr) = condition else {
        return truthy(condition);
    };
    if expr.eq_ignore_ascii_case("true") {
        return true;
    }
    if expr.eq_ignore_ascii_case("false") {
        return false;
    }
    if let Some(field) = expr.strip_prefix("input.") {
        return inputs
            .values()
            .find_map(|out| out.as_object().and_then(|o| o.get(field)))
            .is_some_and(truthy);
    }
    if let Some(out) = inputs.get(expr.as_str()) {
        return truthy(out);
    }
    !expr.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a13_semantics() {
        let inputs = json!({"a": {"ok": false, "n": 3}, "b": {"ok": true}, "c": {}})
            .as_object()
            .unwrap()
            .clone();
        assert!(evaluate(&json!("TRUE"), &inputs));
        assert!(!evaluate(&json!("False"), &inputs));
        // The first predecessor having the field decides.
        assert!(!evaluate(&json!("input.ok"), &inputs));
        assert!(evaluate(&json!("input.n"), &inputs));
        assert!(!evaluate(&json!("input.missing"), &inputs));
        assert!(evaluate(&json!("a"), &inputs));
        assert!(!evaluate(&json!("c"), &inputs));
        assert!(evaluate(&json!("x > 3 and __import__('os')"), &inputs));
        assert!(!evaluate(&json!(""), &inputs));
        assert!(!evaluate(&json!(null), &inputs));
        assert!(evaluate(&json!(true), &inputs));
        assert!(!evaluate(&json!(0), &inputs));
    }
}
