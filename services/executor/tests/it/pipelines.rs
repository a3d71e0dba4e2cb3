//! Pipeline runs executed by real executors: DAG order and concurrency, conditions, retries,
//! failure handlers, circuit breakers, timeouts, cancel, delays that do not hold a worker,
//! sub-pipelines, tool nodes, and an agent node answered by a fake provider through the LLM
//! gateway. Actions call a local receiver that counts the calls.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_pipeline::parse_definition;
use gathering_pipeline::store::{self, NewPipeline, SettingsPatch};
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use serde_json::{Value, json};

use crate::receiver::{Receiver, Step};
use crate::support::{Stack, node, statuses};

fn trigger() -> Value {
    json!({"id": "t", "type": "trigger", "name": "Start"})
}

fn api(id: &str, url: String, extra: Value) -> Value {
    let mut config = json!({"action": "call_api", "url": url});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    json!({"id": id, "type": "action", "name": id, "config": config})
}

fn edge(from: &str, to: &str) -> Value {
    json!({"from": from, "to": to})
}

fn fast_retries(n: u32) -> Value {
    json!({"retry": {"max_attempts": n, "backoff_base": 0.05, "backoff_max": 0.2}})
}

fn kinds(events: &[(String, Value)]) -> Vec<String> {
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

#[tokio::test]
async fn circuit_opens_after_threshold_fails_fast_then_recovers() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.set_default("/cb", Step::status(500));
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api(
                    "call",
                    hook.url("/cb"),
                    json!({
                        "retry": {"max_attempts": 1}, "failure_threshold": 2, "recovery_timeout": 1,
                    })
                )
            ]),
            json!([edge("t", "call")]),
            SettingsPatch::default(),
        )
        .await;
    for expected_hits in 1..=2 {
        let run_id = stack.run(pid, json!({})).await;
        let (run, _) = stack.finished(run_id, 20).await;
        assert_eq!(run.status, "failed");
        assert_eq!(hook.hits("/cb").len(), expected_hits);
    }
    let client = stack.pool.get().await.unwrap();
    let key = format!("http:http://127.0.0.1:{}", hook.addr.port());
    let state: String = client
        .query_one(
            "SELECT state FROM circle.pipeline_circuits WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "open");

    // Open: fails fast, the target is not called.
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    assert_eq!(
        run.error_message.as_deref(),
        Some("Circuit breaker OPEN for node 'call'")
    );
    assert_eq!(
        node(&nodes, "call").error_kind.as_deref(),
        Some("circuit_open")
    );
    assert_eq!(hook.hits("/cb").len(), 2, "no call while open");

    // Another pipeline calling the same target shares the circuit.
    let other = stack
        .pipeline(
            json!([
                trigger(),
                api("x", hook.url("/cb"), json!({"retry": {"max_attempts": 1}}))
            ]),
            json!([edge("t", "x")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(other, json!({})).await;
    let (run, _) = stack.finished(run_id, 20).await;
    assert_eq!(
        run.error_message.as_deref(),
        Some("Circuit breaker OPEN for node 'x'")
    );
    assert_eq!(hook.hits("/cb").len(), 2);

    // After the recovery time a probe goes through; it succeeds and closes the circuit.
    hook.set_default("/cb", Step::status(200));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, _) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(hook.hits("/cb").len(), 3);
    let row = client
        .query_one(
            "SELECT state, failures FROM circle.pipeline_circuits WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("closed".into(), 0)
    );
    let run_id = stack.run(pid, json!({})).await;
    assert_eq!(stack.finished(run_id, 20).await.0.status, "completed");
    exec.stop().await;
}

#[tokio::test]
async fn run_timeout_ends_the_run_with_status_timeout() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.set_default("/slow", Step::status(200).delay(Duration::from_secs(30)));
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("slow", hook.url("/slow"), json!({})),
                api("never", hook.url("/never"), json!({}))
            ]),
            json!([edge("t", "slow"), edge("slow", "never")]),
            SettingsPatch {
                timeout_seconds: Some(1),
                ..SettingsPatch::default()
            },
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "timeout");
    assert_eq!(
        run.error_message.as_deref(),
        Some("Pipeline exceeded 1s timeout")
    );
    assert_eq!(node(&nodes, "slow").status, "cancelled");
    assert_eq!(node(&nodes, "never").status, "cancelled");
    assert!(hook.hits("/never").is_empty());
    assert!(
        hook.wait_dropped("/slow", Duration::from_secs(5))
            .await
            .is_some(),
        "the in-flight call was abandoned"
    );
    let events = kinds(&stack.events(run_id).await);
    assert_eq!(
        events.last().map(String::as_str),
        Some("pipeline_run.timeout")
    );
    let client = stack.pool.get().await.unwrap();
    let errors: i32 = client
        .query_one(
            "SELECT error_count FROM circle.pipelines WHERE id = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(errors, 1);

    // A per-node timeout fails the node (and is retried like any timeout).
    hook.set_default("/slowish", Step::status(200).delay(Duration::from_secs(5)));
    let pid = stack
        .pipeline(
            json!([trigger(), api("n", hook.url("/slowish"), json!({"timeout_seconds": 0.3, "retry": {"max_attempts": 2, "backoff_base": 0.01}}))]),
            json!([edge("t", "n")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    assert_eq!(node(&nodes, "n").error_kind.as_deref(), Some("timeout"));
    assert_eq!(node(&nodes, "n").retry_count, 1);
    assert_eq!(hook.hits("/slowish").len(), 2);
    exec.stop().await;
}

#[tokio::test]
async fn cancel_stops_a_running_run_at_once() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.set_default("/slow", Step::status(200).delay(Duration::from_secs(60)));
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                api("slow", hook.url("/slow"), json!({})),
                api("next", hook.url("/next"), json!({}))
            ]),
            json!([edge("t", "slow"), edge("slow", "next")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    assert!(hook.wait_hits("/slow", 1, Duration::from_secs(20)).await);
    let mut client = stack.pool.get().await.unwrap();
    let cancelled_at = Instant::now();
    let run = store::cancel_run(&mut client, pid, run_id).await.unwrap();
    assert_eq!(run.status, "cancelled");
    let dropped = hook
        .wait_dropped("/slow", Duration::from_secs(10))
        .await
        .expect("the executor abandoned the in-flight call");
    let latency = dropped.saturating_duration_since(cancelled_at);
    println!("cancel reached the running node after {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let (run, nodes) = stack.get(run_id).await;
    assert_eq!(run.status, "cancelled");
    assert_eq!(
        run.error_message.as_deref(),
        Some("Pipeline run was cancelled")
    );
    assert_eq!(node(&nodes, "slow").status, "cancelled");
    assert_eq!(node(&nodes, "next").status, "cancelled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.hits("/next").is_empty());
    let events = kinds(&stack.events(run_id).await);
    assert!(events.contains(&"pipeline_run.cancelled".to_string()));
    assert!(matches!(
        store::cancel_run(&mut client, pid, run_id).await,
        Err(gathering_pipeline::PipelineError::NotCancellable(s)) if s == "cancelled"
    ));
    exec.stop().await;
}

#[tokio::test]
async fn delay_reschedules_the_run_instead_of_holding_a_worker() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    // One worker slot: a delay that held it would block the second run.
    let exec = stack.executor(&[("EXECUTOR_QUEUES", "pipelines:1")]).await;
    let slow = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "wait", "type": "delay", "name": "wait", "config": {"delay_seconds": 2}},
                api("after", hook.url("/after"), json!({})),
            ]),
            json!([edge("t", "wait"), edge("wait", "after")]),
            SettingsPatch::default(),
        )
        .await;
    let quick = stack
        .pipeline(
            json!([trigger(), api("q", hook.url("/quick"), json!({}))]),
            json!([edge("t", "q")]),
            SettingsPatch::default(),
        )
        .await;
    let first = stack.run(slow, json!({"x": 1})).await;
    // Wait until the delay started, then run the other pipeline.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, nodes) = stack.get(first).await;
        if node(&nodes, "wait").status == "running" {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = stack.run(quick, json!({})).await;
    let (run, _) = stack.finished(second, 20).await;
    assert_eq!(run.status, "completed");
    let (first_run, _) = stack.get(first).await;
    assert_eq!(
        first_run.status, "running",
        "the other run completed while the delay was waiting"
    );
    let (run, nodes) = stack.finished(first, 20).await;
    assert_eq!(run.status, "completed");
    let wait = node(&nodes, "wait");
    assert_eq!(
        wait.output_data,
        json!({"t": {"x": 1}}),
        "a delay passes its inputs on"
    );
    assert!(wait.duration_ms >= 2000, "{}", wait.duration_ms);
    let order: Vec<String> = hook.all_hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(order, vec!["/quick", "/after"]);
    exec.stop().await;
}

