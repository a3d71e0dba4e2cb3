//! Approval nodes decided by their timeout, through the queue and across an executor restart:
//! `approve` continues, `reject` takes the node's failure edge, `fail` fails the run whatever
//! its failure edges. (People deciding through the API: the edge's tests.)

use std::time::{Duration, Instant};

use gathering_pipeline::PipelineError;
use gathering_pipeline::decision::{Decide, decide};
use gathering_pipeline::store::SettingsPatch;
use serde_json::{Value, json};

use crate::receiver::{Receiver, Step};
use crate::support::{Stack, node, statuses};

fn approval(id: &str, timeout: f64, on_timeout: &str) -> Value {
    json!({"id": id, "type": "approval", "name": id, "config": {
        "message": "Go on with {{t.what}}?",
        "approvers": {"roles": ["admin"]},
        "timeout_seconds": timeout,
        "on_timeout": on_timeout,
    }})
}

fn api(id: &str, url: String) -> Value {
    json!({"id": id, "type": "action", "name": id, "config": {"action": "call_api", "url": url}})
}

async fn wait_status(stack: &Stack, run_id: i64, status: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (run, _) = stack.get(run_id).await;
        if run.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} is {} after {secs}s, not {status}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn approval_timeouts_apply_on_timeout_through_the_queue_across_a_restart() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let pid = stack
        .pipeline(
            json!([
                {"id": "t", "type": "trigger", "name": "t"},
                approval("yes", 2.0, "approve"),
                approval("no", 2.5, "reject"),
                api("after_yes", hook.url("/after_yes")),
                api("after_no", hook.url("/after_no")),
                api("on_no", hook.url("/on_no")),
            ]),
            json!([
                {"from": "t", "to": "yes"}, {"from": "t", "to": "no"},
                {"from": "yes", "to": "after_yes"}, {"from": "no", "to": "after_no"},
                {"from": "no", "to": "on_no", "condition": "on_failure"},
            ]),
            SettingsPatch::default(),
        )
        .await;
    let exec = stack.executor(&[]).await;
    let run_id = stack.run(pid, json!({"what": "the deploy"})).await;
    // Both approvals wait: the run is parked, its job snoozed (no worker holds it).
    wait_status(&stack, run_id, "waiting_approval", 20).await;
    // (The run is parked just before its job is snoozed.)
    let client = stack.pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let job = loop {
        let row = client
            .query_one(
                "SELECT state::text, run_at > now() FROM queue.jobs WHERE unique_key = $1",
                &[&format!("pipeline_run:{run_id}")],
            )
            .await
            .unwrap();
        let job: (String, bool) = (row.get(0), row.get(1));
        if job.0 != "running" || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(job, ("available".into(), true));
    let pending: Vec<(String, String, String)> = client
        .query(
            "SELECT node_id, status, message FROM circle.pipeline_approvals WHERE run_id = $1 ORDER BY node_id",
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        pending,
        vec![
            (
                "no".into(),
                "pending".into(),
                "Go on with the deploy?".into()
            ),
            (
                "yes".into(),
                "pending".into(),
                "Go on with the deploy?".into()
            ),
        ]
    );
    // The executor goes away; another one applies the timeouts when the queue wakes the run.
    exec.stop().await;
    let exec = stack.executor(&[]).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(
        statuses(&nodes),
        vec![
            ("after_no".into(), "skipped".into()),
            ("after_yes".into(), "completed".into()),
            ("no".into(), "failed".into()),
            ("on_no".into(), "completed".into()),
            ("t".into(), "completed".into()),
            ("yes".into(), "completed".into()),
        ]
    );
    let yes = node(&nodes, "yes");
    assert_eq!(yes.output_data["approved"], true);
    assert_eq!(yes.output_data["timed_out"], true);
    assert_eq!(
        node(&nodes, "no").error_message.as_deref(),
        Some("Approval of node 'no' timed out (on_timeout: reject)")
    );
    assert_eq!(hook.hits("/after_yes").len(), 1);
    assert_eq!(hook.hits("/on_no").len(), 1);
    assert!(hook.hits("/after_no").is_empty());
    let decided: Vec<(String, String, Option<String>)> = client
        .query(
            "SELECT node_id, status, outcome FROM circle.pipeline_approvals WHERE run_id = $1 ORDER BY node_id",
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        decided,
        vec![
            ("no".into(), "timed_out".into(), Some("reject".into())),
            ("yes".into(), "timed_out".into(), Some("approve".into())),
        ]
    );
    let kinds: Vec<String> = stack
        .events(run_id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for k in [
        "pipeline_node.waiting_approval",
        "pipeline_run.waiting_approval",
        "pipeline_approval.decided",
        "pipeline_run.completed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    let waiting = stack
        .events(run_id)
        .await
        .into_iter()
        .find(|(k, _)| k == "pipeline_node.waiting_approval")
        .unwrap()
        .1;
    assert_eq!(waiting["message"], "Go on with the deploy?");
    assert_eq!(
        waiting["context"]["trigger_data"],
        json!({"what": "the deploy"})
    );

    // `fail` fails the run even though the node has a failure edge.
    let pid = stack
        .pipeline(
            json!([
                {"id": "t", "type": "trigger", "name": "t"},
                approval("gate", 0.3, "fail"),
                api("on_gate", hook.url("/on_gate")),
            ]),
            json!([
                {"from": "t", "to": "gate"},
                {"from": "gate", "to": "on_gate", "condition": "on_failure"},
            ]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"what": "x"})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    assert_eq!(
        run.error_message.as_deref(),
        Some("Approval of node 'gate' timed out (on_timeout: fail)")
    );
    assert_eq!(node(&nodes, "on_gate").status, "skipped");
    assert!(hook.hits("/on_gate").is_empty());
    exec.stop().await;
}

#[tokio::test]
async fn a_decision_reaches_a_run_that_is_busy_with_other_nodes() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    hook.set_default("/slow", Step::status(200).delay(Duration::from_secs(3)));
    let pid = stack
        .pipeline(
            json!([
                {"id": "t", "type": "trigger", "name": "t"},
                {"id": "ok", "type": "approval", "name": "ok", "config": {"approvers": {"roles": ["admin"]}}},
                api("slow", hook.url("/slow")),
            ]),
            json!([{"from": "t", "to": "ok"}, {"from": "t", "to": "slow"}]),
            SettingsPatch::default(),
        )
        .await;
    let exec = stack.executor(&[]).await;
    let run_id = stack.run(pid, json!({})).await;
    assert!(hook.wait_hits("/slow", 1, Duration::from_secs(10)).await);
    let mut client = stack.pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let decided = loop {
        match decide(
            &mut client,
            &Decide {
                pipeline_id: pid,
                run_id,
                node_id: "ok",
                approve: true,
                sub: "admin",
                role: "admin",
                comment: None,
                data: None,
            },
        )
        .await
        {
            Ok(d) => break d,
            // The approval row is written with the node's start.
            Err(PipelineError::ApprovalNotFound) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        decided.run_status, "running",
        "the run was busy, not parked"
    );
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let (ok, slow) = (node(&nodes, "ok"), node(&nodes, "slow"));
    assert!(
        ok.completed_at < slow.completed_at,
        "the approval was applied while the other node still ran"
    );
    exec.stop().await;
}
