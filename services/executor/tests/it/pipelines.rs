//! Pipeline runs executed by real executors: DAG order and concurrency, conditions, retries,
//! failure handlers, circuit breakers, timeouts, cancel, delays that do not hold a worker,
//! sub-pipelines, tool nodes, and an agent node answered by a fake provider through the LLM
//! gateway. Actions call a local receiver that counts the calls.

use gathering_pipeline::store::SettingsPatch;
use serde_json::{Value, json};

use crate::receiver::{Receiver, Step};
use crate::support::{Stack, node, statuses};

pub(crate) fn trigger() -> Value {
    json!({"id": "t", "type": "trigger", "name": "Start"})
}

pub(crate) fn api(id: &str, url: String, extra: Value) -> Value {
    let mut config = json!({"action": "call_api", "url": url});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    json!({"id": id, "type": "action", "name": id, "config": config})
}

pub(crate) fn edge(from: &str, to: &str) -> Value {
    json!({"from": from, "to": to})
}

pub(crate) fn fast_retries(n: u32) -> Value {
    json!({"retry": {"max_attempts": n, "backoff_base": 0.05, "backoff_max": 0.2}})
}

pub(crate) fn kinds(events: &[(String, Value)]) -> Vec<String> {
    events.iter().map(|(k, _)| k.clone()).collect()
}

#[tokio::test]
async fn linear_pipeline_runs_nodes_in_order_with_references_and_idempotency_keys() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("a", hook.url("/a"), json!({})),
                api("b", hook.url("/b"), json!({
                    "tool_name": "http_post",
                    "json": {"who": "{{t.user}}", "got": "{{a.body.value}}", "text": "status={{a.status}}"},
                })),
            ]),
            json!([edge("t", "a"), edge("a", "b")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"user": "ada"})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(
        statuses(&nodes),
        vec![
            ("a".into(), "completed".into()),
            ("b".into(), "completed".into()),
            ("t".into(), "completed".into())
        ]
    );
    let (a, b) = (node(&nodes, "a"), node(&nodes, "b"));
    assert!(
        a.completed_at <= b.started_at,
        "b started after a completed"
    );
    assert_eq!(node(&nodes, "t").output_data, json!({"user": "ada"}));
    assert_eq!(b.input_data["a"]["status"], 200);
    assert_eq!(b.retry_count, 0);
    // Config references were resolved with their types.
    let posted = &hook.hits("/b")[0];
    assert_eq!(posted.method, "POST");
    assert_eq!(
        posted.body,
        json!({"who": "ada", "got": 42, "text": "status=200"})
    );
    // Each action carried its (run, node, attempt) idempotency key.
    assert_eq!(
        hook.hits("/a")[0].key.as_deref(),
        Some(format!("pipeline-run-{run_id}-node-a-attempt-1").as_str())
    );
    // The run record: logs in both shapes, counters.
    let json = run.to_json(Some(&nodes));
    let logs = json["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    for l in logs {
        for key in [
            "timestamp",
            "node_id",
            "message",
            "level",
            "status",
            "output",
            "error",
            "duration_ms",
            "retry_count",
        ] {
            assert!(l.get(key).is_some(), "log entry lacks {key}: {l}");
        }
    }
    assert_eq!(
        run.logs.as_array().map(Vec::len),
        Some(3),
        "logs stored at the end"
    );
    let client = stack.pool.get().await.unwrap();
    let counts: (i32, i32, i32) = client
        .query_one(
            "SELECT run_count, success_count, error_count FROM circle.pipelines WHERE id = $1",
            &[&pid],
        )
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap();
    assert_eq!(counts, (1, 1, 0));
    let events = kinds(&stack.events(run_id).await);
    assert_eq!(
        events.first().map(String::as_str),
        Some("pipeline_run.started")
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("pipeline_run.completed")
    );
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "pipeline_node.started")
            .count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "pipeline_node.completed")
            .count(),
        3
    );
    exec.stop().await;
}

