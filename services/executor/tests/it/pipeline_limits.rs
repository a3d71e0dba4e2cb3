//! Pipeline runs at their limits on real executors: circuit breakers opening and recovering,
//! run timeouts, cancel, and delays that reschedule instead of holding a worker.

use std::time::{Duration, Instant};

use gathering_pipeline::store::{self, SettingsPatch};
use serde_json::json;

use crate::pipelines::{api, edge, kinds, trigger};
use crate::receiver::{Receiver, Step};
use crate::support::{Stack, node};

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