#[tokio::test]
async fn execute_pipeline_runs_a_sub_pipeline_and_waits_for_it() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let child = stack
        .pipeline(
            json!([
                trigger(),
                api(
                    "inner",
                    hook.url("/inner"),
                    json!({"tool_name": "http_post", "json": {"from_parent": "{{t.order}}"}})
                )
            ]),
            json!([edge("t", "inner")]),
            SettingsPatch::default(),
        )
        .await;
    let parent = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "sub", "type": "action", "name": "sub", "config": {"action": "execute_pipeline", "pipeline_id": child, "trigger_data": {"order": "{{t.order}}"}}},
                api("outer", hook.url("/outer"), json!({"tool_name": "http_post", "json": {"child_status": "{{sub.outputs.inner.status}}"}})),
            ]),
            json!([edge("t", "sub"), edge("sub", "outer")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(parent, json!({"order": "A-7"})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let sub = node(&nodes, "sub");
    let child_run = sub.output_data["run_id"].as_i64().unwrap();
    assert_eq!(sub.child_run_id, Some(child_run));
    let (child_row, child_nodes) = stack.get(child_run).await;
    assert_eq!(child_row.status, "completed");
    assert_eq!(child_row.parent_run_id, Some(run_id));
    assert_eq!(child_row.trigger_data, json!({"order": "A-7"}));
    assert_eq!(node(&child_nodes, "inner").status, "completed");
    assert_eq!(hook.hits("/inner")[0].body, json!({"from_parent": "A-7"}));
    assert_eq!(hook.hits("/outer")[0].body, json!({"child_status": 200}));
    exec.stop().await;
}

#[tokio::test]
async fn tool_node_validates_input_and_config_errors_are_not_retried() {
    let stack = Stack::new().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "url", "type": "tool", "name": "url", "config": {"tool": "build_url", "input": {"base": "https://example.com", "path": "/items/{{t.id}}", "params": {"q": "{{t.q}}"}}}},
            ]),
            json!([edge("t", "url")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"id": 7, "q": "x y"})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let out = &node(&nodes, "url").output_data;
    assert_eq!(out["data"]["url"], "https://example.com/items/7?q=x+y");

    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "bad", "type": "tool", "name": "bad", "config": {"tool": "build_url", "input": {"nope": 1}, "retry": {"max_attempts": 4, "backoff_base": 0.01}}},
                {"id": "ghost", "type": "tool", "name": "ghost", "config": {"tool": "no_such_tool"}},
            ]),
            json!([edge("t", "bad"), edge("t", "ghost")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    let bad = node(&nodes, "bad");
    let ghost = node(&nodes, "ghost");
    // Whichever failed first failed the run; the other was stopped or failed too.
    assert!(bad.status == "failed" || ghost.status == "failed");
    for n in [bad, ghost] {
        if n.status == "failed" {
            assert_eq!(n.error_kind.as_deref(), Some("config"));
            assert_eq!(n.retry_count, 0, "configuration errors are not retried");
        }
    }
    if bad.status == "failed" {
        assert!(
            bad.error_message
                .as_deref()
                .unwrap()
                .contains("Invalid parameters for tool 'build_url'"),
            "{:?}",
            bad.error_message
        );
    }
    exec.stop().await;
}

#[tokio::test]
async fn scheduler_style_run_without_definition_uses_the_pipelines_own() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([trigger(), api("a", hook.url("/sched"), json!({}))]),
            json!([edge("t", "a")]),
            SettingsPatch::default(),
        )
        .await;
    // What the scheduler does: a pending run row and the job, nothing else.
    let client = stack.pool.get().await.unwrap();
    let run_id: i64 = client
        .query_one(
            "INSERT INTO circle.pipeline_runs (pipeline_id, trigger_data) VALUES ($1, '{\"s\": 1}') RETURNING id",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    gathering_queue::enqueue_in(&client, &store::run_job(run_id))
        .await
        .unwrap();
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(nodes.len(), 2);
    assert_eq!(hook.hits("/sched").len(), 1);
    exec.stop().await;
}

