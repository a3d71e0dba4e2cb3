use gathering_schedule::ActionType;
use gathering_schedule::action::{event_filter, pipeline_id, redacted, tool_call, validate};
use serde_json::json;

fn err(action: ActionType, config: serde_json::Value) -> String {
    validate(action, &config, &json!({})).unwrap_err().reason()
}

#[test]
fn action_types() {
    assert_eq!(ActionType::parse("call_api").unwrap(), ActionType::CallApi);
    let e = ActionType::parse("launch_rocket").unwrap_err();
    assert_eq!(e.field(), Some("action_type"));
    assert!(e.reason().contains("unknown action_type 'launch_rocket'"));
}

#[test]
fn configs_are_checked_per_action() {
    assert!(validate(ActionType::RunTask, &json!({}), &json!({})).is_ok());
    assert!(err(ActionType::RunTask, json!({"max_steps": 0})).contains("max_steps"));
    assert!(err(ActionType::RunTask, json!({"goal": ""})).contains("goal"));
    assert!(err(ActionType::ExecutePipeline, json!({})).contains("pipeline_id required"));
    assert!(err(ActionType::ExecutePipeline, json!({"pipeline_id": -1})).contains("positive"));
    assert!(
        validate(
            ActionType::ExecutePipeline,
            &json!({}),
            &json!({"pipeline_id": "7"})
        )
        .is_ok()
    );
    assert!(
        err(
            ActionType::SendNotification,
            json!({"tool_name": "http_get"})
        )
        .contains("not available")
    );
    assert!(err(ActionType::CallApi, json!({"tool_name": "notify_slack"})).contains("http_get"));
    assert!(err(ActionType::CallApi, json!({"tool_input": "x"})).contains("tool_input"));
    assert!(err(ActionType::RunTask, json!([1])).contains("JSON object"));
    assert!(err(ActionType::RunTask, json!({"x": "y".repeat(70_000)})).contains("larger than"));
    assert!(err(ActionType::RunTask, json!({"event_filter": 3})).contains("event_filter"));
}

#[test]
fn tool_calls_and_filters() {
    let (tool, input) = tool_call(
        ActionType::SendNotification,
        &json!({"url": "http://x/", "payload": {"a": 1}, "event_filter": {"k": 1}}),
    )
    .unwrap();
    assert_eq!(tool, "notify_webhook");
    assert_eq!(
        input,
        json!({"url": "http://x/", "payload": {"a": 1}}),
        "own keys removed"
    );
    let (tool, input) = tool_call(
        ActionType::CallApi,
        &json!({"tool_name": "http_post", "tool_input": {"url": "http://y/"}}),
    )
    .unwrap();
    assert_eq!(
        (tool.as_str(), input),
        ("http_post", json!({"url": "http://y/"}))
    );
    assert!(tool_call(ActionType::RunTask, &json!({})).is_none());
    assert_eq!(
        pipeline_id(&json!({"pipeline_id": 4}), &json!({"pipeline_id": 5})).unwrap(),
        4
    );
    assert_eq!(
        event_filter(&json!({}), &json!({"event_filter": {"pipeline_id": 2}})),
        Some(&json!({"pipeline_id": 2}))
    );
}

#[test]
fn secrets_are_redacted() {
    let v = redacted(&json!({
        "tool_input": {"url": "http://x", "headers": {"Authorization": "Bearer s3cret"}},
        "auth": {"type": "bearer", "token": "abc"},
        "webhook_url": "https://hooks.slack.com/T/B/X",
        "list": [{"password": "p"}],
    }));
    let text = v.to_string();
    for secret in ["s3cret", "abc", "hooks.slack.com", "\"p\""] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(v["tool_input"]["url"], "http://x");
}