#[tokio::test]
async fn diamond_runs_branches_concurrently_and_joins() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    // Each branch's call is answered only once both arrived: they must be in flight together.
    hook.set_default("/branch", Step::status(200).barrier(2));
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "fan", "type": "parallel", "name": "fan out"},
                api("left", hook.url("/branch"), json!({})),
                api("right", hook.url("/branch"), json!({})),
                {"id": "join", "type": "parallel", "name": "join"},
                api("after", hook.url("/after"), json!({})),
            ]),
            json!([
                edge("t", "fan"),
                edge("fan", "left"),
                edge("fan", "right"),
                edge("left", "join"),
                edge("right", "join"),
                edge("join", "after"),
            ]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert!(nodes.iter().all(|n| n.status == "completed"));
    let join = node(&nodes, "join");
    let mut inputs: Vec<&String> = join.input_data.as_object().unwrap().keys().collect();
    inputs.sort();
    assert_eq!(
        inputs,
        vec!["left", "right"],
        "the join waits for both branches"
    );
    assert!(join.started_at >= node(&nodes, "left").completed_at);
    assert!(join.started_at >= node(&nodes, "right").completed_at);
    assert_eq!(hook.hits("/branch").len(), 2);
    assert_eq!(hook.hits("/after").len(), 1);
    exec.stop().await;
}

#[tokio::test]
async fn false_condition_skips_its_branch_up_to_the_join() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "check", "type": "condition", "name": "flag?", "config": {"condition": "input.flag"}},
                api("guarded", hook.url("/guarded"), json!({})),
                api("guarded2", hook.url("/guarded2"), json!({})),
                api("other", hook.url("/other"), json!({})),
                {"id": "join", "type": "parallel", "name": "join"},
                api("end", hook.url("/end"), json!({})),
            ]),
            json!([
                edge("t", "check"),
                edge("check", "guarded"),
                edge("guarded", "guarded2"),
                edge("t", "other"),
                edge("guarded2", "join"),
                edge("other", "join"),
                edge("join", "end"),
            ]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"flag": false})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(node(&nodes, "check").output_data, json!({"result": false}));
    assert_eq!(node(&nodes, "guarded").status, "skipped");
    assert_eq!(node(&nodes, "guarded2").status, "skipped");
    assert_eq!(node(&nodes, "join").status, "completed");
    assert_eq!(
        node(&nodes, "join")
            .input_data
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["other"],
        "the join runs with the branch that ran"
    );
    assert_eq!(node(&nodes, "end").status, "completed");
    assert!(hook.hits("/guarded").is_empty() && hook.hits("/guarded2").is_empty());
    assert_eq!(hook.hits("/end").len(), 1);
    let events = stack.events(run_id).await;
    assert_eq!(
        events
            .iter()
            .filter(|(k, _)| k == "pipeline_node.skipped")
            .count(),
        2
    );

    // The same pipeline with the flag set runs the branch.
    let run_id = stack.run(pid, json!({"flag": true})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed");
    assert!(nodes.iter().all(|n| n.status == "completed"));
    assert_eq!(hook.hits("/guarded").len(), 1);
    exec.stop().await;
}