#[tokio::test]
async fn agent_node_answers_through_the_gateway_and_a_fake_provider() {
    let stack = Stack::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    fake.push(Reply::text("The order is ready."));
    let base = fake.base_url();
    let mut vars: HashMap<String, String> = stack.vars(&[]);
    vars.extend([
        ("LLM_GATEWAY_ADDR".to_string(), "127.0.0.1:0".to_string()),
        (
            "LLM_GATEWAY_HTTP_ADDR".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        ("OPENAI_BASE_URL".to_string(), base),
        ("OPENAI_API_KEY".to_string(), "sk-test-key".to_string()),
    ]);
    let gw = gathering_llm_gateway::Config::from_vars(&vars).unwrap();
    let gateway_stop = Shutdown::new();
    let gateway = gathering_llm_gateway::start(gw, gateway_stop.clone())
        .await
        .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let exec = stack
        .executor(&[("LLM_GATEWAY_URL", gateway_url.as_str())])
        .await;
    let client = stack.pool.get().await.unwrap();
    let agent_id: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, persona_id, model_id) VALUES ('Sophie', \
                 (SELECT id FROM agent.personas ORDER BY id LIMIT 1), \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                // The dashboard sends agent_id as a number.
                {"id": "ask", "type": "agent", "name": "ask", "config": {"agent_id": agent_id, "task": "Summarise order {{t.order}}"}},
            ]),
            json!([edge("t", "ask")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"order": "A-7"})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let out = &node(&nodes, "ask").output_data;
    assert_eq!(out["result"], "The order is ready.");
    assert_eq!(out["simulated"], false);
    assert_eq!(out["agent_id"], agent_id);
    assert!(out["tokens"].as_u64().unwrap() > 0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let messages = requests[0].body["messages"].as_array().unwrap().clone();
    let user = messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user.starts_with("Summarise order A-7"), "{user}");
    assert!(
        user.contains("Context from previous nodes:\nt: {\"order\":\"A-7\"}"),
        "{user}"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-test-key")
    );

    // An unknown agent is a configuration error: not retried, the provider is not called.
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "ask", "type": "agent", "name": "ask", "config": {"agent_id": "999999", "task": "x", "retry": {"max_attempts": 3, "backoff_base": 0.01}}},
            ]),
            json!([edge("t", "ask")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "failed");
    assert_eq!(node(&nodes, "ask").error_kind.as_deref(), Some("config"));
    assert_eq!(node(&nodes, "ask").retry_count, 0);
    assert_eq!(fake.requests().len(), 1);
    exec.stop().await;
    gateway_stop.trigger();
}

