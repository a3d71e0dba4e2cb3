//! Input validation against a tool's JSON Schema (compiled once, at registration). Every
//! violation is reported, each with the JSON path of the offending value: for a missing
//! property the path names the property itself, and an unexpected property gets one violation
//! of its own.

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde::Serialize;
use serde_json::Value;

/// Most violations reported for one input (a huge wrong input must not produce a huge error).
const MAX_VIOLATIONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Dotted path (`items[0].name`), or `(root)`.
    pub path: String,
    /// The path segments (property names and indices), for callers that build their own
    /// location (the edge's 422 `loc`).
    pub segments: Vec<Value>,
    /// The schema keyword that failed (`required`, `type`, `enum`, `pattern`,
    /// `additionalProperties`, …).
    pub keyword: String,
    pub message: String,
}

/// `msg (at path); msg (at path)`, as A5 phrases one violation.
pub fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{} (at {})", v.message, v.path))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A compiled input schema.
pub struct Schema {
    validator: Option<Validator>,
}

impl Schema {
    /// Compiles `schema`. An empty object accepts anything.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        if schema.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(Schema { validator: None });
        }
        if !schema.is_object() && !schema.is_boolean() {
            return Err("a schema must be an object".into());
        }
        jsonschema::validator_for(schema)
            .map(|v| Schema { validator: Some(v) })
            .map_err(|e| e.to_string())
    }

    /// Every violation of `input`, empty when it is valid.
    pub fn violations(&self, input: &Value) -> Vec<Violation> {
        let Some(validator) = &self.validator else {
            return Vec::new();
        };
        if validator.is_valid(input) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for err in validator.iter_errors(input) {
            let base: Vec<Value> = err
                .instance_path()
                .segments()
                .map(|s| match s {
                    LocationSegment::Property(p) => Value::String(p.into_owned()),
                    LocationSegment::Index(i) => Value::from(i),
                })
                .collect();
            let keyword = err.kind().keyword().to_owned();
            match err.kind() {
                ValidationErrorKind::Required { property } => {
                    let name = property
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| property.to_string());
                    let mut segs = base.clone();
                    segs.push(Value::String(name.clone()));
                    out.push(violation(
                        segs,
                        keyword,
                        format!("'{name}' is a required property"),
                    ));
                }
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        let mut segs = base.clone();
                        segs.push(Value::String(name.clone()));
                        out.push(violation(
                            segs,
                            keyword.clone(),
                            format!("additional property '{name}' is not allowed"),
                        ));
                    }
                }
                _ => out.push(violation(base, keyword, err.to_string())),
            }
            if out.len() >= MAX_VIOLATIONS {
                out.truncate(MAX_VIOLATIONS);
                break;
            }
        }
        out
    }
}

fn violation(segments: Vec<Value>, keyword: String, message: String) -> Violation {
    Violation {
        path: dotted(&segments),
        segments,
        keyword,
        message,
    }
}

/// `a.b[0].c`, or `(root)` for the document itself.
pub fn dotted(segments: &[Value]) -> String {
    if segments.is_empty() {
        return "(root)".into();
    }
    let mut s = String::new();
    for seg in segments {
        match seg {
            Value::Number(n) => {
                s.push('[');
                s.push_str(&n.to_string());
                s.push(']');
            }
            Value::String(p) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(p);
            }
            other => s.push_str(&other.to_string()),
        }
    }
    s
}