#[tokio::test]
async fn retry_then_success_records_retry_count() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.script(
        "/flaky",
        vec![Step::status(503), Step::status(500), Step::status(200)],
    );
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([trigger(), api("call", hook.url("/flaky"), fast_retries(3))]),
            json!([edge("t", "call")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let call = node(&nodes, "call");
    assert_eq!((call.retry_count, call.attempt), (2, 3));
    let keys: Vec<String> = hook
        .hits("/flaky")
        .iter()
        .map(|h| h.key.clone().unwrap())
        .collect();
    assert_eq!(
        keys,
        (1..=3)
            .map(|a| format!("pipeline-run-{run_id}-node-call-attempt-{a}"))
            .collect::<Vec<_>>(),
        "one idempotency key per attempt"
    );
    let events = stack.events(run_id).await;
    let retrying: Vec<&Value> = events
        .iter()
        .filter(|(k, _)| k == "pipeline_node.retrying")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(retrying.len(), 2);
    assert_eq!(retrying[0]["attempt"], 2);
    assert_eq!(retrying[0]["error_kind"], "transient");

    // A 4xx is an execution error: not retried when the policy retries transient errors only.
    hook.set_default("/bad", Step::status(404));
    let pid = stack
        .pipeline(
            json!([trigger(), api("call", hook.url("/bad"), json!({"retry": {"max_attempts": 5, "backoff_base": 0.01, "retry_on": ["transient", "timeout"]}}))]),
            json!([edge("t", "call")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    assert_eq!(node(&nodes, "call").retry_count, 0);
    assert_eq!(
        node(&nodes, "call").error_kind.as_deref(),
        Some("execution")
    );
    assert_eq!(hook.hits("/bad").len(), 1);
    exec.stop().await;
}

#[tokio::test]
async fn retries_exhausted_run_the_failure_handlers() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.set_default("/down", Step::status(500));
    let exec = stack.executor(&[]).await;

    // 1. A failure edge: the handler gets the error, the failure is handled.
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("fetch", hook.url("/down"), fast_retries(2)),
                api("use", hook.url("/use"), json!({})),
                api("handler", hook.url("/handler"), json!({"tool_name": "http_post", "json": {"failed": "{{fetch.node_id}}", "why": "{{fetch.error}}"}})),
            ]),
            json!([
                edge("t", "fetch"),
                edge("fetch", "use"),
                {"id": "f", "from": "fetch", "to": "handler", "condition": "on_failure"},
            ]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(node(&nodes, "fetch").status, "failed");
    assert_eq!(node(&nodes, "fetch").retry_count, 1);
    assert_eq!(node(&nodes, "use").status, "skipped");
    assert_eq!(node(&nodes, "handler").status, "completed");
    assert_eq!(hook.hits("/down").len(), 2, "two attempts in total");
    let body = &hook.hits("/handler")[0].body;
    assert_eq!(body["failed"], "fetch");
    assert!(body["why"].as_str().unwrap().contains("500"), "{body}");

    // 2. No failure edge: the run fails, the rest stops, the pipeline-level handler runs.
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("fetch", hook.url("/down"), fast_retries(2)),
                api("use", hook.url("/use2"), json!({})),
                api("alarm", hook.url("/alarm"), json!({"failure_handler": true, "tool_name": "http_post", "json": {"error": "{{fetch.error}}"}})),
                api("after_alarm", hook.url("/after_alarm"), json!({})),
            ]),
            json!([edge("t", "fetch"), edge("fetch", "use"), edge("alarm", "after_alarm")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    assert!(
        run.error_message.as_deref().unwrap().contains("500"),
        "{:?}",
        run.error_message
    );
    assert_eq!(node(&nodes, "use").status, "skipped");
    assert_eq!(node(&nodes, "alarm").status, "completed");
    assert_eq!(node(&nodes, "after_alarm").status, "completed");
    assert_eq!(hook.hits("/alarm").len(), 1);
    assert!(hook.hits("/use2").is_empty());

    // 3. The same pipeline without failure: handlers are skipped. continue_on_error passes
    //    the error on and the run completes.
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("fetch", hook.url("/down"), json!({"retry": {"max_attempts": 1}, "continue_on_error": true})),
                api("use", hook.url("/use3"), json!({"tool_name": "http_post", "json": {"upstream_failed": "{{fetch.failed}}"}})),
                api("alarm", hook.url("/alarm3"), json!({"failure_handler": true})),
            ]),
            json!([edge("t", "fetch"), edge("fetch", "use")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(node(&nodes, "fetch").status, "failed");
    assert_eq!(node(&nodes, "use").status, "completed");
    assert_eq!(node(&nodes, "alarm").status, "skipped");
    assert_eq!(hook.hits("/use3")[0].body["upstream_failed"], true);
    assert!(hook.hits("/alarm3").is_empty());
    exec.stop().await;
}
