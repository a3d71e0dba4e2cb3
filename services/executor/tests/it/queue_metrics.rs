//! The queue-depth gauges on the executor's admin endpoint (`/metrics`, port 9101 by default):
//! what a Prometheus adapter feeds to an HPA that scales executors on work.

use std::time::Duration;

use gathering_queue::{NewJob, Queue};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Stack;

/// `GET /metrics` over a plain HTTP/1.0 connection, as a scraper does.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: executor\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    text
}

fn gauge(text: &str, metric: &str, queue: &str) -> Option<f64> {
    let label = format!("{metric}{{queue=\"{queue}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&label))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn the_admin_endpoint_exports_ready_jobs_and_their_oldest_wait_per_queue() {
    let stack = Stack::new().await;
    // This executor serves `pipelines` only: jobs of `metrics_backlog` stay ready, as they
    // would while every executor is busy.
    let executor = stack
        .executor(&[("QUEUE_METRICS_INTERVAL_SECONDS", "1")])
        .await;
    let queue = Queue::new(stack.pool.clone());
    for _ in 0..3 {
        queue
            .enqueue(NewJob::new("noop", json!({})).queue("metrics_backlog"))
            .await
            .unwrap();
    }
    stack
        .pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE queue.jobs SET run_at = now() - interval '30 seconds' \
             WHERE queue = 'metrics_backlog'",
            &[],
        )
        .await
        .unwrap();

    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(executor.admin_addr()).await;
        if gauge(&text, "gathering_queue_ready_jobs", "metrics_backlog") == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        gauge(&text, "gathering_queue_ready_jobs", "metrics_backlog"),
        Some(3.0),
        "{text}"
    );
    let oldest = gauge(
        &text,
        "gathering_queue_oldest_ready_seconds",
        "metrics_backlog",
    );
    assert!(oldest.is_some_and(|s| s >= 30.0), "{oldest:?}\n{text}");
    // The queue it serves is reported even while empty, so a scaler sees 0 rather than nothing.
    assert_eq!(
        gauge(&text, "gathering_queue_ready_jobs", "pipelines"),
        Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE gathering_queue_ready_jobs gauge"),
        "{text}"
    );
    executor.stop().await;
}
