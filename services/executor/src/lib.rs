//! The executor service: claims jobs from the Postgres job queue and runs them (pipeline
//! runs, background agent tasks, circle tasks and reviews, conversations, scheduled actions,
//! notifications). Any number of executors
//! may run against one database; the queue's leases keep each job on one of them at a time,
//! and an executor that dies loses its jobs to the others within one lease.

pub mod config;
pub mod deps;
pub mod error;
pub mod jobs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gathering_circles::platform::{Platform, PlatformConfig};
use gathering_core::Shutdown;
use gathering_queue::{Queue, Worker, WorkerConfig, WorkerHandle};
use gathering_telemetry::{AdminServer, AdminState, Lifecycle};
use serde_json::json;

pub use config::Config;
pub use deps::Deps;
pub use error::Error;

/// What a started executor exposes.
pub struct Handle {
    pub admin_addr: SocketAddr,
    /// The queue worker's lease owner name.
    pub owner: String,
}

/// A started executor; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

/// Runs the executor until `shutdown`.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, starts the queue worker and the admin port; returns once taking work.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    gathering_core::tls::install_crypto_provider();
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let mut lifecycle = Lifecycle::new("executor");
    // Tasks that outlive the worker: plugins' MCP servers, the event publisher, upkeep.
    let background = Shutdown::new();
    let deps = deps(&config, &pool, &background).await?;
    let plugins = deps.tools.plugins().cloned();
    let worker_stop = Shutdown::new();
    let worker = Worker::start(
        deps.queue.clone(),
        &config.database_url,
        jobs::registry(&deps),
        WorkerConfig {
            queues: config.queues.clone(),
            lease: config.lease,
            shutdown_timeout: config.shutdown_timeout,
            ..WorkerConfig::default()
        },
        worker_stop.clone(),
    )
    .await?;
    let owner = worker.owner.clone();
    // Counted live by the edge's /health/checks while this executor takes work.
    let heartbeat =
        gathering_db::heartbeat::Heartbeat::start(pool.clone(), "executor", &owner).await?;
    spawn_upkeep(&config, &pool, &background);
    let admin_state = admin_state(&lifecycle, &worker);
    let admin = AdminServer::start(config.admin_addr, admin_state)
        .await
        .map_err(|e| Error::Bind(config.admin_addr, e))?;
    let admin_addr = admin.addr;

    // Running jobs finish or are released (their leases end) before anything they use stops.
    lifecycle.then("queue worker", async move {
        worker_stop.trigger();
        worker.wait().await;
    });
    lifecycle.then("plugins", async move {
        if let Some(plugins) = plugins {
            plugins.shutdown().await;
        }
    });
    lifecycle.then("heartbeat", heartbeat.stop());
    lifecycle.then("background tasks", async move { background.trigger() });
    lifecycle.then("database pool", async move { pool.close() });
    lifecycle.then("admin server", admin.stop());
    lifecycle.readiness().set_ready();
    tracing::info!(%admin_addr, owner, "executor ready");
    Ok(lifecycle.serve(Handle { admin_addr, owner }, shutdown))
}

/// What the job handlers use: the agent platform (tools with plugins and skills, the gateway
/// client, the agent runtime, circles), the queue and the event publisher.
async fn deps(
    config: &Config,
    pool: &gathering_db::Pool,
    background: &Shutdown,
) -> Result<Deps, Error> {
    // Gateway calls carry the executor's service credential.
    let service_auth = gathering_proto::service_auth::ServiceAuth::new(
        gathering_core::service_token::ServiceKey::derive(&config.master_key),
        "executor",
    );
    let platform = Platform::start(
        pool,
        PlatformConfig {
            database_url: &config.database_url,
            llm_gateway_url: &config.llm_gateway_url,
            tools: &config.tools,
            agents: &config.agents,
            circles: &config.circles,
        },
        service_auth,
        background,
    )
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    Ok(Deps {
        pool: pool.clone(),
        queue: Queue::new(pool.clone()),
        events: gathering_events::Publisher::start(
            pool.clone(),
            gathering_events::PublisherOptions {
                notify_window: config.events_notify_window,
                ..Default::default()
            },
            background.clone(),
        ),
        database_url: config.database_url.clone(),
        tools: platform.tools,
        agents: platform.agents,
        max_live_tasks: config.agents.max_live_tasks,
        circles: platform.circles,
    })
}

/// Queue depth gauges (when configured) and the event log's retention, until `background`.
fn spawn_upkeep(config: &Config, pool: &gathering_db::Pool, background: &Shutdown) {
    if let Some(every) = config.queue_metrics_interval {
        tokio::spawn(gathering_queue::depth::export_gauges(
            Queue::new(pool.clone()),
            config.queues.iter().map(|q| q.name.clone()).collect(),
            every,
            background.clone(),
        ));
    }
    tokio::spawn(trim_events(
        pool.clone(),
        config.events_max_age,
        config.events_max_rows,
        background.clone(),
    ));
}

/// The admin endpoints' state, with the worker's counters in `/health`.
fn admin_state(lifecycle: &Lifecycle<Error>, worker: &WorkerHandle) -> AdminState {
    let mut state = lifecycle.admin_state();
    let stats = worker.stats.clone();
    let worker_name = worker.owner.clone();
    state.details = Some(Arc::new(move || {
        json!({
            "worker": worker_name,
            "jobs_claimed": stats.claimed.load(Ordering::Relaxed),
            "jobs_completed": stats.completed.load(Ordering::Relaxed),
            "jobs_failed": stats.failed.load(Ordering::Relaxed),
        })
    }));
    state
}

/// Keeps the event log within its retention (every executor does it; deletes are idempotent).
async fn trim_events(
    pool: gathering_db::Pool,
    max_age: std::time::Duration,
    max_rows: i64,
    stop: Shutdown,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = stop.wait() => return,
        }
        match gathering_events::retention::purge(&pool, max_age, max_rows, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "event log trimmed"),
            Err(e) => tracing::warn!(error = %e, "trimming the event log failed"),
        }
    }
}
