//! The queue-depth gauges on the scheduler's admin endpoint (`/metrics`, port 9102 by
//! default). Schedulers always run while executors may be scaled to zero, so they export the
//! backlog too: scaling from zero needs a figure no executor is there to report.

use std::time::Duration;

use gathering_queue::{NewJob, Queue};
use gathering_testkit::TestDb;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support;

/// `GET /metrics` over a plain HTTP/1.0 connection, as a scraper does.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: scheduler\r\n\r\n")
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
async fn the_admin_endpoint_exports_the_backlog_with_no_executor_running() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let scheduler = support::start(&db, &[("QUEUE_METRICS_INTERVAL_SECONDS", "1")]).await;
    let queue = Queue::new(pool.clone());
    for _ in 0..2 {
        queue
            .enqueue(NewJob::new("noop", json!({})).queue("metrics_agents"))
            .await
            .unwrap();
    }
    let leased = queue
        .claim("metrics_agents", "w1", Duration::from_secs(60), 1)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);

    let addr = scheduler.started.admin_addr;
    let ready = |text: &str| gauge(text, "gathering_queue_ready_jobs", "metrics_agents");
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(addr).await;
        if ready(&text) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(&text), Some(1.0), "{text}");
    assert_eq!(
        gauge(&text, "gathering_queue_running_jobs", "metrics_agents"),
        Some(1.0),
        "{text}"
    );

    // Drained: the gauge falls to 0 rather than freezing at the last backlog.
    let rest = queue
        .claim("metrics_agents", "w1", Duration::from_secs(60), 10)
        .await
        .unwrap();
    for job in leased.iter().chain(&rest) {
        assert!(queue.complete("w1", job.id, job.attempt).await.unwrap());
    }
    for _ in 0..100 {
        text = scrape(addr).await;
        if ready(&text) == Some(0.0)
            && gauge(&text, "gathering_queue_running_jobs", "metrics_agents") == Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(&text), Some(0.0), "{text}");
    assert_eq!(
        gauge(&text, "gathering_queue_running_jobs", "metrics_agents"),
        Some(0.0),
        "{text}"
    );
    scheduler.stop().await;
}
