//! How much work waits in each queue: what executors are scaled on.
//!
//! Executors scale on work, not CPU (a model call can keep a job busy for minutes at no CPU
//! cost). Per queue: *ready* jobs (due now, waiting for a worker), how long the oldest of them
//! has waited, and *running* jobs (held by a worker). Autoscalers read the same figures two
//! ways: KEDA's PostgreSQL scaler runs equivalent SQL itself (`deploy/kubernetes`), and
//! [`export_gauges`] publishes them as Prometheus gauges from executors and schedulers, for
//! HPAs fed by a Prometheus adapter:
//!
//! | gauge | labels | meaning |
//! |---|---|---|
//! | `gathering_queue_ready_jobs` | `queue` | jobs due now and not claimed |
//! | `gathering_queue_oldest_ready_seconds` | `queue` | wait of the oldest of them (0 when none) |
//! | `gathering_queue_running_jobs` | `queue` | jobs leased to a worker |
//!
//! The figures are the whole deployment's (one database), so every exporting instance reports
//! the same values: aggregate with `max by (queue)`, never `sum`.

use std::collections::BTreeSet;
use std::time::Duration;

use gathering_core::config::{self, Vars};
use gathering_core::{ConfigError, Shutdown};

use crate::{Queue, QueueError};

/// Ready and running jobs per queue. Both halves use a partial index of `queue.jobs`
/// (`jobs_fetch_idx`, `jobs_lease_idx`), so finished jobs kept for inspection cost nothing.
const DEPTH_SQL: &str = "\
WITH ready AS (
    SELECT queue, count(*) AS n, extract(epoch FROM now() - min(run_at))::float8 AS oldest
    FROM queue.jobs WHERE state IN ('available', 'failed') AND run_at <= now()
    GROUP BY queue
), running AS (
    SELECT queue, count(*) AS n FROM queue.jobs WHERE state = 'running' GROUP BY queue
)
SELECT COALESCE(ready.queue, running.queue) AS queue,
       COALESCE(ready.n, 0) AS ready,
       GREATEST(COALESCE(ready.oldest, 0), 0)::float8 AS oldest,
       COALESCE(running.n, 0) AS running
FROM ready FULL JOIN running ON running.queue = ready.queue
ORDER BY 1
LIMIT 200";

/// The backlog of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    pub queue: String,
    /// Jobs due now and not claimed.
    pub ready: i64,
    /// Seconds the oldest ready job has waited (0 when none is ready).
    pub oldest_ready_seconds: f64,
    /// Jobs leased to a worker.
    pub running: i64,
}

impl Queue {
    /// Ready and running jobs of every queue that has any (one statement).
    pub async fn depth(&self) -> Result<Vec<QueueDepth>, QueueError> {
        let client = self.pool().get().await?;
        client
            .query(DEPTH_SQL, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(QueueDepth {
                    queue: r.try_get("queue")?,
                    ready: r.try_get("ready")?,
                    oldest_ready_seconds: r.try_get("oldest")?,
                    running: r.try_get("running")?,
                })
            })
            .collect()
    }
}

/// `QUEUE_METRICS_INTERVAL_SECONDS` (read by executors and schedulers): seconds between two
/// refreshes of the gauges, default 5; 0 turns them off.
pub fn interval_from_vars(vars: &impl Vars) -> Result<Option<Duration>, ConfigError> {
    let secs: u64 = config::parse_or(vars, "QUEUE_METRICS_INTERVAL_SECONDS", 5)?;
    if secs > 3600 {
        return Err(ConfigError::new(
            "QUEUE_METRICS_INTERVAL_SECONDS",
            "must be 0 (off) to 3600",
        ));
    }
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Publishes [`Queue::depth`] as Prometheus gauges every `every` until `stop`. `known` queues
/// (the ones this process serves) are reported from the start, at 0 when empty; a queue seen
/// once keeps being reported (at 0 once drained), so a gauge never freezes at its last backlog.
pub async fn export_gauges(queue: Queue, known: Vec<String>, every: Duration, stop: Shutdown) {
    let mut seen: BTreeSet<String> = known.into_iter().collect();
    loop {
        match queue.depth().await {
            Ok(depths) => publish(&mut seen, &depths),
            Err(e) => tracing::warn!(error = %e, "reading the queue depth failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait() => return,
        }
    }
}

fn publish(seen: &mut BTreeSet<String>, depths: &[QueueDepth]) {
    for d in depths {
        // Queue names are validated (`^[a-z0-9_]{1,48}$`) and set by code, never by users;
        // the set is bounded all the same.
        if seen.len() < 200 || seen.contains(&d.queue) {
            seen.insert(d.queue.clone());
        }
    }
    for name in seen.iter() {
        let d = depths.iter().find(|d| &d.queue == name);
        let label = name.clone();
        metrics::gauge!("gathering_queue_ready_jobs", "queue" => label.clone())
            .set(d.map_or(0.0, |d| d.ready as f64));
        metrics::gauge!("gathering_queue_oldest_ready_seconds", "queue" => label.clone())
            .set(d.map_or(0.0, |d| d.oldest_ready_seconds));
        metrics::gauge!("gathering_queue_running_jobs", "queue" => label)
            .set(d.map_or(0.0, |d| d.running as f64));
    }
}
