//! Queue depth (what executors are autoscaled on): ready jobs and their oldest wait per queue,
//! running jobs, and the same figures as Prometheus gauges.

use std::time::Duration;

use gathering_core::Shutdown;
use gathering_queue::{NewJob, QueueDepth};
use serde_json::json;

use crate::helpers::setup;

#[tokio::test]
async fn depth_counts_ready_and_running_jobs_per_queue_and_the_oldest_wait() {
    let ctx = setup().await;
    let q = &ctx.queue;
    assert_eq!(q.depth().await.unwrap(), vec![], "an empty queue table");
    for _ in 0..3 {
        q.enqueue(NewJob::new("k", json!({})).queue("agents"))
            .await
            .unwrap();
    }
    q.enqueue(NewJob::new("k", json!({})).queue("pipelines"))
        .await
        .unwrap();
    // Not ready: due in a minute.
    q.enqueue(
        NewJob::new("k", json!({}))
            .queue("pipelines")
            .delay(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    // The oldest agents job has waited ~2 s (made so by moving its due time back).
    ctx.db
        .pool(1)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE queue.jobs SET run_at = now() - interval '2 seconds' \
             WHERE id = (SELECT min(id) FROM queue.jobs WHERE queue = 'agents')",
            &[],
        )
        .await
        .unwrap();
    let claimed = q
        .claim("agents", "w1", Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let depth = q.depth().await.unwrap();
    assert_eq!(depth.len(), 2, "{depth:?}");
    let agents = &depth[0];
    assert_eq!(
        (agents.queue.as_str(), agents.ready, agents.running),
        ("agents", 2, 1)
    );
    assert!(
        agents.oldest_ready_seconds < 2.0,
        "the 2 s old job was claimed first: {agents:?}"
    );
    let pipelines = &depth[1];
    assert_eq!(
        (pipelines.queue.as_str(), pipelines.ready, pipelines.running),
        ("pipelines", 1, 0),
        "the delayed job is not ready"
    );

    // Nothing claimed yet: the 2 s wait shows.
    q.enqueue(NewJob::new("k", json!({})).queue("slow"))
        .await
        .unwrap();
    ctx.db
        .pool(1)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE queue.jobs SET run_at = now() - interval '5 seconds' WHERE queue = 'slow'",
            &[],
        )
        .await
        .unwrap();
    let slow: QueueDepth = q
        .depth()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.queue == "slow")
        .unwrap();
    assert!(slow.oldest_ready_seconds >= 5.0, "{slow:?}");
}

#[tokio::test]
async fn gauges_follow_the_depth_and_fall_to_zero_when_drained() {
    let ctx = setup().await;
    let q = ctx.queue.clone();
    let handle = gathering_telemetry::prometheus();
    let stop = Shutdown::new();
    let exporter = tokio::spawn(gathering_queue::depth::export_gauges(
        q.clone(),
        vec!["gauge_known".into()],
        Duration::from_millis(50),
        stop.clone(),
    ));
    for _ in 0..4 {
        q.enqueue(NewJob::new("k", json!({})).queue("gauge_busy"))
            .await
            .unwrap();
    }
    let line = |text: &str, metric: &str, queue: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(metric) && l.contains(&format!("queue=\"{queue}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let wait_for = |metric: &'static str, queue: &'static str, value: f64| {
        let handle = handle.clone();
        async move {
            for _ in 0..200 {
                if line(&handle.render(), metric, queue) == Some(value) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!(
                "{metric}{{queue={queue}}} never {value}:\n{}",
                handle.render()
            );
        }
    };
    wait_for("gathering_queue_ready_jobs", "gauge_busy", 4.0).await;
    wait_for("gathering_queue_ready_jobs", "gauge_known", 0.0).await;
    wait_for("gathering_queue_running_jobs", "gauge_busy", 0.0).await;

    let claimed = q
        .claim("gauge_busy", "w1", Duration::from_secs(30), 10)
        .await
        .unwrap();
    wait_for("gathering_queue_ready_jobs", "gauge_busy", 0.0).await;
    wait_for("gathering_queue_running_jobs", "gauge_busy", 4.0).await;
    for job in &claimed {
        assert!(q.complete("w1", job.id, job.attempt).await.unwrap());
    }
    wait_for("gathering_queue_running_jobs", "gauge_busy", 0.0).await;
    wait_for("gathering_queue_oldest_ready_seconds", "gauge_busy", 0.0).await;
    stop.trigger();
    exporter.await.unwrap();
}
