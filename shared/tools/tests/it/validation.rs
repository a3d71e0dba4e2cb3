//! Every kind of validation failure is reported by JSON path, and the tool does not run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gathering_tools::{
    CallContext, Category, Grants, Registry, ToolDefinition, ToolError, ToolOutput, Violation,
};
use serde_json::{Value, json};

fn registry() -> (Registry, Arc<AtomicUsize>) {
    let reg = Registry::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    reg.register(
        ToolDefinition::new("deploy", "custom", Category::Utility, "validated tool").schema(
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z]+$"},
                    "count": {"type": "integer", "minimum": 1},
                    "env": {"type": "string", "enum": ["dev", "prod"]},
                    "items": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"id": {"type": "integer"}},
                        "required": ["id"],
                        "additionalProperties": false,
                    }},
                },
                "required": ["name", "env"],
                "additionalProperties": false,
            }),
        ),
        move |_c: CallContext, i: Value| {
            r.fetch_add(1, Ordering::SeqCst);
            async move { Ok(ToolOutput::ok("ran", i)) }
        },
    )
    .unwrap();
    (reg, runs)
}

async fn violations(input: Value) -> (Vec<Violation>, String, usize) {
    let (reg, runs) = registry();
    match reg
        .call("deploy", input, &CallContext::new(Grants::NONE))
        .await
    {
        Err(e @ ToolError::Validation { .. }) => {
            let msg = e.to_string();
            let ToolError::Validation { violations, .. } = e else {
                unreachable!()
            };
            (violations, msg, runs.load(Ordering::SeqCst))
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_required_names_the_property() {
    let (v, msg, runs) = violations(json!({"name": "abc"})).await;
    assert_eq!(runs, 0);
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].path.as_str(), v[0].keyword.as_str()),
        ("env", "required")
    );
    assert_eq!(
        msg,
        "Invalid parameters for tool 'deploy': 'env' is a required property (at env)"
    );
}

#[tokio::test]
async fn wrong_type_is_reported_at_its_path() {
    let (v, msg, runs) = violations(json!({"name": "abc", "env": "dev", "count": "three"})).await;
    assert_eq!(runs, 0);
    assert_eq!(
        (v[0].path.as_str(), v[0].keyword.as_str()),
        ("count", "type")
    );
    assert!(msg.contains("(at count)"), "{msg}");
    assert!(msg.contains("integer"), "{msg}");
}

#[tokio::test]
async fn enum_violation() {
    let (v, msg, runs) = violations(json!({"name": "abc", "env": "staging"})).await;
    assert_eq!(runs, 0);
    assert_eq!((v[0].path.as_str(), v[0].keyword.as_str()), ("env", "enum"));
    assert!(msg.contains("staging"), "{msg}");
}

#[tokio::test]
async fn pattern_violation() {
    let (v, msg, runs) = violations(json!({"name": "ABC1", "env": "dev"})).await;
    assert_eq!(runs, 0);
    assert_eq!(
        (v[0].path.as_str(), v[0].keyword.as_str()),
        ("name", "pattern")
    );
    assert!(msg.contains("^[a-z]+$"), "{msg}");
}

#[tokio::test]
async fn each_additional_property_is_named() {
    let (v, msg, runs) =
        violations(json!({"name": "abc", "env": "dev", "force": true, "debug": 1})).await;
    assert_eq!(runs, 0);
    let mut paths: Vec<_> = v
        .iter()
        .map(|x| (x.path.clone(), x.keyword.clone()))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("debug".to_owned(), "additionalProperties".to_owned()),
            ("force".to_owned(), "additionalProperties".to_owned())
        ]
    );
    assert!(
        msg.contains("additional property 'force' is not allowed (at force)"),
        "{msg}"
    );
}

#[tokio::test]
async fn every_violation_is_reported_with_nested_paths() {
    let (v, _msg, runs) = violations(json!({
        "name": 5,
        "count": 0,
        "items": [{"id": 1}, {"id": "x", "extra": true}, {}],
    }))
    .await;
    assert_eq!(runs, 0);
    let mut got: Vec<(String, String)> = v
        .iter()
        .map(|x| (x.path.clone(), x.keyword.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("env", "required"),
        ("name", "type"),
        ("count", "minimum"),
        ("items[1].id", "type"),
        ("items[1].extra", "additionalProperties"),
        ("items[2].id", "required"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    want.sort();
    assert_eq!(got, want);
    let nested = v.iter().find(|x| x.path == "items[1].id").unwrap();
    assert_eq!(nested.segments, vec![json!("items"), json!(1), json!("id")]);
}

#[tokio::test]
async fn a_non_object_input_fails_at_the_root() {
    let (v, msg, runs) = violations(json!([1, 2])).await;
    assert_eq!(runs, 0);
    assert_eq!(v[0].path, "(root)");
    assert!(msg.ends_with("(at (root))"), "{msg}");
}

#[tokio::test]
async fn valid_input_runs_once() {
    let (reg, runs) = registry();
    let resp = reg
        .execute(
            "deploy",
            json!({"name": "abc", "env": "prod", "items": [{"id": 3}]}),
            &CallContext::new(Grants::NONE),
        )
        .await;
    assert!(resp.success, "{resp:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The SkillResponse of a failure carries the violations.
    let resp = reg
        .execute("deploy", json!({}), &CallContext::new(Grants::NONE))
        .await;
    assert_eq!(resp.error.as_deref(), Some("validation_error"));
    assert!(
        resp.message
            .starts_with("Invalid parameters for tool 'deploy':")
    );
    assert_eq!(resp.data["violations"].as_array().unwrap().len(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
