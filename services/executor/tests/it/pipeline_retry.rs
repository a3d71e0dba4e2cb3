//! Retrying a failed run: the nodes that completed are reused (their side effects happen once
//! in total), the failed one runs again; `from_node_id` re-runs from an earlier node; a changed
//! definition is refused with the difference; only failed/cancelled/timed-out runs retry.

use gathering_pipeline::PipelineError;
use gathering_pipeline::retry::{RetryRequest, retry_run};
use gathering_pipeline::store::{self, PipelinePatch, SettingsPatch};
use serde_json::{Value, json};

use crate::receiver::{Receiver, Step};
use crate::support::{Stack, node, statuses};

fn api(id: &str, url: String) -> Value {
    json!({"id": id, "type": "action", "name": id, "config": {
        "action": "call_api", "url": url, "retry": {"max_attempts": 1},
    }})
}

#[tokio::test]
async fn a_retry_reuses_completed_nodes_and_runs_from_the_failed_one() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let nodes = json!([
        {"id": "t", "type": "trigger", "name": "t"},
        api("a", hook.url("/a")),
        api("b", hook.url("/b")),
        api("c", hook.url("/c")),
    ]);
    let edges =
        json!([{"from": "t", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "c"}]);
    let pid = stack
        .pipeline(nodes.clone(), edges.clone(), SettingsPatch::default())
        .await;
    hook.script("/c", vec![Step::status(500)]);
    let first = stack.run(pid, json!({"n": 1})).await;
    let (run, _) = stack.finished(first, 20).await;
    assert_eq!(run.status, "failed");
    let mut client = stack.pool.get().await.unwrap();

    // A definition without a node the retry relies on: 409 naming it.
    store::update_pipeline(
        &client,
        pid,
        &PipelinePatch {
            definition_nodes: Some(json!([nodes[0], nodes[1], nodes[3]])),
            definition_edges: Some(json!([{"from": "t", "to": "a"}, {"from": "a", "to": "c"}])),
            ..PipelinePatch::default()
        },
    )
    .await
    .unwrap();
    match retry_run(&mut client, pid, first, &RetryRequest::default()).await {
        Err(PipelineError::Conflict(m)) => assert_eq!(
            m,
            format!(
                "The pipeline changed since run {first}: node 'b' (action) is no longer in the pipeline"
            )
        ),
        other => panic!("{other:?}"),
    }
    store::update_pipeline(
        &client,
        pid,
        &PipelinePatch {
            definition_nodes: Some(nodes),
            definition_edges: Some(edges),
            ..PipelinePatch::default()
        },
    )
    .await
    .unwrap();

    // The retry: a and b reused (not called again), c runs with b's output as its input.
    let retry = retry_run(&mut client, pid, first, &RetryRequest::default())
        .await
        .unwrap();
    assert_eq!(
        (retry.retry_of, retry.status.as_str()),
        (Some(first), "pending")
    );
    let (run, nodes) = stack.finished(retry.id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(
        statuses(&nodes),
        vec![
            ("a".into(), "reused".into()),
            ("b".into(), "reused".into()),
            ("c".into(), "completed".into()),
            ("t".into(), "completed".into()),
        ]
    );
    assert_eq!(node(&nodes, "c").input_data["b"]["status"], 200);
    assert_eq!(node(&nodes, "t").output_data, json!({"n": 1}));
    assert_eq!(
        (
            hook.hits("/a").len(),
            hook.hits("/b").len(),
            hook.hits("/c").len()
        ),
        (1, 1, 2),
        "the first two side effects happened once in total"
    );
    let json = run.to_json(Some(&nodes));
    assert_eq!(json["retry_of"], first);
    assert!(
        json["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["node_id"] == "a"
                && l["status"] == "reused"
                && l["output"]["status"] == 200)
    );

    // A completed run does not retry.
    match retry_run(&mut client, pid, retry.id, &RetryRequest::default()).await {
        Err(PipelineError::NotRetryable(s)) => assert_eq!(s, "completed"),
        other => panic!("{other:?}"),
    }
    // From an earlier node, with new trigger data: b and what follows run again.
    let data = json!({"n": 2});
    let again = retry_run(
        &mut client,
        pid,
        first,
        &RetryRequest {
            from_node_id: Some("b"),
            trigger_data: Some(&data),
        },
    )
    .await
    .unwrap();
    let (run, nodes) = stack.finished(again.id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(node(&nodes, "a").status, "reused");
    assert_eq!(node(&nodes, "b").status, "completed");
    assert_eq!(node(&nodes, "t").output_data, data);
    assert_eq!(
        (
            hook.hits("/a").len(),
            hook.hits("/b").len(),
            hook.hits("/c").len()
        ),
        (1, 2, 3)
    );
    match retry_run(
        &mut client,
        pid,
        first,
        &RetryRequest {
            from_node_id: Some("zz"),
            trigger_data: None,
        },
    )
    .await
    {
        Err(PipelineError::UnknownNode(m)) => assert_eq!(m, "Node 'zz' is not in the pipeline"),
        other => panic!("{other:?}"),
    }
    exec.stop().await;
}