#[tokio::test]
async fn an_action_node_with_an_unknown_action_fails_instead_of_claiming_it_ran() {
    let stack = Stack::new().await;
    let exec = stack.executor(&[]).await;
    // Stored as an earlier build allowed (validation now refuses it at create time).
    let def = parse_definition(
        &json!([
            trigger(),
            {"id": "x", "type": "action", "name": "x", "config": {"action": "launch_rockets"}},
        ]),
        &json!([edge("t", "x")]),
    )
    .unwrap();
    assert!(
        gathering_pipeline::validate(&def)
            .iter()
            .any(|e| e.contains("'x'") && e.contains("launch_rockets")),
        "validation names the node and the action"
    );
    let client = stack.pool.get().await.unwrap();
    let pid = store::create_pipeline(
        &client,
        &NewPipeline {
            name: "legacy",
            description: None,
            status: "active",
            definition: &def,
            settings: SettingsPatch::default(),
        },
    )
    .await
    .unwrap()
    .id;
    // Starting it validates first: the run fails at once, naming the node; no node ran.
    let mut client = stack.pool.get().await.unwrap();
    let run = store::start_run(&mut client, pid, &json!({}))
        .await
        .unwrap();
    assert_eq!(run.status, "failed");
    let message = run.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("'x'") && message.contains("launch_rockets"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (run, nodes) = stack.get(run.id).await;
    assert_eq!(run.status, "failed");
    assert!(
        nodes.iter().all(|n| n.node_id != "x"),
        "the action never ran"
    );
    exec.stop().await;
}
